"""HD_LOAD_CONFIG, the patient load's configuration: parsed and checked with defaults filled in.

Imported by the locustfile as a sibling module (Locust processes, possibly on other machines, do
not import the harness package) and by the harness as `harness.load.load_config`, so the checks
live in one place. Standard library only.
"""
from __future__ import annotations

import json
import math

try:  # a sibling as the locustfile's, a submodule as the harness's
    from .population import POPULATION
except ImportError:
    from population import POPULATION  # type: ignore[no-redef]

PERSONAS = ("followup", "consultation", "prescription", "exam", "payment")
DEFAULT_WEIGHTS = {"followup": 3, "consultation": 3, "prescription": 2, "exam": 2, "payment": 1}
CONFIG_KEYS = {"personas", "wait", "patient_offset", "patient_count", "patient_seed", "workers",
               "request_timeout_s", "departments", "insurance_share", "offline_share", "stages", "attack",
               "zero_file"}


class LoadConfigError(ValueError):
    """HD_LOAD_CONFIG is not usable; Locust stops at import with this message."""


def check_personas(personas: dict) -> dict:
    """Persona weights (a scenario's, a plan mix's, HD_LOAD_CONFIG's): known personas, whole
    numbers >= 0, at least one above 0. Raises ValueError."""
    unknown = sorted(set(personas) - set(PERSONAS))
    if unknown:
        raise ValueError(f"unknown persona {unknown[0]!r} (known: {', '.join(sorted(PERSONAS))})")
    for name, weight in personas.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"{name}: weight must be an integer >= 0")
    if not any(personas.values()):
        raise ValueError("no persona has a weight above 0")
    return personas


def load_config(raw: str | None) -> dict:
    """Parse and check HD_LOAD_CONFIG; defaults filled in. Raises LoadConfigError."""
    try:
        cfg = json.loads(raw) if raw and raw.strip() else {}
    except ValueError as exc:
        raise LoadConfigError(f"HD_LOAD_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise LoadConfigError("HD_LOAD_CONFIG must be a JSON object")
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise LoadConfigError(f"HD_LOAD_CONFIG: unknown key(s) {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}")

    personas = cfg.get("personas", DEFAULT_WEIGHTS)
    if not isinstance(personas, dict):
        raise LoadConfigError("HD_LOAD_CONFIG.personas must be an object of persona -> weight")
    try:
        check_personas(personas)
    except ValueError as e:
        raise LoadConfigError(f"HD_LOAD_CONFIG.personas: {e}") from None

    wait = cfg.get("wait", [0.5, 1.5])
    if isinstance(wait, (int, float)) and not isinstance(wait, bool):
        wait = [wait, wait]
    if (not isinstance(wait, list) or len(wait) != 2
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in wait)
            or wait[0] > wait[1]):
        raise LoadConfigError("HD_LOAD_CONFIG.wait must be [min, max] seconds (0 <= min <= max) or a number")

    def number(key, default, minimum, kind=(int, float)):
        value = cfg.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) or value < minimum:
            raise LoadConfigError(f"HD_LOAD_CONFIG.{key} must be a number >= {minimum}")
        return value

    timeout = number("request_timeout_s", 3, 0.01)
    share = number("insurance_share", 1.0, 0)
    if share > 1:
        raise LoadConfigError("HD_LOAD_CONFIG.insurance_share must be between 0 and 1")
    offline_share = number("offline_share", 0.5, 0)
    if offline_share > 1:
        raise LoadConfigError("HD_LOAD_CONFIG.offline_share must be between 0 and 1")
    departments = cfg.get("departments", [])
    if not isinstance(departments, list):
        raise LoadConfigError("HD_LOAD_CONFIG.departments must be a list")
    return {
        "personas": {name: int(personas.get(name, 0)) for name in PERSONAS},
        "wait": [float(wait[0]), float(wait[1])],
        "patient_offset": number("patient_offset", 0, 0, int),
        "patient_count": number("patient_count", POPULATION, 1, int),
        "patient_seed": _seed(cfg.get("patient_seed")),
        "workers": number("workers", 1, 1, int),
        "request_timeout_s": float(timeout),
        "departments": departments,
        "insurance_share": float(share),
        "offline_share": float(offline_share),
        "stages": cfg.get("stages"),
        "attack": _attack_config(cfg.get("attack")),
    }


def _seed(seed) -> int | None:
    """``patient_seed``: the seed of the patients' draw (population.py); absent: patients in order."""
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise LoadConfigError("HD_LOAD_CONFIG.patient_seed must be an integer")
    return seed


def _attack_config(attack) -> dict | None:
    """``attack``: {"clients": [keys], "path": "/api/...", "wait": [min, max]} or absent."""
    if attack is None:
        return None
    if not isinstance(attack, dict) or set(attack) - {"clients", "path", "wait", "start_at"}:
        raise LoadConfigError("HD_LOAD_CONFIG.attack must be {clients, path, wait, start_at}")
    start_at = attack.get("start_at")
    if start_at is not None and (not isinstance(start_at, (int, float)) or not math.isfinite(start_at)):
        raise LoadConfigError("HD_LOAD_CONFIG.attack.start_at must be a wall time (seconds)")
    clients, path = attack.get("clients"), attack.get("path", "/api/exam-reports")
    wait = attack.get("wait", [0, 0])
    if not clients or not isinstance(clients, list) or not all(isinstance(c, str) and c for c in clients):
        raise LoadConfigError("HD_LOAD_CONFIG.attack.clients must be a non-empty list of client keys")
    if not isinstance(path, str) or not path.startswith("/"):
        raise LoadConfigError("HD_LOAD_CONFIG.attack.path must be a path such as /api/exam-reports")
    if (not isinstance(wait, list) or len(wait) != 2 or not all(isinstance(w, (int, float)) for w in wait)
            or not 0 <= wait[0] <= wait[1]):
        raise LoadConfigError("HD_LOAD_CONFIG.attack.wait must be [min, max] seconds")
    return {"clients": clients, "path": path, "wait": [float(wait[0]), float(wait[1])],
            "start_at": start_at}
