"""`hospital-drill init DIR`: the example drill and what it names, copied so that it validates from
there; a folder that is not empty is refused with exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from harness import catalog
from harness.init_project import needed_files
from harness.validate import load_drill

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def test_the_files_are_read_off_the_drill():
    files = needed_files(catalog.DRILLS / "db-crash-failover-scripted.yaml")
    assert files[0] == Path("drills/db-crash-failover-scripted.yaml")
    assert set(files) == {Path("drills/db-crash-failover-scripted.yaml"), Path("drills/db-crash-failover.yaml"),
                          Path("scenarios/db-crash.yaml"), Path("runbooks/db-crash-failover.sh")}


def test_init_then_validate_runs_the_copies(tmp_path):
    made = cli("init", "proj", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    drill = tmp_path / "proj" / "drills" / "db-crash-failover-scripted.yaml"
    # the two commands, runnable from where init was called
    assert made.stdout.splitlines()[-2:] == [f"  hospital-drill validate {Path('proj/drills/db-crash-failover-scripted.yaml')}",
                                             f"  hospital-drill run {Path('proj/drills/db-crash-failover-scripted.yaml')}"]
    script = tmp_path / "proj" / "runbooks" / "db-crash-failover.sh"
    assert os.access(script, os.X_OK)
    assert script.read_bytes() == (catalog.RUNBOOKS / "db-crash-failover.sh").read_bytes()
    checked = cli("validate", str(drill.relative_to(tmp_path)), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    # the drill as loaded runs the project's script and scenario, not the package's
    loaded = load_drill(drill)
    step = next(s for s in loaded.drill.runbook if s.id == "promote-same-city")
    assert Path(step.exec_.script) == script.resolve()
    assert loaded.scenario_path.resolve() == (tmp_path / "proj" / "scenarios" / "db-crash.yaml").resolve()
    assert yaml.safe_load(drill.read_text())["extends"] == "db-crash-failover.yaml"


def test_an_edit_in_the_project_is_what_validate_judges(tmp_path):
    assert cli("init", "proj", cwd=tmp_path).returncode == 0
    (tmp_path / "proj" / "runbooks" / "db-crash-failover.sh").unlink()
    checked = cli("validate", "proj/drills/db-crash-failover-scripted.yaml", cwd=tmp_path)
    assert checked.returncode == 2
    # the index the drill file gives the step (its promote-same-city overrides the plan class's)
    assert "runbook.0.exec.script" in checked.stderr and "not found" in checked.stderr


def test_a_folder_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("ours")
    refused = cli("init", "proj", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("hospital-drill: error: proj: is not empty: give a new or empty "
                                      "folder (init never overwrites a file)")
    assert [p.name for p in (tmp_path / "proj").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    assert cli("init", "file", cwd=tmp_path).returncode == 2


def test_an_empty_folder_is_welcome_and_an_unknown_drill_is_not(tmp_path):
    (tmp_path / "proj").mkdir()
    assert cli("init", "proj", cwd=tmp_path).returncode == 0
    bad = cli("init", "other", "--drill", "no-such-drill", cwd=tmp_path)
    assert bad.returncode == 2 and "--drill: 'no-such-drill' is not a packaged drill" in bad.stderr
    assert not (tmp_path / "other").exists()
