"""A plugin package installed as a hospital would install it (tests/plugin_pkg: a fault, a runbook
action and a report section through entry points), and a drill that uses all three."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DRILL = Path(__file__).resolve().parent / "drills" / "oom-rebuild.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """tests/plugin_pkg pip-installed into a folder of its own (built from a copy: a build writes
    beside the sources)."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(ROOT / "tests" / "plugin_pkg", tmp / "src")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(tmp / "site"), str(tmp / "src")],
                   check=True, capture_output=True, text=True, timeout=300)
    return tmp / "site"


def cli(*args: str, plugin: Path | None, timeout: float = 400) -> subprocess.CompletedProcess:
    path = [str(plugin)] if plugin else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path + [str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_drill_needs_the_plugin():
    p = cli("validate", str(DRILL), plugin=None, timeout=60)
    assert p.returncode == 2
    assert "unknown action 'rebuild_app'" in p.stderr and "unknown fault 'app_oom_kill'" in p.stderr


def test_the_installed_plugin_kills_a_service_rebuilds_it_and_reports_it(site, tmp_path):
    declares = subprocess.run(
        [sys.executable, "-c", "from harness.runbook.actions import ACTIONS; from harness.faults.base "
         "import FAULTS; print(ACTIONS.declares('rebuild_app', 'failover'), "
         "FAULTS.origin('app_oom_kill'))"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
        capture_output=True, text=True, check=True)
    assert declares.stdout.split() == ["True", "oom_drills.plugin.AppOomKill"]

    out = tmp_path / "run"
    p = cli("run", str(DRILL), "--out", str(out), "--quiet", "--time-scale", "120", "--lang", "en",
            plugin=site)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    journal = read_journal(out / "journal.jsonl")
    card = json.loads((out / "score.json").read_text())

    # the fault killed the serving app server's process
    fault = journal.first("fault.injected")
    assert fault["fault_type"] == "app_oom_kill" and fault["target"] == "app-primary"
    assert fault["detail"]["signal"] == "SIGKILL" and fault["detail"]["pid"] > 0
    # the action moved the VIP (confirmed through it) and started the killed one again, before the
    # run's own revert, which found it running
    step = next(e for e in journal.of_type("step.finished") if e["step"] == "rebuild-app")
    assert step["ok"] and step["action"] == "rebuild_app"
    assert step["detail"]["serving"] == "app-backup" and step["detail"]["rebuilt"] == "app-primary"
    assert journal.first("fault.reverted")["detail"] == {"service": "app-primary", "already": "running"}
    # patients saw it: failing after the fault, served again after the rebuild
    records = [json.loads(line) for f in (out / "records").glob("*.jsonl")
               for line in f.read_text().splitlines() if line.strip()]
    assert any(not r["ok"] for r in records if fault["wall"] < r["t"] < step["wall"])
    assert any(r["ok"] for r in records if r["t"] > step["wall"])

    targets = {t["id"]: t for t in card["targets"]}
    assert card["verdict"] == "pass" and targets["rebuilt"]["status"] == "met"
    assert targets["core-recovered"]["status"] == "met"
    assert next(s for s in card["steps"] if s["id"] == "rebuild-app")["action"] == "rebuild_app"

    # the plugin's report section, in its chapter, in both formats
    md = (out / "report.md").read_text()
    assert md.index("## 4. Analysis") < md.index("### OOM rebuilds") < md.index("## 5. Patient impact")
    assert "| rebuild-app | ok |" in md and "serving: app-backup, rebuilt: app-primary" in md
    assert '<table id="oom-rebuilds">' in (out / "report.html").read_text()
    assert_nothing_left(out)
