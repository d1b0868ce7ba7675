"""Load profiles over time, as a Locust LoadTestShape.

Loaded next to the locustfile (``-f locustfile.py,shapes.py``) only when ``HD_LOAD_CONFIG`` has
``stages``: a list of ``[duration_s, users, spawn_rate]``, run one after the other. After the last
stage its user count is held (steady state) until the run is stopped or ``--run-time`` is reached.
Example, a ramp to 20 patients and a surge to 60::

    {"stages": [[30, 20, 2], [60, 60, 10]]}

Without ``stages`` no shape is loaded and the load is the steady ``-u`` / ``-r`` of the command line.

A drill's shape counts from its T+0 (``zero_file``, stage_clock.py). Like the locustfile, this
module imports nothing from the harness.
"""
from __future__ import annotations

import json
import os
import sys

from locust import LoadTestShape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling, wherever Locust runs
from stage_clock import StageClock  # noqa: E402


class StagesShape(LoadTestShape):
    """Stages of the configured profile, then hold the last one; honours ``--run-time``."""

    use_common_options = True

    def __init__(self):
        super().__init__()
        self.clock = StageClock(json.loads(os.environ.get("HD_LOAD_CONFIG") or "{}"))

    def tick(self):
        run_time = self.get_run_time()
        limit = getattr(getattr(self.runner.environment, "parsed_options", None), "run_time", None)
        if limit and run_time >= limit:
            return None
        return self.clock.stage(run_time)
