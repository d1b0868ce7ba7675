"""Counting lost data: acknowledged write ids that the serving database does not hold."""
from __future__ import annotations

import psycopg

# every table a patient writes to carries the client-made write_id
WRITE_TABLES = ("appointments", "consultations", "prescriptions", "exam_bookings", "payments")


def missing_write_ids(dsn: str, write_ids: list[str]) -> set[str]:
    if not write_ids:
        return set()
    union = " UNION ALL ".join(f"SELECT write_id FROM {t} WHERE write_id = ANY(%(ids)s)"
                              for t in WRITE_TABLES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        present = {row[0] for row in conn.execute(union, {"ids": write_ids})}
    return set(write_ids) - present
