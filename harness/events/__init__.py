"""Every journal event type, declared once as a typed, documented model.

The journal checks each event it records against its model here: an undeclared type, a field the
model does not know, a missing or mistyped one is a harness bug. With HD_STRICT_EVENTS=1 (the tests)
it raises; otherwise the event is kept and a `harness.error` says what was wrong, so a drill is never
lost to a journal contract. Readers (scorer, report, trend) still read the events as plain dicts.

The event table in docs/internals.md is generated from these models:
`python -m harness.events --write docs/internals.md` rewrites it between its markers, and a unit test
fails when it is stale.

One module per area of the run (run, monitor, runbook, people, database, audit); every model and
helper is importable from here.
"""
from .base import (EVENTS, RESERVED, STRICT_ENV, TABLE_BEGIN, TABLE_END, Account, Chain, Event, EventError,
                   LaneEvent, event, strict)
from .run import *  # noqa: F401,F403  (the order of these imports is the table's order)
from .monitor import *  # noqa: F401,F403
from .runbook import *  # noqa: F401,F403
from .people import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .audit import *  # noqa: F401,F403
from .table import event_table, main, problem, rewrite_doc, table_in_doc
