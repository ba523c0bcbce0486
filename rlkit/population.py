"""Shared pieces of population methods (evolution strategies, random search, CEM): a deterministic policy
given by a flat numpy parameter vector, an episode runner, and an evaluator that scores many parameter
vectors at once, in worker processes if asked.

Every episode is reset with an explicit seed, so the return of (theta, seed) does not depend on which
process plays it or in which order: results are identical for any number of workers. No torch in the
inner loop: a linear policy or a small MLP costs a few microseconds per step in numpy.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from rlkit.errors import UserError
from rlkit.evaluation import EVAL_STEP_CAP

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


@dataclass(frozen=True)
class ParamPolicy:
    """a = pi_theta(s) for a flat parameter vector theta: linear (no hidden layers) or a small MLP.

    Discrete actions: argmax of the outputs. Box actions: low + (tanh(out) + 1) / 2 * (high - low), i.e.
    tanh scaled to the bounds (raw outputs where a bound is infinite). Discrete observations are one-hot."""

    obs_dim: int
    act_dim: int
    discrete: bool
    hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    act_shape: tuple[int, ...] = ()
    act_dtype: str = "float32"
    one_hot_obs: bool = False

    @classmethod
    def for_spaces(cls, obs_space: gym.Space, act_space: gym.Space, hidden: Sequence[int] = (),
                   activation: str = "tanh", who: str = "this agent") -> ParamPolicy:
        """The policy for an env's spaces; a UserError for spaces it cannot act in."""
        if isinstance(obs_space, gym.spaces.Discrete):
            obs_dim, one_hot = int(obs_space.n), True
        elif isinstance(obs_space, gym.spaces.Box):
            obs_dim, one_hot = int(np.prod(obs_space.shape)), False
        else:
            raise UserError(f"{who} needs a Box or Discrete observation space, not {type(obs_space).__name__}; "
                            "flatten the observation with a gymnasium wrapper")
        common = dict(obs_dim=obs_dim, hidden=tuple(int(h) for h in hidden), activation=activation,
                      one_hot_obs=one_hot)
        if isinstance(act_space, gym.spaces.Discrete):
            return cls(act_dim=int(act_space.n), discrete=True, **common)
        if isinstance(act_space, gym.spaces.Box):
            low, high = act_space.low.astype(np.float64).ravel(), act_space.high.astype(np.float64).ravel()
            return cls(act_dim=low.size, discrete=False, low=tuple(low), high=tuple(high),
                       act_shape=tuple(act_space.shape), act_dtype=str(act_space.dtype), **common)
        raise UserError(f"{who} acts in Discrete or Box action spaces, not {type(act_space).__name__}")

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(out, in) of each layer's weight matrix; each layer also has `out` biases."""
        sizes = [self.obs_dim, *self.hidden, self.act_dim]
        return [(o, i) for i, o in zip(sizes, sizes[1:])]

    @property
    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.shapes)

    def layers(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """theta split into [(W, b), ...] views, layer by layer (W row-major, then b)."""
        if theta.shape != (self.n_params,):
            raise ValueError(f"theta has shape {theta.shape}, this policy has {self.n_params} parameters")
        out, k = [], 0
        for o, i in self.shapes:
            w = theta[k:k + o * i].reshape(o, i)
            b = theta[k + o * i:k + o * i + o]
            out.append((w, b))
            k += o * i + o
        return out

    def features(self, obs: Any) -> np.ndarray:
        """A (batch, obs_dim) float array from a batch of observations."""
        obs = np.asarray(obs)
        if self.one_hot_obs:
            return np.eye(self.obs_dim)[obs.astype(np.int64).reshape(-1)]
        return obs.reshape(len(obs), self.obs_dim).astype(np.float64)

    def outputs(self, theta: np.ndarray, obs: Any) -> np.ndarray:
        """The network's raw outputs (batch, act_dim): x -> act(W1 x + b1) -> ... -> W_L h + b_L."""
        h = self.features(obs)
        layers = self.layers(theta)
        act = ACTIVATIONS[self.activation]
        for w, b in layers[:-1]:
            h = act(h @ w.T + b)
        w, b = layers[-1]
        return h @ w.T + b

    def act(self, theta: np.ndarray, obs: Any) -> np.ndarray:
        """Actions for a batch of observations: ints (Discrete) or arrays within the Box bounds."""
        z = self.outputs(theta, obs)
        if self.discrete:
            return z.argmax(axis=1)
        low, high = np.asarray(self.low), np.asarray(self.high)
        finite = np.isfinite(low) & np.isfinite(high)
        a = np.where(finite, np.where(finite, low, 0.0) + (np.tanh(z) + 1.0) * 0.5 * np.where(finite, high - low, 0.0),
                     z)
        return a.reshape(len(z), *self.act_shape).astype(self.act_dtype)

    def init(self, rng: np.random.Generator, std: float) -> np.ndarray:
        """Initial parameters: zeros (std 0) or N(0, std^2) weights with zero biases."""
        theta = np.zeros(self.n_params)
        if std > 0:
            for w, _ in self.layers(theta):
                w[...] = rng.normal(0.0, std, size=w.shape)
        return theta


def run_episode(env: gym.Env, policy: ParamPolicy, theta: np.ndarray, seed: int,
                max_steps: int = EVAL_STEP_CAP) -> tuple[float, int]:
    """(raw return, length) of one episode of pi_theta from reset(seed=seed), cut at max_steps."""
    obs, _ = env.reset(seed=int(seed))
    ret, length = 0.0, 0
    while True:
        action = policy.act(theta, obs[None] if isinstance(obs, np.ndarray) else [obs])[0]
        obs, r, terminated, truncated, _ = env.step(action)
        ret, length = ret + float(r), length + 1
        if terminated or truncated or length >= max_steps:
            return ret, length


def make_env(name: str, kwargs: dict[str, Any], training: bool = True, max_episode_steps: int | None = None,
             render_mode: str | None = None) -> gym.Env:
    """One env from its name as typed (alias, gymnasium id, module:Class, file.py:Class), as workers build it."""
    env = envs.make(envs.resolve(name, kwargs), render_mode=render_mode, training=training)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env


# --------------------------------------------------------------------------------------------------
# worker processes: each builds its own env once, then plays chunks of (theta, seeds) jobs

_WORKER_ENV: gym.Env | None = None


def _init_worker(name: str, kwargs: dict[str, Any], training: bool, max_episode_steps: int | None) -> None:
    global _WORKER_ENV
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it checkpoints, then stops)
    _WORKER_ENV = make_env(name, kwargs, training, max_episode_steps)


def _play(env: gym.Env, policy: ParamPolicy, thetas: np.ndarray, seeds: np.ndarray,
          max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    returns = np.zeros(seeds.shape)
    lengths = np.zeros(seeds.shape, dtype=np.int64)
    for i, theta in enumerate(thetas):
        for j, seed in enumerate(seeds[i]):
            returns[i, j], lengths[i, j] = run_episode(env, policy, theta, seed, max_steps)
    return returns, lengths


def _play_in_worker(policy: ParamPolicy, thetas: np.ndarray, seeds: np.ndarray,
                    max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    return _play(_WORKER_ENV, policy, thetas, seeds, max_steps)


class Evaluator:
    """Scores parameter vectors by the raw returns of seeded episodes, in this process or in `workers` others.

    It stands in for the training env of population agents: it has the env's spaces, and a pool of worker
    processes (spawned, each with its own env) starts on the first call with workers > 1."""

    def __init__(self, name: str, kwargs: dict[str, Any] | None = None, workers: int = 1, training: bool = True,
                 max_episode_steps: int | None = None):
        self.args = (name, dict(kwargs or {}), training, max_episode_steps)
        self.workers = workers
        self.env = make_env(*self.args)  # also what a user mistake (bad name or kwargs) surfaces from
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self._pool: cf.ProcessPoolExecutor | None = None

    def evaluate(self, policy: ParamPolicy, thetas: np.ndarray, seeds: np.ndarray,
                 max_steps: int = EVAL_STEP_CAP) -> tuple[np.ndarray, np.ndarray]:
        """(returns, lengths), each (n, k): candidate i plays one episode from each seed of row i of `seeds`

        (a (k,) `seeds` is shared by every candidate: common random numbers)."""
        thetas = np.asarray(thetas, dtype=np.float64)
        seeds = np.broadcast_to(np.asarray(seeds, dtype=np.int64), (len(thetas), np.shape(seeds)[-1]))
        if self.workers <= 1 or len(thetas) <= 1:
            return _play(self.env, policy, thetas, seeds, max_steps)
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                                initializer=_init_worker, initargs=self.args)
        size = math.ceil(len(thetas) / self.workers)
        chunks = [slice(k, k + size) for k in range(0, len(thetas), size)]
        results = list(self._pool.map(_play_in_worker, [policy] * len(chunks), [thetas[c] for c in chunks],
                                      [seeds[c] for c in chunks], [max_steps] * len(chunks)))
        return np.concatenate([r for r, _ in results]), np.concatenate([n for _, n in results])

    def close(self) -> None:
        """Stop the worker processes (a later evaluate starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
