"""`hospital-drill init DIR`: a project folder to start from, with a packaged example drill and every
file it names (the drill it extends, its scenario, its runbook scripts) copied in.

The copies keep the catalog's layout (drills/, scenarios/, runbooks/), so the relative paths the files
use (`scenario: ../scenarios/db-crash.yaml`, `script: ../runbooks/db-crash-failover.sh`) hold in DIR
as they do in the package. Which files those are is read off the drill itself, not kept in a list. The
editor modeline (`# yaml-language-server: $schema=...`) is pointed at this installation's JSON Schema
when it has one, and dropped otherwise. DIR must be new or empty: init never overwrites a file.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import yaml

from . import catalog
from .errors import InputError

EXAMPLE = "db-crash-failover-scripted"  # the drill whose runbook step runs the hospital's own script
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"  # in a checkout only
_MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)\n", re.MULTILINE)


def add_parser(sub) -> None:
    p = sub.add_parser("init", help="start a project folder from an example drill and its runbook script",
                       description="Copy the example drill (the db-crash failover run by the hospital's "
                                   "own shell script), the files it names and its script into DIR, which "
                                   "must be new or empty, and print the commands that run it.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--drill", default=EXAMPLE,
                   help=f"the packaged drill to start from (default {EXAMPLE}; `hospital-drill list`)")
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    target = Path(args.dir)
    drill = catalog.find_drill(args.drill)
    if not drill.is_file() or catalog.HERE not in drill.resolve().parents:
        raise InputError(f"{args.drill!r} is not a packaged drill (hospital-drill list)", field="--drill")
    copied = init_project(target, drill)
    drill_copy = shlex.quote(str(target / copied[0]))
    print(f"hospital-drill init: {len(copied)} files in {target}: {', '.join(map(str, copied))}")
    print("check it, then run it:")
    print(f"  hospital-drill validate {drill_copy}")
    print(f"  hospital-drill run {drill_copy}")
    return 0


def init_project(target: Path, drill: Path) -> list[Path]:
    """Copy `drill` (a file of the catalog) and what it names into `target`; the copied files,
    relative to `target`, the drill first. InputError when `target` is a file or not empty."""
    if target.exists() and not target.is_dir():
        raise InputError("is a file, not a folder to start a project in", file=str(target))
    if target.is_dir() and any(target.iterdir()):
        raise InputError("is not empty: give a new or empty folder (init never overwrites a file)",
                         file=str(target))
    files = needed_files(drill.resolve())
    for rel in files:
        source, dest = catalog.HERE / rel, target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix.lower() in (".yaml", ".yml"):
            dest.write_text(_modeline(source.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copyfile(source, dest)
        shutil.copymode(source, dest)  # a runbook script stays executable
    return files


def needed_files(drill: Path) -> list[Path]:
    """The drill and every catalog file it names, through `extends:` chains: the files it extends,
    its scenario, the scripts of its exec steps; relative to the catalog, the drill first."""
    out: list[Path] = []
    pending = [drill]
    while pending:
        path = pending.pop(0)
        rel = path.relative_to(catalog.HERE)
        if rel in out:
            continue
        out.append(rel)
        if path.suffix.lower() not in (".yaml", ".yml"):
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        named = [data.get("extends"), data.get("scenario")]
        named += [(step.get("exec") or {}).get("script") for step in data.get("runbook") or []
                  if isinstance(step, dict)]
        for name in filter(None, named):
            found = (path.parent / name).resolve()
            if catalog.HERE not in found.parents or not found.is_file():
                raise InputError(f"names {name!r}, which is no file of the catalog", file=str(path))
            pending.append(found)
    return out


def _modeline(text: str) -> str:
    """The file's editor modeline pointed at this installation's schema, or dropped when there is
    none to point at (an installed package carries no docs/)."""
    def point(m: re.Match) -> str:
        schema = SCHEMA_DIR / Path(m.group(1)).name
        return f"# yaml-language-server: $schema={schema.as_uri()}\n" if schema.is_file() else ""
    return _MODELINE.sub(point, text, count=1)
