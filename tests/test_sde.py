"""gSDE (use_sde): its distribution against SB3's, when the exploration matrices are redrawn, what a rollout
stores, that PPO learns with it, and the mistakes it rejects. The updates against SB3's are in
tests/test_sb3_lockstep.py."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.distributions import StateDependentNoiseDistribution

from nets.policy import ActorCritic, SDEGaussianDist, SDEHead
from rlkit.rollout import Collector, RolloutBuffer
from rlkit.vec import make_vec

TARGET_ENV = Path(__file__).parent / "target_env.py"


def test_log_prob_entropy_noise_and_gradients_equal_sb3s():
    """Our head's distribution is SB3's StateDependentNoiseDistribution (full_std, exp, features not learned):
    the same log-probs, entropies and noise for the same matrices, and the same gradients, none of which
    reaches the features through the std."""
    g = torch.Generator().manual_seed(0)
    head = SDEHead(5, 2, log_std_init=-0.5)
    with torch.no_grad():
        head.log_std.add_(0.3 * torch.randn(5, 2, generator=g))
    features = torch.randn(7, 5, generator=g).requires_grad_()
    actions = torch.randn(7, 2, generator=g)
    ref = StateDependentNoiseDistribution(2)
    ref.latent_sde_dim = 5
    log_std_ref = head.log_std.detach().clone().requires_grad_()
    features_ref = features.detach().clone().requires_grad_()

    dist = head(features)
    ref.proba_distribution(torch.nn.functional.linear(features_ref, head.linear.weight, head.linear.bias),
                           log_std_ref, features_ref)
    torch.testing.assert_close(dist.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(dist.entropy(), ref.entropy())

    (dist.log_prob(actions).sum() + dist.entropy().sum()).backward()
    (ref.log_prob(actions).sum() + ref.entropy().sum()).backward()
    torch.testing.assert_close(head.log_std.grad, log_std_ref.grad)
    torch.testing.assert_close(features.grad, features_ref.grad)
    w = head.linear.weight.detach()
    per_row = (actions - dist.mean.detach()) / torch.exp(2 * dist.log_std.detach())  # d log pi / d mean
    torch.testing.assert_close(features.grad, per_row @ w)  # through the mean only

    head.reset_noise(7)
    ref.exploration_matrices = head.exploration
    ref.proba_distribution(dist.mean.detach(), log_std_ref, features_ref)
    torch.testing.assert_close(head(features).sample() - dist.mean.detach(), ref.get_noise(features_ref))


def test_the_matrices_are_drawn_with_the_std_of_log_std():
    torch.manual_seed(0)
    head = SDEHead(4, 3, log_std_init=0.0)
    with torch.no_grad():
        head.log_std.copy_(torch.log(torch.tensor([0.1, 1.0, 3.0])).expand(4, 3))
    head.reset_noise(20_000)
    std = head.exploration.std(dim=(0, 1))
    torch.testing.assert_close(std, torch.tensor([0.1, 1.0, 3.0]), rtol=0.02, atol=0)
    assert head.exploration.shape == (20_000, 4, 3)


@pytest.mark.parametrize("numpy_acting", [True, False])
@pytest.mark.parametrize("freq, fresh_at", [(4, [0, 4, 8]), (-1, [0])])
def test_a_rollout_holds_each_envs_matrix_for_sde_sample_freq_steps(freq, fresh_at, numpy_acting):
    """In a rollout of 10 steps, the matrices are redrawn at its start and every sde_sample_freq steps (-1: at
    the start only), and every stored action is its mean plus the policy's features times its env's matrix,
    with the log-prob the policy gives it; the next rollout starts with fresh matrices. Both acting paths:
    numpy (small CPU MLPs) and torch."""
    torch.manual_seed(0)
    env = make_vec(lambda: gym.make("Pendulum-v1"), 2)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, "mlp", log_std_init=-1.0,
                         use_sde=True, sde_sample_freq=freq)
    assert policy.numpy_acting_available()
    if not numpy_acting:
        policy.numpy_acting_available = lambda: False
    held: list[torch.Tensor] = []
    env_step = env.step

    def spy(actions):
        held.append(policy.pi_head.exploration)
        return env_step(actions)

    env.step = spy
    buffer = RolloutBuffer(10, 2, (3,), np.float32, (1,), np.float32)
    col = Collector(env, policy)
    col.collect(buffer, 10)
    assert [t for t in range(10) if t == 0 or held[t] is not held[t - 1]] == fresh_at
    obs = torch.as_tensor(buffer.obs)  # (10, 2, 3)
    with torch.no_grad():
        features = policy.pi_trunk(obs.reshape(-1, 3)).reshape(10, 2, -1)
        mean = policy.pi_head.linear(features)
        noise = torch.einsum("tef,tefa->tea", features, torch.stack(held))
    np.testing.assert_allclose(buffer.actions, (mean + noise).numpy(), rtol=1e-5, atol=1e-5)
    assert noise.abs().min() > 0
    with torch.no_grad():
        logp, _, _ = policy.evaluate(obs.reshape(-1, 3), torch.as_tensor(buffer.actions).reshape(-1, 1))
    np.testing.assert_allclose(buffer.logp.ravel(), logp.numpy(), rtol=1e-5, atol=1e-5)
    first = held[-1]
    buffer.reset()
    col.collect(buffer, 1)
    assert held[-1] is not first


def test_acting_outside_a_rollout_draws_matrices_for_its_batch():
    """`rlkit eval deterministic=false` acts on one observation with no rollout's matrices: it draws its own."""
    torch.manual_seed(0)
    env = gym.make("Pendulum-v1")
    policy = ActorCritic(env.observation_space, env.action_space, "mlp", use_sde=True)
    policy.pi_head.reset_noise(8)
    obs = torch.randn(1, 3)
    dist = policy.dist(obs)
    assert isinstance(dist, SDEGaussianDist)
    actions, logp, _ = policy.step(obs)
    assert actions.shape == (1, 1) and torch.isfinite(logp).all()
    assert torch.equal(policy.step(obs, deterministic=True)[0], dist.mean)




def test_ppo_with_gsde_learns_a_continuous_action(cli):
    """PPO with gSDE on the one-step task whose best action is 1.5, its observations noise (so the features and
    the exploration vary): the greedy return goes from about -2.25 to above -0.05 in 4,096 steps (seed 0:
    -0.008; seeds 1-3: -0.007, -0.039, -0.002). log_std_init -2, as the zoo's gSDE presets: at 0 the actions'
    std starts near 4, most samples are clipped at the bounds and both sides' PPO (SB3's too) drift to the bound."""
    rc, run, out = cli.train("agent=ppo", f"env={TARGET_ENV}:Target", "env.noisy_obs=true", "use_sde=true",
                             "sde_sample_freq=4", "log_std_init=-2", "n_envs=4", "n_steps=64", "batch_size=64",
                             "n_epochs=4", "lr=3e-3", "total_steps=4096", "eval_episodes=20")
    assert rc == 0, out
    assert json.loads((run / "summary.json").read_text())["final_eval_return_mean"] > -0.05, out


@pytest.mark.parametrize("words, fragment", [
    (["agent=ppo", "env=cartpole", "use_sde=true"], "use_sde=true (gSDE) is exploration for Box actions"),
    (["agent=a2c", "env=pendulum", "use_sde=true", "sde_sample_freq=0"], "sde_sample_freq=0: use -1"),
])
def test_gsde_mistakes_exit_2(cli, words, fragment):
    rc, run, out = cli.train(*words)
    assert rc == 2 and fragment in out and len(out.strip().splitlines()) == 1, out


def test_gsde_on_a_shared_cnn_trunk():
    """Image observations share one cnn trunk between the heads; gSDE's noise then comes from its 512 features."""
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    act_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    policy = ActorCritic(obs_space, act_space, "cnn", use_sde=True, log_std_init=-1.0)
    assert policy.shared and policy.pi_head.log_std.shape == (512, 3)
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    policy.resample_noise(0, 2)
    actions, logp, values = policy.step(obs)
    assert actions.shape == (2, 3) and logp.shape == values.shape == (2,)
    logp2, entropy, _ = policy.evaluate(obs, actions)
    torch.testing.assert_close(logp, logp2)
    (-logp2.sum() - entropy.sum()).backward()
    assert policy.pi_head.log_std.grad.abs().sum() > 0 and policy.pi_trunk.convs[0].weight.grad is not None
