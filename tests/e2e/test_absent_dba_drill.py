"""A CI run of the db-crash drill with the DBA kept out: the backup DBA claims the promotion after a
modeled call-out, and the journal, the step and the report say who covered and that it was modeled."""
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


def test_the_backup_dba_claims_the_promotion_when_the_dba_is_absent(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "tests/e2e/drills/dba-absent.yaml",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert p.returncode in (0, 1), p.stdout[-3000:] + p.stderr[-3000:]  # a verdict, not an abort
    journal = read_journal(out / "journal.jsonl")

    absent = journal.of_type("person.absent")
    assert [(a["person"], a["why"], a["tier"]) for a in absent] == [("李娜", "named", "core")]
    claims = {c["step"]: c for c in journal.of_type("person.claimed")}
    promote = claims["promote-same-city"]
    assert (promote["person"], promote["tier"], promote["group"]) == ("杨帆", "backup", "technical")
    assert promote["modeled"] is True
    assert promote["call_out"] == pytest.approx(45, abs=3)  # her location's call-out, modeled
    assert claims["three-step-check"]["person"] == "刘洋"  # 监控, core, present: first in line
    assert claims["three-step-check"]["call_out"] == pytest.approx(30, abs=3)
    assert "李娜" not in {c["person"] for c in claims.values()}

    started = journal.first("step.started", step="promote-same-city")
    claimed_seq, finished = promote["seq"], journal.first("step.finished", step="promote-same-city")
    promoted = journal.first("db.promoted") or {}
    assert started["seq"] < claimed_seq < finished["seq"]  # claimed before the promotion ran
    if promoted:
        assert claimed_seq < promoted["seq"]
    assert finished["ok"] and finished["detail"]["claimed_by"] == "杨帆"
    assert finished["detail"]["modeled"] is True
    # the takeover's figure carries the modeled call-out: a declared wait on the step's lane
    assert finished["chain"]["declared"] >= 45 - 0.5

    card = json.loads((out / "score.json").read_text())
    assert {t["id"] for t in card["targets"]} >= {"detect", "dr-takeover", "core-recovered"}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "杨帆" in report and "李娜" in report
    assert_nothing_left(out)
