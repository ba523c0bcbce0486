"""Vectorized envs for deep agents: n copies stepped together, with the true final observation kept.

We use gymnasium's SyncVectorEnv in SAME_STEP autoreset mode: when an episode ends, the returned
observation is already the next episode's first one and the real last observation sits in
`infos["final_obs"]`, which off-policy agents need to bootstrap truncated episodes correctly.
Every copy reports finished episodes as `info["episode"] = {"r": raw return, "l": length}`:
envs that already do (our Atari stack, which reports full games before reward clipping) keep
theirs; the others get gymnasium's RecordEpisodeStatistics.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


def reports_episodes(env: gym.Env) -> bool:
    """True if some wrapper of `env` already puts raw-score episode statistics in info["episode"]."""
    e = env
    while True:
        if getattr(e, "reports_raw_episodes", False) or isinstance(e, gym.wrappers.RecordEpisodeStatistics):
            return True
        if not isinstance(e, gym.Wrapper):
            return False
        e = e.env


def with_episode_stats(env: gym.Env) -> gym.Env:
    return env if reports_episodes(env) else gym.wrappers.RecordEpisodeStatistics(env)


def make_vec(make_one: Callable[[], gym.Env], n_envs: int,
             asynchronous: bool = False) -> gym.vector.VectorEnv:
    """n_envs copies of `make_one()` stepped together (SAME_STEP autoreset), episode stats on each.

    asynchronous=True steps each copy in its own worker process (AsyncVectorEnv): worth it when one
    env step costs more than the inter-process round trip (Atari: ~0.9 ms per step) and cores are free."""
    fns = [lambda: with_episode_stats(make_one()) for _ in range(n_envs)]
    if asynchronous and n_envs > 1:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, context="spawn")
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def real_next_obs(obs: np.ndarray, infos: dict) -> np.ndarray:
    """The observation each env actually reached: its final one where an episode just ended."""
    mask = infos.get("_final_obs")
    if mask is None or not mask.any():
        return obs
    nxt = obs.copy()
    for i in np.flatnonzero(mask):
        nxt[i] = infos["final_obs"][i]
    return nxt


def finished_episodes(infos: dict) -> list[tuple[int, float, int]]:
    """(env index, raw return, length) of each episode that ended on this step."""
    final = infos.get("final_info")
    if not final or "episode" not in final:
        return []
    ep, mask = final["episode"], final.get("_episode", np.zeros(0, bool))
    return [(int(i), float(ep["r"][i]), int(ep["l"][i])) for i in np.flatnonzero(mask)]
