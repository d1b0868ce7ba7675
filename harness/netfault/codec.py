"""What the API reads and writes: toxic types, errors, and JSON decoding with the leniency and the
error wording of the real server (Go's encoding/json)."""
from __future__ import annotations

import json

VERSION = "2.12.0"

UPSTREAM, DOWNSTREAM = 0, 1     # a toxic's stream: client -> server, server -> client
STREAMS = {"upstream": UPSTREAM, "downstream": DOWNSTREAM}

# type -> (Go struct name, attribute names in the order the real server prints them)
TOXIC_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "latency": ("LatencyToxic", ("latency", "jitter")),
    "bandwidth": ("BandwidthToxic", ("rate",)),
    "slow_close": ("SlowCloseToxic", ("delay",)),
    "timeout": ("TimeoutToxic", ("timeout",)),
    "reset_peer": ("ResetToxic", ("timeout",)),
    "slicer": ("SlicerToxic", ("average_size", "size_variation", "delay")),
    "limit_data": ("LimitDataToxic", ("bytes",)),
    "noop": ("NoopToxic", ()),
}

ERR_INVALID_STREAM = "stream was invalid, can be either upstream or downstream"


class ApiError(Exception):
    """An API failure answered as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


# JSON decoding with the real server's leniency and error wording (Go encoding/json)

_DECODER = json.JSONDecoder()
_INT64 = (-(1 << 63), (1 << 63) - 1)


def jkind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def parse_json(body: bytes):
    """First JSON value of the body (trailing bytes ignored, as Go's json.Decoder does)."""
    text = body.decode("utf-8", "replace").lstrip(" \t\r\n")
    if not text:
        raise ApiError("bad request body: EOF", 400)
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as e:
        if e.pos >= len(text):
            why = "unexpected EOF"
        else:
            why = f"invalid character {text[e.pos]!r} ({e.msg.lower()})"
        raise ApiError(f"bad request body: {why}", 400) from None
    return value


def fields(obj, spec: dict[str, str], struct: str) -> dict:
    """Pick the known fields of a JSON object, type-checked; keys match case-insensitively."""
    if not isinstance(obj, dict):
        raise ApiError(f"bad request body: json: cannot unmarshal {jkind(obj)} into Go value of "
                       f"type {struct}", 400)
    lower = {k.lower(): k for k in spec}
    out = {}
    for key, val in obj.items():
        name = key if key in spec else lower.get(key.lower())
        if name is None or val is None:
            continue
        kind = spec[name]
        if kind == "string":
            ok = isinstance(val, str)
        elif kind == "bool":
            ok = isinstance(val, bool)
        elif kind == "int64":
            ok = isinstance(val, int) and not isinstance(val, bool) and _INT64[0] <= val <= _INT64[1]
        elif kind == "float32":
            ok = isinstance(val, (int, float)) and not isinstance(val, bool)
        else:  # "object"
            ok = isinstance(val, dict)
        if not ok:
            what = jkind(val)
            if what == "number":
                what = f"number {json.dumps(val)}"
            raise ApiError(f"bad request body: json: cannot unmarshal {what} into Go struct field "
                           f"{struct}.{name} of type {kind}", 400)
        out[name] = val
    return out


def toxic_attrs(kind: str, given, base: dict) -> dict:
    struct, names = TOXIC_TYPES[kind]
    attrs = dict(base)
    if given is None:
        return attrs
    attrs.update(fields(given, {n: "int64" for n in names}, f"toxics.{struct}"))
    return attrs


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

