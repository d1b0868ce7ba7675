"""The drills, scenarios and runbook scripts that ship inside the package, found by name.

They live here (not only in a checkout) so that `hospital-drill list` and `hospital-drill run
db-crash-failover` work from any folder once the package is installed; the repository keeps relative
symlinks `drills/`, `scenarios/` and `runbooks/` at its root to these folders. A drill names its
scenario by a path relative to itself (`../scenarios/db-crash.yaml`), which holds here as in a checkout.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DRILLS = HERE / "drills"
PLANS = HERE / "plans"
SCENARIOS = HERE / "scenarios"
RUNBOOKS = HERE / "runbooks"


def yaml_files(folder: Path) -> list[Path]:
    """The drill or scenario files of a folder, by name; none when it is no folder."""
    from ..loader import YAML_SUFFIXES  # the loader brings pydantic: not for every command's start
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())


def shipped(folder: Path) -> dict[str, Path]:
    """The files of a catalog folder by name (the stem: `db-crash-failover`)."""
    return {p.stem: p for p in yaml_files(folder)}


def find(name: str, folder: Path) -> Path:
    """The file an argument means: a path that exists wins; otherwise a bare name (with or without
    .yaml) is a shipped file of `folder`; otherwise the path as given, for the loader to refuse."""
    from ..loader import YAML_SUFFIXES
    given = Path(name)
    if given.exists() or given.parent != Path("."):
        return given
    stem = given.stem if given.suffix.lower() in YAML_SUFFIXES else given.name
    return shipped(folder).get(stem, given)


def find_drill(name: str) -> Path:
    return find(name, DRILLS)
