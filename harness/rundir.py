"""A run directory of its own for every run: two runs started in the same second never share one."""
from __future__ import annotations

from pathlib import Path

MAX_TRIES = 1000


def claim_run_dir(root: str | Path, name: str, stamp: str,
                  out_dir: str | Path | None = None) -> tuple[str, Path]:
    """(run_id, run_dir) for a run of drill `name` started at `stamp`.

    With `out_dir` the user chose the place (the command line refuses one that holds a run). Without
    it the directory `root/name-stamp` is created here, atomically: mkdir either makes it or fails,
    so when another run got there first this one takes `name-stamp-2`, `-3`, … instead.
    """
    base = f"{name}-{stamp}"
    if out_dir:
        return base, Path(out_dir)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_TRIES + 1):
        run_id = base if n == 1 else f"{base}-{n}"
        try:
            (root / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id, root / run_id
    raise FileExistsError(f"{MAX_TRIES} runs of {name} at {stamp} already in {root}")
