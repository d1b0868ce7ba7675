"""Typed journal events: every type written is declared, the journal holds writers to the models,
and the event table in docs/internals.md is the one generated from them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import Field

from harness import events
from harness.clock import DrillClock
from harness.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
RECORDED = re.compile(r"""\.record\(\s*f?["']([^"']+)["']""")


def journal(tmp_path, scale: float = 60) -> Journal:
    clock = DrillClock(scale)
    clock.start()
    return Journal(tmp_path / "journal.jsonl", clock)


def written(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]


def test_every_type_the_harness_records_is_declared():
    found = set()
    for path in (ROOT / "harness").rglob("*.py"):
        for name in RECORDED.findall(path.read_text(encoding="utf-8")):
            if "{kind}" in name:  # the monitor's f"{kind}.raised": alert or ground truth
                found |= {name.replace("{kind}", k) for k in ("alert", "truth")}
            elif "{" not in name:
                found.add(name)
    # the data ledger journals these two through a variable
    found |= {"data.missing", "data.reconciled"}
    assert len(found) >= 30
    assert found - set(events.EVENTS) == set()


def test_every_field_is_documented():
    for kind, model in events.EVENTS.items():
        for name, info in model.model_fields.items():
            assert info.description, f"{kind}.{name}"
        assert (model.__doc__ or "").strip(), kind


def test_the_table_in_internals_md_is_current():
    doc = ROOT / "docs" / "internals.md"
    assert events.table_in_doc(doc) == events.event_table(), (
        "docs/internals.md: event table stale; run `python -m harness.events --write docs/internals.md`")


def test_the_table_lists_every_type_and_marks_optional_fields():
    table = events.event_table()
    for kind in events.EVENTS:
        assert f"| `{kind}` |" in table
    row = next(line for line in table.splitlines() if line.startswith("| `route.verified`"))
    assert "`ok`: " in row and "`culprit`?: " in row
    copy_row = next(line for line in table.splitlines() if line.startswith("| `backup.copy_failed`"))
    assert "`copy`: " in copy_row  # the field's name in the journal, not the Python attribute


def test_rewrite_doc_puts_the_table_between_the_markers(tmp_path):
    doc = tmp_path / "internals.md"
    doc.write_text(f"before\n{events.TABLE_BEGIN}\n| old |\n{events.TABLE_END}\nafter\n")
    assert events.rewrite_doc(doc) is True
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith(f"{events.TABLE_END}\nafter\n")
    assert "| old |" not in text and "| `run.finished` |" in text
    assert events.rewrite_doc(doc) is False
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        events.rewrite_doc(doc)


def test_a_fitting_event_is_written_with_its_lane_account(tmp_path):
    j = journal(tmp_path)
    lane = j.clock.lane("step:notice", 100.0, j.clock.t0)
    e = j.record("notification.sent", lane=lane, channel="sms", audience="patients", text="系统维护")
    j.close()
    assert e["chain"]["lane"] == "step:notice" and e["drill"] >= 100.0
    assert [w["type"] for w in written(tmp_path)] == ["notification.sent"]
    assert events.EVENTS["notification.sent"].model_validate(e).channel == "sms"


@pytest.mark.parametrize("type_, fields, why", [
    ("fault.exploded", {}, "undeclared event type"),
    ("run.horizon", {"drill_limit": 60.0, "recovered": True, "rps": 3}, "rps: Extra inputs"),
    ("run.horizon", {"drill_limit": 60.0}, "recovered: Field required"),
    ("run.horizon", {"drill_limit": "soon", "recovered": True}, "drill_limit: "),
    ("run.finished", {"status": "crashed", "reason": None}, "status: "),
    ("run.horizon", {"drill_limit": 60.0, "recovered": True, "seq": 9}, "seq: set by the journal"),
])
def test_a_misfit_raises_in_strict_mode_and_nothing_is_written(tmp_path, monkeypatch, type_, fields, why):
    monkeypatch.setenv(events.STRICT_ENV, "1")
    j = journal(tmp_path)
    with pytest.raises(events.EventError, match=re.escape(why)):
        j.record(type_, **fields)
    j.close()
    assert written(tmp_path) == [] and j.events == []


def test_a_misfit_outside_strict_mode_is_kept_and_followed_by_a_harness_error(tmp_path, monkeypatch):
    monkeypatch.setenv(events.STRICT_ENV, "0")
    j = journal(tmp_path)
    seen = []
    j.subscribe(seen.append, critical=True)
    j.record("steady_state", ok=True, error_rate=0.0, rps=12.0, requests=40, p95_ms=9.0, probe_ok=True)
    j.close()
    out = written(tmp_path)
    assert [e["type"] for e in out] == ["steady_state", "harness.error"]
    assert out[0]["rps"] == 12.0  # the writer's data is not lost
    assert out[1]["part"] == "journal" and "steady_state: rps" in out[1]["error"]
    assert [e["type"] for e in seen] == ["harness.error", "steady_state"]
    assert j.failure is None  # a contract misfit is flagged, it does not abort the drill


def test_a_field_named_chain_on_a_lane_would_be_overwritten_so_it_is_refused(tmp_path):
    j = journal(tmp_path)
    lane = j.clock.lane("step:restore", 0.0, j.clock.t0)
    with pytest.raises(events.EventError, match="chain: set by the journal"):
        j.record("data.restored", lane=lane, chain=[{"label": "full-d1-0100"}])
    j.close()


def test_an_event_declared_without_a_lane_is_refused_on_one(tmp_path):
    j = journal(tmp_path)
    lane = j.clock.lane("monitor", 0.0, j.clock.t0)
    with pytest.raises(events.EventError, match="written on a lane"):
        j.record("run.horizon", lane=lane, drill_limit=60.0, recovered=False)
    j.close()


def test_a_type_declared_twice_is_an_error():
    with pytest.raises(TypeError, match="declared twice"):
        @events.event("run.started")
        class Again(events.Event):
            """A second model for a declared type."""
            x: int = Field(description="anything")
    assert events.EVENTS["run.started"] is events.RunStarted


def test_the_command_prints_the_table_and_refuses_other_arguments(capsys):
    assert events.main([]) == 0
    assert capsys.readouterr().out == events.event_table()
    assert events.main(["--frobnicate"]) == 2
