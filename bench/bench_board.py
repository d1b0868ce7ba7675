"""What the command board costs a drill: the time to answer one poll of `GET /api/state` (the whole
board: the roster of the board-live drill, its steps, alerts, a monitor window of patient records),
its size, and how many polls a second the threaded server answers from many phones at once.

    python bench/bench_board.py [--records 3000] [--phones 20] [--polls 50]

Goal (this 2-core machine): a poll well under 50 ms with a room of phones polling once a second.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.board.app import create_app  # noqa: E402
from harness.board.feed import BoardFeed  # noqa: E402
from harness.board.server import BoardServer  # noqa: E402
from harness.clock import DrillClock  # noqa: E402
from harness.journal import Journal  # noqa: E402
from harness.people.desk import Desk  # noqa: E402
from harness.validate import load_drill  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=3000, help="patient records in the monitor's window")
    ap.add_argument("--phones", type=int, default=20, help="clients polling at once")
    ap.add_argument("--polls", type=int, default=50, help="polls per client")
    args = ap.parse_args()
    drill = load_drill(ROOT / "tests" / "e2e" / "drills" / "board-live.yaml").drill
    with tempfile.TemporaryDirectory(prefix="bench-board-") as tmp:
        clock = DrillClock(1)
        clock.start()
        journal = Journal(Path(tmp) / "journal.jsonl", clock)
        desk = Desk(clock)
        desk.attach(drill, journal)
        lane = clock.lane("monitor")
        for i in range(8):
            journal.record("alert.raised", lane=lane, alert=f"rule-{i}", severity="warning",
                           detail={}, describe="a rule that holds")
        now = clock.wall()
        records = [{"t": now - i * 0.01, "ms": 20.0 + i % 200, "ok": i % 9 != 0, "journey": "followup"}
                   for i in range(args.records)]
        feed = BoardFeed(journal, clock, drill_name=drill.name, desk=desk, records=lambda: records)
        server = BoardServer(create_app(feed, desk, tmp), 0).start()
        try:
            url = server.url + "api/state"
            one = []
            for _ in range(args.polls):
                t0 = time.perf_counter()
                body = requests.get(url, timeout=10).content
                one.append(time.perf_counter() - t0)
            lat: list[float] = []
            lock = threading.Lock()

            def phone() -> None:
                with requests.Session() as s:
                    for _ in range(args.polls):
                        t0 = time.perf_counter()
                        s.get(url, timeout=10).raise_for_status()
                        with lock:
                            lat.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=phone) for _ in range(args.phones)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.stop()
            journal.close()
    lat.sort()
    print(f"state: {len(body) / 1024:.1f} KiB ({len(drill.runbook)} steps, {len(desk.roster.people)} people, "
          f"{args.records} records)")
    print(f"one client: median {statistics.median(one) * 1000:.1f} ms per poll")
    print(f"{args.phones} clients at once: {len(lat) / wall:.0f} polls/s, median {statistics.median(lat) * 1000:.1f} ms, "
          f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
