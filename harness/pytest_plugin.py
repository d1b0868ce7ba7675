"""pytest plugin (entry point `pytest11`): drills as tests.

    def test_failover(run_drill):
        assert run_drill("drills/db-crash-failover.yaml").verdict == "pass"

`run_drill(drill, **overrides)` runs the drill end to end (`harness.run.DrillRun`) and returns its
score card. `drill` is a path (to the working folder, else to pytest's rootdir) or the name of a
packaged drill. Each run gets its own directory under the test's `tmp_path` (or `--drill-out`); the
paths of its report, junit.xml and score.json go into the test's `user_properties`, so that a junit
report of the pytest run (and so CI) keeps them, and the end of the session lists every drill run.

Options: `--drill-backend`, `--drill-scale`, `--drill-out`, `--drill-lang`; a keyword given to
`run_drill` wins over them, and they over the drill file. The harness is imported only when a test
asks for the fixture: a pytest run that does not use it pays nothing and cannot break.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from .score.card import ScoreCard

RUNS = pytest.StashKey[list[tuple[str, str]]]()  # (summary line, report.html) of every drill run


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hospital-drill", "drills run by the run_drill fixture")
    group.addoption("--drill-backend", default=None, metavar="NAME",
                    help="backend of every drill run (default: local)")
    group.addoption("--drill-scale", type=float, default=None, metavar="X",
                    help="time scale of every drill run, drill seconds per real second "
                         "(default: each drill's own)")
    group.addoption("--drill-out", default=None, metavar="DIR",
                    help="keep the run directories under DIR (default: each test's tmp_path)")
    group.addoption("--drill-lang", default=None, choices=("zh", "en"),
                    help="the reports' language (default zh)")


def _drill_path(drill: str | Path, rootdir: Path) -> Path:
    """A path that exists (as given, else under the rootdir), or a packaged drill's name."""
    from .catalog import find_drill
    given = Path(drill)
    if not given.exists() and not given.is_absolute() and (rootdir / given).exists():
        return rootdir / given
    return find_drill(str(drill))


@pytest.fixture
def run_drill(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., "ScoreCard"]:
    """Run a drill and return its score card; see the module's doc for the overrides."""
    config = request.config

    def run(drill: str | Path, *, time_scale: float | None = None, backend: str | None = None,
            out: str | Path | None = None, lang: str | None = None, toxiproxy_url: str | None = None,
            backend_options: dict[str, Any] | None = None) -> "ScoreCard":
        from .report.render import summary_line
        from .report.sections import SECTIONS
        from .run import DrillRun
        SECTIONS.load()  # a report-section plugin that does not load fails the test before the run
        base = config.getoption("drill_out")
        drill_run = DrillRun(
            _drill_path(drill, config.rootpath),
            out_dir=out, reports_root=Path(base) if base else tmp_path,
            time_scale=time_scale or config.getoption("drill_scale"),
            backend=backend or config.getoption("drill_backend") or "local",
            lang=lang or config.getoption("drill_lang") or "zh",
            toxiproxy_url=toxiproxy_url, backend_options=backend_options,
            progress=lambda line: print(line, flush=True))  # shown by pytest when the test fails
        with drill_run:
            drill_run.execute()
        name = drill_run.drill.name
        request.node.user_properties.append((f"hospital_drill.{name}.run_dir", str(drill_run.run_dir)))
        for kind in ("html", "junit", "json"):
            if kind in drill_run.reports:
                request.node.user_properties.append((f"hospital_drill.{name}.{kind}",
                                                     str(drill_run.reports[kind])))
        card = drill_run.card
        if card is None:  # the score could not be built: the run's journal says why
            pytest.fail(f"drill {name}: no score card; journal in {drill_run.run_dir}", pytrace=False)
        config.stash.setdefault(RUNS, []).append(
            (summary_line(card), str(drill_run.reports.get("html", drill_run.run_dir))))
        return card

    return run


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(RUNS, [])
    if runs:
        terminalreporter.section("hospital-drill")
        for line, report in runs:
            terminalreporter.write_line(f"{line}\n    report: {report}")
