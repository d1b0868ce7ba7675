"""Load profiles over time, as a Locust LoadTestShape.

Loaded next to the locustfile (``-f locustfile.py,shapes.py``) only when ``HD_LOAD_CONFIG`` has
``stages``: a list of ``[duration_s, users, spawn_rate]``, run one after the other. After the last
stage its user count is held (steady state) until the run is stopped or ``--run-time`` is reached.
Example, a ramp to 20 patients and a surge to 60::

    {"stages": [[30, 20, 2], [60, 60, 10]]}

Without ``stages`` no shape is loaded and the load is the steady ``-u`` / ``-r`` of the command line.
Like the locustfile, this module imports nothing from the harness.
"""
from __future__ import annotations

import json
import os

from locust import LoadTestShape


def parse_stages(raw) -> list[tuple[float, int, float]]:
    """Check a ``stages`` value; returns [(end_s, users, spawn_rate)] with cumulative end times."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("HD_LOAD_CONFIG.stages must be a non-empty list of [duration_s, users, spawn_rate]")
    out, end = [], 0.0
    for i, stage in enumerate(raw):
        if (not isinstance(stage, list) or len(stage) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stage)
                or stage[0] <= 0 or stage[1] < 0 or stage[2] <= 0 or int(stage[1]) != stage[1]):
            raise ValueError(f"HD_LOAD_CONFIG.stages[{i}] must be [duration_s > 0, users >= 0, spawn_rate > 0]")
        end += float(stage[0])
        out.append((end, int(stage[1]), float(stage[2])))
    return out


class StagesShape(LoadTestShape):
    """Stages of the configured profile, then hold the last one; honours ``--run-time``."""

    use_common_options = True

    def __init__(self):
        super().__init__()
        raw = json.loads(os.environ.get("HD_LOAD_CONFIG") or "{}").get("stages")
        self.stages = parse_stages(raw)

    def tick(self):
        run_time = self.get_run_time()
        limit = getattr(getattr(self.runner.environment, "parsed_options", None), "run_time", None)
        if limit and run_time >= limit:
            return None
        for end, users, rate in self.stages:
            if run_time < end:
                return users, rate
        _, users, rate = self.stages[-1]
        return users, rate
