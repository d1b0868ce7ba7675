"""Report sections: each declared once, one partial per section for both formats."""
from __future__ import annotations

import shutil

from harness.report import render
from harness.report.i18n import LABELS
from harness.report.sections import CHAPTERS, Chapter, Section
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


def test_a_new_section_is_a_partial_and_a_declaration(tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES, templates)
    (templates / "sections" / "verdict_echo.j2").write_text(
        '{% macro html(card, verdict) %}<p id="echo">{{ verdict }} {{ card.overview.drill_title }}</p>\n'
        '{% endmacro %}\n'
        '{% macro md(card, verdict) %}{% autoescape false %}echo: {{ verdict }} '
        '{{ card.overview.drill_title | md }}\n{% endautoescape %}{% endmacro %}\n', encoding="utf-8")
    extra = Chapter("echo", "s_appendix", (Section("verdict_echo", "verdict", "a_score"),))
    monkeypatch.setattr(render, "TEMPLATES", templates)
    monkeypatch.setattr(render, "CHAPTERS", render.CHAPTERS + (extra,))
    out = render.write_reports(tmp_path / "run", card(), lang="en")
    md, html = out["md"].read_text(), out["html"].read_text()
    assert md.endswith("### Appendix D. Score breakdown\n\necho: fail 数据库宕机 &lt;script&gt;alert('x')&lt;/script&gt;")
    assert '<section id="echo">' in html and '<a href="#echo">' in html
    assert "<p id=\"echo\">fail 数据库宕机 &lt;script&gt;" in html  # the html macro escapes
    assert EVIL not in html and "&amp;lt;" not in md  # and the md one does not escape twice


def test_a_section_with_nothing_to_show_is_left_out_with_its_heading(tmp_path):
    c = card()
    assert c.strengths  # detect was met with room to spare
    c.strengths, c.alerts = [], []
    md = render.write_reports(tmp_path, c, lang="en")["md"].read_text()
    assert "### Strengths" not in md and "### Alerts" in md  # an empty table still shows
