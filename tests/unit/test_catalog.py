"""Shipped drills by name from any folder: harness/catalog, `list`, `run NAME`, and the package on its
own (what `pip install .` puts in site-packages) holding every drill and scenario it names."""
from __future__ import annotations

import fnmatch
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness import catalog, cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working folder with no drills of its own."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_name_is_the_packaged_drill(elsewhere):
    assert catalog.find_drill("db-crash-failover") == catalog.DRILLS / "db-crash-failover.yaml"
    assert catalog.find_drill("db-crash-failover.yaml") == catalog.DRILLS / "db-crash-failover.yaml"
    assert catalog.find_drill("no-such-drill") == Path("no-such-drill")  # for the loader to refuse


def test_a_path_always_wins(elsewhere):
    (elsewhere / "db-crash-failover").write_text("name: mine\n", encoding="utf-8")
    assert catalog.find_drill("db-crash-failover") == Path("db-crash-failover")
    assert catalog.find_drill("drills/db-crash-failover.yaml") == Path("drills/db-crash-failover.yaml")


def test_the_repository_folders_are_the_packaged_ones():
    for name, folder in (("drills", catalog.DRILLS), ("scenarios", catalog.SCENARIOS),
                         ("runbooks", catalog.RUNBOOKS)):
        assert (ROOT / name).is_symlink() and (ROOT / name).resolve() == folder, name


def test_list_shows_the_packaged_drills_from_anywhere(elsewhere, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "scenarios (packaged):" in out and "drills (packaged):" in out
    for path in catalog.yaml_files(catalog.DRILLS):
        assert f"  {path.stem} " in out, path.stem
    assert "INVALID" not in out


def test_list_adds_those_of_dir(elsewhere, capsys):
    project = elsewhere / "my-hospital"
    (project / "drills").mkdir(parents=True)
    shutil.copytree(catalog.SCENARIOS, project / "scenarios")
    text = (catalog.DRILLS / "db-crash-failover.yaml").read_text(encoding="utf-8")
    (project / "drills" / "night-shift.yaml").write_text(
        text.replace("name: db-crash-failover", "name: night-shift"), encoding="utf-8")
    assert cli.main(["list", "--dir", str(project)]) == 0
    out = capsys.readouterr().out
    mine = out[out.index(f"drills ({project}):"):]
    assert "night-shift" in mine and "INVALID" not in out
    assert cli.main(["list", "--dir", str(ROOT)]) == 0  # the checkout: its files are the packaged ones
    out = capsys.readouterr().out
    assert out.count("  db-crash-failover ") == 1
    assert cli.main(["list", "--dir", str(elsewhere / "nowhere")]) == 2


def test_validate_and_run_take_a_name(elsewhere, capsys):
    assert cli.main(["validate", "db-crash-failover"]) == 0
    assert "drill db-crash-failover" in capsys.readouterr().out
    # run resolves the name too: a bad flag is refused after the drill loaded, before anything starts
    assert cli.main(["run", "db-crash-failover", "--backend", "cloud", "--out", "r"]) == 2
    assert "unknown backend 'cloud'" in capsys.readouterr().err
    assert cli.main(["run", "no-such-drill", "--out", "r"]) == 2
    assert "no-such-drill: no such file" in capsys.readouterr().err
    assert not (elsewhere / "r").exists()


def _package_data() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["harness"]


def test_every_catalog_file_is_declared_package_data():
    files = [p for p in catalog.HERE.rglob("*") if p.is_file() and p.suffix != ".pyc"
             and "__pycache__" not in p.parts and p.suffix != ".py" and p.name != ".gitkeep"]
    assert len(files) >= 20
    for path in files:
        rel = path.relative_to(catalog.HERE.parent).as_posix()
        assert any(fnmatch.fnmatch(rel, glob) for glob in _package_data()), rel


def _cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_package_alone_lists_and_validates_every_shipped_drill(tmp_path):
    """The package as site-packages holds it (no checkout beside it): every drill resolves its
    scenario and its `extends:` base inside the package."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "harness", site / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    p = _cli(site, work, "list")
    assert p.returncode == 0, p.stderr
    assert "INVALID" not in p.stdout and "drills (packaged):" in p.stdout
    names = [path.stem for path in catalog.yaml_files(catalog.DRILLS)]
    p = _cli(site, work, "validate", *names)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": ok") == len(names)
    which = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], cwd=work,
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert which.stdout.strip() == str(site / "harness" / "__init__.py")  # the copy, not the checkout


@pytest.mark.skipif(importlib.util.find_spec("wheel") is None,
                    reason="building the wheel needs the 'wheel' package with this setuptools")
def test_pip_install_target_holds_the_drills(tmp_path):
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--target", str(site), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for name in ("drills/db-crash-failover.yaml", "scenarios/db-crash.yaml"):
        assert (site / "harness" / "catalog" / name).is_file(), name
    work = tmp_path / "work"
    work.mkdir()
    p = _cli(site, work, "validate", "db-crash-failover")
    assert p.returncode == 0, p.stderr
