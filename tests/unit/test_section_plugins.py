"""Report sections as plugins: an entry point adds a section to a chapter, a name is taken once."""
from __future__ import annotations

import sys
from importlib import metadata

import pytest

from harness.registry import DuplicateName, PluginError
from harness.report import render
from harness.report.sections import CHAPTERS, SECTIONS, section
from test_report import card

PARTIAL = ('{% macro html(card, steps) %}<p id="counted">{{ steps | length }} steps</p>{% endmacro %}\n'
           '{% macro md(card, steps) %}{{ steps | length }} steps counted{% endmacro %}\n')


@pytest.fixture
def section_plugin(tmp_path, monkeypatch):
    """A plugin module `ward_report` registering `code`, found through a faked entry point."""
    def install(code: str) -> None:
        (tmp_path / "ward_report.py").write_text(code, encoding="utf-8")
        (tmp_path / "counted.j2").write_text(PARTIAL, encoding="utf-8")
        ep = metadata.EntryPoint("ward", "ward_report", "hospital_drill.report_sections")
        monkeypatch.setattr(metadata, "entry_points",
                            lambda group=None: [ep] if group == ep.group else [])

    monkeypatch.syspath_prepend(str(tmp_path))
    with SECTIONS.isolated():
        yield install
    sys.modules.pop("ward_report", None)


PLUGIN = ("from pathlib import Path\nfrom harness.report.sections import section\n"
          "section('counted_steps', 'steps', 'analysis', 'Steps counted',\n"
          "        path=Path(__file__).with_name('counted.j2'))\n")


def test_the_builtin_chapters_keep_their_order():
    assert [c.id for c in CHAPTERS] == ["overview", "summary", "timeline", "analysis", "impact",
                                        "findings", "appendix"]
    assert [s.name for s in CHAPTERS[3].sections] == ["targets", "level", "plan", "strengths"]
    assert all(SECTIONS.origin(s.name).startswith("harness.report.sections.") for s in SECTIONS.values())


def test_a_plugin_section_lands_last_in_its_chapter(section_plugin, tmp_path):
    section_plugin(PLUGIN)
    assert "ward_report" not in sys.modules  # nothing imported before the report asks
    c = card()
    out = render.write_reports(tmp_path / "run", c, lang="en")
    analysis = [s.name for s in next(ch for ch in CHAPTERS if ch.id == "analysis").sections]
    assert analysis[-1] == "counted_steps" and analysis[:-1] == ["targets", "level", "plan", "strengths"]
    md, html = out["md"].read_text(), out["html"].read_text()
    assert f"### Steps counted\n\n{len(c.steps)} steps counted" in md
    assert md.index("## 4. Analysis") < md.index("### Steps counted") < md.index("## 5. Patient impact")
    assert f'<p id="counted">{len(c.steps)} steps</p>' in html
    assert html.index('<section id="analysis"') < html.index('id="counted"') < html.index('<section id="impact"')
    assert SECTIONS.origin("counted_steps") == "ward_report.counted_steps"


def test_a_plugin_section_under_a_builtin_name_is_refused_naming_both(section_plugin):
    section_plugin(PLUGIN.replace("'counted_steps'", "'findings'"))
    with pytest.raises(PluginError) as e:
        SECTIONS["findings"]
    assert str(e.value) == (
        "plugin 'ward' (hospital_drill.report_sections = ward_report) does not load: DuplicateName: "
        "report section 'findings' registered twice: by harness.report.sections.findings and by "
        "ward_report.findings")


def test_a_section_name_is_taken_once_and_its_chapter_must_exist(tmp_path):
    with SECTIONS.isolated():
        with pytest.raises(DuplicateName, match="report section 'targets' registered twice"):
            section("targets", "targets", "analysis")
        with pytest.raises(ValueError, match=r"unknown chapter 'annex' \(known: overview, summary"):
            section("annex_table", "steps", "annex")
        with pytest.raises(ValueError, match="no partial at"):
            section("lost_partial", "steps", "appendix", path=tmp_path / "missing.j2")
        assert "annex_table" not in SECTIONS and "lost_partial" not in SECTIONS


def test_a_section_plugin_that_does_not_load_stops_run_before_it_starts(section_plugin, monkeypatch,
                                                                        capsys, repo_root):
    import harness.run
    from harness import cli

    def started(*a, **kw):
        raise AssertionError("the run started")

    monkeypatch.setattr(harness.run, "DrillRun", started)
    section_plugin("import ward_report_sdk_not_installed\n")
    code = cli.main(["run", str(repo_root / "drills" / "db-crash-failover.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("hospital-drill: error: plugin 'ward' (hospital_drill.report_sections = "
                          "ward_report) does not load: ModuleNotFoundError:")
