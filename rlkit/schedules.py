"""Schedules: a value as a function of training progress (0 at the first step, 1 at total_steps).

A `Schedule` (rlkit.config) is constant (`clip_range=0.2`: end is null), linear or exponential from
`start` to `end` over the first `fraction` of training. Stable-Baselines3's `lin_X` (rl-baselines3-zoo)
is `Schedule(start=X, end=0.0)`; CleanRL's `anneal_lr` is the same line for the learning rate.
"""

from __future__ import annotations

from rlkit.config import Schedule


def linear(start: float, end: float, progress: float, fraction: float = 1.0) -> float:
    """start + t (end - start) with t = min(progress / fraction, 1): a straight line, then flat at `end`."""
    t = 1.0 if fraction <= 0 else min(max(progress, 0.0) / fraction, 1.0)
    return start + t * (end - start)


def value(schedule: Schedule, progress: float) -> float:
    """The value at `progress` in [0, 1]: constant, or linear or exponential from start to end over `fraction`."""
    if schedule.end is None or schedule.end == schedule.start:
        return schedule.start
    if schedule.kind == "linear":
        return linear(schedule.start, schedule.end, progress, schedule.fraction)
    t = 1.0 if schedule.fraction <= 0 else min(max(progress, 0.0) / schedule.fraction, 1.0)
    if schedule.start <= 0 or schedule.end <= 0:
        raise ValueError("an exponential schedule needs start > 0 and end > 0")
    return schedule.start * (schedule.end / schedule.start) ** t
