"""Report sections: each declared once, one partial per section for both formats."""
from __future__ import annotations

from harness.report import render
from harness.report.i18n import LABELS
from harness.report.sections import CHAPTERS, SECTIONS, section
from test_report import EVIL, card


def test_every_section_has_its_partial_field_and_words():
    c = card()
    env = render._environment(c, "en", {})
    names = [s.name for ch in CHAPTERS for s in ch.sections]
    assert len(names) == len(set(names))
    for ch in CHAPTERS:
        assert ch.title in LABELS
        for s in ch.sections:
            module = env.get_template(s.template).module
            assert callable(getattr(module, "html", None)) and callable(getattr(module, "md", None)), s.name
            s.value(c)  # the field exists on the card
            assert s.title is None or s.title in LABELS, s.name


def test_a_new_section_is_a_partial_and_a_declaration(tmp_path):
    partial = tmp_path / "verdict_echo.j2"  # outside the package, as a plugin's is
    partial.write_text(
        '{% macro html(card, verdict) %}<p id="echo">{{ verdict }} {{ card.overview.drill_title }}</p>\n'
        '{% endmacro %}\n'
        '{% macro md(card, verdict) %}{% autoescape false %}echo: {{ verdict }} '
        '{{ card.overview.drill_title | md }}\n{% endautoescape %}{% endmacro %}\n', encoding="utf-8")
    with SECTIONS.isolated():
        section("verdict_echo", "verdict", "appendix", "Echo", path=partial)
        out = render.write_reports(tmp_path / "run", card(), lang="en")
    md, html = out["md"].read_text(), out["html"].read_text()
    # last in its chapter, under its own heading (not an i18n key: shown as written)
    assert md.endswith("### Echo\n\necho: fail 数据库宕机 &lt;script&gt;alert('x')&lt;/script&gt;")
    assert html.index("<h3>Echo</h3>") > html.index('<section id="appendix"')
    assert "<p id=\"echo\">fail 数据库宕机 &lt;script&gt;" in html  # the html macro escapes
    assert EVIL not in html and "&amp;lt;" not in md  # and the md one does not escape twice
    assert "verdict_echo" not in SECTIONS  # forgotten after the block


def test_a_section_with_nothing_to_show_is_left_out_with_its_heading(tmp_path):
    c = card()
    assert c.strengths  # detect was met with room to spare
    c.strengths, c.alerts = [], []
    md = render.write_reports(tmp_path, c, lang="en")["md"].read_text()
    assert "### Strengths" not in md and "### Alerts" in md  # an empty table still shows


def test_a_figure_shows_its_declared_waits_and_real_work(tmp_path):
    c = card()
    detect = next(r for r in c.targets if r.id == "detect")
    detect.breakdown = {"declared": 11.8, "real": 0.2, "links": 1.0}  # 12 s = 11.8 + 0.2
    en = render.write_reports(tmp_path / "en", c, lang="en")
    md, html = en["md"].read_text(), en["html"].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| detect "))
    assert "12s (0.2s wall) · 12s = 11.8s declared waits + 0.20s real work" in row
    assert '<span class="muted parts">12s = 11.8s declared waits + 0.20s real work</span>' in html
    assert "compressed by the time scale" in md  # the rule under the table, once a figure has parts
    other = next(line for line in md.splitlines() if line.startswith("| dr-takeover "))
    assert "declared waits" not in other  # measured without a chain: no breakdown shown
    zh = render.write_reports(tmp_path / "zh", c, lang="zh")["md"].read_text()
    assert "12s = 预案声明的等待 11.8s + 实际工作 0.20s" in zh


def test_no_breakdown_no_rule(tmp_path):
    md = render.write_reports(tmp_path, card(), lang="en")["md"].read_text()
    assert "declared waits" not in md


def test_figure_parts_add_up_to_the_eye():
    assert render._precise(60.431) == "1m0.4s" and render._precise(59.804) == "59.8s"
    assert render._precise(0.169) == "0.17s" and render._precise(0) == "0s"
    assert render._precise(3661.25) == "1h1m1.2s" and render._precise(120.0) == "2m"
