"""The accidental-deletion drill end to end through the CLI: real backups on the plan's schedule, a
real DELETE on the primary, a real restore from the full + hourly incremental chain, RPO counted."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left, port_open

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DRILL = "drills/data-deletion-restore.yaml"


def _events(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
    return out


def test_deletion_is_restored_from_full_and_incremental_backups(tmp_path):
    out = tmp_path / "run"
    journal_path = out / "journal.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", DRILL, "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # while the run goes on, the backups are really there: both copies of the first incremental
        seen_on_disk: dict[str, int] = {}
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            incr = [e for e in _events(journal_path) if e["type"] == "backup.taken"
                    and e["kind"] == "incremental"]
            if incr:
                for copy in (incr[0]["path"], incr[0]["offline"]):
                    files = [f for f in Path(copy).rglob("*") if f.is_file()]
                    assert (Path(copy) / "backup_manifest").is_file(), copy
                    seen_on_disk[copy] = sum(f.stat().st_size for f in files)
                break
            time.sleep(0.2)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-4000:]
    assert len(seen_on_disk) == 2 and all(size > 0 for size in seen_on_disk.values()), seen_on_disk

    journal = read_journal(journal_path)
    fault = journal.first("fault.injected")
    scale = journal.first("run.started")["time_scale"]

    # backups on the plan's schedule, in drill time: the 01:00 full, then hourly incrementals
    taken = journal.of_type("backup.taken")
    assert not journal.of_type("backup.failed")
    assert taken[0]["kind"] == "full" and taken[0]["label"] == "full-d1-0100"
    before = [b for b in taken if b["wall"] < fault["wall"]]
    incrementals = [b for b in before if b["kind"] == "incremental"]
    assert incrementals and incrementals[0]["based_on"] == "full-d1-0100"
    assert incrementals[0]["label"] == "incr-d1-0200"
    for b in taken:
        assert b["size"] > 0 and b["seconds"] > 0 and b["offline"], b
    assert incrementals[0]["size"] < taken[0]["size"]  # only the changed blocks (and its WAL)

    # the deletion: rows really gone, and patients reading their replies got 404s
    detail = fault["detail"]
    deleted = detail["rows_deleted"]
    assert fault["fault_type"] == "data_deletion" and deleted > 100
    assert detail["statement"].startswith("DELETE FROM consultations")
    assert detail["patient_view"] and all(r["status"] == 404 for r in detail["patient_view"])
    missing = journal.first("data.missing")
    assert missing["wall"] >= fault["wall"] and missing["missing"] > 100
    assert missing["patient_reads"] and all(r["status"] == 404 for r in missing["patient_reads"])
    # staff see it as patients do (their earlier consultations 404) or by the plan's audit; the
    # load's own write ids are ground truth only (truth.*), never an alert
    seen = [e for e in journal.of_type("alert.raised") if e["wall"] >= fault["wall"]
            and e["alert"] in ("earlier_consultations_not_found", "audit_rows_dropped")]
    assert seen, [e["alert"] for e in journal.of_type("alert.raised")]
    assert journal.first("alert.raised", alert="consultations_missing") is None
    truth = journal.first("truth.raised", alert="consultations_missing")
    assert truth is not None and truth["wall"] >= fault["wall"]

    # three-step check → level → restore from the chain taken before the deletion
    steps = {e["step"]: e for e in journal.of_type("step.finished")}
    for step in ("three-step-check", "declare-level", "restore-from-backup", "patient-notice",
                 "back-entry", "clear-notice"):
        assert steps[step]["ok"], steps[step]
    restored = journal.first("data.restored")
    chain = [b["label"] for b in restored["backups"]]
    assert chain == ["full-d1-0100"] + [b["label"] for b in incrementals]
    assert restored["restore_point_wall"] < fault["wall"]
    # the serving primary holds at least what the last backup held, and got the deleted rows back
    in_backup = restored["rows_in_backup"]["consultations"]
    assert restored["live_after"]["consultations"] >= in_backup > 0
    assert 0 < restored["copied_back"]["consultations"] <= deleted
    assert restored["copied_back"]["prescriptions"] <= detail["deleted"]["prescriptions"]
    assert restored["patient_view"]["status"] == 200
    reconciled = journal.first("data.reconciled")
    assert reconciled["wall"] >= restored["wall"] - 0.5
    assert reconciled["patient_reads"] and all(r["status"] == 200 for r in reconciled["patient_reads"])
    assert journal.first("truth.cleared", alert="consultations_missing") is not None
    # a real restore: a server started from the combined backups, replayed their WAL and served
    restore_log = (out / "logs" / "pg-restore.log").read_text(errors="replace")
    assert "ready to accept connections" in restore_log

    # RPO: what was acknowledged after the last backup and before the deletion is counted as lost
    rpo = journal.first("rpo.measured")
    assert rpo["mode"] == "backup_restore" and rpo["acked_writes"] > 500
    assert rpo["lost_writes"] > 0
    window = (fault["wall"] - restored["restore_point_wall"]) * scale
    assert 0 < rpo["lost_seconds"] <= window + 5 * scale
    assert rpo["lost_seconds"] <= 3600

    card = json.loads((out / "score.json").read_text())
    assert card["verdict"] == "pass", card["targets"]
    by_id = {t["id"]: t for t in card["targets"]}
    assert 0 < by_id["detect"]["actual"] <= 60
    assert by_id["detect"]["actual"] < by_id["data-restored"]["actual"] <= 1800
    # patients count as back only once their records are: never before the restore finished
    assert by_id["data-restored"]["actual"] - 1 <= by_id["core-recovered"]["actual"] <= 1800
    assert by_id["rpo"]["actual"] == rpo["lost_seconds"]

    # new consultations kept working all along: the loss was in the data, not the service
    records = [json.loads(l) for f in (out / "records").glob("*.jsonl")
               for l in f.read_text().splitlines() if l]
    during = [r for r in records if r["t"] > fault["wall"]]
    assert during and sum(not r["ok"] for r in during) / len(during) < 0.05

    # the schedule stopped, the backups went with the stack, nothing is left running
    assert all(not Path(p).exists() for p in seen_on_disk)
    up = journal.first("stack.up")
    addresses = [*up["services"].values(), *up["links"].values(), restored["restored_address"]]
    assert not port_open(restored["restored_address"])
    assert_nothing_left(out, addresses)


def test_interrupt_while_backing_up_stops_the_schedule_and_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    journal_path = out / "journal.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", DRILL, "--out", str(out),
                             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(e["type"] == "backup.taken" for e in _events(journal_path)):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no backup was taken"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, output[-3000:]
    journal = read_journal(journal_path)
    assert journal.first("run.finished")["status"] == "aborted"
    assert not journal.of_type("teardown.error"), journal.of_type("teardown.error")
    # no backup tool outlives the run, and its files went with the stack
    full = journal.first("backup.taken")
    store = str(Path(full["path"]).parents[1])
    assert not [p for p in psutil.process_iter(["name", "cmdline"])
                if p.info["name"] in ("pg_basebackup", "pg_combinebackup")
                and store in " ".join(p.info["cmdline"] or [])]
    assert not Path(full["path"]).exists() and not Path(full["offline"]).exists()
    up = journal.first("stack.up")
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])
