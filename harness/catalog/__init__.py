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
SCENARIOS = HERE / "scenarios"
RUNBOOKS = HERE / "runbooks"


def yaml_files(folder: Path) -> list[Path]:
    """The drill or scenario files of a folder, by name; none when it is no folder."""
    from ..loader import YAML_SUFFIXES  # the loader brings pydantic: not for every command's start
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())


def find_drill(name: str) -> Path:
    """The file a drill argument means: a path that exists wins; otherwise a bare name (with or
    without .yaml) is a packaged drill; otherwise the path as given, for the loader to refuse."""
    from ..loader import YAML_SUFFIXES
    given = Path(name)
    if given.exists() or given.parent != Path("."):
        return given
    stem = given.stem if given.suffix.lower() in YAML_SUFFIXES else given.name
    for suffix in YAML_SUFFIXES:
        packaged = DRILLS / f"{stem}{suffix}"
        if packaged.is_file():
            return packaged
    return given
