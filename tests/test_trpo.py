"""TRPO: closed-form KL, the trust-region step on a real rollout, CartPole learning and continuous actions."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.trpo import TRPO, TRPOConfig, kl_divergence, surrogate
from nets.policy import CategoricalDist, DiagGaussianDist
from rlkit.rollout import Collector, RolloutBuffer
from rlkit.vec import make_vec


def test_kl_divergence_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ours = kl_divergence(CategoricalDist(a), CategoricalDist(b))
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=a),
                                            torch.distributions.Categorical(logits=b))
    torch.testing.assert_close(ours, ref)
    m0, m1 = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    s0, s1 = torch.tensor([0.1, -0.5]), torch.tensor([-0.3, 0.2])
    ours = kl_divergence(DiagGaussianDist(m0, s0), DiagGaussianDist(m1, s1))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m0, s0.exp()),
                                            torch.distributions.Normal(m1, s1.exp())).sum(-1)
    torch.testing.assert_close(ours, ref)
    assert torch.allclose(kl_divergence(CategoricalDist(a), CategoricalDist(a)), torch.zeros(5), atol=1e-6)


def test_surrogate_by_hand():
    logp_old = torch.log(torch.tensor([0.5, 0.25]))
    logp = torch.log(torch.tensor([0.6, 0.2]))
    adv = torch.tensor([1.0, -2.0])
    # ratios 1.2 and 0.8: (1.2 * 1 + 0.8 * -2) / 2 = -0.2
    assert surrogate(logp, logp_old, adv).item() == pytest.approx(-0.2)


@pytest.mark.parametrize("env_id, max_kl", [("CartPole-v1", 0.01), ("Pendulum-v1", 0.02)])
def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate(env_id, max_kl):
    env = make_vec(lambda: gym.make(env_id), 2)
    cfg = TRPOConfig(seed=0, n_envs=2, n_steps=256, target_kl=max_kl, device="cpu")
    agent = TRPO(cfg, env)
    agent.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, agent.obs_space.shape, np.float32,
                                 agent.policy.action_shape, agent.policy.action_dtype)
    collector = Collector(env, agent.policy, agent.device)
    collector.reset(seed=0)
    agent.collect(collector, 10_000, None)
    data = agent.buffer.get()
    adv = (data.adv - data.adv.mean()) / (data.adv.std() + 1e-8)
    with torch.no_grad():
        old = agent.policy.dist(data.obs)
        old_logp = old.log_prob(data.actions)
        before = surrogate(old_logp, data.logp, adv).item()
    stats = agent.update()
    with torch.no_grad():
        new = agent.policy.dist(data.obs)
        kl = kl_divergence(old, new).mean().item()
        after = surrogate(new.log_prob(data.actions), data.logp, adv).item()
    assert stats["charts/line_search_success"] == 1.0
    assert 0 < kl <= 1.5 * max_kl, kl
    assert after > before
    assert stats["losses/kl"] == pytest.approx(kl, rel=1e-3)


def test_trpo_learns_cartpole(cli):
    """The zoo preset (2 envs x 512 steps, 100k budget) passes 195 after 40k of its 100k steps on a fixed seed."""
    rc, run, out = cli.train("agent=trpo", "env=cartpole", "seed=0", "total_steps=40000")
    assert rc == 0, out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_eval_return_mean"] >= 195, summary


def test_trpo_continuous_actions_and_resume(cli):
    rc, run, out = cli.train("agent=trpo", "env=pendulum", "total_steps=1024", "n_steps=256", "n_envs=2",
                             "checkpoint_every=512", "eval_episodes=1")
    assert rc == 0, out
    rc, out, err = cli("resume", str(run), "total_steps=2048")
    assert rc == 0, out + err
    assert "trained 2048 steps" in out and "(1024 in this session)" in out  # steps/s counts this session only
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 2048


def test_trpo_rejects_an_entropy_bonus(cli):
    rc, run, out = cli.train("agent=trpo", "env=cartpole", "ent_coef=0.01")
    assert rc == 2 and "no entropy bonus" in out and len(out.strip().splitlines()) == 1, out


def test_trpo_rejects_bf16(cli):
    rc, run, out = cli.train("agent=trpo", "env=cartpole", "precision=bf16")
    assert rc == 2 and "need fp32" in out and len(out.strip().splitlines()) == 1, out
