"""Which relocated data roots a killed run left behind: judged from the run they name and its age."""
from __future__ import annotations

import os
import time

from harness.stack.pg_orphans import OWNER, claim, orphaned


def _root(base, name, owner=None, point=True, age=0.0):
    root = base / "runs" / name
    root.mkdir(parents=True)
    if owner is not None:
        owner.mkdir(parents=True, exist_ok=True)
        if point:
            (owner / "pg").symlink_to(root, target_is_directory=True)
        claim(root, owner)
    then = time.time() - age
    os.utime(root / OWNER if owner is not None else root, (then, then))
    return root


def test_a_run_that_still_points_at_its_data_keeps_it_until_it_has_been_quiet_long(tmp_path):
    base = tmp_path / "shm"
    live = _root(base, "live", tmp_path / "runs" / "live")
    quiet = _root(base, "quiet", tmp_path / "runs" / "quiet", age=600)
    deleted = _root(base, "deleted", tmp_path / "runs" / "deleted")
    (tmp_path / "runs" / "deleted" / "pg").unlink()  # its run directory no longer points at it
    young = _root(base, "young")  # a bring-up a moment ago, before it wrote its claim
    old = _root(base, "old", age=600)  # unclaimed, by an older version, long quiet
    found = orphaned(base)
    assert quiet in found and deleted in found and old in found
    assert live not in found and young not in found


def test_a_run_with_a_live_process_is_never_an_orphan(tmp_path):
    base = tmp_path / "shm"
    owner = tmp_path / "runs" / "busy"
    root = _root(base, "busy", owner, age=600)
    (owner / "pids.json").write_text(f'{{"app-primary": {os.getpid()}}}')
    assert orphaned(base) == []
    assert orphaned(tmp_path / "nothing-here") == []
    assert root.is_dir()
