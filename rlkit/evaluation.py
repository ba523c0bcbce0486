"""Evaluation: play N episodes with the agent's (greedy) policy and summarize the raw returns.

One protocol for every policy, ours or a Stable-Baselines3 model (rlkit/sb3_models.py): episode i is
reset with seed `seed + i` on the evaluation env (Atari: whole games, no reward clipping), the return
is the raw game score, and `eval.json` carries the same keys whatever the library (`record`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch

EVAL_SEED_OFFSET = 10_000  # eval episodes use seeds seed+10000, seed+10001, ... (never the training seeds)
EVAL_STEP_CAP = 10_000  # an eval episode of an env without a time limit is cut here (a policy may loop)


def evaluate(agent: Any, env: gym.Env, episodes: int, seed: int, deterministic: bool = True) -> dict[str, Any]:
    """Episode i is reset with seed `seed + i`, so a result is reproducible episode by episode.

    `agent` is anything with the Agent contract's act(obs_batch, deterministic, action_mask)."""
    returns, lengths, cut = [], [], 0
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        ret, length, done = 0.0, 0, False
        while not done:
            mask = info.get("action_mask")
            action = agent.act([obs], deterministic=deterministic, action_mask=None if mask is None else [mask])[0]
            obs, r, terminated, truncated, info = env.step(action)
            ret, length = ret + float(r), length + 1
            done = terminated or truncated
            if not done and length >= EVAL_STEP_CAP:
                cut, done = cut + 1, True
        returns.append(ret)
        lengths.append(length)
    return summarize(returns, lengths, cut_episodes=cut, seed=seed, deterministic=deterministic)


def summarize(returns: list[float], lengths: list[int], **extra: Any) -> dict[str, Any]:
    """The statistics `eval.json` and `summary.json` carry."""
    r, n = np.asarray(returns, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
    return {
        "episodes": len(r),
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "return_min": float(r.min()),
        "return_max": float(r.max()),
        "length_mean": float(n.mean()),
        "length_std": float(n.std()),
        "length_min": int(n.min()),
        "length_max": int(n.max()),
        "returns": [float(x) for x in r],
        "lengths": [int(x) for x in n],
        **extra,
    }


# the keys of every eval.json, in order (agents may add their own after them, e.g. a bandit's optimal_pct)
RECORD_KEYS = ("library", "agent", "env", "env_kwargs", "source", "checkpoint", "checkpoint_step", "episodes",
               "deterministic", "seed", "return_mean", "return_std", "return_min", "return_max", "length_mean",
               "length_std", "length_min", "length_max", "cut_episodes", "videos", "returns", "lengths")


def record(stats: dict[str, Any], *, library: str, agent: str, env: str, env_kwargs: dict[str, Any], source: str,
           checkpoint: str, checkpoint_step: int | None, videos: list[dict[str, Any]]) -> dict[str, Any]:
    """An eval.json record: who was evaluated (library, agent, env, checkpoint) and the statistics."""
    out = {"library": library, "agent": agent, "env": env, "env_kwargs": env_kwargs, "source": source,
           "checkpoint": checkpoint, "checkpoint_step": checkpoint_step, "cut_episodes": 0, "videos": videos,
           **stats}
    return {**{k: out[k] for k in RECORD_KEYS}, **{k: v for k, v in out.items() if k not in RECORD_KEYS}}


@contextlib.contextmanager
def rngs_preserved(agent: Any) -> Iterator[None]:
    """Evaluate without moving any random stream training uses: the agent's numpy and torch generators
    (its attributes) and the global python/numpy/torch RNGs come back as they were, so a run with
    eval_every learns exactly what it would without."""
    from rlkit.seeding import global_rng_state, set_global_rng_state

    saved_global = global_rng_state()
    gens = [(name, g) for name, g in vars(agent).items() if isinstance(g, np.random.Generator | torch.Generator)]
    saved = [(g, g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()) for _, g in gens]
    try:
        yield
    finally:
        set_global_rng_state(saved_global)
        for (name, _), (g, state) in zip(gens, saved):
            if isinstance(g, np.random.Generator):
                g.bit_generator.state = state
            else:
                g.set_state(state)
            setattr(agent, name, g)  # evaluation may have replaced the attribute itself
