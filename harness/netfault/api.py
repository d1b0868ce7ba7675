"""The API's state and handlers: the proxies, routing, and what each call does to them.  Everything
runs on one event loop; handlers that change proxies hold one lock, as the real server does."""
from __future__ import annotations

import asyncio
import os
import random
import time

from .addr import BACKLOG, listen_socket
from .codec import (DOWNSTREAM, ERR_INVALID_STREAM, TOXIC_TYPES, UPSTREAM, VERSION, ApiError,
                    fields, jkind, parse_json, toxic_attrs)
from .httpapi import ApiProtocol
from .proxy import Proxy, Toxic


class Core:
    """The proxies, the API and its handlers; everything runs on one event loop."""

    def __init__(self, loop, seed=None):
        self.loop = loop
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        self.api_server: asyncio.AbstractServer | None = None
        self.api_conns: set[ApiProtocol] = set()
        self._rid = 0

    async def open_api(self, host: str, port: int) -> int:
        sock = listen_socket(host, port)
        self.api_server = await self.loop.create_server(lambda: ApiProtocol(self), sock=sock,
                                                        backlog=BACKLOG)
        return sock.getsockname()[1]

    async def shutdown(self) -> None:
        if self.api_server is not None:
            self.api_server.close()
        for p in self.proxies.values():
            p.stop()
        for c in list(self.api_conns):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0.01)
        for p in self.proxies.values():
            for conn in list(p.conns):
                for side in (conn.client, conn.upstream):
                    if side is not None and not side.closed and side.transport is not None:
                        side.transport.abort()
        await asyncio.sleep(0)

    def request_id(self) -> str:
        self._rid += 1
        return f"{int(time.time()):08x}{os.getpid() & 0xffff:04x}{self._rid:08x}"

    # -- routing
    def route(self, method: str, path: str):
        """-> (handler, args) or an (status, body, ctype) for 404/405."""
        parts = path[1:].split("/") if path.startswith("/") else [None]
        n, table = len(parts), None
        if n == 1:
            table = {"reset": {"POST": self.h_reset},
                     "proxies": {"GET": self.h_proxy_index, "POST": self.h_proxy_create},
                     "populate": {"POST": self.h_populate},
                     "version": {"GET": self.h_version}}.get(parts[0])
            args = ()
        elif parts[0] == "proxies" and parts[1]:
            args = tuple(parts[1:])
            if n == 2:
                table = {"GET": self.h_proxy_show, "POST": self.h_proxy_update,
                         "PATCH": self.h_proxy_update, "DELETE": self.h_proxy_delete}
            elif n == 3 and parts[2] == "toxics":
                table = {"GET": self.h_toxic_index, "POST": self.h_toxic_create}
                args = (parts[1],)
            elif n == 3 and parts[2] == "stats":
                table = {"GET": self.h_stats}
                args = (parts[1],)
            elif n == 4 and parts[2] == "toxics" and parts[3]:
                table = {"GET": self.h_toxic_show, "POST": self.h_toxic_update,
                         "PATCH": self.h_toxic_update, "DELETE": self.h_toxic_delete}
                args = (parts[1], parts[3])
        if table is None:
            return None, (404, b"404 page not found\n", "text/plain; charset=utf-8")
        handler = table.get(method)
        if handler is None:
            return None, (405, b"", None)
        return handler, args

    def get_proxy(self, name: str) -> Proxy:
        p = self.proxies.get(name)
        if p is None:
            raise ApiError("proxy not found", 404)
        return p

    # -- handlers: return (status, payload); payload is JSON-able, bytes or None
    def h_version(self, body):
        return 200, (f'{{"version": "{VERSION}"}}\n'.encode(), "application/json;charset=utf-8")

    def h_proxy_index(self, body):
        return 200, {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    def h_proxy_show(self, body, name):
        return 200, self.get_proxy(name).to_json()

    def h_toxic_index(self, body, name):
        return 200, self.get_proxy(name).toxic_list()

    def h_toxic_show(self, body, name, toxic):
        t = self.get_proxy(name).toxics.get(toxic)
        if t is None:
            raise ApiError("toxic not found", 404)
        return 200, t.to_json()

    def h_stats(self, body, name):
        p = self.get_proxy(name)
        return 200, {"upstream_bytes": p.bytes[UPSTREAM], "downstream_bytes": p.bytes[DOWNSTREAM],
                     "connections": len(p.conns), "connections_total": p.connections_total}

    _PROXY_FIELDS = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}

    async def h_proxy_create(self, body):
        f = fields(parse_json(body), self._PROXY_FIELDS, "toxiproxy.Proxy")
        name, upstream = f.get("name", ""), f.get("upstream", "")
        if not name:
            raise ApiError("missing required field: name", 400)
        if not upstream:
            raise ApiError("missing required field: upstream", 400)
        async with self.lock:
            if name in self.proxies:
                raise ApiError("proxy already exists", 409)
            p = Proxy(self, name, f.get("listen", ""), upstream)
            if f.get("enabled", True):
                await p.start()
            self.proxies[name] = p
            return 201, p.to_json()

    async def h_populate(self, body):
        # As real Toxiproxy 2.12: entries apply in order, each as "add or replace", so a name given
        # twice ends as its last entry; the answer lists one proxy per entry, as each stands now.
        # When an entry fails to start, the error comes with the entries applied before it.
        result: list[Proxy] = []
        try:
            value = parse_json(body)
            if not isinstance(value, list):
                raise ApiError(f"bad request body: json: cannot unmarshal {jkind(value)} into Go "
                               f"value of type []toxiproxy.Proxy", 400)
            items = [fields(v, self._PROXY_FIELDS, "toxiproxy.Proxy") for v in value]
            for i, f in enumerate(items, 1):
                if not f.get("name"):
                    raise ApiError(f"missing required field: name at proxy {i}", 400)
                if not f.get("upstream"):
                    raise ApiError(f"missing required field: upstream at proxy {i}", 400)
            async with self.lock:
                for f in items:
                    result.append(await self._add_or_replace(f))
        except ApiError as e:
            return e.status, {"error": e.message, "status": e.status,
                              "proxies": [p.to_json() for p in result] or None}
        return 201, {"proxies": [p.to_json() for p in result] or None}

    async def _add_or_replace(self, f: dict) -> Proxy:
        """A proxy with the same listen and upstream is left as it is (the entry answered is then
        the submitted one, never started, as the real server answers); any other is replaced."""
        name, listen, upstream = f["name"], f.get("listen", ""), f["upstream"]
        p = Proxy(self, name, listen, upstream)
        old = self.proxies.get(name)
        if old is not None:
            if old.listen == listen and old.upstream == upstream:
                return p
            old.stop()
        if f.get("enabled", True):
            await p.start()
        self.proxies[name] = p
        return p

    async def h_proxy_update(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            f = fields(parse_json(body), self._PROXY_FIELDS, "toxiproxy.Proxy")
            listen = f.get("listen", p.listen)
            upstream = f.get("upstream", p.upstream)
            enabled = f.get("enabled", p.enabled)
            if listen != p.listen or upstream != p.upstream:
                p.stop()
                p.listen, p.upstream = listen, upstream
            if enabled != p.enabled:
                if enabled:
                    await p.start()
                else:
                    p.stop()
            return 200, p.to_json()

    async def h_proxy_delete(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            p.stop()
            del self.proxies[name]
            return 204, None

    async def h_reset(self, body):
        async with self.lock:
            for p in list(self.proxies.values()):
                await p.start()
                toxics = list(p.toxics.values())
                p.toxics.clear()
                for t in toxics:
                    for pipe in p.live_pipes(t.direction):
                        await pipe.remove_stage(t)
            return 204, None

    async def h_toxic_create(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            obj = parse_json(body)
            f = fields(obj, {"name": "string", "type": "string", "stream": "string",
                              "toxicity": "float32", "attributes": "object"},
                        "toxics.ToxicWrapper")
            stream = f.get("stream", "downstream")
            direction = {"upstream": UPSTREAM, "downstream": DOWNSTREAM}.get(stream.lower())
            if direction is None:
                raise ApiError(ERR_INVALID_STREAM, 400)
            kind = f.get("type", "")
            tname = f.get("name") or f"{kind}_{stream}"
            if kind not in TOXIC_TYPES:
                raise ApiError("invalid toxic type", 400)
            if tname in p.toxics:
                raise ApiError("toxic already exists", 409)
            zeros = {a: 0 for a in TOXIC_TYPES[kind][1]}
            attrs = toxic_attrs(kind, f.get("attributes"), zeros)
            toxic = Toxic(tname, kind, stream, direction, float(f.get("toxicity", 1.0)), attrs)
            p.toxics[tname] = toxic
            for pipe in p.live_pipes(direction):
                pipe.add_stage(toxic)
            return 200, toxic.to_json()

    async def h_toxic_update(self, body, name, tname):
        async with self.lock:
            p = self.get_proxy(name)
            toxic = p.toxics.get(tname)
            if toxic is None:
                raise ApiError("toxic not found", 404)
            f = fields(parse_json(body), {"attributes": "object", "toxicity": "float32"},
                        "toxics.ToxicWrapper")
            toxic.attrs = toxic_attrs(toxic.type, f.get("attributes"), toxic.attrs)
            toxic.toxicity = float(f.get("toxicity", toxic.toxicity))
            for pipe in p.live_pipes(toxic.direction):
                await pipe.update_stage(toxic)
            return 200, toxic.to_json()

    async def h_toxic_delete(self, body, name, tname):
        async with self.lock:
            p = self.get_proxy(name)
            toxic = p.toxics.pop(tname, None)
            if toxic is None:
                raise ApiError("toxic not found", 404)
            for pipe in p.live_pipes(toxic.direction):
                await pipe.remove_stage(toxic)
            return 204, None

