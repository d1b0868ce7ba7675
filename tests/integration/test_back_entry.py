"""Back-entry against the real local stack: interrupted halfway and run again, every offline record
lands once; a slot another patient took is entered for clinical review, not dropped."""
from __future__ import annotations

import time

import psycopg
import pytest
import requests

from harness.models import StackConfig
from harness.runbook.actions import ActionContext
from harness.runbook.offline_actions import BackEntryParams, _read_page, back_entry, enter
from harness.stack import local, topology
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.integration


class Journal:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def record(self, type_: str, lane=None, **fields) -> dict:
        self.events.append((type_, fields))
        return fields


def test_interrupted_back_entry_run_again_enters_each_record_once(tmp_path):
    stack = local.up(tmp_path, StackConfig(remote_dr=False), time_scale=60)
    addresses = [*stack.addresses.values(), *stack.link_listen.values()]
    try:
        qr = f"http://{stack.link_listen['offline']}"  # what patients dial
        for i in range(40):
            need = {"department": "surgery", "slot": "09:00"} if i in (3, 27) else {"slot": f"s{i}"}
            r = requests.post(f"{qr}/records", timeout=3, json={
                "offline_id": f"o-{i}", "patient_id": f"P{i + 1:05d}",
                "kind": "registration" if i % 2 else "refill", "detail": {"need": need}})
            assert r.status_code == 201, r.text

        # the first half lands, then the clerk's session dies before the rest
        dsn = stack.db_dsn(stack.current_primary())
        half = _read_page(stack.url(topology.OFFLINE.name), 0, 20)
        with psycopg.connect(dsn) as conn:
            outcomes = [enter(conn, rec)[0] for rec in half]
        assert outcomes.count("entered") == 20

        journal = Journal()
        ctx = ActionContext(stack=stack, journal=journal, monitor=None, drill=None, time_scale=60)
        done = back_entry(ctx, BackEntryParams(page=7, desk_closes=0))
        assert (done["read"], done["duplicates_refused"], done["lost"]) == (40, 20, 0)
        # o-27 asks for the 09:00 surgery slot o-3 already holds: entered, for review
        assert done["entered"] == 19 and done["conflicts"] == 1
        assert done["conflict_list"][0]["offline_id"] == "o-27"

        again = back_entry(ctx, BackEntryParams(desk_closes=0))
        assert (again["entered"], again["conflicts"], again["duplicates_refused"]) == (0, 0, 40)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT count(*), count(DISTINCT offline_id), "
                                "count(*) FILTER (WHERE status = 'conflict') FROM offline_entries").fetchone()
        assert rows == (40, 40, 1)
        assert [t for t, _ in journal.events] == ["offline.back_entered"] * 2
    finally:
        stack.down()
    assert_nothing_left(tmp_path, addresses)


def test_back_entry_cut_off_half_way_by_the_fault_enters_each_record_once(tmp_path):
    from harness.faults.base import build
    from harness.models import FaultSpec
    stack = local.up(tmp_path, StackConfig(remote_dr=False), time_scale=60)
    addresses = [*stack.addresses.values(), *stack.link_listen.values()]
    fault = build(FaultSpec(id="cut", at=0, type="back_entry_interrupt"))
    try:
        qr = f"http://{stack.link_listen['offline']}"
        for i in range(30):
            r = requests.post(f"{qr}/records", timeout=3, json={
                "offline_id": f"c-{i}", "patient_id": f"P{i + 1:05d}", "kind": "refill",
                "detail": {"drug": "amlodipine 5mg", "n": i}})
            assert r.status_code == 201, r.text
        fault.inject(stack)
        deadline = time.monotonic() + 10
        while fault.holding is None:  # the watcher holds the 15th record's key
            assert time.monotonic() < deadline and fault.problem is None, fault.problem
            time.sleep(0.02)
        assert fault.holding == "c-14"

        journal = Journal()
        ctx = ActionContext(stack=stack, journal=journal, monitor=None, drill=None, time_scale=60)
        done = back_entry(ctx, BackEntryParams(page=4, desk_closes=0, retry_after="1s"))
        cut = fault.cut
        # batches of 4 before the held 15th record committed (12), the batch holding it rolled back
        assert cut is not None and cut["terminated"] and cut["committed_before_cut"] == 12
        assert [t for t, _ in journal.events] == ["offline.back_entry_interrupted", "offline.back_entered"]
        assert journal.events[0][1]["committed"]["entered"] == 12
        # the second pass refused the 12 that landed and entered the other 18: each once
        assert done["attempts"] == 2 and done["read"] == 30
        assert (done["entered"], done["duplicates_refused"], done["lost"]) == (30, 12, 0)
        assert done["in_main_db"] == done["rows"] == 30
        again = back_entry(ctx, BackEntryParams(desk_closes=0))
        assert (again["entered"], again["duplicates_refused"], again["rows"]) == (0, 30, 30)

        reverted = fault.revert(stack)
        assert (reverted["entries"], reverted["duplicates"], reverted["problem"]) == (30, 0, None)
    finally:
        if fault.injected:
            fault._stop.set()
        stack.down()
    assert_nothing_left(tmp_path, addresses)
