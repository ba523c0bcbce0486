"""Advantage actor-critic, synchronous (A2C: Mnih et al. 2016's A3C without the asynchrony), as SB3's A2C.

    policy pi_theta (actor), critic V_phi
    repeat until total_steps:
        run pi_theta for n_steps in each of n_envs envs
        A <- GAE(gamma, gae_lambda) (gae_lambda = 1: the n-step return minus V), R <- A + V
        actor:  theta <- theta + alpha A grad log pi_theta(a|s)        (the notes' actor-critic step,
        critic: phi   <- phi   + beta (R - V_phi(s)) grad V_phi(s)      batched over n_steps x n_envs)
        i.e. one gradient step on  -mean(A log pi) + vf_coef mean((R - V)^2) - ent_coef mean(H)
        with RMSprop (alpha 0.99, eps 1e-5, SB3's defaults) or Adam; lr optionally annealed to 0

Truncated episodes bootstrap from V of their real last observation; reported returns are raw game scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from agents.onpolicy import OnPolicyAgent, OnPolicyConfig, mean_stats
from rlkit.config import PositiveFloat, PositiveInt, Prob
from rlkit.optim import FlatAdam, FlatOptimizer, FlatRMSprop
from rlkit.rollout import normalize_advantage


@dataclass(frozen=True)
class A2CConfig(OnPolicyConfig):
    """A2C (defaults are Stable-Baselines3's A2C; presets tune them per env)."""

    n_steps: PositiveInt = 5
    """vector steps per update (each env contributes n_steps transitions)"""
    lr: PositiveFloat = 7e-4
    """learning rate"""
    gae_lambda: Prob = 1.0
    """GAE lambda (1: plain n-step advantage)"""
    normalize_advantage: bool = False
    """standardize the rollout's advantages before the policy loss"""
    use_rms_prop: bool = True
    """RMSprop (alpha 0.99) as SB3 and the A3C paper; false: Adam"""
    rms_prop_eps: PositiveFloat = 1e-5
    """epsilon of RMSprop (and of Adam when use_rms_prop=false)"""


def a2c_loss(logp: torch.Tensor, adv: torch.Tensor, values: torch.Tensor, ret: torch.Tensor, entropy: torch.Tensor,
             ent_coef: float, vf_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(-mean(A log pi) + vf_coef mean((R - V)^2) - ent_coef mean(H), statistics); A is treated as a constant."""
    policy_loss = -(adv.detach() * logp).mean()
    value_loss = F.mse_loss(values, ret)
    entropy_mean = entropy.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    stats = {"losses/policy": policy_loss.detach(), "losses/value": value_loss.detach(),
             "losses/entropy": entropy_mean.detach()}
    return loss, stats


def a2c_loss_grad(adv: torch.Tensor, values: torch.Tensor, ret: torch.Tensor, ent_coef: float,
                  vf_coef: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The derivatives of a2c_loss with respect to each row's log pi(a|s), V(s) and entropy, for gradients by
    hand (nets.handgrad): -A_i / B, vf_coef 2 (V_i - R_i) / B and -ent_coef / B."""
    n = len(adv)
    with torch.no_grad():
        return adv * (-1.0 / n), (values - ret).mul_(2.0 * vf_coef / n), -ent_coef / n


class A2C(OnPolicyAgent):
    """Synchronous advantage actor-critic over a vector of envs (Discrete or Box actions)."""

    Config: ClassVar[type[A2CConfig]] = A2CConfig
    hand_grad_loss: ClassVar[bool] = True  # a2c_loss_grad: gradient steps by hand where the policy allows

    def make_optimizer(self) -> FlatOptimizer:
        cfg = self.cfg
        if cfg.use_rms_prop:
            return FlatRMSprop(self.policy.parameters(), lr=cfg.lr, alpha=0.99, eps=cfg.rms_prop_eps)
        return FlatAdam(self.policy.parameters(), lr=cfg.lr, eps=cfg.rms_prop_eps)

    def update(self) -> dict[str, Any]:
        cfg = self.cfg
        data = self.buffer.get(self.device)
        adv = normalize_advantage(data.adv) if cfg.normalize_advantage else data.adv
        if self.hand_grad:  # the same numbers without autograd's per-op overhead (small CPU MLPs)
            # the loss's value is not needed here (its gradient does not need the entropies either), only its
            # statistics, and those only when they are logged: one update in 25 on CartPole; with their
            # conversion to floats they cost ~50 us of a ~225 us update (one core)
            logp, entropy, values, tape = self.policy.hand_evaluate(data.obs, data.actions, data.action_masks,
                                                                    entropy=self.log_due)
            stats = a2c_loss(logp, adv, values, data.ret, entropy, cfg.ent_coef, cfg.vf_coef)[1] if self.log_due else {}
            dlogp, dvalues, dentropy = a2c_loss_grad(adv, values, data.ret, cfg.ent_coef, cfg.vf_coef)
            self.policy.hand_backward(tape, dlogp, dentropy, dvalues)
            stats["losses/grad_norm"] = self.optimizer.clip_step(cfg.max_grad_norm)
        else:
            logp, entropy, values = self.policy.evaluate(data.obs, data.actions, data.action_masks)
            loss, stats = a2c_loss(logp, adv, values, data.ret, entropy, cfg.ent_coef, cfg.vf_coef)
            stats["losses/grad_norm"] = self.gradient_step(loss)
        return mean_stats([stats]) if self.log_due else {}
