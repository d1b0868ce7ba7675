"""The patient app's client of the third parties (insurance, payment, notification): each reached at
its primary or backup interface through the active egress line, and a failure answered with the
culprit the evidence shows."""
from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from .common import HttpError, first_line, peer_closed

LINES = ("primary", "backup")  # a third party's interfaces, and the egress lines
KINDS = ("insurance", "payment", "notification")  # the third parties


class ThirdParties:
    """Insurance, payment and notification, each at its primary or backup interface, reached
    through the active egress line.

    A failed call answers 502 (504: timed out) with the culprit as the evidence shows it:
    `{"component", "address", "what", "reported_by"}` — the interface the egress gateway could not
    reach and the address it dialled (from the gateway's own error), the interface that answered
    with an error (told by the gateway's `X-Egress-*` marks), or the egress line the app could not
    reach. `address` is what the app tried, kept apart."""

    def __init__(self, egress: dict[str, str], routes: dict[str, str], timeout_s: float, name: str):
        self.egress = {line: url.rstrip("/") for line, url in egress.items()}
        self.routes = {"egress": routes.get("egress", "primary"),
                       **{kind: routes.get(kind, "primary") for kind in KINDS}}
        self.timeout_s = timeout_s
        self.name = name
        self._lines = {url: KeepAlive(url, timeout_s) for url in self.egress.values()}
        self._lock = threading.Lock()

    def switch(self, wanted: dict[str, Any]) -> dict[str, str]:
        unknown = sorted(set(wanted) - {"egress", *KINDS})
        if unknown:
            raise HttpError(400, f"no route {unknown[0]!r} (routes: egress, {', '.join(KINDS)})")
        for key, value in wanted.items():
            choices = self.egress if key == "egress" else LINES
            if value is not None and value not in choices:
                raise HttpError(400, f"{key} must be one of {', '.join(choices)}")
        with self._lock:
            self.routes = {**self.routes, **{k: v for k, v in wanted.items() if v is not None}}
            return dict(self.routes)

    def claim(self, patient_id: str, amount: Decimal) -> dict[str, Any]:
        return self._call("insurance", "claims", {"patient_id": patient_id, "amount": float(amount)},
                          "covered")

    def pay(self, patient_id: str, amount: Decimal) -> dict[str, Any]:
        return self._call("payment", "pay", {"patient_id": patient_id, "amount": float(amount)},
                          "payment_id")

    def send(self, channel: str, audience: str, text: str) -> dict[str, Any]:
        return self._call("notification", "send", {"channel": channel, "audience": audience,
                                                   "text": text}, "id")

    def _call(self, kind: str, path: str, body: dict[str, Any], expect: str) -> dict[str, Any]:
        interface, line = self.routes[kind], self.routes["egress"]
        route = f"{kind}-{interface}"
        who = f"{kind} ({interface} interface)"
        if line not in self.egress:
            raise HttpError(502, f"{who}: no egress line {line!r} configured", third_party=who)
        url = f"{self.egress[line]}/{route}/{path}"
        where = f"{who} via egress {line} at {url}"
        line_addr = urlsplit(self.egress[line]).netloc

        def failed(status: int, text: str, culprit: dict[str, Any]) -> HttpError:
            return HttpError(status, f"{where}: {text}", third_party=who, address=url,
                             culprit={"reported_by": self.name, **culprit})

        try:
            r = self._lines[self.egress[line]].post(f"/{route}/{path}", body)
        except TimeoutError:
            # no answer at all: nothing beyond the line said anything, so the line is all we know
            raise failed(504, f"timed out after {self.timeout_s:g}s", {
                "component": f"egress-{line}", "address": line_addr,
                "what": f"gave no answer within {self.timeout_s:g}s"}) from None
        except (OSError, http.client.HTTPException) as e:
            refused = isinstance(e, ConnectionRefusedError)
            raise failed(502, f"unreachable: {first_line(e)}", {
                "component": f"egress-{line}", "address": line_addr,
                "what": "refused connection" if refused else f"unreachable ({first_line(e)})"}) from None
        try:
            data = json.loads(r.body)
        except ValueError:
            data = None
        if r.status_code >= 400:
            reason = data.get("error") if isinstance(data, dict) else None
            status = 504 if r.status_code == 504 else 502
            text = f"HTTP {r.status_code}: {reason or r.text[:200]}"
            if isinstance(data, dict) and data.get("upstream"):
                # the gateway could not reach the interface: its own error names the address
                raise failed(status, text, {
                    "component": data.get("route") or route, "address": data["upstream"],
                    "what": data.get("what") or reason, "reported_by": data.get("reported_by")
                    or "egress gateway"})
            if r.headers.get("X-Egress-Upstream"):
                # the interface itself answered with an error
                raise failed(status, text, {
                    "component": r.headers.get("X-Egress-Route") or route,
                    "address": r.headers["X-Egress-Upstream"],
                    "what": f"answered HTTP {r.status_code}: {reason or r.text[:120]}",
                    "reported_by": r.headers.get("X-Egress-Route") or route})
            raise failed(status, text, {"component": f"egress-{line}", "address": line_addr,
                                        "what": f"answered HTTP {r.status_code}: {reason or r.text[:120]}"})
        if not isinstance(data, dict) or expect not in data:
            raise failed(502, f"malformed answer: {r.text[:200]}", {
                "component": r.headers.get("X-Egress-Route") or route,
                "address": r.headers.get("X-Egress-Upstream"), "what": "answered malformed data"})
        return data


@dataclass
class Answer:
    status_code: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class KeepAlive:
    """Keep-alive connections to one egress line, shared by the app's handler threads. A connection
    the line closed while it sat idle (a cut, a repoint) is dropped before use, so a fault shows
    on the next call as it happens, not as a stale connection's error."""

    def __init__(self, base_url: str, timeout_s: float):
        u = urlsplit(base_url)
        self.host, self.port, self.timeout_s = u.hostname or "127.0.0.1", u.port or 80, timeout_s
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, path: str, body: dict[str, Any]) -> Answer:
        conn = self._take()
        try:
            conn.request("POST", path, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = Answer(resp.status, resp.headers, resp.read())
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return answer

    def _take(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            if conn.sock is not None and not peer_closed(conn.sock):
                return conn
            conn.close()
