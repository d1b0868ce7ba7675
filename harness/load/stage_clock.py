"""Where a load shape stands: its stages (``HD_LOAD_CONFIG.stages``) and the clock they count on.

A drill's shape counts from the drill's T+0, the epoch the run writes to ``zero_file`` once its clock
starts, not from Locust's start a moment before; until then the first stage's users are held (at x60
that moment was a drill minute of the shape gone early). A load that is no drill's counts from its
own start. A sibling of shapes.py without Locust in it, so the harness's tests can import it.
"""
from __future__ import annotations

import time


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


class StageClock:
    def __init__(self, config: dict):
        self.stages = parse_stages(config.get("stages"))
        self.zero_file: str | None = config.get("zero_file")
        self.zero: float | None = None

    def elapsed(self, run_time: float) -> float:
        """Seconds into the shape, given Locust's seconds since its start."""
        if not self.zero_file:
            return run_time
        if self.zero is None:
            try:
                with open(self.zero_file, encoding="utf-8") as fh:
                    self.zero = float(fh.read())
            except (OSError, ValueError):
                return 0.0  # before T+0
        return max(0.0, time.time() - self.zero)

    def stage(self, run_time: float) -> tuple[int, float]:
        """(users, spawn rate) now; after the last stage, the last one held."""
        elapsed = self.elapsed(run_time)
        for end, users, rate in self.stages:
            if elapsed < end:
                return users, rate
        _, users, rate = self.stages[-1]
        return users, rate
