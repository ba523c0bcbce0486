"""Trust Region Policy Optimization (Schulman et al. 2015), as sb3-contrib's TRPO.

    policy pi_theta, critic V_phi (separate MLPs, or one shared cnn trunk on images)
    repeat until total_steps:
        run pi_theta_old for n_steps in each of n_envs envs; A <- GAE(gamma, gae_lambda); R <- A + V_old
        A <- (A - mean A) / std A                                                  normalize_advantage
        L(theta)  = mean_t pi_theta(a_t|s_t) / pi_old(a_t|s_t) A_t                 surrogate advantage
        KL(theta) = mean_t KL(pi_old(.|s_t) || pi_theta(.|s_t))
        g = grad L;  x = (F + cg_damping I)^-1 g by cg_max_steps of conjugate gradient (F = Hessian of KL)
        full step = sqrt(2 target_kl / x.Fx) x
        theta <- theta_old + shrink^k full step, the first k < line_search_max_iter with
                 KL <= target_kl and L improved (else theta stays theta_old)
        n_critic_updates epochs of minibatch Adam (lr) on mean (V_phi(s) - R)^2

The natural-gradient machinery (conjugate gradient, Fisher-vector products, the line search) is
rlkit/natgrad.py; rollouts, GAE and the policy nets are shared with PPO and A2C (agents/onpolicy.py).
Truncated episodes bootstrap from V of their real last observation; reported returns are raw scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from agents.onpolicy import OnPolicyAgent, OnPolicyConfig
from nets.policy import CategoricalDist, DiagGaussianDist
from rlkit.config import NetConfig, NonNegFloat, PositiveFloat, PositiveInt, Prob
from rlkit.errors import UserError
from rlkit.natgrad import backtracking_line_search, conjugate_gradient, fisher_vector_product, flat_grad
from rlkit.rollout import minibatches, normalize_advantage


@dataclass(frozen=True)
class TRPOConfig(OnPolicyConfig):
    """TRPO (defaults are sb3-contrib's TRPO; presets tune them per env)."""

    lr: PositiveFloat = 1e-3
    """learning rate of the critic's Adam (the policy moves by the natural-gradient step)"""
    n_steps: PositiveInt = 2048
    """vector steps per rollout (each env contributes n_steps transitions)"""
    batch_size: PositiveInt = 128
    """minibatch size of the critic's regression"""
    gae_lambda: Prob = 0.95
    """GAE lambda: 1 is Monte Carlo with a bootstrap, 0 is one-step TD"""
    n_critic_updates: PositiveInt = 10
    """epochs of critic regression per rollout"""
    cg_max_steps: PositiveInt = 15
    """conjugate-gradient iterations for x = F^-1 g"""
    cg_damping: PositiveFloat = 0.1
    """damping added to the Fisher matrix (F + damping I) for a well-conditioned solve"""
    line_search_shrinking_factor: PositiveFloat = 0.8
    """step multiplier per rejected line-search try (< 1)"""
    line_search_max_iter: PositiveInt = 10
    """line-search tries before the update is rejected"""
    target_kl: PositiveFloat = 0.01
    """trust region: the largest mean KL(old || new) a policy step may take (max_kl in the paper)"""
    max_grad_norm: PositiveFloat | None = None
    """clip the critic's gradient norm (null: no clipping, as sb3-contrib)"""
    ent_coef: NonNegFloat = 0.0
    """not used by TRPO (its step has no entropy term); must stay 0"""
    vf_coef: NonNegFloat = 0.5
    """not used by TRPO (the critic has its own optimizer and loss)"""
    net: NetConfig = field(default_factory=lambda: NetConfig(activation="tanh"))
    """policy and value trunks (SB3's MlpPolicy: two tanh MLPs [64, 64]; net=cnn for images)"""


# --------------------------------------------------------------------------------------------------
# The math, as pure functions (tests call them with hand-made tensors)


def kl_divergence(old: CategoricalDist | DiagGaussianDist, new: CategoricalDist | DiagGaussianDist) -> torch.Tensor:
    """KL(old || new) per row, in closed form for categorical and diagonal Gaussian distributions."""
    if isinstance(old, CategoricalDist):
        return (old.logp_all.exp() * (old.logp_all - new.logp_all)).sum(-1)
    var_old, var_new = (2 * old.log_std).exp(), (2 * new.log_std).exp()
    per_dim = new.log_std - old.log_std + (var_old + (old.mean - new.mean).pow(2)) / (2 * var_new) - 0.5
    return per_dim.sum(-1)


def surrogate(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """L = mean ratio * A with ratio = pi(a|s) / pi_old(a|s): the objective the natural step ascends."""
    return ((logp - logp_old).exp() * adv).mean()


def _detached(dist: CategoricalDist | DiagGaussianDist) -> CategoricalDist | DiagGaussianDist:
    if isinstance(dist, CategoricalDist):
        out = CategoricalDist.__new__(CategoricalDist)
        out.logp_all = dist.logp_all.detach()
        return out
    return DiagGaussianDist(dist.mean.detach(), dist.log_std.detach())


# --------------------------------------------------------------------------------------------------
# The agent


class TRPO(OnPolicyAgent):
    """Natural-gradient policy steps inside a KL trust region, with a regressed critic."""

    Config: ClassVar[type[TRPOConfig]] = TRPOConfig

    def __init__(self, cfg: TRPOConfig, env: Any):
        if cfg.precision != "fp32":
            raise UserError("trpo's conjugate gradient and line search need fp32 (precision=fp32); "
                            "precision=bf16 is for ppo, a2c and reinforce")
        if cfg.ent_coef != 0:
            raise UserError(f"ent_coef={cfg.ent_coef}: trpo's natural step has no entropy bonus; use ent_coef=0 "
                            "(or agent=ppo / a2c for an entropy bonus)")
        super().__init__(cfg, env)
        # the policy's parameters: everything but the value net (a shared cnn trunk moves with the policy)
        self.actor_params = [p for name, p in self.policy.named_parameters()
                             if not name.startswith(("v_trunk.", "v_head."))]

    def update(self) -> dict[str, Any]:
        cfg = self.cfg
        data = self.buffer.get(self.device)
        adv = normalize_advantage(data.adv) if cfg.normalize_advantage else data.adv

        # -- the policy: one natural-gradient step, shrunk until inside the trust region --------------
        with torch.no_grad():
            old_dist = _detached(self.policy.dist(data.obs, data.action_masks))

        def objective() -> torch.Tensor:
            dist = self.policy.dist(data.obs, data.action_masks)
            return surrogate(dist.log_prob(data.actions), data.logp, adv)

        def mean_kl() -> torch.Tensor:
            return kl_divergence(old_dist, self.policy.dist(data.obs, data.action_masks)).mean()

        policy_objective = objective()
        g = flat_grad(policy_objective, self.actor_params)
        fvp = fisher_vector_product(mean_kl, self.actor_params, cfg.cg_damping)
        x = conjugate_gradient(fvp, g, cfg.cg_max_steps)
        xfx = float(x @ fvp(x))
        full_step = (2 * cfg.target_kl / max(xfx, 1e-12)) ** 0.5 * x
        search = backtracking_line_search(self.actor_params, full_step, objective, mean_kl, cfg.target_kl,
                                          cfg.line_search_shrinking_factor, cfg.line_search_max_iter)

        # -- the critic: regression on the GAE returns -----------------------------------------------
        value_losses = []
        for _ in range(cfg.n_critic_updates):
            for mb in minibatches(data, cfg.batch_size, self.rng):
                loss = F.mse_loss(self.policy.value(mb.obs), mb.ret)
                self.gradient_step(loss)
                value_losses.append(float(loss.detach()))

        out = {
            "losses/policy": -float(policy_objective.detach()),
            "losses/value": sum(value_losses) / max(len(value_losses), 1),
            "losses/kl": search.kl if search.accepted else 0.0,
            "losses/improvement": search.improvement,
            "charts/line_search_success": float(search.accepted),
            "charts/step_fraction": search.step_fraction,
        }
        if hasattr(self.policy.pi_head, "log_std"):
            out["charts/std"] = float(self.policy.pi_head.log_std.detach().exp().mean())
        return out
