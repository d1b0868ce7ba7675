"""A third party the hospital depends on: medical insurance (医保), payment (支付) or notification push.

Run as `python -m harness.stack.services.thirdparty --config FILE`. Config keys: `kind`
(insurance | payment | notification), `name`, `host`, `port`, `ready_file`, `log_file`, and optional
`mode` / `delay_ms` (the starting mode) and `coverage` (insurance: share of an amount covered, 0.7).

Faults switch the business endpoints between healthy, slow (answer after `delay_ms`) and error (500)
through `POST /_mode`; health and the control endpoints are never affected, so the harness can always
put a third party back.
"""
from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from .common import HttpError, Request, Router, load_config, serve

KINDS = ("insurance", "payment", "notification")
MODES = ("healthy", "slow", "error")
CHANNELS = ("sms", "official_account", "app_banner", "hotline", "broadcast")
DEFAULT_SLOW_MS = 3000


class ThirdParty:
    def __init__(self, config: dict[str, Any]):
        self.kind: str = config["kind"]
        if self.kind not in KINDS:
            raise SystemExit(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        self.name: str = config.get("name", self.kind)
        self.coverage = Decimal(str(config.get("coverage", 0.7)))
        self.mode: str = config.get("mode", "healthy")
        self.delay_ms: int = int(config.get("delay_ms", 0))
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.served = 0

    def routes(self) -> Router:
        r = Router()
        r.add("GET", "/health", lambda req: (200, {"status": "ok", "name": self.name,
                                                   "kind": self.kind, "mode": self.mode}))
        r.add("GET", "/_mode", lambda req: (200, self._mode_state()))
        r.add("POST", "/_mode", self.set_mode)
        if self.kind == "insurance":
            r.add("POST", "/claims", self.claim)
        elif self.kind == "payment":
            r.add("POST", "/pay", self.pay)
        else:
            r.add("POST", "/send", self.send)
            r.add("GET", "/sent", self.list_sent)
        return r

    def _mode_state(self) -> dict[str, Any]:
        return {"mode": self.mode, "delay_ms": self.delay_ms, "served": self.served}

    def set_mode(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        mode = body.get("mode")
        if mode not in MODES:
            raise HttpError(400, f"mode must be one of {', '.join(MODES)}")
        delay = body.get("delay_ms", DEFAULT_SLOW_MS if mode == "slow" else 0)
        if not isinstance(delay, int) or delay < 0:
            raise HttpError(400, "delay_ms must be a non-negative integer")
        with self._lock:
            self.mode, self.delay_ms = mode, delay
        return 200, self._mode_state()

    def _behave(self) -> None:
        """Apply the current mode to a business call."""
        mode, delay = self.mode, self.delay_ms
        if mode == "error":
            raise HttpError(500, f"{self.name}: interface error (simulated)")
        if mode == "slow":
            time.sleep(delay / 1000)
        with self._lock:
            self.served += 1

    def claim(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        amount = _amount(body)
        _text(body, "patient_id")
        self._behave()
        covered = (amount * self.coverage).quantize(Decimal("0.01"))
        return 200, {"claim_id": f"CLM-{uuid.uuid4().hex[:12]}", "covered": covered}

    def pay(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        amount = _amount(body)
        _text(body, "patient_id")
        self._behave()
        return 200, {"payment_id": f"PAY-{uuid.uuid4().hex[:12]}", "status": "paid", "amount": amount}

    def send(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        if body.get("channel") not in CHANNELS:
            raise HttpError(400, f"channel must be one of {', '.join(CHANNELS)}")
        msg = {"channel": body["channel"], "audience": _text(body, "audience"),
               "text": _text(body, "text")}
        self._behave()
        with self._lock:
            msg = {"id": len(self.sent) + 1, "t": time.time(), **msg}
            self.sent.append(msg)
        return 200, msg

    def list_sent(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            return 200, list(self.sent)


def _text(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"{key} must be a non-empty string")
    return value


def _amount(body: Any) -> Decimal:
    value = body.get("amount") if isinstance(body, dict) else None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise HttpError(400, "amount must be a non-negative number")
    return amount


def main(argv: list[str] | None = None) -> None:
    config = load_config("mock third party: insurance, payment or notification", argv)
    serve(config, ThirdParty(config).routes())


if __name__ == "__main__":
    main()
