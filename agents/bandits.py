"""Bandit agents of Sutton & Barto (2018), chapter 2, learning n independent problems at once.

A simple bandit algorithm (S&B section 2.4), eps-greedy:
    Q(a) <- q_init, N(a) <- 0, for a = 1..k
    loop:
        A <- argmax_a Q(a) (ties broken randomly)  with probability 1 - eps
             a uniformly random arm               with probability eps
        R <- bandit(A)
        N(A) <- N(A) + 1
        Q(A) <- Q(A) + step * [R - Q(A)],   step = 1/N(A) (sample average, 2.3) or a constant alpha (2.5)

UCB (section 2.7) chooses A <- argmax_a [Q(a) + c sqrt(ln t / N(a))], an untried arm (N(a) = 0) first.

Gradient bandit (section 2.8): pi = softmax(H), A ~ pi, and after the reward (eq. 2.12)
    H(a) <- H(a) + alpha (R - Rbar) (1{a = A} - pi(a))   for every arm a,
with Rbar the average of the rewards before this one (Rbar_1 = R_1), or 0 without a baseline.

Every array here has one row per problem: the agent's `learn` pulls once in each of the testbed's
n problems per step (the book's figures average 2000 runs), and logs the mean reward and the percentage
of problems that pulled their best arm, the two curves of Figures 2.2-2.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np

import envs
from agents.base import Agent
from envs.bandit import BanditTestbed
from rlkit.checkpoint import Checkpointer
from rlkit.config import NonNegFloat, PositiveFloat, PositiveInt, Prob, Range, TrainConfig
from rlkit.errors import UserError
from rlkit.evaluation import summarize
from rlkit.logger import Logger
from rlkit.seeding import generator_from_state, generator_state

StepSize = Annotated[float, Range(0.0, 1.0, lo_open=True)]

# The agent's RNG is a child stream of the seed, independent of the testbed's default_rng(seed).
AGENT_STREAM = 1
MAX_LOG_ROWS = 10_000


@dataclass(frozen=True)
class BanditConfig(TrainConfig):
    """Keys every bandit agent has: the book's testbed runs, 2000 problems x 1000 pulls."""

    total_steps: PositiveInt = 1000
    """pulls per problem (each step pulls once in every problem)"""
    n_problems: PositiveInt = 2000
    """independent bandit problems learned at once (the book averages 2000 runs)"""
    eval_episodes: PositiveInt = 2000
    """greedy pulls of the final evaluation, one per problem in turn (problem i % n_problems)"""


@dataclass(frozen=True)
class EpsGreedyConfig(BanditConfig):
    """Epsilon-greedy action values (S&B 2.2-2.6)."""

    epsilon: Prob = 0.1
    """probability of pulling a uniformly random arm instead of the greedy one (0: greedy)"""
    step_size: StepSize | None = None
    """constant step size alpha of the value update; null: sample average 1/N(a)"""
    q_init: float = 0.0
    """initial estimate Q_1(a) of every arm (5 with step_size 0.1 and epsilon 0: optimistic, Figure 2.3)"""


@dataclass(frozen=True)
class UCBConfig(BanditConfig):
    """Upper-confidence-bound action selection (S&B 2.7)."""

    c: NonNegFloat = 2.0
    """exploration weight c of the bonus c sqrt(ln t / N(a)) (Figure 2.4 uses 2)"""
    step_size: StepSize | None = None
    """constant step size alpha of the value update; null: sample average 1/N(a)"""


@dataclass(frozen=True)
class GradientBanditConfig(BanditConfig):
    """Softmax preferences learned by stochastic gradient ascent (S&B 2.8)."""

    alpha: PositiveFloat = 0.1
    """step size of the preference update (Figure 2.5 uses 0.1 and 0.4)"""
    baseline: bool = True
    """subtract the running average reward from each reward (false: baseline 0)"""


# --------------------------------------------------------------------------------------------------
# The math, as pure functions of (n, k) arrays, one row per problem (tests call them with hand-made values)


def _row_max(x: np.ndarray) -> np.ndarray:
    # numpy reduces slowly along a short last axis (2000 x 10: ~5x slower); reduce a transposed copy
    return np.ascontiguousarray(x.T).max(axis=0)


def _flat(a: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the entries (i, a[i]) of an (n, k) array (1-D fancy indexing is the fast kind)."""
    return np.arange(len(a)) * k + a


def greedy(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """argmax_a q[i, a] for each row i, ties broken uniformly at random."""
    ties = q == _row_max(q)[:, None]
    a = ties.argmax(axis=1)
    if np.count_nonzero(ties) > len(a):  # random numbers only for rows with ties (rare once Q is estimated)
        multi = np.flatnonzero(ties.sum(axis=1) > 1)
        noise = np.where(ties[multi], rng.random((multi.size, q.shape[1])), -1.0)
        a[multi] = noise.argmax(axis=1)
    return a


def eps_greedy_actions(q: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """The greedy arm with probability 1 - eps, else a uniformly random arm (which may be the greedy one)."""
    a = greedy(q, rng)
    if eps > 0:
        n, k = q.shape
        explore = rng.random(n) < eps
        a = np.where(explore, rng.integers(k, size=n), a)
    return a


def eps_greedy_probs(q: np.ndarray, eps: float) -> np.ndarray:
    """pi(a) of eps-greedy: eps/k on every arm, plus 1 - eps shared by the tied greedy arms (SEEDS.md)."""
    ties = q == q.max(axis=1, keepdims=True)
    return eps / q.shape[1] + (1 - eps) * ties / ties.sum(axis=1, keepdims=True)


def ucb_actions(q: np.ndarray, n_pulls: np.ndarray, t: int, c: float,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """argmax_a [Q(a) + c sqrt(ln t / N(a))] (S&B eq. 2.10), t = 1, 2, ... the current step.

    An arm with N(a) = 0 counts as maximizing, so every arm is tried once first. Ties go to the first
    arm, or to a uniformly random one when `rng` is given.
    """
    bonus = c * np.sqrt(np.log(t) / np.maximum(n_pulls, 1))
    u = np.where(n_pulls == 0, np.inf, q + bonus)
    return u.argmax(axis=1) if rng is None else greedy(u, rng)


def softmax(h: np.ndarray) -> np.ndarray:
    """pi(a) = exp(H(a)) / sum_b exp(H(b)) along each row (S&B eq. 2.11)."""
    z = np.exp(h - _row_max(h)[:, None])
    return z / (z @ np.ones(h.shape[1]))[:, None]


def sample_categorical(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One arm per row, drawn from the row's probabilities pi (inverse CDF)."""
    k = pi.shape[1]
    cdf = pi @ np.triu(np.ones((k, k)))  # row-wise cumsum, as one small matrix product (faster here)
    cdf[:, -1] = 1.0  # rounding must not leave u above the last bin
    return (rng.random((pi.shape[0], 1)) < cdf).argmax(axis=1)


def gradient_update(h: np.ndarray, pi: np.ndarray, a: np.ndarray, r: np.ndarray, baseline: Any,
                    alpha: float) -> np.ndarray:
    """New preferences H + alpha (R - baseline) (1{a = A} - pi) (S&B eq. 2.12), one row per problem."""
    step = alpha * np.broadcast_to(np.asarray(r, dtype=np.float64) - baseline, (len(a),))
    h_new = h - step[:, None] * pi
    h_new.reshape(-1)[_flat(a, h.shape[1])] += step
    return h_new


def sample_average_update(q: np.ndarray, n_pulls: np.ndarray, a: np.ndarray, r: np.ndarray,
                          step_size: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """New (Q, N) after pulling arm a[i] with reward r[i] in each problem i.

    N(A) += 1; Q(A) += step (R - Q(A)) with step = 1/N(A), the incremental sample average (S&B eq. 2.3),
    or a constant step_size, the exponential recency-weighted average of nonstationary problems (2.5).
    """
    idx = _flat(a, q.shape[1])
    n_new, q_new = n_pulls.copy(), q.copy()
    n_flat, q_flat = n_new.reshape(-1), q_new.reshape(-1)
    n_flat[idx] += 1
    step = 1.0 / n_flat[idx] if step_size is None else step_size
    q_flat[idx] += step * (r - q_flat[idx])
    return q_new, n_new


# --------------------------------------------------------------------------------------------------
# The agents


class BanditAgent(Agent):
    """Shared loop of the bandit agents: pull in every problem, update, log the two curves of the book."""

    Config: ClassVar[type[BanditConfig]] = BanditConfig
    family: ClassVar[str] = "bandit"
    name: ClassVar[str] = "bandit"
    arrays: ClassVar[tuple[str, ...]] = ()  # the learned arrays, saved and restored by name

    def __init__(self, cfg: BanditConfig, env: BanditTestbed):
        super().__init__(cfg, env)
        if not isinstance(env, BanditTestbed):
            raise UserError(f"agent {self.name} needs the batch bandit testbed (env=bandit), "
                            f"got {type(env).__name__}")
        self.env = env
        self.n, self.k = env.n, env.k
        self.rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(AGENT_STREAM,)))
        self.step = 0
        self.block = [0.0, 0.0, 0]  # reward sum, optimal-% sum, steps since the last metrics row
        self.tail = [0.0, 0.0, 0, 0]  # the same over the last 10% of the steps (and where they start), for report()

    @classmethod
    def make_env(cls, ref: envs.EnvRef, cfg: BanditConfig, render_mode: str | None = None,
                 training: bool = True) -> BanditTestbed:
        return envs.make_batch(ref, n=cfg.n_problems, seed=cfg.seed)

    # -- subclasses: acting and updating ----------------------------------------------------------
    def select(self, rng: np.random.Generator, explore: bool) -> np.ndarray:
        """One arm per problem: the behaviour policy when `explore`, else the greedy arm."""
        raise NotImplementedError

    def update(self, a: np.ndarray, r: np.ndarray) -> None:
        """Learn from the rewards r of arms a; self.step still counts the steps before this one."""
        raise NotImplementedError

    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        """An arm for each of the n problems (the observation carries nothing in a bandit)."""
        return self.select(self.rng, explore=not deterministic)

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, env: BanditTestbed, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        self.env = env
        every = max(1, total_steps // MAX_LOG_ROWS)  # at most ~10k metric rows; each row averages its block
        tail_from = total_steps - max(1, total_steps // 10)
        if self.tail[3] != tail_from:  # a new total_steps: a new last 10%
            self.tail = [0.0, 0.0, 0, tail_from]
        while self.step < total_steps:
            if ckpt.due(self.step):
                ckpt.save(self.step, self.state_dict())
            if ckpt.stop_requested:
                return
            a = self.select(self.rng, explore=True)
            hit = env.is_optimal(a)  # before the pull: a nonstationary q* moves with it
            r = env.step(a)
            self.update(a, r)
            self.step += 1
            mean_r, optimal_pct = float(r.mean()), 100.0 * float(hit.mean())
            _add(self.block, mean_r, optimal_pct)
            if self.step > tail_from:
                _add(self.tail, mean_r, optimal_pct)
            if self.block[2] >= every or self.step == total_steps:
                s, o, m = self.block
                logger.log(self.step, {"charts/reward": s / m, "charts/optimal_pct": o / m})
                self.block = [0.0, 0.0, 0]

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in self.arrays}
        state.update(rng=generator_state(self.rng), step=self.step, block=list(self.block),
                     tail=list(self.tail), env=self.env.get_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the agent and, into the env it was built with, the testbed (q* and its RNG)."""
        for name in self.arrays:
            old = getattr(self, name)
            new = np.array(np.asarray(state[name]), dtype=old.dtype)
            if new.shape != old.shape:
                raise UserError(f"checkpoint '{name}' has shape {new.shape}, this testbed needs {old.shape}; "
                                "was n_problems or k changed?")
            setattr(self, name, new)
        self.rng = generator_from_state(state["rng"])
        self.step = int(state["step"])
        self.block = [float(state["block"][0]), float(state["block"][1]), int(state["block"][2])]
        self.tail = [float(state["tail"][0]), float(state["tail"][1]), int(state["tail"][2]), int(state["tail"][3])]
        try:
            self.env.set_state(state["env"])
        except ValueError as e:
            raise UserError(f"checkpoint does not fit this testbed: {e}") from None

    # -- evaluation and report --------------------------------------------------------------------
    def evaluate(self, env: Any, episodes: int, seed: int, deterministic: bool = True) -> dict[str, Any]:
        """Episode i is one greedy pull in problem i % n; rewards drawn with default_rng(seed).

        The problems are always the agent's own (self.env, whose q* load_state_dict restored); `env`
        is taken for the Agent contract. `optimal_pct` and `expected_reward` (mean q* of the chosen
        arms) cover all n problems.
        """
        bed = self.env
        rng = np.random.default_rng(seed)
        arms = self.select(rng, explore=not deterministic)
        i = np.arange(episodes) % bed.n
        returns = bed.arms.rewards(rng, bed.q_star[i, arms[i]])
        return summarize(list(returns), [1] * episodes, seed=seed, deterministic=deterministic,
                         optimal_pct=100.0 * float(bed.is_optimal(arms).mean()),
                         expected_reward=float(bed.q_star[np.arange(bed.n), arms].mean()))

    def report(self) -> str | None:
        s, o, m, _ = self.tail
        if m == 0:
            return None
        return (f"{self.name}: average reward {s / m:.3f}, optimal arm {o / m:.1f}% over the last {m} steps "
                f"(to step {self.step}, {self.n} problems)")


def _add(acc: list, reward: float, optimal_pct: float) -> None:
    acc[0], acc[1], acc[2] = acc[0] + reward, acc[1] + optimal_pct, acc[2] + 1


class EpsGreedy(BanditAgent):
    """Sample-average (or constant step) action values, eps-greedy choice, optional optimistic start."""

    Config = EpsGreedyConfig
    name = "eps_greedy"
    arrays = ("q", "n_pulls")

    def __init__(self, cfg: EpsGreedyConfig, env: BanditTestbed):
        super().__init__(cfg, env)
        self.q = np.full((self.n, self.k), cfg.q_init, dtype=np.float64)
        self.n_pulls = np.zeros((self.n, self.k), dtype=np.int64)

    def select(self, rng: np.random.Generator, explore: bool) -> np.ndarray:
        return eps_greedy_actions(self.q, self.cfg.epsilon if explore else 0.0, rng)

    def update(self, a: np.ndarray, r: np.ndarray) -> None:
        self.q, self.n_pulls = sample_average_update(self.q, self.n_pulls, a, r, self.cfg.step_size)


class UCB(BanditAgent):
    """Action values with an upper-confidence bonus c sqrt(ln t / N(a)); untried arms first."""

    Config = UCBConfig
    name = "ucb"
    arrays = ("q", "n_pulls")

    def __init__(self, cfg: UCBConfig, env: BanditTestbed):
        super().__init__(cfg, env)
        self.q = np.zeros((self.n, self.k), dtype=np.float64)
        self.n_pulls = np.zeros((self.n, self.k), dtype=np.int64)

    def select(self, rng: np.random.Generator, explore: bool) -> np.ndarray:
        if not explore:
            return greedy(self.q, rng)
        return ucb_actions(self.q, self.n_pulls, self.step + 1, self.cfg.c, rng)

    def update(self, a: np.ndarray, r: np.ndarray) -> None:
        self.q, self.n_pulls = sample_average_update(self.q, self.n_pulls, a, r, self.cfg.step_size)


class GradientBandit(BanditAgent):
    """Softmax over preferences H, updated by stochastic gradient ascent on the expected reward."""

    Config = GradientBanditConfig
    name = "gradient_bandit"
    arrays = ("h", "rbar")

    def __init__(self, cfg: GradientBanditConfig, env: BanditTestbed):
        super().__init__(cfg, env)
        self.h = np.zeros((self.n, self.k), dtype=np.float64)
        self.rbar = np.zeros(self.n, dtype=np.float64)  # average reward of the steps so far

    def select(self, rng: np.random.Generator, explore: bool) -> np.ndarray:
        return sample_categorical(softmax(self.h), rng) if explore else greedy(self.h, rng)

    def update(self, a: np.ndarray, r: np.ndarray) -> None:
        # Rbar_t averages the rewards before step t, with Rbar_1 = R_1 (S&B 2nd ed., 2020 printing; the
        # first printing included R_t). It must not depend on A_t for the update to stay unbiased.
        baseline = 0.0
        if self.cfg.baseline:
            baseline = r if self.step == 0 else self.rbar
        self.h = gradient_update(self.h, softmax(self.h), a, r, baseline, self.cfg.alpha)
        self.rbar = self.rbar + (r - self.rbar) / (self.step + 1)
