"""A patient's HTTP client: keep-alive HTTP/1.1 to the hospital, one Locust request event per call.

Locust's FastHttpUser wraps geventhttpclient in a browser-like user agent (URL objects, a cookie jar,
redirects, compatibility request and response objects, a context manager per call). At zero think
time that wrapping cost more CPU than the hospital's app does to answer. A patient needs none of it:
one host (and offline reception's), no cookies, no redirects. This client keeps geventhttpclient's
connection and parser and reports each call to Locust as FastHttpUser does (`events.request`, so
Locust's statistics, its workers and our request records all see it).

A sibling module of the locustfile (imported without the harness package).
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import orjson
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError
from locust.exception import CatchResponseError

USER_AGENT = "hospital-drill-patient"
JSON_HEADERS = {"Content-Type": "application/json"}


class Reply:
    """One call's outcome: the status (0 when nothing came back), the body, and what went wrong."""

    __slots__ = ("status_code", "content", "error")

    def __init__(self, status_code: int, content: bytes, error: BaseException | None):
        self.status_code, self.content, self.error = status_code, content, error

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return orjson.loads(self.content)


class HospitalClient:
    """Calls of one patient (or one bot), each on the one kept-alive connection to its host."""

    def __init__(self, user, base_url: str, timeout_s: float):
        self.user, self.events = user, user.environment.events
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._hosts: dict[str, HTTPClient] = {}  # by host:port

    def _route(self, url: str) -> tuple[HTTPClient, str]:
        """The client for `url`'s host and the path to ask it for (a bare path: the hospital's)."""
        full = url if "://" in url else self.base_url + url
        split = urlsplit(full)
        http = self._hosts.get(split.netloc)
        if http is None:
            tls = split.scheme == "https"  # a hospital's own staging site may be behind TLS
            http = HTTPClient(split.hostname or "127.0.0.1", split.port or (443 if tls else 80),
                              concurrency=1, ssl=tls, connection_timeout=self.timeout_s,
                              network_timeout=self.timeout_s, headers={"User-Agent": USER_AGENT})
            self._hosts[split.netloc] = http
        return http, split.path + (f"?{split.query}" if split.query else "")

    def send(self, method: str, url: str, body: dict | None = None,
             headers: dict[str, str] | None = None) -> tuple[Reply, float, float]:
        """(reply, start time, milliseconds): the call made and its body read whole, as Locust
        times a request."""
        http, path = self._route(url)
        data = b""
        if body is not None:
            data = orjson.dumps(body)
            headers = {**(headers or {}), **JSON_HEADERS}
        start = time.time()
        t0 = time.perf_counter()
        try:
            response = http.request(method, path, body=data, headers=headers)
            try:
                reply = Reply(response.status_code, response.read(), None)
            finally:
                response.release()
        except (OSError, HTTPParseError) as e:  # refused, reset, timed out, not HTTP
            reply = Reply(0, b"", e)
        return reply, start, (time.perf_counter() - t0) * 1000

    def report(self, method: str, name: str, reply: Reply, start: float, ms: float,
               context: dict, failure: str | None) -> None:
        """One request event, as Locust's own clients fire it (the user's context under the call's);
        `failure` marks it failed."""
        self.events.request.fire(
            request_type=method, name=name, response_time=ms, response_length=len(reply.content),
            response=reply, context={**self.user.context(), **context}, start_time=start, url=name,
            exception=CatchResponseError(failure) if failure is not None else None)

    def close(self) -> None:
        for http in self._hosts.values():
            http.close()
        self._hosts.clear()
