"""The k-armed bandit testbed of Sutton & Barto (2018), chapter 2.

Each problem has true action values q*(a); pulling arm a pays a reward drawn around q*(a):

- ``kind="gaussian"`` (section 2.3): q*(a) ~ N(q_mean, q_std^2), R ~ N(q*(a), reward_std^2).
- ``kind="bernoulli"``: q*(a) ~ U(0, 1) is a success probability, R in {0, 1}.
- ``nonstationary=True`` (Exercise 2.5): after every pull each q*(a) takes an independent
  N(0, walk_std^2) random-walk step (clipped to [0, 1] for Bernoulli arms). With ``q_std=0`` all arms
  start equal, as in the exercise.

Two front ends share the sampling code of `Arms`:

- `BanditTestbed`: n independent problems stepped as one numpy array (the book's 2000 runs), for the
  bandit agents in `agents/bandits.py`. 2000 problems x 1000 pulls of an eps-greedy agent run in a
  few tenths of a second (bench/results/bandit_fig2_2.md).
- `BanditEnv`: one problem as a gymnasium env (registered as ``rlkit/Bandit-v0``), for any
  gymnasium-speaking agent or library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.seeding import generator_from_state, generator_state

KINDS = ("gaussian", "bernoulli")


@dataclass(frozen=True)
class Arms:
    """How q* is drawn, how rewards are drawn around it, and how it drifts; validated on construction."""

    k: int = 10
    q_mean: float = 0.0
    q_std: float = 1.0
    reward_std: float = 1.0
    kind: str = "gaussian"
    nonstationary: bool = False
    walk_std: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 2:
            raise ValueError(f"k must be an integer >= 2 (the number of arms), got {self.k!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("q_mean", "q_std", "reward_std", "walk_std"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        for name in ("q_std", "reward_std", "walk_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.nonstationary, bool | np.bool_):
            raise ValueError(f"nonstationary must be true or false, got {self.nonstationary!r}")
        if self.kind == "bernoulli" and (self.q_mean, self.q_std, self.reward_std) != (0.0, 1.0, 1.0):
            raise ValueError("q_mean, q_std and reward_std apply to gaussian arms only; bernoulli arms draw "
                             "q* ~ U(0, 1) and pay 0 or 1 (leave them at their defaults)")

    def draw_q_star(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """True action values of n fresh problems, shape (n, k)."""
        if self.kind == "bernoulli":
            return rng.random((n, self.k))
        return self.q_mean + self.q_std * rng.standard_normal((n, self.k))

    def rewards(self, rng: np.random.Generator, q_chosen: np.ndarray) -> np.ndarray:
        """One reward per entry of q_chosen = q*(A) of the pulled arms."""
        if self.kind == "bernoulli":
            return (rng.random(q_chosen.shape) < q_chosen).astype(np.float64)
        return q_chosen + self.reward_std * rng.standard_normal(q_chosen.shape)

    def walk(self, rng: np.random.Generator, q_star: np.ndarray) -> None:
        """One random-walk step of every q*(a), in place (nonstationary problems only)."""
        q_star += self.walk_std * rng.standard_normal(q_star.shape)
        if self.kind == "bernoulli":
            np.clip(q_star, 0.0, 1.0, out=q_star)


def _check_actions(actions: Any, shape: tuple[int, ...], k: int) -> np.ndarray:
    a = np.asarray(actions)
    if a.shape != shape or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"actions must be an integer array of shape {shape}, got {a.dtype} {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(f"actions must be arm indices in [0, {k}), got values in [{a.min()}, {a.max()}]")
    return a


def _load_q_star(state: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    q_star = np.array(np.asarray(state["q_star"]), dtype=np.float64)
    if q_star.shape != shape:
        raise ValueError(f"saved q* has shape {q_star.shape}, this testbed has {shape}; "
                         "was n or k changed since the state was saved?")
    return q_star


class BanditTestbed:
    """n independent k-armed bandit problems, pulled together: `step(actions) -> rewards`, all arrays."""

    def __init__(self, n: int = 2000, k: int = 10, seed: int | None = 0, q_mean: float = 0.0, q_std: float = 1.0,
                 reward_std: float = 1.0, kind: str = "gaussian", nonstationary: bool = False,
                 walk_std: float = 0.01):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (the number of problems), got {n!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or null, got {seed!r}")
        self.arms = Arms(k, q_mean, q_std, reward_std, kind, nonstationary, walk_std)
        self.n, self.k = int(n), int(k)
        self.rng = np.random.default_rng(seed)
        self.q_star = self.arms.draw_q_star(self.rng, self.n)
        self.t = 0
        self._row_start = np.arange(self.n) * self.k  # flat index of q*[i, 0]: 1-D fancy indexing is faster
        self._optimal: np.ndarray | None = None  # caches of argmax / max of q*, dropped when q* moves
        self._best: np.ndarray | None = None

    def step(self, actions: Any) -> np.ndarray:
        """Pull arm actions[i] in problem i; the rewards, shape (n,). Nonstationary q* drift afterwards."""
        a = _check_actions(actions, (self.n,), self.k)
        r = self.arms.rewards(self.rng, self.q_star.reshape(-1)[self._row_start + a])
        if self.arms.nonstationary:
            self.arms.walk(self.rng, self.q_star)
            self._optimal = self._best = None
        self.t += 1
        return r

    def optimal_actions(self) -> np.ndarray:
        """argmax_a q*(a) of each problem now, shape (n,)."""
        if self._optimal is None:
            self._optimal = self.q_star.argmax(axis=1)
        return self._optimal

    def is_optimal(self, actions: Any) -> np.ndarray:
        """Whether actions[i] is a best arm of problem i now (each of tied best arms counts), shape (n,)."""
        if self._best is None:
            self._best = self.q_star.max(axis=1)  # cached: recomputed only when q* moves
        return self.q_star.reshape(-1)[self._row_start + np.asarray(actions)] == self._best

    def close(self) -> None:
        pass

    # Exact save/restore, used by the agents' checkpoints: q* (it drifts when nonstationary) and the RNG.
    def get_state(self) -> dict[str, Any]:
        return {"q_star": self.q_star.copy(), "rng": generator_state(self.rng), "t": self.t}

    def set_state(self, state: dict[str, Any]) -> None:
        self.q_star = _load_q_star(state, (self.n, self.k))
        self.rng = generator_from_state(state["rng"])
        self.t = int(state["t"])
        self._optimal = self._best = None

    def __repr__(self) -> str:
        return f"BanditTestbed(n={self.n}, {self.arms})"


class BanditEnv(gym.Env):
    """One k-armed bandit problem: observation always 0, an episode is `episode_length` pulls (truncated).

    q* is drawn on the first reset and on every reset(seed=...); other resets keep it (the same problem
    goes on), unless ``resample_on_reset=True``. ``info["optimal_action"]`` is the best arm of the pull just
    made (of the current q* after reset).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, k: int = 10, q_mean: float = 0.0, q_std: float = 1.0, reward_std: float = 1.0,
                 kind: str = "gaussian", nonstationary: bool = False, walk_std: float = 0.01,
                 episode_length: int = 1000, resample_on_reset: bool = False, render_mode: str | None = None):
        self.arms = Arms(k, q_mean, q_std, reward_std, kind, nonstationary, walk_std)
        if isinstance(episode_length, bool) or not isinstance(episode_length, int | np.integer) or episode_length < 1:
            raise ValueError(f"episode_length must be an integer >= 1, got {episode_length!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.episode_length = int(episode_length)
        self.resample_on_reset = bool(resample_on_reset)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(1)
        self.action_space = gym.spaces.Discrete(int(k))
        self.q_star: np.ndarray | None = None  # shape (k,)
        self.t = 0
        self.last: tuple[int, float] | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.q_star is None or seed is not None or self.resample_on_reset:
            self.q_star = self.arms.draw_q_star(self.np_random, 1)[0]
        self.t, self.last = 0, None
        return 0, {"optimal_action": int(self.q_star.argmax())}

    def step(self, action: Any):
        if self.q_star is None:
            raise RuntimeError("call reset() before step()")
        a = int(_check_actions(action, (), self.arms.k))
        optimal = int(self.q_star.argmax())
        r = float(self.arms.rewards(self.np_random, self.q_star[a : a + 1])[0])
        if self.arms.nonstationary:
            self.arms.walk(self.np_random, self.q_star)
        self.t += 1
        self.last = (a, r)
        return 0, r, False, self.t >= self.episode_length, {"optimal_action": optimal}

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.q_star is None:
            return None
        best = int(self.q_star.argmax())
        lines = [f"bandit, pull {self.t}/{self.episode_length}"
                 + (f": arm {self.last[0]} paid {self.last[1]:+.3f}" if self.last else "")]
        lo, hi = float(self.q_star.min()), float(self.q_star.max())
        for a, q in enumerate(self.q_star):
            bar = "#" * int(round(20 * (q - lo) / (hi - lo))) if hi > lo else ""
            mark = ("*" if a == best else " ") + ("<" if self.last and self.last[0] == a else " ")
            lines.append(f"  arm {a:>2d} q*={q:+.3f} {bar:<20s} {mark}")
        return "\n".join(lines) + "\n"

    # Exact save/restore of the mid-episode state (the RNG is saved by rlkit.seeding.env_state).
    def get_state(self) -> dict[str, Any]:
        return {"q_star": None if self.q_star is None else self.q_star.copy(), "t": self.t}

    def set_state(self, state: dict[str, Any]) -> None:
        self.q_star = None if state["q_star"] is None else _load_q_star(state, (self.arms.k,))
        self.t = int(state["t"])
        self.last = None
