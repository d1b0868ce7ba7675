"""The patient load across machines, on the Locust side: what the drill's master ships to workers.

A drill that asks for external workers runs its Locust master on a small generated locustfile
(``runner.py``: ``shipped_locustfile``) that fixes ``HD_LOAD_CONFIG`` and imports this module. Locust
hands that file to every worker started with ``-f -``, so a worker on another machine runs the same
personas with the drill's own configuration, from the hospital-drill package installed there.

The request records: a worker without ``HD_RECORDS_DIR`` (on another machine the run directory is not
there) sends them to the master as Locust custom messages, in batches; the master appends each
worker's to ``records/remote-<worker>.jsonl``, where the monitor and the scorer read them like any
other process's. Workers the drill starts itself still write their own files.

Loaded only inside Locust processes (gevent monkey-patched); the harness never imports it.
"""
from __future__ import annotations

import importlib
import logging
import os
import re

import gevent
import locust.runners
from locust import LoadTestShape, User, events
from locust.runners import MasterRunner, WorkerRunner

from . import locustfile as patients
from .record_writer import RecordWriter
from .worker import LOST_MASTER_S, SENT_LINE

log = logging.getLogger("hospital.load.remote")

RECORDS_MESSAGE = "hd_records"
SEND_EVERY_S = 0.25   # as often as the local workers flush their files
MAX_BATCH = 500       # records per message, whatever the interval

# a worker whose drill has ended must not go on loading the hospital for a minute
locust.runners.MASTER_HEARTBEAT_TIMEOUT = LOST_MASTER_S


def _classes(module, base: type) -> dict[str, type]:
    return {name: value for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, base) and value is not base}


# the personas (and, with stages, the load shape) re-exported: Locust finds them in the shipped file
_exported = _classes(patients, User)
if patients.CONFIG.get("stages"):
    _exported.update(_classes(importlib.import_module(f"{__package__}.shapes"), LoadTestShape))
globals().update(_exported)
__all__ = sorted(_exported)


# --- master: the remote workers' records into the run's records/ ------------------------------------

def worker_file_name(node_id: str) -> str:
    """records/ file of one remote worker: Locust's node id (host_uuid) made safe as a file name."""
    return "remote-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", node_id).strip("-.")[:120] + ".jsonl"


class RemoteRecords:
    """The master's side: one RecordWriter per remote worker, written as each batch arrives."""

    def __init__(self, records_dir: str):
        self.records_dir = records_dir
        self.writers: dict[str, RecordWriter] = {}

    def on_message(self, environment=None, msg=None, **_kwargs) -> None:
        writer = self.writers.get(msg.node_id)
        if writer is None:
            writer = self.writers[msg.node_id] = RecordWriter(
                os.path.join(self.records_dir, worker_file_name(msg.node_id)))
            log.info("request records of worker %s go to %s", msg.node_id, writer.path)
        for record in msg.data or ():
            if isinstance(record, dict):
                writer.add(record)
        writer.flush()

    def close(self, **_kwargs) -> None:
        for writer in self.writers.values():
            writer.close()


# --- worker: records to the master ------------------------------------------------------------------

class RecordForwarder:
    """The worker's side, in the locustfile's writer slot: records batched and sent to the master."""

    def __init__(self, runner: WorkerRunner):
        self.runner = runner
        self._batch: list[dict] = []
        self.sent = 0

    def add(self, record: dict) -> None:
        self._batch.append(record)
        if len(self._batch) >= MAX_BATCH:
            self.flush()

    def flush(self, **_kwargs) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self.runner.send_message(RECORDS_MESSAGE, batch)
        self.sent += len(batch)

    def close(self, **_kwargs) -> None:
        self.flush()
        log.info("%s %d", SENT_LINE, self.sent)


def _send_loop(forwarder: RecordForwarder) -> None:
    while True:
        gevent.sleep(SEND_EVERY_S)
        try:
            forwarder.flush()
        except Exception:  # a hiccup on the line must not stop the patients; the next batch retries
            log.exception("sending request records to the master failed")


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    # registered after the locustfile's own init (imported above), so its writer slot is settled
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        records_dir = os.environ.get("HD_RECORDS_DIR")
        if records_dir:
            remote = RemoteRecords(records_dir)
            runner.register_message(RECORDS_MESSAGE, remote.on_message)
            events.quit.add_listener(remote.close)
    elif isinstance(runner, WorkerRunner) and patients._writer is None:
        forwarder = RecordForwarder(runner)
        patients._writer = forwarder
        gevent.spawn(_send_loop, forwarder)
        # the last batch leaves before the worker's final stats, while the master still listens
        events.test_stop.add_listener(forwarder.flush)
        events.quitting.add_listener(forwarder.close)
        log.info("no records directory here: request records are sent to the master")
