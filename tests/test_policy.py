"""Policy heads and ActorCritic: action masks, Gaussian log-probs and entropies against torch.distributions,
clipping of Box actions, shared and separate trunks, SB3's initialization."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from nets.policy import ActorCritic, CategoricalHead, GaussianHead, ValueHead, clip_actions
from rlkit.errors import UserError

ATARI = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def test_categorical_head_matches_torch_and_respects_masks():
    torch.manual_seed(0)
    head = CategoricalHead(5, 4)
    x = torch.randn(6, 5)
    d = head(x)
    ref = torch.distributions.Categorical(logits=head.linear(x))
    a = torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(d.log_prob(a), ref.log_prob(a))
    torch.testing.assert_close(d.entropy(), ref.entropy())
    mask = torch.tensor([[True, False, True, False]] * 3 + [[False, False, False, True]] * 3)
    dm = head(x, mask)
    assert set(dm.sample().tolist()[:3]) <= {0, 2} and dm.mode()[3:].tolist() == [3, 3, 3]
    samples = torch.stack([dm.sample() for _ in range(200)])
    assert mask.gather(1, samples.T).all()  # never a forbidden action
    assert torch.isfinite(dm.entropy()).all() and torch.allclose(dm.entropy()[3:], torch.zeros(3))
    assert (dm.log_prob(torch.tensor([1, 1, 1, 0, 0, 0])) < -1e7).all()
    torch.testing.assert_close(dm.logp_all[:3, [0, 2]].exp().sum(1), torch.ones(3))


def test_gaussian_head_log_prob_and_entropy_match_torch():
    torch.manual_seed(1)
    head = GaussianHead(3, 2, log_std_init=-0.7)
    assert torch.allclose(head.log_std, torch.tensor([-0.7, -0.7]))
    x = torch.randn(5, 3)
    d = head(x)
    ref = torch.distributions.Normal(head.linear(x), torch.exp(head.log_std))
    a = torch.randn(5, 2) * 3
    torch.testing.assert_close(d.log_prob(a), ref.log_prob(a).sum(-1))
    torch.testing.assert_close(d.entropy(), ref.entropy().sum(-1))
    torch.testing.assert_close(d.mode(), head.linear(x))
    s = torch.stack([d.sample() for _ in range(4000)])
    assert torch.allclose(s.std(0), torch.full((5, 2), float(np.exp(-0.7))), atol=0.05)
    d.log_prob(a).sum().backward()  # gradients reach both the mean and the state-independent log std
    assert head.log_std.grad is not None and head.linear.weight.grad is not None


def test_value_head_and_clipping():
    assert ValueHead(3)(torch.zeros(7, 3)).shape == (7,)
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    out = clip_actions(np.array([[3.0, -1.0], [0.5, 0.5], [-9.0, 9.0]]), space)
    assert out.dtype == np.float32 and out.tolist() == [[2.0, 0.0], [0.5, 0.5], [-2.0, 1.0]]
    pendulum = gym.make("Pendulum-v1").action_space
    ac = ActorCritic(gym.make("Pendulum-v1").observation_space, pendulum, log_std_init=3.0)
    torch.manual_seed(0)
    actions, logp, _ = ac.step(torch.zeros(64, 3))
    assert actions.abs().max() > 2.0  # std e^3: samples leave the bounds ...
    env_a = ac.env_actions(actions.numpy())
    assert env_a.shape == (64, 1) and np.abs(env_a).max() <= 2.0  # ... the env only sees them clipped
    torch.testing.assert_close(logp, ac.dist(torch.zeros(64, 3)).log_prob(actions))  # log-prob of the raw sample


def test_actor_critic_trunks_heads_and_init():
    discrete = gym.spaces.Discrete(3)
    ac = ActorCritic(BOX4, discrete, {"type": "mlp", "hidden": [8], "activation": "tanh"})
    assert not ac.shared and ac.v_trunk is not None
    n_sep = sum(p.numel() for p in ac.parameters())
    assert n_sep == 2 * (4 * 8 + 8) + (8 * 3 + 3) + (8 + 1)
    shared = ActorCritic(BOX4, discrete, {"type": "mlp", "hidden": [8]}, share_trunk=True)
    assert sum(p.numel() for p in shared.parameters()) == n_sep - (4 * 8 + 8)
    # SB3 / CleanRL init: policy head gain 0.01 (near-uniform start), value head gain 1, zero biases
    assert ac.pi_head.linear.weight.abs().max() < 0.05 and not ac.pi_head.linear.bias.any()
    w = ac.pi_trunk.body[0].weight
    torch.testing.assert_close(w.T @ w, 2.0 * torch.eye(4), atol=1e-5, rtol=0)  # orthogonal columns, gain sqrt(2)
    obs = torch.randn(10, 4)
    a, logp, v = ac.step(obs)
    logp2, ent, v2 = ac.evaluate(obs, a)
    torch.testing.assert_close(logp, logp2)
    torch.testing.assert_close(v, v2)
    assert ent.shape == (10,) and torch.equal(ac.step(obs, deterministic=True)[0], ac.dist(obs).mode())
    # the cnn trunk is shared by default; without a critic the values are zeros
    cnn = ActorCritic(ATARI, gym.spaces.Discrete(6))
    assert cnn.shared and cnn.v_trunk is None
    a, _, v = cnn.step(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert a.shape == (2,) and v.shape == (2,)
    actor_only = ActorCritic(BOX4, discrete, critic=False)
    assert actor_only.v_head is None and not actor_only.value(obs).any()


@pytest.mark.parametrize("net, space, fragment", [
    ({"type": "mlp", "dueling": True}, gym.spaces.Discrete(2), "dueling"),
    (None, gym.spaces.MultiBinary(3), "Discrete or Box"),
])
def test_actor_critic_user_errors(net, space, fragment):
    with pytest.raises(UserError, match=fragment):
        ActorCritic(BOX4, space, net)


def test_bf16_trunks_track_fp32_and_train():
    """precision=bf16 runs the cnn trunk under bfloat16 autocast: fp32 outputs close to fp32's, gradients flow."""
    import gymnasium as gym
    import numpy as np
    import torch

    from nets.policy import ActorCritic

    obs_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    torch.manual_seed(0)
    ref = ActorCritic(obs_space, gym.spaces.Discrete(6), "cnn")
    half = ActorCritic(obs_space, gym.spaces.Discrete(6), "cnn", precision="bf16")
    half.load_state_dict(ref.state_dict())
    obs = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 6, (8,))
    logp32, _, v32 = ref.evaluate(obs, actions)
    logp16, ent16, v16 = half.evaluate(obs, actions)
    assert logp16.dtype == v16.dtype == torch.float32 and not torch.equal(v16, v32)
    torch.testing.assert_close(logp16, logp32, atol=2e-2, rtol=0)
    torch.testing.assert_close(v16, v32, atol=5e-2 * (v32.abs().max().item() + 1), rtol=0)
    (-(logp16.mean()) + v16.pow(2).mean()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in half.pi_trunk.parameters())


@pytest.mark.parametrize("space, masked", [(gym.spaces.Discrete(3), False), (gym.spaces.Discrete(3), True),
                                           (gym.spaces.Box(-1, 1, (2,), np.float32), False)])
def test_hand_gradients_equal_autograd(space, masked):
    """hand_evaluate + hand_backward give evaluate's numbers and autograd's gradients for any loss of
    (log pi, entropy, V): here sum(u log pi + w V) + c sum(H)."""
    torch.manual_seed(2)
    obs_space = gym.spaces.Box(-1, 1, (5,), np.float32)
    ac = ActorCritic(obs_space, space, {"type": "mlp", "hidden": [16, 8], "activation": "tanh"}, log_std_init=-0.3)
    assert ac.hand_grad_available()
    n = 12
    obs = torch.randn(n, 5)
    mask = torch.rand(n, 3) < 0.6 if masked else None
    if mask is not None:
        mask[:, 1] = True  # every row allows the action it took
    actions = torch.ones(n, dtype=torch.long) if isinstance(space, gym.spaces.Discrete) else torch.randn(n, 2)
    u, w, c = torch.randn(n), torch.randn(n), 0.37
    logp, ent, v = ac.evaluate(obs, actions, mask)
    ((u * logp).sum() + (w * v).sum() + c * ent.sum()).backward()
    want = [p.grad.clone() for p in ac.parameters()]
    ac.zero_grad(set_to_none=False)
    hlogp, hent, hv, tape = ac.hand_evaluate(obs, actions, mask)
    for got, ref in ((hlogp, logp), (hent, ent), (hv, v)):
        torch.testing.assert_close(got, ref.detach())
    ac.hand_backward(tape, u, c, w)
    for (name, p), ref in zip(ac.named_parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, ref, rtol=1e-5, atol=1e-6, msg=name)


def test_hand_gradients_are_not_offered_where_they_do_not_apply():
    box, atari = gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert not ActorCritic(atari, gym.spaces.Discrete(6), "cnn").hand_grad_available()
    assert not ActorCritic(box, gym.spaces.Discrete(2), share_trunk=True).hand_grad_available()
    assert not ActorCritic(box, gym.spaces.Discrete(2), critic=False).hand_grad_available()
    assert not ActorCritic(box, gym.spaces.Discrete(2), {"type": "mlp", "activation": "elu"}).hand_grad_available()
    assert not ActorCritic(box, gym.spaces.Discrete(2), precision="bf16").hand_grad_available()
    ac = ActorCritic(box, gym.spaces.Discrete(2))
    assert ac.hand_grad_available() and not ac.double().hand_grad_available()  # the cached answer follows .double()


def test_numpy_step_samples_the_policy_and_reports_its_numbers():
    """numpy_step (acting on a few observations) draws from pi(.|s), never a masked action, and returns the
    log-probs and values evaluate() gives; Box actions use the same torch noise as step()."""
    torch.manual_seed(5)
    obs_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    ac = ActorCritic(obs_space, gym.spaces.Discrete(3), {"type": "mlp", "hidden": [8]}, ortho_init=False)
    assert ac.numpy_acting_available()
    one = np.random.default_rng(0).normal(size=(1, 4)).astype(np.float32)
    obs = np.repeat(one, 6000, axis=0)
    mask = np.ones((6000, 3), bool)
    mask[3000:, 0] = False
    actions, logp, values = ac.numpy_step(obs, mask)
    with torch.no_grad():
        ref_logp, _, ref_v = ac.evaluate(torch.as_tensor(obs), torch.as_tensor(actions), torch.as_tensor(mask))
        probs = [ac.dist(torch.as_tensor(one), torch.as_tensor(m[None])).logp_all.exp()[0].numpy()
                 for m in (mask[0], mask[-1])]
    np.testing.assert_allclose(logp, ref_logp.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, ref_v.numpy(), rtol=1e-5, atol=1e-6)
    assert not (actions[3000:] == 0).any()
    for half, p in zip((actions[:3000], actions[3000:]), probs):
        freq = np.bincount(half, minlength=3) / 3000
        assert np.abs(freq - p).max() < 4 * np.sqrt(p.max() * (1 - p.min()) / 3000) + 1e-3, (freq, p)

    box = ActorCritic(obs_space, gym.spaces.Box(-2, 2, (2,), np.float32), log_std_init=-0.5)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    torch.manual_seed(9)
    a_np, logp_np, v_np = box.numpy_step(x)
    torch.manual_seed(9)
    with torch.no_grad():
        a_t, logp_t, v_t = box.step(torch.as_tensor(x))
    for got, want in ((a_np, a_t), (logp_np, logp_t), (v_np, v_t)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_numpy_actor_acts_with_the_live_weights_after_they_move():
    """The numpy views of the weights are rebuilt when their storage moves (a flat optimizer takes the
    parameters; `.data` replaced), so each new actor computes with the live weights."""
    from rlkit.optim import FlatAdam

    ac = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2))
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    v0 = ac.numpy_actor().value(x)
    FlatAdam(ac.parameters())  # every parameter becomes a view into one flat buffer
    with torch.no_grad():
        ac.v_head.linear.bias.add_(1.0)
    np.testing.assert_allclose(ac.numpy_actor().value(x), v0 + 1.0, rtol=1e-6)
    ac.v_head.linear.bias.data = ac.v_head.linear.bias.data + 1.0
    np.testing.assert_allclose(ac.numpy_actor().value(x), v0 + 2.0, rtol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(ac.value(torch.as_tensor(x)).numpy(), v0 + 2.0, rtol=1e-5)


@pytest.mark.parametrize("numpy_acting", [True, False])
def test_gaussian_samples_are_pi_s_to_a_fraction_of_a_percent(numpy_acting):
    """200k samples from a Pendulum policy: (a - mean) / std has mean 0 and std 1 to within 0.01 (5 standard
    errors), and each stored log-prob is pi's, on both acting paths (numpy: what rollouts use on small CPU MLPs)."""
    space = gym.make("Pendulum-v1")
    ac = ActorCritic(space.observation_space, space.action_space, log_std_init=-0.7)
    with torch.no_grad():
        ac.pi_head.linear.bias.fill_(0.8)
    obs = np.random.default_rng(0).uniform(-1, 1, (200_000, 3)).astype(np.float32)
    torch.manual_seed(0)
    if numpy_acting:
        actions, logp, _ = ac.numpy_actor().step(obs)
    else:
        with torch.no_grad():
            actions, logp, _ = (x.numpy() for x in ac.step(torch.as_tensor(obs)))
    with torch.no_grad():
        dist = ac.dist(torch.as_tensor(obs))
        mean = dist.mean.numpy()
        want_logp = dist.log_prob(torch.as_tensor(actions)).numpy()
    z = (actions - mean).ravel() / np.exp(-0.7)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01, (z.mean(), z.std())
    np.testing.assert_allclose(logp, want_logp, atol=1e-4)
