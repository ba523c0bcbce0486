"""Seeding and RNG state capture: python, numpy, torch and the env, so a resumed run replays exactly."""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy's legacy global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def global_rng_state() -> dict[str, Any]:
    """The global RNG states as plain data and tensors (loadable with weights_only=True)."""
    return {
        "python": _listify(random.getstate()),
        "numpy": _listify(np.random.get_state(legacy=False)),
        "torch": torch.get_rng_state(),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state as plain data."""
    return rng.bit_generator.state


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    bit_gen = getattr(np.random, state["bit_generator"])()
    bit_gen.state = state
    return np.random.Generator(bit_gen)


def env_state(env: gym.Env) -> dict[str, Any]:
    """What a checkpoint needs to continue an env exactly: its RNG, its own state if it exposes
    `get_state()`, and the TimeLimit step counter."""
    base = env.unwrapped
    state: dict[str, Any] = {"np_random": generator_state(base.np_random)}
    if hasattr(base, "get_state"):
        state["own"] = base.get_state()
    e = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit):
            state["elapsed_steps"] = e._elapsed_steps
        e = e.env
    return state


def set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    base = env.unwrapped
    base.np_random = generator_from_state(state["np_random"])
    if "own" in state and hasattr(base, "set_state"):
        base.set_state(state["own"])
    e = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit) and "elapsed_steps" in state:
            e._elapsed_steps = state["elapsed_steps"]
        e = e.env


def _listify(x: Any) -> Any:
    """Tuples -> lists and numpy arrays -> lists, so the state is plain data."""
    if isinstance(x, tuple | list):
        return [_listify(v) for v in x]
    if isinstance(x, dict):
        return {k: _listify(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
