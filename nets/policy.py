"""Policy and value heads for policy-gradient agents, and `ActorCritic`: trunk(s) from `nets.build` plus heads.

    Discrete actions:  pi(.|s) = softmax(logits(s)), logits of masked-out actions set to -1e8
    Box actions:       pi(.|s) = N(mu(s), diag(exp(log_std))^2), log_std a free parameter (state-independent)
    Box, use_sde:      a = mu(s) + phi(s) E, E ~ N(0, exp(log_std)^2) per entry, held for a few steps (gSDE),
                       so pi(.|s) = N(mu(s), diag(phi(s)^2 exp(log_std)^2)): the std depends on the state
    value:             V(s) = w . features(s) + b

Box actions are sampled unbounded and stored as sampled; only the env sees them clipped to the
space's bounds (`env_actions`), so log-probabilities are those of the actual Gaussian sample (as SB3).
The head is chosen by the action space; the trunk by the net spec (`net=mlp`, `net=cnn`; see nets/).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nets
from nets.handgrad import without_grad
from rlkit.errors import UserError

MASKED_LOGIT = -1e8
"""logit given to actions an action mask forbids: probability exactly 0 in float32, no nan in the entropy"""
SDE_EPS = 1e-6
"""added to gSDE's per-row variance (SB3's epsilon): a row whose features are all 0 keeps a positive std"""


# --------------------------------------------------------------------------------------------------
# Distributions (small, explicit, batch-first: one row per observation)


class CategoricalDist:
    """A batch of categorical distributions over n actions, from (possibly masked) logits."""

    def __init__(self, logits: torch.Tensor):
        self.logp_all = torch.log_softmax(logits, dim=-1)

    def sample(self) -> torch.Tensor:
        return torch.multinomial(self.logp_all.exp(), 1).squeeze(-1)

    def mode(self) -> torch.Tensor:
        return self.logp_all.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.logp_all.exp() * self.logp_all).sum(dim=-1)

    def grad_logits(self, actions: torch.Tensor, dlogp: torch.Tensor, dentropy: float) -> torch.Tensor:
        """d loss / d logits, given d loss / d log_prob(actions) per row and d loss / d entropy (every row):
        dlogp (onehot(a) - p) - dentropy p (log p + H)."""
        p = self.logp_all.exp()
        dlogp = dlogp.unsqueeze(-1)
        g = torch.zeros_like(p).scatter_(-1, actions.long().unsqueeze(-1), dlogp).sub_(p * dlogp)
        if dentropy:
            h = -(p * self.logp_all).sum(dim=-1, keepdim=True)
            g.sub_(p * (self.logp_all + h), alpha=dentropy)
        return g


class DiagGaussianDist:
    """A batch of diagonal Gaussians N(mean, diag(std^2)); log-probs and entropies sum over action dimensions."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self) -> torch.Tensor:
        return (self.mean + self.log_std.exp() * torch.randn_like(self.mean)).detach()  # data, not a graph node

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum(dim=-1)

    def grad_params(self, actions: torch.Tensor, dlogp: torch.Tensor,
                    dentropy: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(d loss / d mean, d loss / d log_std summed over rows), given d loss / d log_prob(actions) per row
        and d loss / d entropy (every row): with z = (a - mean) / std, dlogp z / std and
        sum(dlogp (z^2 - 1)) + B dentropy."""
        inv_std = torch.exp(-self.log_std)
        z = (actions - self.mean) * inv_std
        dlogp = dlogp.unsqueeze(-1)
        dlog_std = (dlogp * (z * z - 1)).sum(dim=0) + dentropy * len(z)
        return dlogp * z * inv_std, dlog_std


class SDEGaussianDist(DiagGaussianDist):
    """gSDE's Gaussians (Raffin et al. 2022, "Smooth Exploration for Robotic RL"; SB3's use_sde): per row,
    a = mean + phi E with phi the policy's features and E an exploration matrix (features x actions) whose
    entries are N(0, sigma^2), so each action dimension j is N(mean_j, sum_i phi_i^2 sigma_ij^2 + 1e-6).

    Log-probs, entropies and KLs are a diagonal Gaussian's with that per-row std; sample() uses the matrices
    held by the head (one per env, kept for sde_sample_freq steps), so the noise is a smooth function of the
    state instead of fresh white noise every step."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, features: torch.Tensor,
                 exploration: torch.Tensor | None, sigma: torch.Tensor):
        super().__init__(mean, log_std)
        self.features = features
        self.exploration = exploration
        self.sigma = sigma

    def grad_params(self, actions: torch.Tensor, dlogp: torch.Tensor,
                    dentropy: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(d loss / d mean, d loss / d log_std, the (features x actions) matrix): the diagonal Gaussian's
        derivatives per row, g_rj with respect to row r's log std of action j, reach the matrix through
        v_rj = sum_i phi_ri^2 sigma_ij^2 + eps: d/d log sigma_ij = sum_r g_rj phi_ri^2 sigma_ij^2 / v_rj."""
        inv_std = torch.exp(-self.log_std)
        z = (actions - self.mean) * inv_std
        dlogp = dlogp.unsqueeze(-1)
        g = dlogp * (z * z - 1) + dentropy  # d loss / d (row's log std), per row and action
        inv_var = inv_std * inv_std
        return dlogp * z * inv_std, (self.features * self.features).t().mm(g * inv_var) * (self.sigma * self.sigma)

    def sample(self) -> torch.Tensor:
        e = self.exploration
        if e is None or len(e) != len(self.mean):  # acting outside a rollout (other batch size): fresh matrices
            e = torch.randn(len(self.mean), *self.sigma.shape, device=self.mean.device) * self.sigma
        noise = torch.bmm(self.features.unsqueeze(1), e).squeeze(1)
        return (self.mean + noise).detach()


# --------------------------------------------------------------------------------------------------
# Heads


class CategoricalHead(nn.Module):
    """features -> logits of n actions -> CategoricalDist; `action_mask` (bool, True = allowed): others get -1e8."""

    def __init__(self, in_dim: int, n_actions: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, n_actions)

    def forward(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> CategoricalDist:
        logits = F.linear(features, self.linear.weight, self.linear.bias)  # (no per-module call overhead)
        if action_mask is not None:
            logits = torch.where(action_mask.bool(), logits, torch.full_like(logits, MASKED_LOGIT))
        return CategoricalDist(logits)


class GaussianHead(nn.Module):
    """features -> mean of a diagonal Gaussian; log std is one free parameter per action dimension (log_std_init)."""

    def __init__(self, in_dim: int, act_dim: int, log_std_init: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_dim, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> DiagGaussianDist:
        return DiagGaussianDist(F.linear(features, self.linear.weight, self.linear.bias), self.log_std)


class SDEHead(nn.Module):
    """features -> gSDE's SDEGaussianDist: a linear mean, and log_std a (features x actions) matrix of free
    parameters (log_std_init): the log std of each entry of the exploration matrices.

    As SB3 (full_std, no expln, learn_features off): the features enter the variance detached, so the trunk
    learns through the mean only. reset_noise(n) draws n matrices (one per env), used by sample() until the
    next reset; the Collector resets them at each rollout's start and every sde_sample_freq steps."""

    def __init__(self, in_dim: int, act_dim: int, log_std_init: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_dim, act_dim)
        self.log_std = nn.Parameter(torch.full((in_dim, act_dim), float(log_std_init)))
        self.exploration: torch.Tensor | None = None  # (n_envs, in_dim, act_dim); not state: redrawn each rollout

    @torch.no_grad()
    def reset_noise(self, n: int) -> None:
        """Draw n exploration matrices, entries N(0, exp(log_std)^2), from torch's generator."""
        sigma = self.log_std.exp()
        self.exploration = torch.randn(n, *sigma.shape, device=sigma.device) * sigma

    def forward(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> SDEGaussianDist:
        return self.dist(F.linear(features, self.linear.weight, self.linear.bias), features)

    def dist(self, mean: torch.Tensor, features: torch.Tensor) -> SDEGaussianDist:
        """The distribution for a batch, given its means (the linear layer's output) and features."""
        phi = features.detach()
        sigma = self.log_std.exp()
        variance = (phi * phi) @ (sigma * sigma)
        return SDEGaussianDist(mean, 0.5 * torch.log(variance + SDE_EPS), phi, self.exploration, sigma.detach())


class ValueHead(nn.Module):
    """features -> V(s), one number per row."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.linear.weight, self.linear.bias).squeeze(-1)


def clip_actions(actions: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """Gaussian samples -> actions inside the Box bounds, shaped as the space ((B, *space.shape))."""
    actions = np.asarray(actions).reshape(len(actions), *space.shape)
    return np.clip(actions, space.low, space.high).astype(space.dtype, copy=False)


# --------------------------------------------------------------------------------------------------
# Actor-critic


class ActorCritic(nn.Module):
    """pi(a|s) and V(s) for one observation and action space, with separate or shared trunks.

    `net` is a nets.build spec (`"mlp"`, `"cnn"`, a dict or a NetConfig); `share_trunk=None` shares the
    trunk for image observations (the cnn, as SB3 and CleanRL do on Atari) and keeps separate ones
    otherwise (SB3's MlpPolicy). `use_sde`: gSDE exploration for Box actions (SDEHead), its matrices
    redrawn at each rollout's start and every `sde_sample_freq` steps (-1: only at the start).
    `critic=False` builds no value net (REINFORCE without a learned baseline):
    values are then zeros. `ortho_init` is SB3's / CleanRL's initialization: orthogonal weights with gain
    sqrt(2) in the trunks, 0.01 for the policy head, 1 for the value head; zero biases.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, net: Any = None,
                 share_trunk: bool | None = None, log_std_init: float = 0.0, ortho_init: bool = True,
                 critic: bool = True, precision: str = "fp32", use_sde: bool = False, sde_sample_freq: int = -1):
        super().__init__()
        self.precision = precision  # "bf16": trunks run under bfloat16 autocast; heads, log-probs and values in fp32
        probe = nets.build(net, observation_space, 1)
        if isinstance(probe.head, nets.DuelingHead):
            raise UserError("net.dueling=true is a Q-network head (dqn); a policy-gradient agent takes net.type, "
                            "net.hidden and net.activation")
        self.action_space = action_space
        self.pi_trunk = probe.trunk
        image = nets.default_spec(observation_space)["type"] == "cnn"
        self.shared = bool(image if share_trunk is None else share_trunk) and critic
        self.v_trunk = None if (self.shared or not critic) else nets.build(net, observation_space, 1).trunk
        dim = self.pi_trunk.out_dim
        if isinstance(action_space, gym.spaces.Discrete):
            if int(action_space.start) != 0:
                raise UserError(f"policy-gradient agents need Discrete actions starting at 0, not {action_space}")
            self.pi_head: nn.Module = CategoricalHead(dim, int(action_space.n))
        elif isinstance(action_space, gym.spaces.Box):
            head = SDEHead if use_sde else GaussianHead
            self.pi_head = head(dim, int(np.prod(action_space.shape)), log_std_init)
        else:
            raise UserError(f"policy-gradient agents act in Discrete or Box action spaces, not {action_space}")
        if use_sde and not isinstance(action_space, gym.spaces.Box):
            raise UserError(f"use_sde=true (gSDE) is exploration for Box actions; this env's actions are "
                            f"{action_space}: use use_sde=false")
        if sde_sample_freq == 0 or sde_sample_freq < -1:
            raise UserError(f"sde_sample_freq={sde_sample_freq}: use -1 (new gSDE noise at each rollout's start) "
                            "or a positive number of steps (e.g. sde_sample_freq=4)")
        self.sde_sample_freq = sde_sample_freq
        self.v_head = ValueHead(dim if self.v_trunk is None else self.v_trunk.out_dim) if critic else None
        if ortho_init:
            self._ortho_init()

    def _ortho_init(self) -> None:
        for trunk in (self.pi_trunk, self.v_trunk):
            for m in [] if trunk is None else trunk.modules():
                if isinstance(m, nn.Linear | nn.Conv2d):
                    nn.init.orthogonal_(m.weight, math.sqrt(2))
                    nn.init.zeros_(m.bias)
        for head, gain in ((self.pi_head.linear, 0.01), (None if self.v_head is None else self.v_head.linear, 1.0)):
            if head is not None:
                nn.init.orthogonal_(head.weight, gain)
                nn.init.zeros_(head.bias)

    def features(self, trunk: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """trunk(obs) in fp32, computed under bfloat16 autocast when precision is bf16 (the convs/matmuls)."""
        if self.precision != "bf16":
            return trunk(obs)
        with torch.autocast(obs.device.type, dtype=torch.bfloat16):
            return trunk(obs).float()

    # -- the two functions ------------------------------------------------------------------------
    def dist(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None) -> CategoricalDist | DiagGaussianDist:
        """pi(.|obs) for a batch of observations."""
        return self.pi_head(self.features(self.pi_trunk, obs), action_mask)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) for a batch (zeros without a critic)."""
        if self.v_head is None:
            return torch.zeros(len(obs), device=obs.device)
        return self.v_head(self.features(self.pi_trunk if self.shared else self.v_trunk, obs))

    def _dist_and_value(self, obs: torch.Tensor, action_mask: torch.Tensor | None):
        if self.shared:  # one trunk pass serves both heads
            features = self.features(self.pi_trunk, obs)
            return self.pi_head(features, action_mask), self.v_head(features)
        return self.dist(obs, action_mask), self.value(obs)

    # -- what agents call -------------------------------------------------------------------------
    def resample_noise(self, t: int, n_envs: int) -> None:
        """Called by the Collector before the t-th vector step of a rollout: with gSDE, fresh exploration
        matrices (one per env) at t = 0 and every sde_sample_freq steps, as SB3's collect_rollouts."""
        freq = self.sde_sample_freq
        if isinstance(self.pi_head, SDEHead) and (t == 0 or (freq > 0 and t % freq == 0)):
            self.pi_head.reset_noise(n_envs)

    def step(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None,
             deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions, log pi(actions|obs), V(obs)): sampled actions, or the most likely ones when deterministic."""
        dist, v = self._dist_and_value(obs, action_mask)
        actions = dist.mode() if deterministic else dist.sample()
        return actions, dist.log_prob(actions), v

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor,
                 action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log pi(actions|obs), entropy of pi(.|obs), V(obs)) under the current parameters, for the loss."""
        dist, v = self._dist_and_value(obs, action_mask)
        return dist.log_prob(actions), dist.entropy(), v

    # -- gradients by hand (nets.handgrad), for small fp32 MLPs on the CPU ------------------------------
    def hand_grad_available(self) -> bool:
        """Whether hand_evaluate/hand_backward can stand in for evaluate + autograd, and numpy_step for step:
        separate relu/tanh MLP trunks with a critic, fp32 on the CPU. Cached (walking the parameters costs
        ~100 us, asked once per rollout); .to(), .float() and the like clear the cache (_apply)."""
        ok = self.__dict__.get("_hand_grad_ok")
        if ok is None:
            ok = self.__dict__["_hand_grad_ok"] = self._hand_grad_check()
        return ok

    def _hand_grad_check(self) -> bool:
        if self.shared or self.v_trunk is None or self.v_head is None or self.precision != "fp32":
            return False
        from nets.handgrad import supported
        from nets.mlp import MLP

        trunks = (self.pi_trunk, self.v_trunk)
        return (all(isinstance(t, MLP) and t.one_hot is None for t in trunks)
                and all(p.device.type == "cpu" for p in self.parameters())
                and all(supported([*t._linears, head.linear], t.activation)
                        for t, head in zip(trunks, (self.pi_head, self.v_head))))

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        self.__dict__.pop("_hand_grad_ok", None)  # dtype or device may change
        return super()._apply(fn, recurse)

    @without_grad
    def hand_evaluate(self, obs: torch.Tensor, actions: torch.Tensor, action_mask: torch.Tensor | None = None,
                      entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, tuple]:
        """evaluate(obs, actions, action_mask) without an autograd graph, plus the tape hand_backward needs
        (entropy=False: None for the entropies, for a caller whose gradient does not need their values)."""
        from nets import handgrad

        x = obs.float().reshape(obs.shape[0], -1)
        pi_layers = [*self.pi_trunk._linears, self.pi_head.linear]
        v_layers = [*self.v_trunk._linears, self.v_head.linear]
        out, pi_tape = handgrad.forward(pi_layers, self.pi_trunk.activation, x)
        v, v_tape = handgrad.forward(v_layers, self.v_trunk.activation, x)
        if isinstance(self.pi_head, CategoricalHead):
            if action_mask is not None:
                out = torch.where(action_mask.bool(), out, torch.full_like(out, MASKED_LOGIT))
            dist: CategoricalDist | DiagGaussianDist = CategoricalDist(out)
        elif isinstance(self.pi_head, SDEHead):
            dist = self.pi_head.dist(out, pi_tape[-2])  # the features: the head layer's input
        else:
            dist = DiagGaussianDist(out, self.pi_head.log_std)
        return (dist.log_prob(actions), dist.entropy() if entropy else None, v.squeeze(-1),
                (dist, actions, action_mask, pi_layers, pi_tape, v_layers, v_tape))

    @without_grad
    def hand_backward(self, tape: tuple, dlogp: torch.Tensor, dentropy: float, dvalues: torch.Tensor) -> None:
        """Set every parameter's .grad to d loss / d theta, given the loss's derivatives with respect to
        hand_evaluate's log-probs and values (per row) and to each row's entropy."""
        from nets import handgrad

        dist, actions, mask, pi_layers, pi_tape, v_layers, v_tape = tape
        if isinstance(dist, CategoricalDist):
            d_out = dist.grad_logits(actions, dlogp, dentropy)
            if mask is not None:  # masked logits are constants
                d_out.mul_(mask.bool())
        else:
            d_out, dlog_std = dist.grad_params(actions, dlogp, dentropy)
            log_std = self.pi_head.log_std
            if log_std.grad is None:
                log_std.grad = dlog_std.clone()
            else:
                log_std.grad.copy_(dlog_std)
        handgrad.backward(pi_layers, self.pi_trunk.activation, pi_tape, d_out)
        handgrad.backward(v_layers, self.v_trunk.activation, v_tape, dvalues.unsqueeze(-1))

    # -- acting through numpy (a few observations per call: torch's per-op overhead dominates) ----------
    def numpy_acting_available(self) -> bool:
        """Whether numpy_step/numpy_value can stand in for step/value: the nets of hand_grad_available()."""
        return self.hand_grad_available()

    def numpy_actor(self) -> NumpyActor:
        """step/value computed by numpy on views of the live weights, for the calls of one rollout (the weights
        are updated in place between rollouts, not moved); only where numpy_acting_available()."""
        return NumpyActor(self)

    def numpy_step(self, obs: np.ndarray, action_mask: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """numpy_actor().step(obs, action_mask), for a single call."""
        return self.numpy_actor().step(obs, action_mask)

    def numpy_value(self, obs: np.ndarray) -> np.ndarray:
        """numpy_actor().value(obs), for a single call."""
        return self.numpy_actor().value(obs)

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Sampled actions -> what the env is stepped with (Box: clipped to the bounds and shaped as the space)."""
        if isinstance(self.action_space, gym.spaces.Box):
            return clip_actions(actions, self.action_space)
        return actions

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one stored action: () for Discrete, (act_dim,) for Box."""
        return () if isinstance(self.action_space, gym.spaces.Discrete) else (int(np.prod(self.action_space.shape)),)

    @property
    def action_dtype(self) -> Any:
        return np.int64 if isinstance(self.action_space, gym.spaces.Discrete) else np.float32


class NumpyActor:
    """ActorCritic.step/value computed by numpy, for acting on a few observations at a time, where torch's
    per-op overhead dominates: 8 CartPole observations take ~25 us instead of ~60 us through step() (figures:
    bench/onpolicy_parts.py). The views of the weights are looked up once (building an actor: ~5 us), not
    per call, so an actor serves while the weights stay where they are: one rollout (the optimizer updates
    them in place, between rollouts). The randomness still comes from torch's generator: Gaussian noise from
    torch.randn (the same draws as step), a categorical action by inverse CDF from one torch.rand per row."""

    def __init__(self, policy: ActorCritic):
        from nets.mlp import numpy_views

        pi_trunk, pi_head, v_trunk, v_head = policy.pi_trunk, policy.pi_head, policy.v_trunk, policy.v_head
        assert v_trunk is not None and v_head is not None
        self.pi = numpy_views(policy, "_numpy_pi", [*pi_trunk._linears, pi_head.linear])
        self.v = numpy_views(policy, "_numpy_v", [*v_trunk._linears, v_head.linear])
        self.pi_activation, self.v_activation = pi_trunk.activation, v_trunk.activation
        self.log_std = None if isinstance(pi_head, CategoricalHead) else pi_head.log_std.detach().numpy()
        self.sde = pi_head if isinstance(pi_head, SDEHead) else None
        if self.sde is not None:
            self.sigma2 = np.exp(2 * self.log_std)

    def step(self, obs: np.ndarray, action_mask: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(actions, log pi(actions|obs), V(obs)) as numpy arrays, sampled from pi(.|obs)."""
        from nets.mlp import numpy_stack

        x = np.asarray(obs, np.float32).reshape(len(obs), -1)
        if self.sde is not None:
            return (*self._sde_step(x), self.value(x))
        out = numpy_stack(self.pi, self.pi_activation, x, False)
        n = len(out)
        if self.log_std is None:  # ufuncs' reduce: what max/sum/cumsum call, without their Python wrappers
            if action_mask is not None:
                out = np.where(np.asarray(action_mask, bool), out, np.float32(MASKED_LOGIT))
            z = out - np.maximum.reduce(out, axis=1, keepdims=True)
            logp_all = z - np.log(np.add.reduce(np.exp(z), axis=1, keepdims=True))
            cdf = np.add.accumulate(np.exp(logp_all), axis=1)
            u = torch.rand(n).numpy()[:, None] * cdf[:, -1:]  # < cdf[-1]: never past the last action
            actions = np.add.reduce(cdf <= u, axis=1)  # the first action whose cdf exceeds u (never a masked one)
            logp = logp_all[np.arange(n), actions]
        else:
            log_std = self.log_std
            actions = out + np.exp(log_std) * torch.randn(out.shape).numpy()
            zs = (actions - out) * np.exp(-log_std)
            logp = (-0.5 * zs * zs - log_std - np.float32(0.5 * math.log(2 * math.pi))).sum(axis=1)
        return actions, logp.astype(np.float32, copy=False), self.value(x)

    def _sde_step(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """gSDE's (actions, log-probs): mean + phi E with each env's matrix E held by the head (SDEGaussianDist)."""
        from nets.mlp import numpy_stack

        phi = numpy_stack(self.pi[:-1], self.pi_activation, x, True)
        w, b = self.pi[-1]
        mean = phi @ w + b
        e = self.sde.exploration
        if e is None or len(e) != len(x):  # acting outside a rollout: fresh matrices, as SDEGaussianDist.sample
            e = torch.randn(len(x), *self.log_std.shape) * torch.from_numpy(np.sqrt(self.sigma2))
        noise = np.einsum("bf,bfa->ba", phi, e.numpy())
        var = (phi * phi) @ self.sigma2 + np.float32(SDE_EPS)
        logp = (-0.5 * noise * noise / var - 0.5 * np.log(var) - np.float32(0.5 * math.log(2 * math.pi))).sum(axis=1)
        return mean + noise, logp.astype(np.float32, copy=False)

    def value(self, obs: np.ndarray) -> np.ndarray:
        """V(obs) as a numpy array."""
        from nets.mlp import numpy_stack

        return numpy_stack(self.v, self.v_activation, obs, False)[:, 0]
