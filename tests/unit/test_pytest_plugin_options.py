"""The pytest plugin stays out of the way of a suite that does not use it, and finds drills."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from harness import pytest_plugin
from harness.catalog import DRILLS

ROOT = Path(__file__).resolve().parents[2]


def test_the_entry_point_names_the_plugin_module():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {"hospital_drill": "harness.pytest_plugin"}


def test_importing_the_plugin_imports_no_part_of_the_harness():
    code = ("import sys, harness.pytest_plugin\n"
            "print(sorted(m for m in sys.modules if m.startswith('harness.') and m != 'harness.pytest_plugin'))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_a_drill_is_a_path_here_or_under_the_rootdir_or_a_packaged_name(tmp_path, monkeypatch):
    mine = tmp_path / "drills" / "my-failover.yaml"
    mine.parent.mkdir()
    mine.write_text("name: my-failover\n")
    monkeypatch.chdir(tmp_path / "drills")
    assert pytest_plugin._drill_path("my-failover.yaml", tmp_path) == Path("my-failover.yaml")
    monkeypatch.chdir(ROOT)
    assert pytest_plugin._drill_path("drills/my-failover.yaml", tmp_path) == mine
    assert pytest_plugin._drill_path("db-crash-failover", tmp_path) == DRILLS / "db-crash-failover.yaml"
