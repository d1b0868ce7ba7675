"""Offline reception killed with SIGKILL in the middle of a stream of writes: every record it gave a
receipt for is there after a restart, and the restarted service carries on."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests


def _start(tmp_path, store):
    ready = tmp_path / "offline.ready"
    ready.unlink(missing_ok=True)
    cfg = tmp_path / "offline.json"
    cfg.write_text(json.dumps({"name": "offline-reception", "host": "127.0.0.1", "port": 0,
                               "ready_file": str(ready), "store": str(store)}))
    proc = subprocess.Popen([sys.executable, "-m", "harness.stack.services.offline",
                             "--config", str(cfg)], start_new_session=True)
    deadline = time.monotonic() + 15
    while not ready.exists():
        assert proc.poll() is None, "offline reception exited at start"
        assert time.monotonic() < deadline, "offline reception not ready"
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{json.loads(ready.read_text())['port']}"


def test_sigkill_mid_stream_loses_no_acknowledged_record(tmp_path):
    store = tmp_path / "reception.sqlite"
    proc, url = _start(tmp_path, store)
    acked: dict[str, int] = {}
    stop = threading.Event()

    def patient(n: int) -> None:
        with requests.Session() as s:
            i = 0
            while not stop.is_set():
                oid = f"{n}-{i}-{uuid.uuid4().hex[:6]}"
                try:
                    r = s.post(f"{url}/records", timeout=2, json={
                        "offline_id": oid, "patient_id": f"P{n:05d}", "kind": "refill",
                        "detail": {"drug": "metformin 500mg", "n": i}})
                except requests.RequestException:
                    return  # the service is gone: what was not acknowledged is the patient's to redo
                if r.status_code == 201:
                    acked[oid] = r.json()["seq"]
                i += 1

    writers = [threading.Thread(target=patient, args=(n,)) for n in range(4)]
    try:
        for w in writers:
            w.start()
        deadline = time.monotonic() + 10
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-stream: writers are still posting
        proc.wait(timeout=5)
        stop.set()
        for w in writers:
            w.join(timeout=5)
        assert len(acked) >= 200, f"only {len(acked)} records acknowledged before the kill"

        proc, url = _start(tmp_path, store)
        kept = {r["offline_id"]: r["seq"]
                for r in requests.get(f"{url}/records?since=0&limit=10000", timeout=5).json()["records"]}
        missing = sorted(set(acked) - set(kept))
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
        assert all(kept[oid] == seq for oid, seq in acked.items())
        # a restart carries on: new records after the old ones, a repeat gets its first receipt
        r = requests.post(f"{url}/records", timeout=2, json={
            "offline_id": "after-restart", "patient_id": "P00009", "kind": "registration", "detail": {}})
        assert r.status_code == 201 and r.json()["seq"] > max(kept.values())
        oid, seq = next(iter(acked.items()))
        n = int(oid.split("-")[0]); i = int(oid.split("-")[1])
        again = requests.post(f"{url}/records", timeout=2, json={
            "offline_id": oid, "patient_id": f"P{n:05d}", "kind": "refill",
            "detail": {"drug": "metformin 500mg", "n": i}})
        assert again.status_code == 200 and again.json()["seq"] == seq
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
