"""Reading the request records that the patient load writes (format: docs/internals.md).

One ``*.jsonl`` file per Locust process in a records directory, appended line by line. A reader may
catch a file mid-write, so only complete lines (ending in a newline) are read; a line that is not a
JSON object is skipped (a process killed mid-write can leave one behind).

- :func:`iter_records` reads everything there is, for the score card and reports.
- :class:`RecordTail` reads only what is new since its last call, for the monitor. It leaves out the
  requests of journey ``offline`` (a patient's way to offline reception): the monitor watches the
  internet hospital, and a receipt from offline reception is not the hospital serving its patients.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

SUFFIX = ".jsonl"
OFFLINE_JOURNEY = "offline"  # kept in step with locustfile.py (which cannot import the harness)


def _parse(line: bytes) -> dict | None:
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def record_files(records_dir: str | os.PathLike) -> list[Path]:
    """The record files of a directory, sorted by name (a single file: itself); none if missing."""
    d = Path(records_dir)
    if d.is_file():
        return [d]
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith(SUFFIX) and p.is_file())


def iter_records(records_dir: str | os.PathLike) -> Iterator[dict]:
    """Every complete record in every file of ``records_dir`` (or in one file), in file order.

    A truncated last line (no newline yet, or cut by a crash) and malformed lines are skipped.
    """
    for path in record_files(records_dir):
        try:
            fh = open(path, "rb")
        except OSError:
            continue
        with fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                if not line.strip():
                    continue
                rec = _parse(line)
                if rec is not None:
                    yield rec


class RecordTail:
    """Incremental reader of a records directory: each :meth:`poll` returns the records added since.

    It remembers a byte offset per file, picks up files that appear later, keeps an unfinished last
    line until its newline arrives, and starts a file over if it was truncated or replaced.
    ``from_end=True`` skips what the files already hold when the tail is created.
    """

    def __init__(self, records_dir: str | os.PathLike, *, from_end: bool = False):
        self.records_dir = Path(records_dir)
        self._offsets: dict[str, int] = {}
        self._inodes: dict[str, int] = {}
        self.skipped = 0
        if from_end:
            for path in record_files(self.records_dir):
                try:
                    st = path.stat()
                except OSError:
                    continue
                self._inodes[path.name] = st.st_ino
                # the part after the last newline is not a record yet: start from that line
                self._offsets[path.name] = self._last_line_start(path, st.st_size)

    @staticmethod
    def _last_line_start(path: Path, size: int) -> int:
        if size == 0:
            return 0
        with open(path, "rb") as fh:
            back = min(size, 65536)
            fh.seek(size - back)
            tail = fh.read(back)
        cut = tail.rfind(b"\n")
        if cut < 0:
            return 0 if back == size else size
        return size - back + cut + 1

    @property
    def offsets(self) -> dict[str, int]:
        """Bytes consumed so far, per file name."""
        return dict(self._offsets)

    def poll(self) -> list[dict]:
        """The complete records written since the previous call, file by file."""
        out: list[dict] = []
        try:
            entries = list(os.scandir(self.records_dir))
        except OSError:
            return out
        for entry in sorted(entries, key=lambda e: e.name):
            if not entry.name.endswith(SUFFIX):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            name = entry.name
            offset = self._offsets.get(name, 0)
            if self._inodes.get(name, st.st_ino) != st.st_ino or st.st_size < offset:
                offset = 0  # replaced or truncated: read it again from the start
            self._inodes[name] = st.st_ino
            if st.st_size == offset:
                self._offsets[name] = offset
                continue
            try:
                with open(entry.path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read(st.st_size - offset)
            except OSError:
                continue
            end = chunk.rfind(b"\n")
            if end < 0:
                self._offsets[name] = offset
                continue
            for line in chunk[:end].split(b"\n"):
                if not line.strip():
                    continue
                rec = _parse(line)
                if rec is None:
                    self.skipped += 1
                elif rec.get("journey") != OFFLINE_JOURNEY:
                    out.append(rec)
            self._offsets[name] = offset + end + 1
        return out
