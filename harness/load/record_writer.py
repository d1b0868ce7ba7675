"""The request records' writer: whole JSON lines appended to one file per Locust process.

A sibling module of the locustfile (imported without the harness package).
"""
from __future__ import annotations

import os

import orjson

MAX_BUFFERED = 2000  # records held before a write, whatever the flush interval


class RecordWriter:
    """Buffers request records in memory and appends them to one JSON Lines file.

    Lines are only ever written whole (one ``write`` per batch of complete lines), so a reader that
    tails the file sees at most a partial last line while a batch is being written.
    """

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fh = open(path, "ab", buffering=0)
        self._lines: list[bytes] = []
        self.written = 0

    def add(self, record: dict) -> None:
        # orjson: at zero think time the standard library's encoder was the load's biggest own cost
        self._lines.append(orjson.dumps(record))
        if len(self._lines) >= MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        if not self._lines or self._fh is None:
            return
        lines, self._lines = self._lines, []
        data = b"\n".join(lines) + b"\n"
        view = memoryview(data)
        while view:
            n = self._fh.write(view)
            view = view[n:]
        self.written += len(lines)

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None
