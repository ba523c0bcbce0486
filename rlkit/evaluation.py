"""Evaluation: play N episodes with the agent's (greedy) policy and summarize the raw returns."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

EVAL_SEED_OFFSET = 10_000  # eval episodes use seeds seed+10000, seed+10001, ... (never the training seeds)
EVAL_STEP_CAP = 10_000  # an eval episode of an env without a time limit is cut here (a policy may loop)


def evaluate(agent: Any, env: gym.Env, episodes: int, seed: int, deterministic: bool = True) -> dict[str, Any]:
    """Episode i is reset with seed `seed + i`, so a result is reproducible episode by episode."""
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
        "returns": [float(x) for x in r],
        **extra,
    }
