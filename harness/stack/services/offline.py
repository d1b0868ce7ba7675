"""Offline reception (线下扫码接诊): where the QR code sends patients while the internet hospital is down.

Run as `python -m harness.stack.services.offline --config FILE`. Config keys: `name`, `host`, `port`,
`ready_file`, `log_file`, `store` (the SQLite file; its own, never the main database).

    POST /records {patient_id, kind, detail, offline_id} -> 201 {offline_id, seq, taken_at}
                                                           (200 and the same receipt when repeated;
                                                            409 when the id holds another record)
    GET  /records?since=SEQ&limit=N                     -> {"records": [...], "last_seq": SEQ}
    GET  /health
"""
from __future__ import annotations

from typing import Any

from .common import HttpError, Request, Router, load_config, serve
from .offline_store import KINDS, OfflineStore, RecordConflict


class OfflineReception:
    def __init__(self, config: dict[str, Any]):
        self.name: str = config.get("name", "offline-reception")
        self.store = OfflineStore(config["store"])

    def routes(self) -> Router:
        r = Router()
        r.add("GET", "/health", lambda req: (200, {"status": "ok", "name": self.name,
                                                   "records": self.store.count()}))
        r.add("POST", "/records", self.take)
        r.add("GET", "/records", self.list_records)
        return r

    def take(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        fields = {key: body.get(key) for key in ("offline_id", "patient_id", "kind")}
        for key, value in fields.items():
            if not isinstance(value, str) or not value:
                raise HttpError(400, f"{key} must be a non-empty string")
        if fields["kind"] not in KINDS:
            raise HttpError(400, f"kind must be one of {', '.join(KINDS)}")
        detail = body.get("detail", {})
        if not isinstance(detail, dict):
            raise HttpError(400, "detail must be a JSON object")
        try:
            receipt = self.store.take(fields["offline_id"], fields["patient_id"], fields["kind"], detail)
        except RecordConflict as e:
            raise HttpError(409, str(e)) from None
        return (200 if receipt.duplicate else 201), {
            "offline_id": receipt.offline_id, "seq": receipt.seq, "taken_at": receipt.taken_at,
            "duplicate": receipt.duplicate}

    def list_records(self, req: Request) -> tuple[int, Any]:
        try:
            since = int(req.query.get("since", 0))
            limit = min(int(req.query.get("limit", 1000)), 10000)
        except ValueError:
            raise HttpError(400, "since and limit must be integers") from None
        records = self.store.since(since, limit)
        return 200, {"records": records, "last_seq": records[-1]["seq"] if records else since}


def main(argv: list[str] | None = None) -> None:
    config = load_config("offline reception: the QR code's address while the site is down", argv)
    reception = OfflineReception(config)
    serve(config, reception.routes(), on_stop=reception.store.close)


if __name__ == "__main__":
    main()
