"""The db-crash drill with offline reception under fire (drills/db-crash-offline-chaos.yaml), end to
end through the CLI at scale 60: the desk's server SIGKILLed mid-outage, the first back-entry pass
cut off half-way. Checked against the patients' own receipts in the request records."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def receipts(run_dir: Path) -> dict[str, float]:
    """Offline id → when the patient asked, for every offline record a patient holds a receipt for."""
    out = {}
    for f in (run_dir / "records").glob("*.jsonl"):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line) if line.strip() else {}
            if r.get("journey") == "offline" and r.get("offline_id") and r.get("ok") is True:
                out[r["offline_id"]] = r["t"]
    return out


def test_offline_desk_killed_and_back_entry_cut_lose_nothing_and_enter_nothing_twice(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "drills/db-crash-offline-chaos.yaml",
                        "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    journal = read_journal(out / "journal.jsonl")
    held = receipts(out)

    # the desk's server died by SIGKILL while patients were recording there, and came back
    kill = journal.first("fault.injected", fault="offline-desk-killed")
    assert kill["detail"]["signal"] == "SIGKILL"
    restart = journal.first("fault.reverted", fault="offline-desk-killed")["detail"]
    assert restart["restarted"] == "offline-reception" and restart["kept"] is True
    before_kill = [oid for oid, t in held.items() if t < kill["wall"]]
    assert before_kill, "no receipt was given before the kill: the kill proved nothing"

    # the first back-entry pass was cut off with part of the records committed, then made again
    cut = journal.first("fault.reverted", fault="back-entry-cut")["detail"]
    assert cut["problem"] is None and cut["cut"]["terminated"] is True
    assert 0 < cut["cut"]["committed_before_cut"] < cut["cut"]["desk_records"]
    assert journal.first("offline.back_entry_interrupted")["attempt"] == 1
    first, second = journal.of_type("offline.back_entered")
    assert first["attempts"] == 2 and first["lost"] == 0
    assert first["duplicates_refused"] == cut["cut"]["committed_before_cut"]
    assert first["entered"] + first["conflicts"] == first["read"] == first["in_main_db"]
    # the check pass refuses everything the first one entered
    assert second["duplicates_refused"] == first["read"] and second["lost"] == 0

    # against the patients' receipts: N taken, N back-entered, 0 lost, 0 duplicates
    landed = set(second["landed_ids"])
    assert set(before_kill) <= landed  # the SIGKILL lost no acknowledged offline record
    # every receipt given before the check pass began is in; one given later is for the next pass
    due = {oid for oid, t in held.items() if t < second["wall"] - second["seconds"]}
    assert due <= landed
    assert second["rows"] == second["in_main_db"] == len(landed)
    assert cut["entries"] == cut["distinct_offline_ids"] == len(landed) and cut["duplicates"] == 0
    card = json.loads((out / "score.json").read_text())
    offline = card["offline"]
    n = len(due)
    assert (offline["taken"], offline["taken_after"]) == (len(held), len(held) - n)
    # a record the desk stored whose reply the kill cut off is entered too: never fewer than N
    assert offline["back_entered"] == len(landed) >= n > 0
    assert (offline["lost"], offline["duplicates"]) == (0, 0)
    assert not [f for f in card["findings"] if f["kind"] == "offline" and f["severity"] == "high"]

    # back-entry complete is timed from recovery, within the plan's 24 h
    target = next(t for t in card["targets"] if t["id"] == "back-entry")
    assert target["status"] == "met" and target["target"] == 24 * 3600
    since_fault = (first["wall"] - journal.first("fault.injected")["wall"]) * 60
    assert 0 < target["actual"] < since_fault
    up = journal.first("stack.up") or {}
    assert_nothing_left(out, [*up.get("services", {}).values(), *up.get("links", {}).values()])
