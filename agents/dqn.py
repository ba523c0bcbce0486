"""Deep Q-Network (Mnih et al. 2015) with double Q (van Hasselt et al. 2016), prioritized replay
(Schaul et al. 2016), n-step returns and a dueling head (Wang et al. 2016).

    replay memory D; online net Q_w; target net Q_wbar <- Q_w
    for each step, in n_envs envs at once:
        a <- random with probability eps (linear from epsilon.start to epsilon.end), else argmax_a Q_w(s, a)
        step the envs; store (s, a, r, s', terminated, truncated) in D
        every train_freq steps after learning_starts, gradient_steps times:
            sample a batch from D (uniformly, or proportionally to priority with IS weights w)
            y = r + gamma^n (1 - terminated) Q_wbar(s', argmax_b Q_w(s', b))     double Q
              = r + gamma^n (1 - terminated) max_b Q_wbar(s', b)                 plain DQN
            minimize mean_batch w * huber(Q_w(s, a) - y); clip the gradient norm
            priorities <- |Q_w(s, a) - y|
        every target_update_interval steps: wbar <- tau w + (1 - tau) wbar     (tau = 1: a hard copy)

Truncated episodes (time limits) bootstrap from their real last observation; only termination cuts
the return. Reported returns are raw game scores (Atari: full games before reward clipping).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import envs
import nets
from agents.base import Agent
from rlkit import schedules
from rlkit.checkpoint import Checkpointer, load_weights
from rlkit.config import NetConfig, NonNegInt, PositiveFloat, PositiveInt, Prob, Schedule, TrainConfig
from rlkit.device import resolve_device
from rlkit.errors import UserError
from rlkit.logger import Logger
from rlkit.optim import FlatAdam
from rlkit.replay import Batch, PrioritizedReplayBuffer, ReplayBuffer
from rlkit.seeding import generator_from_state, generator_state
from rlkit.vec import finished_episodes, real_next_obs


@dataclass(frozen=True)
class DQNConfig(TrainConfig):
    """DQN and its extensions (defaults follow Stable-Baselines3's DQN; presets tune them per env)."""

    n_envs: PositiveInt = 1
    """envs stepped together (one forward pass acts for all)"""
    async_envs: bool = False
    """step the n_envs copies in worker processes (pays off for Atari with spare cores)"""
    lr: PositiveFloat = 1e-4
    """Adam learning rate"""
    buffer_size: PositiveInt = 1_000_000
    """replay memory capacity in transitions"""
    learning_starts: NonNegInt = 100
    """env steps of pure exploration before the first gradient step"""
    batch_size: PositiveInt = 32
    """transitions per gradient step"""
    gamma: Prob = 0.99
    """discount factor"""
    train_freq: PositiveInt = 4
    """vector-env steps between training phases"""
    gradient_steps: PositiveInt = 1
    """gradient steps per training phase"""
    target_update_interval: PositiveInt = 10_000
    """env steps between target-network updates"""
    tau: Prob = 1.0
    """target update rate: 1 copies the online net, < 1 is Polyak averaging"""
    epsilon: Schedule = field(default_factory=lambda: Schedule(1.0, 0.05, 0.1))
    """exploration rate, linear over `fraction` of total_steps"""
    double_q: bool = True
    """select the next action with the online net, evaluate it with the target net"""
    replay: Literal["uniform", "prioritized"] = "uniform"
    """replay sampling: uniform, or proportional prioritized (Schaul et al. 2016)"""
    per_alpha: Prob = 0.6
    """prioritization exponent alpha (0: uniform)"""
    per_beta: Schedule = field(default_factory=lambda: Schedule(0.4, 1.0, 1.0))
    """importance-sampling exponent beta, annealed to 1 over training"""
    n_step: PositiveInt = 1
    """n-step returns (cut at termination, not at truncation)"""
    loss: Literal["huber", "mse"] = "huber"
    """TD loss: Huber (smooth L1, delta 1) or squared error"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient norm clipping"""
    net: NetConfig = field(default_factory=NetConfig)
    """Q-network (net=mlp, net=cnn, net.hidden=[256,256], net.dueling=true)"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """where the networks run (auto: CUDA if present)"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: bfloat16 autocast of the Q-nets (CPUs with AVX512-BF16, GPUs); loss, targets, optimizer stay fp32"""
    save_replay: bool = True
    """keep the replay memory in checkpoints, so resume continues with the same data"""
    checkpoint_every: PositiveInt = 50_000
    """env steps between checkpoints (one is also written at the end, on Ctrl-C and on SIGTERM)"""


# --------------------------------------------------------------------------------------------------
# The math, as pure functions (tests call them with hand-made tensors)


def td_target(q_next_target: torch.Tensor, q_next_online: torch.Tensor | None, rewards: torch.Tensor,
              dones: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """y = r + discount (1 - done) Q_target(s', a*): a* = argmax of the online net (double Q) or of the target."""
    chooser = q_next_online if q_next_online is not None else q_next_target
    a_star = chooser.argmax(dim=1, keepdim=True)
    return rewards + discounts * (1.0 - dones) * q_next_target.gather(1, a_star).squeeze(1)


def q_loss(q_sa: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None,
           kind: str = "huber") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean of w * huber(q - y) (or w * (q - y)^2), the TD errors q - y); weights None: all 1."""
    td_error = q_sa - target
    per_item = F.smooth_l1_loss(q_sa, target, reduction="none") if kind == "huber" else td_error.pow(2)
    return (per_item if weights is None else weights * per_item).mean(), td_error.detach()


def q_loss_grad(td_error: torch.Tensor, weights: torch.Tensor | None, kind: str = "huber") -> torch.Tensor:
    """d q_loss / d q_sa: w clamp(q - y, -1, 1) / B for huber (beta 1), w 2 (q - y) / B for mse."""
    g = td_error.clamp(-1.0, 1.0) if kind == "huber" else 2.0 * td_error
    return (g if weights is None else g * weights) / len(td_error)


def eps_greedy_actions(q: np.ndarray | None, eps: float, n_actions: int, n: int,
                       rng: np.random.Generator, explore: np.ndarray | None = None) -> np.ndarray:
    """For each of n rows: a random action with probability eps (or where `explore`), else argmax q.

    q may be None when every row explores."""
    explore = rng.random(n) < eps if explore is None else explore
    actions = rng.integers(n_actions, size=n)
    if q is not None:
        actions = np.where(explore, actions, q.argmax(axis=1))
    return actions


# --------------------------------------------------------------------------------------------------
# The agent

NUMPY_ROWS = 16
"""acting batches up to this many observations go through numpy (small MLPs on the CPU); larger ones through torch"""
PHASE_BYTES = 64 << 20
"""at most this many bytes of float observations per up-front draw of a training phase (Atari: a few batches)"""
TARGET_ROWS = 1024
"""rows per target-net forward in a training phase: a [256, 256] MLP on 8192 rows takes 10.5 ms in chunks of
1024, 12.6 ms in one pass (its activations outgrow the cache)"""


class DQN(Agent):
    """Q-network agent with replay and a target network, over a vector of envs."""

    Config: ClassVar[type[DQNConfig]] = DQNConfig
    family: ClassVar[str] = "value"

    def __init__(self, cfg: DQNConfig, env: Any):
        super().__init__(cfg, env)
        obs_space = getattr(env, "single_observation_space", env.observation_space)
        act_space = getattr(env, "single_action_space", env.action_space)
        if not isinstance(act_space, gym.spaces.Discrete):
            raise UserError(f"dqn needs a discrete action space, but this env acts in {type(act_space).__name__}"
                            f"{getattr(act_space, 'shape', '')}; pick a discrete-action env (e.g. cartpole, pong) "
                            "or an agent for continuous actions (ppo, a2c, trpo, reinforce, es)")
        if not isinstance(obs_space, gym.spaces.Box | gym.spaces.Discrete):
            raise UserError(f"dqn needs a Box or Discrete observation space, not {type(obs_space).__name__}")
        self.n_actions = int(act_space.n)
        self.device = resolve_device(cfg.device)
        self.q_net = nets.build(cfg.net, obs_space, self.n_actions).to(self.device)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        # Adam over one flat buffer (rlkit.optim): clipping + update in ~3 kernels instead of ~10 per tensor
        self.optimizer = FlatAdam(self.q_net.parameters(), lr=cfg.lr)
        # acting on a few observations with a small MLP: numpy answers in a third of torch's time (nets.heads)
        self.numpy_acting = cfg.precision == "fp32" and self.q_net.numpy_forward_available()
        # gradient steps by hand for the same reason, where the net allows it (nets.handgrad; CPU per-op overhead)
        self.hand_grad = (cfg.precision == "fp32" and self.device.type == "cpu"
                          and self.q_net.hand_grad_layers() is not None)
        self.obs_space = obs_space
        self.buffer: ReplayBuffer | None = None  # made on first use: evaluation never allocates one
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.step = 0
        self.updates = 0
        self.obs: np.ndarray | None = None
        self._losses: list[float] = []
        self._q_means: list[float] = []

    @classmethod
    def make_env(cls, ref: envs.EnvRef, cfg: DQNConfig, render_mode: str | None = None, training: bool = True) -> Any:
        """Training: n_envs copies in a vector env. Evaluation: one env (Atari: no clipping, full games)."""
        if not training:
            return envs.make(ref, render_mode=render_mode, training=False)
        return envs.make_vector(ref, cfg.n_envs, asynchronous=cfg.async_envs)

    def replay(self) -> ReplayBuffer:
        """The replay memory (uniform or prioritized), allocated on first use."""
        if self.buffer is None:
            cfg, space = self.cfg, self.obs_space
            cls = PrioritizedReplayBuffer if cfg.replay == "prioritized" else ReplayBuffer
            extra = {"alpha": cfg.per_alpha} if cfg.replay == "prioritized" else {}
            self.buffer = cls(cfg.buffer_size, space.shape, space.dtype, n_envs=cfg.n_envs, n_step=cfg.n_step,
                              gamma=cfg.gamma, frame_stack=frame_stack_of(space), seed=cfg.seed, **extra)
        return self.buffer

    # -- acting -----------------------------------------------------------------------------------
    def autocast(self) -> torch.autocast:
        """The precision context of every Q-net forward pass (a no-op at fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q(obs, .) of the online net as a float32 array (numpy for a few observations on a small CPU MLP)."""
        if self.numpy_acting and len(obs) <= NUMPY_ROWS:
            return self.q_net.numpy_forward(obs)
        x = torch.as_tensor(np.asarray(obs), device=self.device)
        with self.autocast():
            return self.q_net(x).float().cpu().numpy()

    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        return self._act(np.asarray(obs), 0.0 if deterministic else self.epsilon())

    def _act(self, obs: np.ndarray, eps: float) -> np.ndarray:
        explore = self.rng.random(len(obs)) < eps
        q = None if explore.all() else self.q_values(obs)  # no forward pass when every env explores
        return eps_greedy_actions(q, eps, self.n_actions, len(obs), self.rng, explore)

    def epsilon(self) -> float:
        return schedules.value(self.cfg.epsilon, self.step / self.cfg.total_steps)

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, env: Any, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        cfg = self.cfg
        if self.obs is None:  # a fresh run, or a resumed one (episodes in flight at the checkpoint restart)
            self.obs, _ = env.reset(seed=cfg.seed + self.step)
        interval = cfg.target_update_interval
        while self.step < total_steps:
            if ckpt.due(self.step) and self.step > 0:
                ckpt.save(self.step, self.state_dict())
            if ckpt.stop_requested:
                return
            actions = self._act(self.obs, self.epsilon())
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            self.replay().add(self.obs, actions, rewards, real_next_obs(next_obs, infos), terminated, truncated)
            self.obs = next_obs
            last, self.step = self.step, self.step + cfg.n_envs
            for _, ret, length in finished_episodes(infos):
                logger.episode(self.step, ret, length, **self._episode_metrics())
            if self.step >= cfg.learning_starts and (self.step // cfg.n_envs) % cfg.train_freq == 0:
                self.train_phase(cfg.gradient_steps)
            if self.step // interval > last // interval:
                soft_update(self.target_net, self.q_net, cfg.tau)
            if self.step % 1000 < cfg.n_envs:
                logger.progress(self.step)

    def train_phase(self, n: int) -> None:
        """n gradient steps on fresh replay batches.

        The target net does not change within a phase (it is updated between env steps), so with uniform
        replay all n batches are drawn at once (the same draws as one at a time) and their target-net values
        come from one forward pass: 128 small matmuls become one large one. Prioritized replay draws each
        batch after the previous step's priority update, one at a time.
        """
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            for _ in range(n):
                self.train_step()
            return
        B = self.cfg.batch_size
        row_bytes = 2 * int(np.prod(self.obs_space.shape, dtype=np.int64)) * 4  # obs + next_obs, as float32
        per_draw = max(1, min(n, PHASE_BYTES // (B * row_bytes)))
        while n > 0:
            k = min(per_draw, n)
            batches = self._to_tensors(self.buffer.sample(k * B))
            with torch.no_grad():
                with self.autocast():  # in chunks of TARGET_ROWS: the activations stay in cache
                    q_next_target = torch.cat([self.target_net(x).float()
                                               for x in batches.next_obs.split(TARGET_ROWS)])
                targets = None if self.cfg.double_q else td_target(  # plain DQN: the whole target, once
                    q_next_target, None, batches.rewards, batches.dones, batches.discounts)
            # each field cut into k batches at once (one op per field, not one per field and step)
            steps = zip(*(v.view(k, B, *v.shape[1:]).unbind(0) for v in batches), strict=True)
            q_next = q_next_target.view(k, B, -1).unbind(0)
            y = [None] * k if targets is None else targets.view(k, B).unbind(0)
            for i, fields in enumerate(steps):
                self.train_step(Batch(*fields), q_next[i], y[i])
            n -= k

    def _to_tensors(self, b: Batch) -> Batch:
        """The same batch with every field a tensor on the agent's device (numpy arrays are shared on the CPU)."""
        return Batch(*(torch.as_tensor(v, device=self.device) for v in b))

    def train_step(self, batch: Batch | None = None, q_next_target: torch.Tensor | None = None,
                   target: torch.Tensor | None = None) -> None:
        """One gradient step on a replay batch (drawn here if not given; tensors), given the target net's
        Q-values of its next observations or the TD targets if already computed; a priority update with
        prioritized replay."""
        cfg = self.cfg
        if batch is None:
            if isinstance(self.buffer, PrioritizedReplayBuffer):
                self.buffer.beta = schedules.value(cfg.per_beta, self.step / cfg.total_steps)
            batch = self._to_tensors(self.buffer.sample(cfg.batch_size))
        b = batch
        prioritized = isinstance(self.buffer, PrioritizedReplayBuffer)
        weights = b.weights if prioritized else None  # uniform replay: w = 1
        actions = b.actions.long().unsqueeze(1)
        if target is None:
            with torch.no_grad(), self.autocast():
                q_next_online = self.q_net(b.next_obs).float() if cfg.double_q else None
                if q_next_target is None:
                    q_next_target = self.target_net(b.next_obs).float()
                target = td_target(q_next_target, q_next_online, b.rewards, b.dones, b.discounts)
        if self.hand_grad:  # the same gradient as below, computed by hand (nets.handgrad: small fp32 MLPs)
            q, tape = self.q_net.hand_forward(b.obs)
            q_sa = q.gather(1, actions).squeeze(1)
            td_error = q_sa - target
            dq = torch.zeros_like(q).scatter_(1, actions, q_loss_grad(td_error, weights, cfg.loss).unsqueeze(1))
            self.q_net.hand_backward(tape, dq)
        else:
            with self.autocast():
                q = self.q_net(b.obs).float()
            q_sa = q.gather(1, actions).squeeze(1)
            loss, td_error = q_loss(q_sa, target, weights, cfg.loss)
            self.optimizer.zero_grad()
            loss.backward()
        self.optimizer.clip_step(cfg.max_grad_norm)
        if prioritized:
            self.buffer.update_priorities(b.indices.cpu().numpy(), td_error.detach().abs().cpu().numpy())
        self.updates += 1
        if self.updates % 16 == 1:  # cheap running diagnostics for the episode rows
            with torch.no_grad():
                self._losses.append(float(q_loss(q_sa, target, weights, cfg.loss)[0]))
                self._q_means.append(float(q_sa.mean()))

    def _episode_metrics(self) -> dict[str, float]:
        out = {"charts/epsilon": self.epsilon()}
        if self._losses:
            out["losses/td_loss"] = float(np.mean(self._losses))
            out["losses/q_values"] = float(np.mean(self._q_means))
            self._losses.clear()
            self._q_means.clear()
        return out

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": generator_state(self.rng),
            "step": self.step,
            "updates": self.updates,
        }
        if self.cfg.save_replay and self.buffer is not None:
            state["replay"] = self.buffer.state_dict()
        return state

    def policy_state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.state_dict().items() if k != "replay"}  # acting needs no replay memory

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights({"q_net": self.q_net, "target_net": self.target_net}, state, "network")
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng = generator_from_state(state["rng"])
        self.step, self.updates = int(state["step"]), int(state["updates"])
        if "replay" in state:
            self.replay().load_state_dict(state["replay"])


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """wbar <- tau w + (1 - tau) wbar (tau = 1 copies)."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.copy_(o) if tau >= 1.0 else t.lerp_(o, tau)
        for t, o in zip(target.buffers(), online.buffers()):
            t.copy_(o)


def net_spec(net: NetConfig, obs_space: gym.Space) -> dict[str, Any]:
    """The nets.build spec for a NetConfig: its type, or the default for this observation space."""
    kind = net.type or nets.default_spec(obs_space)["type"]
    spec: dict[str, Any] = {"type": kind}
    if kind == "mlp":
        spec.update(hidden=list(net.hidden), activation=net.activation)
    if net.dueling:
        spec["dueling"] = True
    return spec


def frame_stack_of(obs_space: gym.Space) -> int:
    """k for (k, H, W) uint8 frame stacks (stored once per frame by the replay memory), else 1."""
    shape = getattr(obs_space, "shape", None) or ()
    if len(shape) == 3 and obs_space.dtype == np.uint8 and shape[0] <= 8:
        return int(shape[0])
    return 1

