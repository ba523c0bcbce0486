"""Schedules: a value as a function of training progress (0 at the first step, 1 at total_steps)."""

from __future__ import annotations

from rlkit.config import Schedule


def value(schedule: Schedule, progress: float) -> float:
    """The schedule's value at `progress` in [0, 1]: linear or exponential from start to end over `fraction`."""
    if schedule.end is None or schedule.end == schedule.start:
        return schedule.start
    t = 1.0 if schedule.fraction <= 0 else min(max(progress, 0.0) / schedule.fraction, 1.0)
    if schedule.kind == "linear":
        return schedule.start + t * (schedule.end - schedule.start)
    if schedule.start <= 0 or schedule.end <= 0:
        raise ValueError("an exponential schedule needs start > 0 and end > 0")
    return schedule.start * (schedule.end / schedule.start) ** t
