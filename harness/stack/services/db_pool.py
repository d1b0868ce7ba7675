"""The patient app's database pool: connections that are never trusted after an error, and work that
never waits longer than its deadline. The DB address is a proxy (a Toxiproxy link), so a failover
repoints it and the pool follows without a restart."""
from __future__ import annotations

import math
import os
import select
import socket
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import psycopg
from psycopg import errors as pgerr
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from .common import HttpError, first_line


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
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.params['host']}:{self.params['port']}"

    def _take(self) -> psycopg.Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return psycopg.connect(**self.params, autocommit=True, row_factory=dict_row)
            if _still_usable(conn):
                return conn
            conn.close()

    def _give_back(self, conn: psycopg.Connection) -> None:
        with self._lock:
            self._idle.append(conn)

    @contextmanager
    def transaction(self, deadline_s: float | None = None) -> Iterator[psycopg.Connection]:
        """One transaction on a pooled connection; DbUnavailable when the database fails."""
        if not self._slots.acquire(timeout=self.connect_s):
            raise DbUnavailable(f"all {self.address} connections busy for {self.connect_s:g}s")
        conn: psycopg.Connection | None = None
        try:
            try:
                conn = self._take()
            except psycopg.Error as e:
                raise DbUnavailable(f"{self.address}: {first_line(e)}") from None
            limit = (deadline_s or self.statement_s) + 0.5
            fired = [False]
            try:
                with _watchdog(conn, limit) as fired, conn.transaction():
                    yield conn
            except (pgerr.IntegrityError, pgerr.DataError) as e:
                # the request's fault, not the database's: the connection stays good
                raise HttpError(404 if isinstance(e, pgerr.ForeignKeyViolation) else 400,
                                first_line(e), detail=e.diag.message_detail) from None
            except psycopg.Error as e:
                if fired[0]:  # we cut it: the database answered too slowly, it did not go away
                    raise DbUnavailable(f"{self.address}: no answer within {limit:g}s (timeout)") from None
                raise DbUnavailable(f"{self.address}: {first_line(e)}") from None
        finally:
            if conn is not None:
                if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.close()
                else:
                    self._give_back(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _still_usable(conn: psycopg.Connection) -> bool:
    """An idle connection has nothing to read: readable means the peer closed it or sent a FATAL."""
    if conn.closed or conn.broken:
        return False
    try:
        poller = select.poll()  # not select(): a busy app may hold fds above FD_SETSIZE
        poller.register(conn.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


@contextmanager
def _watchdog(conn: psycopg.Connection, seconds: float) -> Iterator[list[bool]]:
    """Shut the connection's socket if the work is not done in `seconds` (a stalled network). Yields
    a flag that says whether it did, so the error can say "too slow", not "the server went away"."""
    # our own duplicate of the socket: the connection's fd number may be reused once it is closed
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    lock, done, fired = threading.Lock(), [False], [False]

    def cut() -> None:
        with lock:
            if not done[0]:
                fired[0] = True
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
        with lock:
            done[0] = True
            sock.close()
