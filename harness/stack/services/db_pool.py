"""The patient app's database pool: connections that are never trusted after an error, and work that
never waits longer than its deadline. The DB address is a proxy (a Toxiproxy link), so a failover
repoints it and the pool follows without a restart."""
from __future__ import annotations

import heapq
import math
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import psycopg
from psycopg import errors as pgerr
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from .common import HttpError, first_line, peer_closed


class DbUnavailable(HttpError):
    def __init__(self, reason: str):
        super().__init__(503, f"database unavailable: {reason}")


class Database:
    """A small connection pool that trusts no connection after an error.

    A connection that failed, or that the server or a proxy closed while it sat idle, is dropped and
    the next call dials again, so the app recovers by itself once its DB address leads to a working
    primary. Each unit of work has a deadline: the server cancels a slow statement
    (statement_timeout) and a watchdog cuts the socket when the network stalls, where no server-side
    timeout could fire.
    """

    def __init__(self, cfg: dict[str, Any], timeouts: dict[str, float]):
        self.statement_s = float(timeouts["statement_s"])
        self.connect_s = float(timeouts["db_connect_s"])
        # libpq and psycopg take whole seconds and enforce at least 2 s for connecting
        self.params = {
            "host": cfg.get("host", "127.0.0.1"), "port": int(cfg["port"]),
            "dbname": cfg.get("dbname", "hospital"), "user": cfg.get("user", "hospital"),
            "connect_timeout": max(1, math.ceil(self.connect_s)),
            "options": f"-c statement_timeout={int(self.statement_s * 1000)}",
            "application_name": cfg.get("application_name", "hospital-app"),
        }
        if cfg.get("password"):
            self.params["password"] = cfg["password"]
        size = int(cfg.get("pool_size", 16))
        self._slots = threading.BoundedSemaphore(size)  # bounded: never exhaust max_connections
        self._idle: list[_Pooled] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.params['host']}:{self.params['port']}"

    def _take(self) -> "_Pooled":
        while True:
            with self._lock:
                pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                return _Pooled(psycopg.connect(**self.params, autocommit=True, row_factory=dict_row))
            if _still_usable(pooled.conn):
                return pooled
            pooled.close()

    @contextmanager
    def transaction(self, deadline_s: float | None = None) -> Iterator[psycopg.Cursor]:
        """One transaction on a pooled connection; DbUnavailable when the database fails."""
        with self._session(deadline_s, atomic=True) as cur:
            yield cur

    @contextmanager
    def autocommit(self, deadline_s: float | None = None) -> Iterator[psycopg.Cursor]:
        """A pooled connection whose statements each commit on their own: for reads and for work of
        one statement, it saves the BEGIN and COMMIT round trips of `transaction`."""
        with self._session(deadline_s, atomic=False) as cur:
            yield cur

    @contextmanager
    def _session(self, deadline_s: float | None, atomic: bool) -> Iterator[psycopg.Cursor]:
        if not self._slots.acquire(timeout=self.connect_s):
            raise DbUnavailable(f"all {self.address} connections busy for {self.connect_s:g}s")
        pooled: _Pooled | None = None
        try:
            try:
                pooled = self._take()
            except psycopg.Error as e:
                raise DbUnavailable(f"{self.address}: {first_line(e)}") from None
            limit = (deadline_s or self.statement_s) + 0.5
            watch = WATCHDOG.arm(pooled.sock, limit)
            try:
                if atomic:
                    with pooled.conn.transaction():
                        yield pooled.cursor
                else:
                    yield pooled.cursor
            except (pgerr.IntegrityError, pgerr.DataError) as e:
                # the request's fault, not the database's: the connection stays good
                raise HttpError(404 if isinstance(e, pgerr.ForeignKeyViolation) else 400,
                                first_line(e), detail=e.diag.message_detail) from None
            except psycopg.Error as e:
                if watch.fired:  # we cut it: the database answered too slowly, it did not go away
                    raise DbUnavailable(f"{self.address}: no answer within {limit:g}s (timeout)") from None
                raise DbUnavailable(f"{self.address}: {first_line(e)}") from None
            finally:
                WATCHDOG.disarm(watch)
        finally:
            if pooled is not None:
                conn = pooled.conn
                if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                    pooled.close()
                else:
                    with self._lock:
                        self._idle.append(pooled)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            pooled.close()


class _Pooled:
    """A connection with what is kept beside it: one cursor, reused (a new one per statement costs
    more than the query), and our own duplicate of its socket for the watchdog (the connection's fd
    number may be reused once it is closed, ours stays this socket's until we close it)."""

    __slots__ = ("conn", "cursor", "sock")

    def __init__(self, conn: psycopg.Connection):
        self.conn, self.cursor = conn, conn.cursor()
        self.sock = socket.socket(fileno=os.dup(conn.fileno()))

    def close(self) -> None:
        self.conn.close()
        self.sock.close()


def _still_usable(conn: psycopg.Connection) -> bool:
    return not (conn.closed or conn.broken) and not peer_closed(conn.fileno())


class _Watch:
    __slots__ = ("sock", "deadline", "done", "fired")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline, self.done, self.fired = sock, deadline, False, False

    def __lt__(self, other: "_Watch") -> bool:
        return self.deadline < other.deadline


class Watchdog:
    """Shuts the socket of database work not done by its deadline (a stalled network, where no
    server-side timeout could fire). One thread watches every unit of work: a timer thread each
    would cost more than the query."""

    def __init__(self) -> None:
        self._heap: list[_Watch] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> _Watch:
        watch = _Watch(sock, time.monotonic() + seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, watch)
            if self._heap[0] is watch:  # sooner than what the thread sleeps towards
                self._cond.notify()
        return watch

    def disarm(self, watch: _Watch) -> None:
        with self._cond:  # after this the socket is never cut: it goes back to the pool
            watch.done = True

    def _run(self) -> None:
        heap = self._heap
        with self._cond:
            while True:
                now = time.monotonic()
                while heap and (heap[0].done or heap[0].deadline <= now):
                    watch = heapq.heappop(heap)
                    if not watch.done:
                        watch.fired = True
                        try:
                            watch.sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                self._cond.wait(heap[0].deadline - now if heap else None)


WATCHDOG = Watchdog()
