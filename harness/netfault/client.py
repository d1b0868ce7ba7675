"""A thin wrapper over ``toxiproxy-python`` for the harness: one object per Toxiproxy API.

Works against our server (``harness.netfault.server``) and a real Toxiproxy 2.x alike; only
``stats()`` needs our extension endpoint and answers ``None`` without it.
"""
from __future__ import annotations

import json
import time
from urllib.parse import quote, urlsplit

import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

__all__ = ["Links", "LinkError"]


class LinkError(Exception):
    """A Toxiproxy call failed; the message is one line naming the call and the reason."""


def _reason(content) -> str:
    """The server's error message out of an error body (JSON or text)."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        return str(json.loads(content)["error"])
    except (ValueError, KeyError, TypeError):
        return " ".join(str(content).split()) or "no details"


class Links:
    """The network links (Toxiproxy proxies) of a stack.

    ``url`` is the API address, e.g. ``http://127.0.0.1:8474``.  Every call has a timeout
    (seconds) and raises :class:`LinkError` on any failure.
    """

    def __init__(self, url: str = "http://127.0.0.1:8474", timeout: float = 5.0):
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if not parts.hostname or not parts.port:
            raise LinkError(f"bad Toxiproxy URL {url!r}: expected http://HOST:PORT")
        self.url = f"http://{parts.netloc}"
        self.timeout = timeout
        # toxiproxy-python keeps host/port on the class; a subclass per instance keeps them apart.
        self._api = type("_Api", (APIConsumer,), {"host": parts.hostname, "port": parts.port})

    # -- plumbing
    def _call(self, what: str, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        try:
            if method in ("get", "post", "delete"):
                r = getattr(self._api, method)(path, **kw)   # toxiproxy-python, raises on 4xx
            else:
                r = requests.request(method.upper(), self.url + path, **kw)
        except (ProxyExists, NotFound, InvalidToxic) as e:
            raise LinkError(f"{what}: {_reason(e.args[0] if e.args else '')}") from None
        except requests.RequestException as e:
            raise LinkError(f"{what}: Toxiproxy at {self.url} unreachable "
                            f"({e.__class__.__name__})") from None
        if r.status_code >= 400:
            raise LinkError(f"{what}: HTTP {r.status_code}: {_reason(r.content)}")
        return r

    @staticmethod
    def _p(name: str) -> str:
        return "/proxies/" + quote(name, safe="")

    # -- proxies
    def proxies(self) -> dict[str, dict]:
        """name -> proxy JSON (name, listen, upstream, enabled, toxics)."""
        return self._call("list proxies", "get", "/proxies").json()

    def get(self, name: str) -> dict | None:
        try:
            return self._api.get(self._p(name), timeout=self.timeout).json()
        except NotFound:
            return None
        except requests.RequestException as e:
            raise LinkError(f"get proxy {name}: Toxiproxy at {self.url} unreachable "
                            f"({e.__class__.__name__})") from None

    def ensure_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """Create the proxy, or bring an existing one to this upstream (and listen address unless
        its port is 0) and enable it.  Returns the address it listens on."""
        cur = self.get(name)
        if cur is None:
            body = {"name": name, "upstream": upstream, "listen": listen, "enabled": True}
            return self._call(f"create proxy {name}", "post", "/proxies", json=body).json()["listen"]
        change = {}
        if cur["upstream"] != upstream:
            change["upstream"] = upstream
        if not listen.endswith(":0") and cur["listen"] != listen:
            change["listen"] = listen
        if not cur["enabled"]:
            change["enabled"] = True
        if change:
            cur = self._update(name, change)
        return cur["listen"]

    def _update(self, name: str, change: dict) -> dict:
        what = f"update proxy {name}"
        try:
            return self._call(what, "patch", self._p(name), json=change).json()
        except LinkError as e:
            if "HTTP 405" not in str(e):
                raise
        return self._call(what, "post", self._p(name), json=change).json()  # Toxiproxy < 2.6

    def repoint(self, name: str, upstream: str) -> None:
        """Send the link to another upstream (drops the connections it carries)."""
        self._update(name, {"upstream": upstream})

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabled = nothing listens and every connection is cut."""
        self._call(f"{'enable' if enabled else 'disable'} proxy {name}", "post", self._p(name),
                   json={"enabled": bool(enabled)})

    def delete(self, name: str) -> bool:
        """Remove a proxy; False if there was none."""
        try:
            self._call(f"delete proxy {name}", "delete", self._p(name))
        except LinkError as e:
            if str(e).endswith("proxy not found"):
                return False
            raise
        return True

    # -- toxics
    def add_toxic(self, proxy: str, type: str, attributes: dict | None = None,
                  stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None) -> str:
        """Add a toxic; returns its name (``<type>_<stream>`` unless given)."""
        body = {"type": type, "stream": stream, "toxicity": toxicity,
                "attributes": dict(attributes or {})}
        if name:
            body["name"] = name
        r = self._call(f"add {type} toxic to {proxy}", "post", self._p(proxy) + "/toxics",
                       json=body)
        return r.json()["name"]

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Remove a toxic; False if it was already gone (e.g. after a reset)."""
        try:
            self._call(f"remove toxic {name} from {proxy}", "delete",
                       f"{self._p(proxy)}/toxics/{quote(name, safe='')}")
        except LinkError as e:
            if str(e).endswith("toxic not found"):
                return False
            raise
        return True

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("reset", "post", "/reset")

    # -- monitoring
    def stats(self, name: str) -> dict | None:
        """``{"upstream_bytes", "downstream_bytes", "connections"}`` from our server's extension
        endpoint; None when the server has no such endpoint (a real Toxiproxy)."""
        try:
            r = requests.get(f"{self.url}{self._p(name)}/stats", timeout=self.timeout)
        except requests.RequestException as e:
            raise LinkError(f"stats of {name}: Toxiproxy at {self.url} unreachable "
                            f"({e.__class__.__name__})") from None
        if r.status_code == 200:
            return r.json()
        if r.status_code in (404, 405) and not r.content.lstrip().startswith(b"{"):
            return None      # plain "404 page not found": the endpoint does not exist
        raise LinkError(f"stats of {name}: HTTP {r.status_code}: {_reason(r.content)}")

    def version(self) -> str:
        r = self._call("version", "get", "/version")
        try:
            return str(r.json()["version"])
        except (ValueError, KeyError, TypeError):
            return r.text.strip()   # Toxiproxy < 2.1 answers plain text

    def wait_ready(self, timeout: float = 10.0) -> str:
        """Wait until the API answers; returns the server version."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.version()
            except LinkError as e:
                if time.monotonic() >= deadline:
                    raise LinkError(f"Toxiproxy at {self.url} not ready after {timeout:g} s: "
                                    f"{e}") from None
            time.sleep(0.05)
