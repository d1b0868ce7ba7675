#!/usr/bin/env python3
"""数据库宕机 → 同城灾备接管, in plain Python: the DBA's failover with nothing but the standard library
and the environment the drill gives every runbook script (docs/runbook-scripts.md).

1. check that the same-city standby is a live standby, then promote it: `SELECT pg_promote()` on its
   own address (psql from $HD_PG_BIN), as on a real server;
2. move the app's database address (the Toxiproxy proxy behind $HD_DB_DSN, named `db`) to it, and
   the other standbys' replication links ($HD_PG_<NODE>_UPSTREAM_LINK) too, so the remote DR
   follows the new primary;
3. check that the app's address now leads to a writable primary.

What it did goes to stdout as `hd: key=value` lines; what went wrong to stderr, with exit status 3.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

ENV = os.environ
STANDBY = sys.argv[1] if len(sys.argv) > 1 else ENV["HD_PG_STANDBY"]  # the plan's target: pg-samecity


class Failed(Exception):
    """The failover cannot go on: the reason is its stderr line."""


def var_part(node: str) -> str:
    """pg-samecity → SAMECITY: how the drill names a node in its variables."""
    return node.removeprefix("pg-").upper().replace("-", "_")


def dsn_of(node: str) -> str:
    dsn = ENV.get(f"HD_PG_{var_part(node)}_DIRECT_DSN")
    if not dsn:
        raise Failed(f"{node}: no such database in this stack (nodes: {ENV.get('HD_PG_NODES', '')})")
    return dsn


def address(dsn: str) -> str:
    """host:port of a libpq DSN ("host=… port=… dbname=…"), as Toxiproxy wants an upstream."""
    fields = dict(part.split("=", 1) for part in dsn.split())
    return f"{fields['host']}:{fields['port']}"


def psql(dsn: str, sql: str) -> str:
    """One query through psql; its single value as text."""
    program = os.path.join(ENV["HD_PG_BIN"], "psql") if ENV.get("HD_PG_BIN") else shutil.which("psql")
    if not program:
        raise Failed("no psql: neither $HD_PG_BIN nor PATH has one")
    done = subprocess.run([program, dsn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise Failed(f"psql {sql!r}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout.strip()


def repoint(link: str, upstream: str) -> None:
    """Move a Toxiproxy proxy to another upstream: the load balancer's or VIP's move, here."""
    request = urllib.request.Request(f"{ENV['HD_TOXIPROXY_URL']}/proxies/{link}", method="POST",
                                     data=json.dumps({"upstream": upstream}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
    except urllib.error.HTTPError as e:
        raise Failed(f"Toxiproxy refused to move {link} to {upstream}: HTTP {e.code} {e.read()[:200]!r}")
    except OSError as e:
        raise Failed(f"Toxiproxy at {ENV['HD_TOXIPROXY_URL']} did not answer: {e}")


def report(key: str, value: object) -> None:
    print(f"hd: {key}={value}", flush=True)


def failover() -> None:
    dsn = dsn_of(STANDBY)
    # promote only a live standby: promoting a node that is down or already primary makes it worse
    if psql(dsn, "SELECT pg_is_in_recovery()") != "t":
        raise Failed(f"{STANDBY} is not in recovery: it is no standby, not promoting it")
    report("standby_replayed_lsn", psql(dsn, "SELECT pg_last_wal_replay_lsn()"))
    if psql(dsn, "SELECT pg_promote(wait => true, wait_seconds => 60)") != "t":
        raise Failed(f"{STANDBY} did not finish its promotion within 60 s")
    report("promoted", STANDBY)

    new_primary = address(dsn)
    repoint("db", new_primary)
    report("db_link", STANDBY)
    followers = [node for node in ENV.get("HD_PG_STANDBYS", "").split() if node != STANDBY]
    for node in followers:
        link = ENV.get(f"HD_PG_{var_part(node)}_UPSTREAM_LINK")
        if link:
            repoint(link, new_primary)
    report("followers", ",".join(followers) or "none")

    writable = "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"
    if psql(ENV["HD_DB_DSN"], writable) != "t":
        raise Failed("the app's database address does not lead to a writable primary after the move")


def main() -> int:
    try:
        failover()
    except Failed as e:
        print(f"failover: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
