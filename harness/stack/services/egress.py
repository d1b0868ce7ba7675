"""The egress gateway: the hospital's way out to its third parties.

Run as `python -m harness.stack.services.egress --config FILE`. Config keys: `name`, `host`, `port`,
`ready_file`, `log_file`, `routes` ({"insurance-primary": "http://127.0.0.1:P", ...}), `timeout_s`
(per upstream request, connect and each read; default 5) and optional `route_timeouts` ({route: s}).

`/<route>/<rest>` is forwarded to `<routes[route]>/<rest>` (method, query, body, content type) and the
upstream's answer is streamed back. The egress lines (primary and backup) are proxies in front of this
gateway, so `POST /upload` exists to push bulk traffic through a line and saturate it.
"""
from __future__ import annotations

import http.client
from typing import Any, Iterator
from urllib.parse import urlsplit

from .common import CHUNK, HttpError, Request, Router, Stream, load_config, serve

FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Patient-Id", "X-Request-Id")


class Upstream:
    def __init__(self, route: str, base_url: str, timeout: float):
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"route {route!r}: upstream must be http://host:port, not {base_url!r}")
        self.route, self.host, self.port = route, u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def error(self, status: int, reason: str) -> HttpError:
        return HttpError(status, f"{self.route} upstream {self.addr}: {reason}",
                         route=self.route, upstream=self.addr)

    def forward(self, req: Request, rest: str) -> Stream:
        path = f"{self.prefix}/{rest}" + (f"?{req.raw_query}" if req.raw_query else "")
        headers = {h: req.headers[h] for h in FORWARDED_HEADERS if req.headers.get(h)}
        body = req.body()
        # a fresh connection per call: a link fault must show on the next request, not on a pooled one
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(req.method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
        except TimeoutError:  # connecting or waiting for the answer
            conn.close()
            raise self.error(504, f"timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            reason = f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__
            raise self.error(502, reason) from None
        length = resp.getheader("Content-Length")
        return Stream(resp.status, _relay(resp, conn),
                      content_type=resp.getheader("Content-Type", "application/octet-stream"),
                      length=int(length) if length and length.isdigit() else None)


def _relay(resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> Iterator[bytes]:
    try:
        while chunk := resp.read1(CHUNK):
            yield chunk
    finally:
        conn.close()


class Gateway:
    def __init__(self, config: dict[str, Any]):
        default = float(config.get("timeout_s", 5))
        per_route = config.get("route_timeouts") or {}
        self.upstreams = {name: Upstream(name, url, float(per_route.get(name, default)))
                          for name, url in (config.get("routes") or {}).items()}

    def routes(self) -> Router:
        r = Router()
        r.add("GET", "/health", lambda req: (200, {
            "status": "ok", "routes": {n: u.addr for n, u in self.upstreams.items()}}))
        r.add("POST", "/upload", self.upload)
        r.add("*", r"/(?P<route>[^/]+)(?:/(?P<rest>.*))?", self.forward)
        return r

    def upload(self, req: Request) -> tuple[int, Any]:
        return 200, {"bytes": sum(len(chunk) for chunk in req.iter_body())}

    def forward(self, req: Request) -> Stream:
        upstream = self.upstreams.get(req.params["route"])
        if upstream is None:
            raise HttpError(404, f"no egress route {req.params['route']!r} "
                                 f"(known: {', '.join(sorted(self.upstreams))})")
        return upstream.forward(req, req.params.get("rest") or "")


def main(argv: list[str] | None = None) -> None:
    config = load_config("egress gateway to the third parties", argv)
    serve(config, Gateway(config).routes())


if __name__ == "__main__":
    main()
