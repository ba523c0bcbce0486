"""Observation-space helpers for tabular agents: map a discrete observation to one table row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.errors import UserError


def discrete_index(space: gym.Space, who: str) -> tuple[int, Callable[[Any], int]]:
    """(number of states, obs -> row index) for Discrete, MultiDiscrete and Tuple-of-Discrete spaces.

    Anything continuous is a UserError naming the space, since a table cannot index it.
    """
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return int(space.n), lambda obs: int(obs) - start
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        dims = tuple(int(n) for n in space.nvec)
        starts = np.asarray(space.start)
        return int(np.prod(dims)), lambda obs: int(np.ravel_multi_index(tuple(np.asarray(obs) - starts), dims))
    if isinstance(space, gym.spaces.Tuple) and all(isinstance(s, gym.spaces.Discrete) for s in space.spaces):
        dims = tuple(int(s.n) for s in space.spaces)
        starts = tuple(int(s.start) for s in space.spaces)
        return int(np.prod(dims)), lambda obs: int(
            np.ravel_multi_index(tuple(int(o) - s for o, s in zip(obs, starts)), dims)
        )
    raise UserError(
        f"{who} is tabular and needs a discrete observation space (Discrete, MultiDiscrete or a Tuple "
        f"of Discrete), but this env observes {_short(space)}; pick a discrete env (rooms, frozenlake, "
        "cliffwalking, taxi) or a function-approximation agent"
    )


def action_count(space: gym.Space, who: str) -> int:
    """Number of actions of a Discrete action space; anything else is a UserError."""
    if isinstance(space, gym.spaces.Discrete) and int(space.start) == 0:
        return int(space.n)
    raise UserError(f"{who} needs a Discrete action space, but this env acts in {space}; pick a discrete-action env")


def _short(space: gym.Space) -> str:
    """'Box(shape=(4,), float32)' rather than the full bounds."""
    shape = getattr(space, "shape", None)
    dtype = getattr(space, "dtype", None)
    return f"{type(space).__name__}(shape={shape}, {dtype})" if shape else type(space).__name__
