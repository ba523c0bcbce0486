"""REINFORCE: Monte-Carlo policy gradient (Williams 1992; Sutton & Barto 13.3-13.4), with an optional baseline.

    policy pi_theta; baseline b: none, the batch mean return, or a learned V_phi(s)   (baseline=none|mean|value)
    repeat until total_steps:
        reset the n_envs envs; run pi_theta until n_episodes episodes have ended (whole episodes only:
            steps of episodes still running at that point are dropped, so no return is cut)
        for each step t of each episode: G_t = sum_{t' >= t} gamma^{t'-t} r_{t'}
        theta <- theta + alpha mean_t (G_t - b_t) grad log pi_theta(a_t|s_t)     (x gamma^t with discount_weight)
        with baseline=value: phi <- phi - alpha vf_coef grad mean_t (G_t - V_phi(s_t))^2

SEEDS.md: "theta <- theta + eta (r_total - b) grad log pi_theta(a_t|s_t)"; with discounting the step-t
term is gamma^t G_t grad log pi (discount_weight=true), which most implementations drop (the default).
A time-limit truncation is not a terminal state: G_t then bootstraps from V(real final obs) when there
is a critic (baseline=value), and counts nothing after the limit otherwise. Returns logged are raw scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from agents.onpolicy import OnPolicyAgent, OnPolicyConfig
from rlkit.config import PositiveFloat, PositiveInt
from rlkit.logger import Logger
from rlkit.rollout import Collector, normalize_advantage

INITIAL_CAPACITY = 256
"""vector steps the episode buffer starts with (it doubles when a batch of episodes runs longer)"""


@dataclass(frozen=True)
class ReinforceConfig(OnPolicyConfig):
    """REINFORCE (no SB3 counterpart; names follow the other policy-gradient agents)."""

    n_episodes: PositiveInt = 4
    """whole episodes per update (summed over the n_envs envs)"""
    lr: PositiveFloat = 1e-3
    """Adam learning rate"""
    baseline: Literal["none", "mean", "value"] = "value"
    """b in (G_t - b): none, the batch's mean return, or a learned state value V(s)"""
    normalize_advantage: bool = False
    """standardize G_t - b over the batch before the policy loss"""
    discount_weight: bool = False
    """weight step t of an episode by gamma^t (Sutton & Barto's REINFORCE; off: the common unweighted form)"""
    max_grad_norm: PositiveFloat | None = None
    """clip the gradient's global norm to this (null: no clipping)"""


def reinforce_loss(logp: torch.Tensor, ret: torch.Tensor, baseline: torch.Tensor, weights: torch.Tensor,
                   normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(-mean(w (G - b) log pi), the advantages G - b used), b and w constants; `normalize` standardizes G - b."""
    adv = (ret - baseline).detach()
    if normalize:
        adv = normalize_advantage(adv)
    return -(weights * adv * logp).mean(), adv


class Reinforce(OnPolicyAgent):
    """Monte-Carlo policy gradient on whole episodes from a vector of envs (Discrete or Box actions)."""

    Config: ClassVar[type[ReinforceConfig]] = ReinforceConfig

    def uses_critic(self) -> bool:
        return self.cfg.baseline == "value"

    def rollout_steps(self) -> int:
        return INITIAL_CAPACITY

    def collect(self, collector: Collector, total_steps: int, logger: Logger) -> None:
        """Fresh episodes in every env, run until n_episodes have ended (or the step budget is spent)."""
        cfg = self.cfg
        self.buffer.reset()
        if not collector.fresh:  # (the first batch starts from learn()'s seeded reset)
            collector.reset()
        budget = math.ceil((self.budget_end(total_steps) - self.step) / cfg.n_envs)
        taken, episodes = collector.collect(self.buffer, budget, self.step, logger, stop_after_episodes=cfg.n_episodes)
        self.step += taken
        self.episode += episodes
        self.buffer.compute_returns(cfg.gamma, bootstrap=self.uses_critic())

    def update(self) -> dict[str, Any]:
        cfg = self.cfg
        mask = self.buffer.complete_episodes_mask()
        if not mask.any():  # the step budget ran out before any episode ended
            return {}
        data = self.buffer.get(self.device, mask)
        logp, entropy, values = self.policy.evaluate(data.obs, data.actions, data.action_masks)
        if cfg.baseline == "value":
            baseline = values
        elif cfg.baseline == "mean":
            baseline = data.ret.mean().expand_as(data.ret)
        else:
            baseline = torch.zeros_like(data.ret)
        weights = torch.ones_like(data.ret)
        if cfg.discount_weight:
            t = torch.as_tensor(self.buffer.episode_time()[mask], device=self.device)
            weights = cfg.gamma ** t.to(data.ret.dtype)
        policy_loss, adv = reinforce_loss(logp, data.ret, baseline, weights, cfg.normalize_advantage)
        entropy_mean = entropy.mean()
        loss = policy_loss - cfg.ent_coef * entropy_mean
        stats = {"losses/policy": policy_loss.item(), "losses/entropy": entropy_mean.item(),
                 "charts/batch_steps": float(mask.sum()), "charts/return_to_go": float(data.ret.mean())}
        if cfg.baseline == "value":
            value_loss = F.mse_loss(values, data.ret)
            loss = loss + cfg.vf_coef * value_loss
            stats["losses/value"] = value_loss.item()
        stats["losses/grad_norm"] = float(self.gradient_step(loss))
        stats["charts/adv_std"] = float(np.std(adv.cpu().numpy()))
        return stats
