"""Files other processes read while we write them: written to a temporary name and renamed, so a
reader sees no file or the whole of it, never half (ready files, T+0 for the load, stop requests)."""
from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
