"""Proximal Policy Optimization with the clipped surrogate objective (Schulman et al. 2017), as SB3 and CleanRL.

    policy pi_theta, critic V_phi (separate MLPs, or one shared cnn trunk on images)
    repeat until total_steps:
        run pi_theta_old for n_steps in each of n_envs envs; store s, a, log pi_old(a|s), V_old(s), r, flags
        A <- GAE(gamma, gae_lambda), bootstrapped from V(real final obs) on truncation; R <- A + V_old
        for n_epochs epochs:
          after the first, if recompute_adv: A, R <- GAE again with V_phi as it is now  (Andrychowicz et al. 2020)
          for each minibatch of batch_size (s, a, A, R) in random order (one: the whole rollout):
            A   <- (A - mean A) / std A                                                 normalize_advantage
            rho <- pi_theta(a|s) / pi_theta_old(a|s)
            L_clip <- mean min(rho A, clip(rho, 1 - eps, 1 + eps) A)                    eps = clip_range
            L_V    <- mean (V_phi(s) - R)^2   (V_phi clipped to V_old +- clip_range_vf if set)
            stop all epochs if the approximate KL(old || new) > 1.5 target_kl           (SB3's early stop)
            minimize -L_clip + vf_coef L_V - ent_coef H[pi_theta(.|s)], gradient norm clipped to max_grad_norm
        lr and clip_range may decay linearly to 0 (anneal_lr, clip_range.end=0)

Truncated episodes bootstrap from V of their real last observation; reported returns are raw game scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from agents.onpolicy import OnPolicyAgent, OnPolicyConfig, mean_stats
from rlkit import schedules
from rlkit.config import PositiveFloat, PositiveInt, Prob, Schedule
from rlkit.errors import UserError
from rlkit.rollout import Batch, minibatches, normalize_advantage


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO (defaults are Stable-Baselines3's PPO; presets tune them per env)."""

    n_steps: PositiveInt = 2048
    """vector steps per rollout (each env contributes n_steps transitions)"""
    batch_size: PositiveInt = 64
    """minibatch size in transitions"""
    n_epochs: PositiveInt = 10
    """passes over each rollout"""
    gae_lambda: Prob = 0.95
    """GAE lambda: 1 is Monte Carlo with a bootstrap, 0 is one-step TD"""
    clip_range: Schedule = field(default_factory=lambda: Schedule(0.2))
    """surrogate clip epsilon (clip_range=0.2; linear to 0 like the zoo's lin_0.2: clip_range.end=0)"""
    clip_range_vf: PositiveFloat | None = None
    """clip the new value to old +- this (null: no value clipping; depends on the reward scale)"""
    target_kl: PositiveFloat | None = None
    """stop the update's epochs once a minibatch's approximate KL exceeds 1.5 x this (null: never)"""
    recompute_adv: bool = False
    """recompute advantages and value targets by GAE with the current critic before every epoch after the first
    (recommended by Andrychowicz et al. 2020, "What Matters in On-Policy RL"; SB3 and CleanRL compute them once)"""


# --------------------------------------------------------------------------------------------------
# The loss, as a pure function (tests call it with hand-made tensors)


def ppo_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, values: torch.Tensor,
             values_old: torch.Tensor, ret: torch.Tensor, entropy: torch.Tensor, clip_range: float,
             clip_range_vf: float | None, ent_coef: float,
             vf_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(-L_clip + vf_coef L_V - ent_coef H, statistics) for one minibatch, as in SB3's PPO.train.

    The statistics (detached 0-d tensors): losses/policy (-L_clip), losses/value (L_V), losses/entropy
    (mean H), losses/approx_kl (mean of (rho - 1) - log rho, Schulman's low-variance estimator),
    losses/clip_fraction."""
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv).mean()
    if clip_range_vf is not None:
        values = values_old + (values - values_old).clamp(-clip_range_vf, clip_range_vf)
    value_loss = F.mse_loss(values, ret)
    entropy_mean = entropy.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    with torch.no_grad():
        stats = {
            "losses/policy": policy_loss.detach(),
            "losses/value": value_loss.detach(),
            "losses/entropy": entropy_mean.detach(),
            "losses/approx_kl": ((ratio - 1) - log_ratio).mean(),
            "losses/clip_fraction": ((ratio - 1).abs() > clip_range).float().mean(),
        }
    return loss, stats


def ppo_loss_grad(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, values: torch.Tensor,
                  values_old: torch.Tensor, ret: torch.Tensor, clip_range: float, clip_range_vf: float | None,
                  ent_coef: float, vf_coef: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The derivatives of ppo_loss with respect to each row's log pi(a|s), V(s) and entropy, for gradients by
    hand (nets.handgrad):

        d/d log pi_i = -rho_i A_i [rho_i A_i <= clip(rho_i) A_i] / B    (where the unclipped term is the min)
        d/d V_i      = vf_coef 2 (V'_i - R_i) [V' follows V] / B      (V' = V, or V_old + clip(V - V_old, +-vf))
        d/d H_i      = -ent_coef / B
    """
    n = len(logp)
    with torch.no_grad():
        ratio = (logp - logp_old).exp()
        surr = ratio * adv
        dlogp = torch.where(surr <= ratio.clamp(1 - clip_range, 1 + clip_range) * adv, surr, 0.0).mul_(-1.0 / n)
        if clip_range_vf is None:
            dvalues = (values - ret).mul_(2.0 * vf_coef / n)
        else:
            delta = values - values_old
            dvalues = (values_old + delta.clamp(-clip_range_vf, clip_range_vf) - ret).mul_(2.0 * vf_coef / n)
            dvalues.mul_(delta.abs() <= clip_range_vf)
    return dlogp, dvalues, -ent_coef / n


# --------------------------------------------------------------------------------------------------
# The agent


class PPO(OnPolicyAgent):
    """Clipped-surrogate PPO over a vector of envs (Discrete or Box actions)."""

    Config: ClassVar[type[PPOConfig]] = PPOConfig
    hand_grad_loss: ClassVar[bool] = True  # ppo_loss_grad: gradient steps by hand where the policy allows

    def __init__(self, cfg: PPOConfig, env: Any):
        cr = cfg.clip_range
        if cr.start <= 0 or (cr.end is not None and cr.end < 0):
            raise UserError(f"clip_range={cr.start}" + ("" if cr.end is None else f" -> {cr.end}") +
                            ": the clip range must be > 0 (e.g. clip_range=0.2; clip_range.end=0 anneals it to 0)")
        super().__init__(cfg, env)

    def update(self) -> dict[str, Any]:
        cfg = self.cfg
        progress = self.step / cfg.total_steps
        clip_range = schedules.value(cfg.clip_range, progress)
        data = self.buffer.get(self.device)
        # one minibatch holding the whole rollout (CartPole's preset): the same gradient in any row order,
        # so no shuffling, and its advantages are normalized once instead of once per epoch
        whole = cfg.batch_size >= len(data.obs)
        if whole and cfg.normalize_advantage:
            data = data._replace(adv=normalize_advantage(data.adv))
        history: list[dict[str, torch.Tensor]] = []
        stopped_early = False
        for epoch in range(cfg.n_epochs):
            if cfg.recompute_adv and epoch > 0:
                data = self.recomputed_advantages(data, normalize=whole and cfg.normalize_advantage)
            for mb in [data] if whole else minibatches(data, cfg.batch_size, self.rng):
                if self.hand_grad:  # the same numbers without autograd's per-op overhead (small CPU MLPs)
                    logp, entropy, values, tape = self.policy.hand_evaluate(mb.obs, mb.actions, mb.action_masks)
                else:
                    logp, entropy, values = self.policy.evaluate(mb.obs, mb.actions, mb.action_masks)
                adv = normalize_advantage(mb.adv) if cfg.normalize_advantage and not whole else mb.adv
                loss, stats = ppo_loss(logp, mb.logp, adv, values, mb.values, mb.ret, entropy, clip_range,
                                       cfg.clip_range_vf, cfg.ent_coef, cfg.vf_coef)
                history.append(stats)
                if cfg.target_kl is not None and float(stats["losses/approx_kl"]) > 1.5 * cfg.target_kl:
                    stopped_early = True
                    break
                if self.hand_grad:
                    dlogp, dvalues, dentropy = ppo_loss_grad(logp, mb.logp, adv, values, mb.values, mb.ret,
                                                             clip_range, cfg.clip_range_vf, cfg.ent_coef, cfg.vf_coef)
                    self.policy.hand_backward(tape, dlogp, dentropy, dvalues)
                    stats["losses/grad_norm"] = self.optimizer.clip_step(cfg.max_grad_norm)
                else:
                    stats["losses/grad_norm"] = self.gradient_step(loss)
            if stopped_early:
                break
        out = mean_stats(history)
        out.setdefault("losses/grad_norm", 0.0)
        out["charts/clip_range"] = clip_range
        out["charts/early_stop"] = float(stopped_early)
        if hasattr(self.policy.pi_head, "log_std"):
            out["charts/std"] = self.policy.pi_head.log_std.detach().exp().mean().item()
        return out

    @torch.no_grad()
    def recomputed_advantages(self, data: Batch, normalize: bool) -> Batch:
        """`data` with A and R from GAE over the rollout again, V(s) (and the bootstraps) from the critic as it is
        now; V_old stays for value clipping. `normalize`: standardize A here (the whole-rollout minibatch)."""
        def value_fn(obs: np.ndarray) -> np.ndarray:
            return self.policy.value(torch.as_tensor(obs, device=self.device)).float().cpu().numpy()

        self.buffer.recompute_gae(value_fn, self.cfg.gamma, self.cfg.gae_lambda)
        adv = torch.as_tensor(self.buffer.adv.reshape(-1), device=self.device)
        ret = torch.as_tensor(self.buffer.ret.reshape(-1), device=self.device)
        return data._replace(adv=normalize_advantage(adv) if normalize else adv, ret=ret)
