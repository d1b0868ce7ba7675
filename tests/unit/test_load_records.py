"""Reading and tailing request records (harness.load.records)."""
from __future__ import annotations

import json
import os

from harness.load.records import RecordTail, iter_records, record_files


def rec(i: int, patient: str = "P00001", **kw) -> dict:
    base = {"t": 1764090000.0 + i, "ms": 12.5, "patient": patient, "persona": "followup",
            "journey": "followup", "name": "GET /api/notice", "ok": True, "status": 200,
            "error": None, "write_id": None}
    base.update(kw)
    return base


def line(r: dict) -> str:
    return json.dumps(r) + "\n"


def test_iter_records_reads_all_files_and_skips_truncated_last_line(tmp_path):
    (tmp_path / "worker-1.jsonl").write_text(line(rec(1)) + line(rec(2)) + '{"t": 17640900')
    (tmp_path / "worker-2.jsonl").write_text(line(rec(3, "P00002")))
    (tmp_path / "notes.txt").write_text("not a record\n")
    got = list(iter_records(tmp_path))
    assert [r["t"] for r in got] == [rec(1)["t"], rec(2)["t"], rec(3)["t"]]
    assert [p.name for p in record_files(tmp_path)] == ["worker-1.jsonl", "worker-2.jsonl"]


def test_iter_records_skips_malformed_and_blank_lines(tmp_path):
    (tmp_path / "local.jsonl").write_text(line(rec(1)) + "garbage\n\n[1, 2]\n" + line(rec(2)))
    assert [r["t"] for r in iter_records(tmp_path)] == [rec(1)["t"], rec(2)["t"]]


def test_iter_records_missing_dir_is_empty(tmp_path):
    assert list(iter_records(tmp_path / "nope")) == []


def test_tail_reads_only_new_complete_lines(tmp_path):
    f = tmp_path / "local.jsonl"
    f.write_text(line(rec(1)))
    tail = RecordTail(tmp_path)
    assert [r["t"] for r in tail.poll()] == [rec(1)["t"]]
    assert tail.poll() == []

    text = line(rec(2))
    with open(f, "a") as fh:
        fh.write(text[:20])                      # a line half written
    assert tail.poll() == []
    with open(f, "a") as fh:
        fh.write(text[20:] + line(rec(3)))       # completed, plus one more
    assert [r["t"] for r in tail.poll()] == [rec(2)["t"], rec(3)["t"]]
    assert tail.offsets["local.jsonl"] == f.stat().st_size


def test_tail_picks_up_new_files(tmp_path):
    tail = RecordTail(tmp_path)
    assert tail.poll() == []
    (tmp_path / "worker-10.jsonl").write_text(line(rec(1, "P00001")))
    assert [r["patient"] for r in tail.poll()] == ["P00001"]
    (tmp_path / "worker-11.jsonl").write_text(line(rec(2, "P00002")))
    with open(tmp_path / "worker-10.jsonl", "a") as fh:
        fh.write(line(rec(3, "P00003")))
    assert sorted(r["patient"] for r in tail.poll()) == ["P00002", "P00003"]
    assert tail.poll() == []


def test_tail_dir_appearing_later(tmp_path):
    d = tmp_path / "records"
    tail = RecordTail(d)
    assert tail.poll() == []
    d.mkdir()
    (d / "local.jsonl").write_text(line(rec(1)))
    assert len(tail.poll()) == 1


def test_tail_starts_over_when_file_truncated_or_replaced(tmp_path):
    f = tmp_path / "local.jsonl"
    f.write_text(line(rec(1)) + line(rec(2)))
    tail = RecordTail(tmp_path)
    assert len(tail.poll()) == 2
    f.write_text(line(rec(9)))                  # truncated and rewritten (shorter)
    assert [r["t"] for r in tail.poll()] == [rec(9)["t"]]
    tmp = tmp_path / "new.tmp"
    tmp.write_text(line(rec(10)) + line(rec(11)) + line(rec(12)))
    os.replace(tmp, f)                          # replaced by another file
    assert [r["t"] for r in tail.poll()] == [rec(10)["t"], rec(11)["t"], rec(12)["t"]]


def test_tail_from_end_skips_existing_records(tmp_path):
    f = tmp_path / "local.jsonl"
    partial = line(rec(2))
    f.write_text(line(rec(1)) + partial[:15])
    tail = RecordTail(tmp_path, from_end=True)
    assert tail.poll() == []
    with open(f, "a") as fh:
        fh.write(partial[15:] + line(rec(3)))
    # the line that was half written when the tail started is new: it is read whole
    assert [r["t"] for r in tail.poll()] == [rec(2)["t"], rec(3)["t"]]


def test_tail_counts_malformed_lines(tmp_path):
    (tmp_path / "local.jsonl").write_text("oops\n" + line(rec(1)))
    tail = RecordTail(tmp_path)
    assert len(tail.poll()) == 1
    assert tail.skipped == 1
