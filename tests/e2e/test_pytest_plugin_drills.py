"""The pytest plugin as a hospital uses it: a test suite of its own whose tests run drills with the
`run_drill` fixture; a runbook that works passes, a broken one fails, and CI keeps the reports."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from tests.helpers import assert_nothing_left

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

HOSPITAL_TESTS = f'''
def test_backup_interface_corrected(run_drill):
    card = run_drill({str(ROOT / "drills" / "wrong-backup-ip-fixed.yaml")!r})
    assert card.verdict == "pass"


def test_backup_interface_as_configured(run_drill):
    assert run_drill("wrong-backup-ip").verdict == "pass"  # a packaged drill, by name
'''


def _plugin_args() -> list[str]:
    """Installed, the plugin loads itself through its entry point; from a bare checkout, name it."""
    installed = any(ep.value == "harness.pytest_plugin" for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "harness.pytest_plugin"]


def test_run_drill_reports_a_passing_and_a_failing_runbook(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_runbooks=HOSPITAL_TESTS)
    out = pytester.path / "drill-runs"
    result = pytester.runpytest_subprocess(*_plugin_args(), "--drill-scale", "120", "--drill-lang", "en",
                                           "--drill-out", str(out), "--junitxml", "junit.xml",
                                           timeout=600)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_backup_interface_as_configured*",
                                 "*assert 'fail' == 'pass'*",
                                 "*hospital-drill*",
                                 "wrong-backup-ip-fixed: PASS *",
                                 "wrong-backup-ip: FAIL *insurance-switched*✗*"])
    # each test's report names its drill's files, and they are there
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    for test, drill, verdict in (("test_backup_interface_corrected", "wrong-backup-ip-fixed", "pass"),
                                 ("test_backup_interface_as_configured", "wrong-backup-ip", "fail")):
        props = {p.get("name"): p.get("value") for p in cases[test].iter("property")}
        run_dir = Path(props[f"hospital_drill.{drill}.run_dir"])
        assert run_dir.parent == out  # --drill-out
        assert Path(props[f"hospital_drill.{drill}.html"]) == run_dir / "report.html"
        assert (run_dir / "report.html").is_file()
        drill_junit = ET.parse(props[f"hospital_drill.{drill}.junit"]).getroot()
        assert {p.get("name"): p.get("value") for p in drill_junit.iter("property")}["verdict"] == verdict
        assert {p.get("name"): p.get("value") for p in drill_junit.iter("property")}["time_scale"] == "120.0"
        assert_nothing_left(run_dir)
