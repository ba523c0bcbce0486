"""What every on-policy policy-gradient agent (REINFORCE, A2C, PPO, TRPO) shares: envs, policy, loop, state.

    policy pi_theta(a|s) and critic V_phi(s): nets.policy.ActorCritic (trunks from nets.build)
    repeat until total_steps (or total_episodes):
        collect a rollout with the current policy in n_envs envs     (rlkit.rollout.Collector)
        estimate advantages / returns                                 (rlkit.rollout: GAE or Monte Carlo)
        update theta (and phi) from that rollout only                 (the agent's `update`)

An agent subclasses `OnPolicyAgent` once, adding its config keys, its loss as a pure function and its
`update()`; it may replace `collect()` (REINFORCE collects whole episodes). Observations and rewards
can be normalized as SB3's VecNormalize does (`norm_obs`, `norm_reward`); the statistics are saved in
checkpoints and used frozen when acting for evaluation. Logged returns are raw episode scores.
Checkpoints are written between rollouts; a resumed run restarts the episodes that were in flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch

import envs
import nets
from agents.base import Agent
from nets.policy import ActorCritic
from rlkit import schedules
from rlkit.checkpoint import Checkpointer, load_weights
from rlkit.config import NetConfig, NonNegFloat, PositiveFloat, PositiveInt, Prob, TrainConfig
from rlkit.device import resolve_device
from rlkit.errors import UserError
from rlkit.logger import Logger
from rlkit.normalize import ObsNormalizer, RewardNormalizer
from rlkit.optim import FlatAdam, FlatOptimizer
from rlkit.rollout import Collector, RolloutBuffer, explained_variance
from rlkit.seeding import generator_from_state, generator_state

LOG_EVERY = 1000
"""env steps between rows of update metrics (losses/...) in metrics.csv; each episode gets its own row"""


@dataclass(frozen=True)
class OnPolicyConfig(TrainConfig):
    """Keys every policy-gradient agent has (names as in Stable-Baselines3 where it has them)."""

    n_envs: PositiveInt = 1
    """envs stepped together (one forward pass acts for all)"""
    async_envs: bool = False
    """step the n_envs copies in worker processes (pays off for Atari with spare cores)"""
    lr: PositiveFloat = 3e-4
    """learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 over total_steps (SB3 zoo's lin_<lr>, CleanRL's anneal_lr)"""
    gamma: Prob = 0.99
    """discount factor"""
    ent_coef: NonNegFloat = 0.0
    """weight of the entropy bonus in the loss"""
    vf_coef: NonNegFloat = 0.5
    """weight of the value (critic) loss in the loss"""
    max_grad_norm: PositiveFloat | None = 0.5
    """clip the gradient's global norm to this (null: no clipping)"""
    normalize_advantage: bool = True
    """standardize advantages (per minibatch) before the policy loss"""
    norm_obs: bool = False
    """normalize observations by running mean/std (SB3 VecNormalize); saved in checkpoints, frozen in eval"""
    norm_reward: bool = False
    """scale rewards by the running std of the discounted return (SB3 VecNormalize); raw returns are logged"""
    clip_obs: PositiveFloat = 10.0
    """bound of normalized observations"""
    clip_reward: PositiveFloat = 10.0
    """bound of normalized rewards"""
    net: NetConfig = field(default_factory=lambda: NetConfig(activation="tanh"))
    """policy and value trunks (SB3's MlpPolicy: two tanh MLPs [64, 64]; net=cnn for images)"""
    share_trunk: bool | None = None
    """one trunk for policy and value (null: shared for image observations, separate otherwise)"""
    ortho_init: bool = True
    """orthogonal initialization (SB3/CleanRL): gain sqrt(2) in trunks, 0.01 policy head, 1 value head"""
    log_std_init: float = 0.0
    """initial log standard deviation of Gaussian (Box) actions (with use_sde: of gSDE's noise weights)"""
    use_sde: bool = False
    """gSDE (SB3's use_sde) for Box actions: the noise is the policy's features times a random matrix held for
    sde_sample_freq steps, so exploration is smooth in the state instead of white noise every step"""
    sde_sample_freq: int = -1
    """with use_sde: vector steps between fresh noise matrices (-1: only at each rollout's start)"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """where the networks run (auto: CUDA if present)"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: bfloat16 autocast of the trunks (CPUs with AVX512-BF16, GPUs); heads, losses, optimizer stay fp32"""
    checkpoint_every: PositiveInt = 50_000
    """env steps between checkpoints (written between rollouts; also at the end, on Ctrl-C and SIGTERM)"""


def mean_stats(rows: Sequence[dict[str, torch.Tensor | float]]) -> dict[str, float]:
    """Per-key means of per-gradient-step statistics. The update keeps them as 0-d tensors and they are
    converted here in one go: a float() per statistic per step is a device sync each (~100 per PPO update)."""
    if len(rows) == 1 and all(isinstance(v, torch.Tensor) for v in rows[0].values()):  # one step (a2c): one stack
        row = rows[0]
        return dict(zip(row, torch.stack([v.detach().float() for v in row.values()]).tolist(), strict=True))
    keys = list(dict.fromkeys(k for row in rows for k in row))
    out: dict[str, float] = {}
    tensor_means: dict[str, torch.Tensor] = {}
    for k in keys:
        values = [row[k] for row in rows if k in row]
        if all(isinstance(v, torch.Tensor) for v in values):
            tensor_means[k] = torch.stack([v.detach().float() for v in values]).mean()
        else:
            out[k] = float(np.mean([float(v) for v in values]))
    if tensor_means:
        out.update(zip(tensor_means, torch.stack(list(tensor_means.values())).tolist(), strict=True))
    return {k: out[k] for k in keys}


class OnPolicyAgent(Agent):
    """Base of the policy-gradient agents: builds the policy, runs the rollout/update loop, holds the state."""

    Config: ClassVar[type[OnPolicyConfig]] = OnPolicyConfig
    family: ClassVar[str] = "policy"
    hand_grad_loss: ClassVar[bool] = False
    """whether the agent's update has a hand-derived loss gradient (then hand_grad turns on for small CPU MLPs)"""

    def __init__(self, cfg: OnPolicyConfig, env: Any):
        super().__init__(cfg, env)
        obs_space = getattr(env, "single_observation_space", env.observation_space)
        act_space = getattr(env, "single_action_space", env.action_space)
        name = type(self).__name__.lower()
        if not isinstance(obs_space, gym.spaces.Box | gym.spaces.Discrete):
            raise UserError(f"{name} needs a Box or Discrete observation space, not {type(obs_space).__name__}")
        if cfg.norm_obs and not isinstance(obs_space, gym.spaces.Box):
            raise UserError(f"norm_obs=true needs Box observations, not {obs_space}; use norm_obs=false")
        self.obs_space, self.act_space = obs_space, act_space
        self.device = resolve_device(cfg.device)
        self.policy = ActorCritic(obs_space, act_space, net_spec(cfg.net, type(cfg)().net, obs_space), cfg.share_trunk,
                                  cfg.log_std_init, cfg.ortho_init, critic=self.uses_critic(),
                                  precision=cfg.precision, use_sde=cfg.use_sde,
                                  sde_sample_freq=cfg.sde_sample_freq).to(self.device)
        self.optimizer = self.make_optimizer()
        # gradients by hand (nets.handgrad) instead of autograd: the same numbers, without its per-op overhead
        self.hand_grad = self.hand_grad_loss and self.policy.hand_grad_available()
        self.obs_norm = ObsNormalizer(obs_space.shape, cfg.clip_obs) if cfg.norm_obs else None
        self.reward_norm = RewardNormalizer(cfg.n_envs, cfg.gamma, cfg.clip_reward) if cfg.norm_reward else None
        self.rng = np.random.default_rng([cfg.seed, 2])  # minibatch order
        self.step = 0
        self.episode = 0
        self.updates = 0
        self.buffer: RolloutBuffer | None = None
        self.collector: Collector | None = None
        self.rollout_end: int | None = None
        """where rollouts must stop, if not at cfg.total_steps: rlkit bench sets SB3's whole-rollout budget"""
        self._last_log = -LOG_EVERY
        self.log_due = True
        """whether the coming update's metrics will be logged (an update may skip statistics nobody reads)"""

    # -- hooks an agent may override --------------------------------------------------------------
    def uses_critic(self) -> bool:
        """Whether the agent learns V(s) (REINFORCE without a value baseline does not)."""
        return True

    def make_optimizer(self) -> FlatOptimizer:
        """Adam with eps 1e-5 (SB3's and CleanRL's choice for policy gradients), over one flat buffer (rlkit.optim)."""
        return FlatAdam(self.policy.parameters(), lr=self.cfg.lr, eps=1e-5)

    def rollout_steps(self) -> int:
        """Vector steps per rollout (the buffer's length)."""
        return int(self.cfg.n_steps)

    def collect(self, collector: Collector, total_steps: int, logger: Logger) -> None:
        """Fill self.buffer with n_steps vector steps (fewer at the run's very end: never past it), then GAE."""
        cfg = self.cfg
        n = min(self.rollout_steps(), math.ceil((self.budget_end(total_steps) - self.step) / cfg.n_envs))
        self.buffer.reset()
        taken, episodes = collector.collect(self.buffer, n, self.step, logger)
        self.step += taken
        self.episode += episodes
        self.buffer.compute_gae(cfg.gamma, cfg.gae_lambda)

    def update(self) -> dict[str, float]:
        """Learn from self.buffer; returns metrics to log (losses/...)."""
        raise NotImplementedError

    # -- environments and acting ------------------------------------------------------------------
    @classmethod
    def make_env(cls, ref: envs.EnvRef, cfg: OnPolicyConfig, render_mode: str | None = None,
                 training: bool = True) -> Any:
        """Training: n_envs copies in a vector env. Evaluation: one env (Atari: no clipping, full games)."""
        if not training:
            return envs.make(ref, render_mode=render_mode, training=False)
        return envs.make_vector(ref, cfg.n_envs, asynchronous=cfg.async_envs)

    @torch.no_grad()
    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        """Actions for raw observations: normalized with the frozen statistics, then pi's mode or a sample."""
        obs = np.asarray(obs)
        if self.obs_norm is not None:
            obs = self.obs_norm(obs, update=False)
        mask = None if action_mask is None else torch.as_tensor(np.asarray(action_mask, dtype=bool), device=self.device)
        actions, _, _ = self.policy.step(torch.as_tensor(obs, device=self.device), mask, deterministic)
        return self.policy.env_actions(actions.cpu().numpy())

    # -- the loop ---------------------------------------------------------------------------------
    def learn(self, env: Any, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        cfg = self.cfg
        if self.buffer is None:
            obs_dtype = np.float32 if self.obs_norm is not None else self.obs_space.dtype
            self.buffer = RolloutBuffer(self.rollout_steps(), cfg.n_envs, self.obs_space.shape, obs_dtype,
                                        self.policy.action_shape, self.policy.action_dtype)
        if self.collector is None or self.collector.env is not env:
            # a fresh or resumed run (episodes in flight at the checkpoint restart); a learn() called again on
            # the same env (rlkit bench evaluates between calls) continues the episodes where they were
            self.collector = Collector(env, self.policy, self.device, self.obs_norm, self.reward_norm)
            self.collector.reset(seed=cfg.seed + self.step)
        collector = self.collector
        while self.step < total_steps and not self._episodes_done():
            if ckpt.due(self.step) and self.step > 0:
                ckpt.save(self.step, self.state_dict())
            if ckpt.stop_requested:
                return
            self.collect(collector, total_steps, logger)
            lr = self.lr()
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.log_due = self.step - self._last_log >= LOG_EVERY or self.step >= total_steps
            # gradients by hand build no autograd graph: inference mode (no version counters or view tracking)
            # takes ~10% off such an update's per-op overhead (A2C CartPole: 175 -> 158 us)
            with torch.inference_mode() if self.hand_grad else contextlib.nullcontext():
                metrics = self.update()
            self.updates += 1
            if self.log_due:
                self._last_log = self.step
                logger.log(self.step, {**metrics, "charts/lr": lr, "charts/updates": self.updates,
                                       **self._critic_metrics()})

    def budget_end(self, total_steps: int) -> int:
        """Where rollouts must stop: the run's end (cfg.total_steps, or rollout_end when set), not an intermediate
        learn() target, so a caller that trains in stretches gets the same full-length rollouts (the last one may
        overshoot)."""
        return max(total_steps, self.cfg.total_steps if self.rollout_end is None else self.rollout_end)

    def _episodes_done(self) -> bool:
        return self.cfg.total_episodes is not None and self.episode >= self.cfg.total_episodes

    def lr(self) -> float:
        """The learning rate now: constant, or linear to 0 over total_steps with anneal_lr (set after the rollout)."""
        progress = self.step / self.cfg.total_steps
        return schedules.linear(self.cfg.lr, 0.0, progress) if self.cfg.anneal_lr else self.cfg.lr

    def _critic_metrics(self) -> dict[str, float]:
        b = self.buffer
        if not self.uses_critic() or b is None or b.ret is None:
            return {}
        return {"charts/explained_variance": explained_variance(b.values[: b.pos], b.ret)}

    def gradient_step(self, loss: torch.Tensor) -> torch.Tensor:
        """One optimizer step on `loss`, the gradient's global norm clipped to max_grad_norm; returns the norm
        (a tensor: statistics are converted to floats once per update, see mean_stats)."""
        self.optimizer.zero_grad()
        loss.backward()
        return self.optimizer.clip_step(self.cfg.max_grad_norm)

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": generator_state(self.rng),
            "step": self.step,
            "episode": self.episode,
            "updates": self.updates,
        }
        if self.obs_norm is not None:
            state["obs_norm"] = self.obs_norm.state_dict()
        if self.reward_norm is not None:
            state["reward_norm"] = self.reward_norm.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights({"policy": self.policy}, state, "policy")
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng = generator_from_state(state["rng"])
        self.step, self.episode, self.updates = int(state["step"]), int(state["episode"]), int(state["updates"])
        for name, norm in (("obs_norm", self.obs_norm), ("reward_norm", self.reward_norm)):
            if norm is not None:
                if name not in state:
                    raise UserError(f"the checkpoint has no {name} statistics but the config asks for them")
                norm.load_state_dict(state[name])
        self._last_log = self.step


def net_spec(net: NetConfig, default: NetConfig, obs_space: gym.Space) -> dict[str, Any]:
    """The nets.build spec of a NetConfig: for a net other than the mlp, keys left at the agent's defaults
    (hidden, a tanh activation) are dropped, so `net=cnn` works while `net=cnn net.hidden=[8]` is an error."""
    spec = {f.name: getattr(net, f.name) for f in dataclasses.fields(net)}
    spec["type"] = net.type or nets.default_spec(obs_space)["type"]
    if spec["type"] != "mlp":
        spec = {k: v for k, v in spec.items() if k == "type" or v != getattr(default, k)}
    return spec
