"""Tabular TD control: Q-learning, SARSA and Expected SARSA (Sutton & Barto 2018, sections 6.4-6.6).

    Q(s, a) <- q_init for every state s and action a
    loop for each episode:
        S <- reset(); A <- eps-greedy(Q, S)
        loop for each step of the episode:
            take A, observe R, S', terminated, truncated
            target = R                                        if terminated
                   = R + gamma * max_a Q(S', a)               Q-learning
                   = R + gamma * Q(S', A'), A' ~ eps-greedy   SARSA
                   = R + gamma * sum_a pi(a|S') Q(S', a)      Expected SARSA
            Q(S, A) <- Q(S, A) + lr * (target - Q(S, A))
            S <- S'; A <- A' (SARSA) or eps-greedy(Q, S') (the others)
        until terminated or truncated

A truncated episode (time limit, or the rooms goal in "bootstrap" mode) still bootstraps from S'.
With an env that reports `info["action_mask"]` (rooms, taxi), exploration and the max run over the
allowed actions only, as in the notes' "random exploration among the doors". Tabular agents run one
env (the classic online setting the book's figures measure) and checkpoint between episodes, so a
resumed run replays exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from agents.base import Agent
from rlkit import schedules
from rlkit.checkpoint import Checkpointer
from rlkit.config import PositiveFloat, PositiveInt, Prob, Schedule, TrainConfig
from rlkit.logger import Logger
from rlkit.seeding import env_state, generator_from_state, generator_state, set_env_state
from rlkit.spaces import action_count, discrete_index


@dataclass(frozen=True)
class TDConfig(TrainConfig):
    """Tabular TD control (Q-learning, SARSA, Expected SARSA)."""

    gamma: Prob = 0.99
    """discount factor"""
    lr: PositiveFloat = 0.1
    """step size alpha (1 in a deterministic env gives the notes' update Q(s,a) = r + gamma max Q(s',.))"""
    epsilon: Schedule = field(default_factory=lambda: Schedule(0.1))
    """exploration rate of the eps-greedy behaviour policy (a number, or epsilon.start/end/fraction)"""
    q_init: float = 0.0
    """initial value of every table entry (optimistic values explore more)"""
    use_action_mask: bool = True
    """explore and maximize only over the actions the env allows in info['action_mask']"""
    max_episode_steps: PositiveInt | None = None
    """cut episodes at this length (a truncation, which bootstraps); null keeps the env's own limit"""
    checkpoint_every: PositiveInt = 10_000
    """steps between checkpoints (taken at the next episode boundary)"""


# --------------------------------------------------------------------------------------------------
# The math, as pure functions (tests call them with hand-made values)


def greedy(q_row: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator) -> int:
    """argmax_a Q(s, a) over allowed actions, ties broken uniformly at random."""
    q = q_row if mask is None else np.where(mask, q_row, -np.inf)
    best = np.flatnonzero(q == q.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def eps_greedy(q_row: np.ndarray, eps: float, mask: np.ndarray | None, rng: np.random.Generator) -> int:
    """With probability eps a uniformly random allowed action, else the greedy one."""
    if rng.random() < eps:
        allowed = np.arange(len(q_row)) if mask is None else np.flatnonzero(mask)
        return int(rng.choice(allowed))
    return greedy(q_row, mask, rng)


def eps_greedy_probs(q_row: np.ndarray, eps: float, mask: np.ndarray | None) -> np.ndarray:
    """pi(a|s) of the eps-greedy policy: eps/m on each allowed action, 1 - eps shared by the tied maxima."""
    allowed = np.ones(len(q_row), bool) if mask is None else mask.astype(bool)
    q = np.where(allowed, q_row, -np.inf)
    best = q == q.max()
    return allowed * eps / allowed.sum() + best * (1 - eps) / best.sum()


def max_q(q_row: np.ndarray, mask: np.ndarray | None) -> float:
    """max_a Q(s, a) over the allowed actions."""
    return float(q_row.max() if mask is None else q_row[mask.astype(bool)].max())


def q_learning_target(r: float, q_next: np.ndarray, mask_next: np.ndarray | None, gamma: float,
                      terminated: bool) -> float:
    """r + gamma * max_a Q(s', a); just r at a terminal state."""
    return r if terminated else r + gamma * max_q(q_next, mask_next)


def sarsa_target(r: float, q_next: np.ndarray, a_next: int, gamma: float, terminated: bool) -> float:
    """r + gamma * Q(s', a') with a' the action the behaviour policy will take."""
    return r if terminated else r + gamma * float(q_next[a_next])


def expected_sarsa_target(r: float, q_next: np.ndarray, pi_next: np.ndarray, gamma: float,
                          terminated: bool) -> float:
    """r + gamma * sum_a pi(a|s') Q(s', a)."""
    return r if terminated else r + gamma * float(pi_next @ q_next)


def td_update(q: np.ndarray, s: int, a: int, target: float, lr: float) -> float:
    """Q(s, a) += lr * (target - Q(s, a)) in place; returns the TD error."""
    td_error = target - q[s, a]
    q[s, a] += lr * td_error
    return float(td_error)


# --------------------------------------------------------------------------------------------------
# The agent


class TabularTD(Agent):
    """Q-table agent; subclasses pick the TD target (`rule`)."""

    Config: ClassVar[type[TDConfig]] = TDConfig
    family: ClassVar[str] = "tabular"
    rule: ClassVar[str] = "q_learning"

    def __init__(self, cfg: TDConfig, env: gym.Env):
        super().__init__(cfg, env)
        who = f"agent {self.rule}"
        self.n_states, self.index = discrete_index(env.observation_space, who)
        self.n_actions = action_count(env.action_space, who)
        self.q = np.full((self.n_states, self.n_actions), cfg.q_init, dtype=np.float64)
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.episode = 0
        self._env_state: dict[str, Any] | None = None
        self.env: gym.Env | None = env

    @classmethod
    def make_env(cls, ref, cfg: TDConfig, render_mode: str | None = None, training: bool = True) -> gym.Env:
        env = super().make_env(ref, cfg, render_mode, training)
        if cfg.max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, cfg.max_episode_steps)
        return env

    # -- acting -----------------------------------------------------------------------------------
    def _mask(self, info_or_mask: Any) -> np.ndarray | None:
        mask = info_or_mask.get("action_mask") if isinstance(info_or_mask, dict) else info_or_mask
        if mask is None or not self.cfg.use_action_mask:
            return None
        mask = np.asarray(mask).astype(bool)
        return mask if mask.any() else None

    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        masks = action_mask if action_mask is not None else [None] * len(obs)
        eps = 0.0 if deterministic else self.epsilon()
        return np.array([eps_greedy(self.q[self.index(o)], eps, self._mask(m), self.rng)
                         for o, m in zip(obs, masks)])

    def epsilon(self) -> float:
        return schedules.value(self.cfg.epsilon, self.step / self.cfg.total_steps)

    def target(self, r: float, s_next: int, mask_next: np.ndarray | None, terminated: bool,
               a_next: int | None) -> float:
        q_next, gamma = self.q[s_next], self.cfg.gamma
        if self.rule == "sarsa":
            return sarsa_target(r, q_next, a_next, gamma, terminated)
        if self.rule == "expected_sarsa":
            return expected_sarsa_target(r, q_next, eps_greedy_probs(q_next, self.epsilon(), mask_next), gamma,
                                         terminated)
        return q_learning_target(r, q_next, mask_next, gamma, terminated)

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, env: gym.Env, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        cfg, q = self.cfg, self.q
        self.env = env
        if self._env_state is not None:  # resuming: continue the env's RNG where the checkpoint left it
            set_env_state(env, self._env_state)
            self._env_state = None
        while self.step < total_steps and (cfg.total_episodes is None or self.episode < cfg.total_episodes):
            if ckpt.due(self.step) and self.step > 0:
                ckpt.save(self.step, self.state_dict())
            if ckpt.stop_requested:
                return
            obs, info = env.reset(seed=cfg.seed if self.episode == 0 else None)
            s, mask = self.index(obs), self._mask(info)
            a = eps_greedy(q[s], self.epsilon(), mask, self.rng)
            ret, length, abs_td, done = 0.0, 0, 0.0, False
            while not done:
                obs, r, terminated, truncated, info = env.step(a)
                s_next, mask_next = self.index(obs), self._mask(info)
                a_next = eps_greedy(q[s_next], self.epsilon(), mask_next, self.rng) if self.rule == "sarsa" else None
                td_error = td_update(q, s, a, self.target(float(r), s_next, mask_next, terminated, a_next), cfg.lr)
                self.step += 1
                ret, length, abs_td = ret + float(r), length + 1, abs_td + abs(td_error)
                done = terminated or truncated
                s, mask = s_next, mask_next
                if not done:
                    a = a_next if a_next is not None else eps_greedy(q[s], self.epsilon(), mask, self.rng)
            self.episode += 1
            logger.episode(self.step, ret, length, **{"charts/epsilon": self.epsilon(),
                                                       "losses/td_error_abs": abs_td / length})

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {"q": self.q.copy(), "rng": generator_state(self.rng), "step": self.step, "episode": self.episode}
        if self.env is not None:
            state["env"] = env_state(self.env)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        q = np.asarray(state["q"], dtype=np.float64)
        if q.shape != self.q.shape:
            from rlkit.errors import UserError

            raise UserError(f"checkpoint Q-table has shape {q.shape}, this env needs {self.q.shape}; "
                            "was the run's env changed?")
        self.q = q.copy()
        self.rng = generator_from_state(state["rng"])
        self.step, self.episode = int(state["step"]), int(state["episode"])
        self._env_state = state.get("env")

    # -- reporting --------------------------------------------------------------------------------
    def report(self) -> str | None:
        """The Q-table, raw and divided by its largest entry (x100), when it is small enough to read."""
        if self.n_states > 36 or self.n_actions > 12:
            return None
        lines = [f"Q-table ({self.rule}, {self.n_states} states x {self.n_actions} actions):", _table(self.q, 1)]
        top = np.abs(self.q).max()
        if top > 0:
            lines += ["Q normalized (100 * Q / max Q):", _table(100 * self.q / top, 0)]
        reference = getattr(self.env.unwrapped, "reference_q", None) if self.env is not None else None
        if callable(reference):
            ref = reference()
            same = np.array_equal(np.round(self.q), np.round(ref))
            lines.append(f"matches the notes' matrix for this goal mode (rounded): {'yes' if same else 'no'}")
        return "\n".join(lines)


def _table(m: np.ndarray, decimals: int) -> str:
    width = max(6, max(len(f"{v:.{decimals}f}") for v in m.flat) + 1)
    head = "      " + "".join(f"{a:>{width}d}" for a in range(m.shape[1]))
    rows = [f"{s:>5d} " + "".join(f"{v:>{width}.{decimals}f}" for v in row) for s, row in enumerate(m)]
    return "\n".join([head, *rows])


class QLearning(TabularTD):
    """Off-policy TD control: bootstrap from the greedy value max_a Q(s', a)."""

    rule = "q_learning"


class Sarsa(TabularTD):
    """On-policy TD control: bootstrap from Q(s', a') of the action actually taken next."""

    rule = "sarsa"


class ExpectedSarsa(TabularTD):
    """Bootstrap from the expectation of Q(s', .) under the eps-greedy policy."""

    rule = "expected_sarsa"
