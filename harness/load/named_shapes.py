"""Load shapes a scenario names (`load: {shape: morning_peak}`), in one table.

A shape is written in drill time and in shares of the scenario's `load.users`, so it is bounded by
construction: no step asks for more patients than the drill allows. Its durations are declared waits,
compressed by the time scale like any other (docs: Time), so that a window of drill time sees the same
number of patients at ×20 and at ×120. `stages()` turns a shape into the `stages` of HD_LOAD_CONFIG
(real seconds, users, spawn rate) that shapes.py plays in Locust.

The shape's clock starts with the load, a moment before T+0 (the harness starts the patients, waits
for their first records and then starts the scenario's timeline).

Standard library only: a plain table, read by the scenario's model and by the run.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """Go to `share` of the users over `ramp` drill seconds (0: at the scenario's spawn rate), then
    hold there `hold` drill seconds; the last step is held to the end of the run."""
    share: float
    ramp: float = 0.0
    hold: float = 0.0


@dataclass(frozen=True)
class NamedShape:
    title: str
    steps: tuple[Step, ...]


SHAPES: dict[str, NamedShape] = {
    "morning_peak": NamedShape(
        "早高峰 (morning peak): the night's few patients (a tenth) for 2 minutes, a 10-minute ramp "
        "as the clinics open, then the peak held",
        (Step(0.1, hold=120.0), Step(1.0, ramp=600.0))),
}


def shape_users(share: float, users: int) -> int:
    """The users a step asks for: its share of the drill's users, at least one, never more."""
    return min(users, max(1, round(share * users)))


def stages(shape: NamedShape, users: int, spawn_rate: float, time_scale: float
           ) -> list[list[float]]:
    """[[real_s, users, spawn_rate], ...] for shapes.py: a ramp is one stage whose spawn rate brings
    its users in evenly over the ramp; a jump goes at the scenario's spawn rate."""
    if time_scale <= 0 or users < 1 or spawn_rate <= 0:
        raise ValueError("time_scale, users and spawn_rate must be positive")
    out: list[list[float]] = []
    now = 0
    for step in shape.steps:
        target = shape_users(step.share, users)
        if step.ramp > 0:
            real = step.ramp / time_scale
            out.append([round(real, 6), target, round(max(abs(target - now) / real, 0.01), 6)])
        if step.hold > 0 or step is shape.steps[-1]:
            # a step held to the end still needs a stage of its own: any length does, shapes.py
            # holds the last stage's users after it
            real = (step.hold or 1.0) / time_scale
            out.append([round(real, 6), target, spawn_rate])
        now = target
    return out


def users_at(stage_list: list[list[float]], t: float) -> float:
    """How many users Locust has `t` real seconds into the load, playing `stage_list` from none:
    each stage moves towards its users at its spawn rate (Locust's spawning, as a model)."""
    count, start = 0.0, 0.0
    for i, (real, target, rate) in enumerate(stage_list):
        end = start + real if i < len(stage_list) - 1 else float("inf")  # the last one is held
        span = min(t, end) - start
        if span <= 0:
            break
        step = rate * span
        count = min(target, count + step) if target >= count else max(target, count - step)
        start = end
    return count
