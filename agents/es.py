"""Evolution strategies on a numpy policy: hill climbing (SEEDS.md) and OpenAI-ES (Salimans et al. 2017).

    pi_theta: linear by default (argmax for Discrete actions, tanh scaled to the bounds for Box), or a small MLP
    method=hill_climb (SEEDS.md "Hill climbing"):
        champ theta <- 0
        each trial:
            draw env seeds s_1..s_k                                  (k = episodes_per_eval)
            mutant <- champ + sigma * N(0, I)                         (sigma fixed)
            F_champ, F_mutant <- mean raw return on the same episodes s_1..s_k
            if F_mutant > F_champ: champ <- (1 - alpha) champ + alpha mutant
    method=openai_es (Salimans et al. 2017, Algorithm 1 with antithetic sampling and fitness shaping):
        theta <- 0; Adam moments m, v <- 0
        each generation:
            eps_1..eps_n ~ N(0, I)                                    (n = population / 2 pairs)
            draw env seeds s_1..s_k, shared by the whole population
            F_i^+, F_i^- <- mean raw return of theta + sigma eps_i and of theta - sigma eps_i
            w <- centered_ranks(F^+, F^-)                             (in [-0.5, 0.5]; ties share a rank)
            g <- 1 / (2 n sigma) sum_i (w_i^+ - w_i^-) eps_i
            theta <- adam_ascent(theta, g - weight_decay * theta)

Every candidate of an iteration plays the same env seeds (common random numbers: a mutant beats the
champion on the episode, not on luck of the initial state). The population is scored by
rlkit.population.Evaluator, in `workers` processes; results do not depend on the worker count. Each
episode's raw return is logged; budgets (total_steps, total_episodes) are checked between iterations,
so a run may overshoot them by one iteration. The policy is deterministic: `act` ignores `deterministic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

import envs
from agents.base import Agent
from rlkit.checkpoint import Checkpointer
from rlkit.config import NonNegFloat, PositiveFloat, PositiveInt, Prob, TrainConfig
from rlkit.errors import UserError
from rlkit.logger import Logger
from rlkit.population import Evaluator, ParamPolicy, make_env
from rlkit.seeding import generator_from_state, generator_state


@dataclass(frozen=True)
class ESConfig(TrainConfig):
    """Hill climbing and OpenAI-ES (defaults: SEEDS.md's hill climber with a linear policy)."""

    method: Literal["hill_climb", "openai_es"] = "hill_climb"
    """hill_climb: champion vs one mutant (SEEDS.md); openai_es: antithetic population + Adam (Salimans 2017)"""
    sigma: PositiveFloat = 0.1
    """std of the Gaussian parameter noise (fixed)"""
    alpha: Prob = 0.5
    """hill_climb: blend toward a better mutant, champ <- (1 - alpha) champ + alpha mutant"""
    population: PositiveInt = 10
    """openai_es: perturbed policies per generation, an even number (population / 2 antithetic pairs)"""
    lr: PositiveFloat = 0.05
    """openai_es: Adam step size"""
    beta1: Prob = 0.9
    """openai_es: Adam first-moment decay"""
    beta2: Prob = 0.999
    """openai_es: Adam second-moment decay"""
    weight_decay: NonNegFloat = 0.0
    """openai_es: L2 coefficient, ascent on g - weight_decay * theta (Salimans et al. use 0.005)"""
    episodes_per_eval: PositiveInt = 1
    """episodes each candidate plays per iteration (the same env seeds for every candidate)"""
    hidden: list[int] = field(default_factory=list)
    """hidden layer sizes of the policy; [] is a linear policy"""
    activation: Literal["tanh", "relu"] = "tanh"
    """activation of the hidden layers"""
    init_std: NonNegFloat = 0.0
    """std of the initial weights (0: theta = 0, as in SEEDS.md)"""
    workers: PositiveInt = 1
    """processes that play the population's episodes (results do not depend on it)"""
    max_episode_steps: PositiveInt | None = None
    """cut episodes at this length (null: the env's own time limit, else 10,000 steps)"""
    checkpoint_every: PositiveInt = 20_000
    """env steps between checkpoints (taken between iterations)"""


# --------------------------------------------------------------------------------------------------
# The update rules, as pure functions (tests call them with hand-made numbers)


def hill_climb_update(champ: np.ndarray, mutant: np.ndarray, f_champ: float, f_mutant: float,
                      alpha: float) -> np.ndarray:
    """(1 - alpha) champ + alpha mutant if the mutant did strictly better, else champ unchanged."""
    return (1.0 - alpha) * champ + alpha * mutant if f_mutant > f_champ else champ


def centered_ranks(f: np.ndarray) -> np.ndarray:
    """Ranks of f scaled to [-0.5, 0.5] (Salimans et al. 2017, fitness shaping); tied values share their mean rank,

    so two equal returns get equal weight (OpenAI's code breaks ties by position, which biases the step)."""
    f = np.asarray(f, dtype=np.float64)
    flat = f.ravel()
    if flat.size < 2:
        return np.zeros_like(f)
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.size)
    ranks[order] = np.arange(flat.size, dtype=np.float64)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    ranks = np.bincount(inverse, weights=ranks) / counts  # the mean rank of each distinct value ...
    return (ranks[inverse] / (flat.size - 1) - 0.5).reshape(f.shape)  # ... given back to its members


def antithetic_gradient(eps: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray, sigma: float) -> np.ndarray:
    """g = 1 / (2 n sigma) sum_i (w_i^+ - w_i^-) eps_i: the antithetic estimate of grad E[F(theta + sigma eps)]."""
    n = len(eps)
    return (w_pos - w_neg) @ eps / (2.0 * n * sigma)


def adam_ascent(theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
                beta1: float = 0.9, beta2: float = 0.999,
                eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step up the gradient g at step t (1-based): (theta', m', v'), bias-corrected as in OpenAI's es code:

    m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;
    theta' = theta + lr sqrt(1 - b2^t) / (1 - b1^t) m' / (sqrt(v') + eps)."""
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    step = lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    return theta + step * m / (np.sqrt(v) + eps), m, v


# --------------------------------------------------------------------------------------------------
# The agent


class ES(Agent):
    """A population method over the parameters of a numpy policy; `theta` is the champion or the ES mean."""

    Config: ClassVar[type[ESConfig]] = ESConfig
    family: ClassVar[str] = "evolution"

    def __init__(self, cfg: ESConfig, env: Any):
        super().__init__(cfg, env)
        if cfg.method == "openai_es" and cfg.population % 2:
            raise UserError(f"population={cfg.population}: openai_es evaluates antithetic pairs, so the population "
                            f"must be even; use population={cfg.population + 1}")
        self.policy = ParamPolicy.for_spaces(env.observation_space, env.action_space, cfg.hidden, cfg.activation,
                                             who="agent es")
        self.rng = np.random.default_rng([cfg.seed, 5])
        self.theta = self.policy.init(self.rng, cfg.init_std)
        self.m, self.v = np.zeros_like(self.theta), np.zeros_like(self.theta)  # Adam moments (openai_es)
        self.step = 0
        self.episode = 0
        self.iteration = 0

    @classmethod
    def make_env(cls, ref: envs.EnvRef, cfg: ESConfig, render_mode: str | None = None, training: bool = True) -> Any:
        """Training: an Evaluator that plays whole populations (in `workers` processes). Evaluation: one env."""
        if training:
            return Evaluator(ref.name, ref.kwargs, workers=cfg.workers, max_episode_steps=cfg.max_episode_steps)
        return make_env(ref.name, ref.kwargs, training=False, max_episode_steps=cfg.max_episode_steps,
                        render_mode=render_mode)

    # -- acting -----------------------------------------------------------------------------------
    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        return self.policy.act(self.theta, obs)

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, env: Evaluator, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        cfg = self.cfg
        try:
            while self.step < total_steps and (cfg.total_episodes is None or self.episode < cfg.total_episodes):
                if ckpt.due(self.step) and self.step > 0:
                    ckpt.save(self.step, self.state_dict())
                if ckpt.stop_requested:
                    return
                self.train_iteration(env, logger)
        finally:
            env.close()

    def train_iteration(self, env: Evaluator, logger: Any) -> None:
        """One hill-climbing trial or one ES generation; logs every episode's raw return."""
        seeds = self.rng.integers(0, 2**31 - 1, size=self.cfg.episodes_per_eval)
        if self.cfg.method == "hill_climb":
            self._hill_climb_trial(env, seeds, logger)
        else:
            self._es_generation(env, seeds, logger)
        self.iteration += 1

    def _hill_climb_trial(self, env: Evaluator, seeds: np.ndarray, logger: Any) -> None:
        cfg = self.cfg
        mutant = self.theta + cfg.sigma * self.rng.standard_normal(self.theta.size)
        returns, lengths = env.evaluate(self.policy, np.stack([self.theta, mutant]), seeds)
        f_champ, f_mutant = returns.mean(axis=1)
        self.theta = hill_climb_update(self.theta, mutant, f_champ, f_mutant, cfg.alpha)
        self._log(logger, returns, lengths, {"es/champion_return": f_champ, "es/mutant_return": f_mutant,
                                             "es/accepted": float(f_mutant > f_champ)})

    def _es_generation(self, env: Evaluator, seeds: np.ndarray, logger: Any) -> None:
        cfg = self.cfg
        n = cfg.population // 2
        eps = self.rng.standard_normal((n, self.theta.size))
        thetas = np.concatenate([self.theta + cfg.sigma * eps, self.theta - cfg.sigma * eps])
        returns, lengths = env.evaluate(self.policy, thetas, seeds)
        w = centered_ranks(returns.mean(axis=1))
        g = antithetic_gradient(eps, w[:n], w[n:], cfg.sigma)
        self.theta, self.m, self.v = adam_ascent(self.theta, g - cfg.weight_decay * self.theta, self.m, self.v,
                                                 self.iteration + 1, cfg.lr, cfg.beta1, cfg.beta2)
        f = returns.mean(axis=1)
        self._log(logger, returns, lengths, {"es/population_mean": f.mean(), "es/population_max": f.max(),
                                             "es/grad_norm": float(np.linalg.norm(g)),
                                             "es/theta_norm": float(np.linalg.norm(self.theta))})

    def _log(self, logger: Any, returns: np.ndarray, lengths: np.ndarray, extra: dict[str, float]) -> None:
        """One metrics row per episode, in candidate order (raw returns), the iteration's figures on the last."""
        last = returns.size - 1
        for k, (ret, length) in enumerate(zip(returns.ravel(), lengths.ravel())):
            self.step += int(length)
            self.episode += 1
            logger.episode(self.step, float(ret), int(length), **({k_: float(v) for k_, v in extra.items()}
                                                                   if k == last else {}))

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"theta": self.theta.copy(), "adam_m": self.m.copy(), "adam_v": self.v.copy(),
                "rng": generator_state(self.rng), "step": self.step, "episode": self.episode,
                "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        theta = np.asarray(state["theta"], dtype=np.float64)
        if theta.shape != self.theta.shape:
            raise UserError(f"checkpoint policy has {theta.size} parameters, this env and net need {self.theta.size}; "
                            "was the run's env or hidden changed?")
        self.theta = theta.copy()
        self.m = np.asarray(state["adam_m"], dtype=np.float64).copy()
        self.v = np.asarray(state["adam_v"], dtype=np.float64).copy()
        self.rng = generator_from_state(state["rng"])
        self.step, self.episode, self.iteration = int(state["step"]), int(state["episode"]), int(state["iteration"])
