"""nets.build: trunks (mlp, Nature cnn) sized from the observation space, plain and dueling heads."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import nets
from rlkit.errors import UserError


def test_mlp_box_and_discrete():
    box = gym.spaces.Box(-1, 1, (3, 2), np.float32)
    net = nets.build({"type": "mlp", "hidden": [16, 8], "activation": "tanh"}, box, 5)
    assert net(torch.zeros(7, 3, 2)).shape == (7, 5)
    assert sum(p.numel() for p in net.parameters()) == (6 * 16 + 16) + (16 * 8 + 8) + (8 * 5 + 5)
    net = nets.build("mlp", gym.spaces.Discrete(4), 2)
    out = net(torch.tensor([0, 3]))
    assert out.shape == (2, 2)


def test_bad_specs():
    with pytest.raises(UserError, match="did you mean 'mlp'"):
        nets.build("mlpp", gym.spaces.Discrete(2), 2)
    with pytest.raises(UserError, match="activation"):
        nets.build({"type": "mlp", "activation": "swishy"}, gym.spaces.Discrete(2), 2)
    with pytest.raises(UserError, match="does not take"):
        nets.build({"type": "mlp", "depth": 3}, gym.spaces.Discrete(2), 2)


ATARI = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_cnn_shape_and_uint8_scaling():
    torch.manual_seed(0)
    net = nets.build("cnn", ATARI, 6)
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    q = net(obs)
    assert q.shape == (3, 6) and q.dtype == torch.float32
    torch.testing.assert_close(net(obs.float() / 255), q, rtol=0, atol=0)  # uint8 is scaled inside the net
    scaled = (obs.float() / 255).contiguous(memory_format=torch.channels_last)
    before = scaled.clone()
    torch.testing.assert_close(net(scaled), q, rtol=0, atol=0)
    assert torch.equal(scaled, before)  # a float input already in the trunk's layout is read, not scaled in place


def test_cnn_channels_last_path_is_the_nchw_network():
    """The trunk runs its convolutions on NHWC activations; values and gradients are those of plain NCHW."""
    torch.manual_seed(2)
    trunk = nets.build("cnn", ATARI, 6).trunk
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    features = trunk(obs)
    features.square().sum().backward()
    got = [p.grad.clone() for p in trunk.parameters()]
    assert all(p.is_contiguous() for p in trunk.parameters())  # the optimizers' flat buffers need this
    x = obs.float() / 255
    params = [p.detach().clone().requires_grad_() for p in trunk.parameters()]
    for (w, b), stride in zip(zip(params[0:6:2], params[1:6:2]), (4, 2, 1)):
        x = torch.relu(torch.nn.functional.conv2d(x, w, b, stride=stride))
    ref = torch.relu(torch.nn.functional.linear(x.flatten(1), params[6], params[7]))
    ref.square().sum().backward()
    torch.testing.assert_close(features, ref, rtol=1e-5, atol=1e-5)
    for g, p in zip(got, params):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-4)


def test_cnn_parameter_count_is_the_nature_tower():
    net = nets.build("cnn", ATARI, 6)
    conv1 = 4 * 32 * 8 * 8 + 32
    conv2 = 32 * 64 * 4 * 4 + 64
    conv3 = 64 * 64 * 3 * 3 + 64
    fc = 64 * 7 * 7 * 512 + 512  # 84 -> 20 -> 9 -> 7
    head = 512 * 6 + 6
    assert sum(p.numel() for p in net.trunk.parameters()) == conv1 + conv2 + conv3 + fc
    assert sum(p.numel() for p in net.parameters()) == conv1 + conv2 + conv3 + fc + head == 1_687_206
    assert net.trunk.out_dim == 512


@pytest.mark.parametrize("spec, space", [("mlp", gym.spaces.Box(-1, 1, (5,), np.float32)), ("cnn", ATARI)])
def test_dueling_head_is_v_plus_a_minus_mean_a(spec, space):
    torch.manual_seed(1)
    net = nets.build({"type": spec, "dueling": True}, space, 4)
    obs = torch.as_tensor(np.stack([space.sample() for _ in range(5)]))
    features = net.trunk(obs)
    v = features @ net.head.v.weight.T + net.head.v.bias  # (5, 1)
    adv = features @ net.head.adv.weight.T + net.head.adv.bias  # (5, 4)
    torch.testing.assert_close(net(obs), v + adv - adv.mean(dim=1, keepdim=True))
    assert net(obs).shape == (5, 4)
    n_plain = sum(p.numel() for p in nets.build(spec, space, 4).parameters())
    assert sum(p.numel() for p in net.parameters()) == n_plain + net.trunk.out_dim + 1  # the value stream


def test_default_spec_follows_the_observation_space():
    assert nets.default_spec(ATARI) == {"type": "cnn"}
    assert nets.default_spec(gym.make("CartPole-v1").observation_space) == {"type": "mlp"}
    assert nets.default_spec(gym.spaces.Discrete(16)) == {"type": "mlp"}
    assert nets.default_spec(gym.spaces.Box(0, 1, (4, 84, 84), np.float32)) == {"type": "mlp"}  # images are uint8
    assert nets.default_spec(gym.spaces.Box(0, 255, (3, 8, 8), np.uint8)) == {"type": "mlp"}  # too small for the cnn
    assert type(nets.build(None, ATARI, 2).trunk).__name__ == "NatureCNN"
    assert type(nets.build({"type": None, "dueling": True}, gym.spaces.Discrete(3), 2).trunk).__name__ == "MLP"


def test_a_config_section_serves_every_net():
    from rlkit.config import NetConfig

    # the mlp keys of a config left at their defaults do not bother the cnn ...
    net = nets.build(NetConfig(), ATARI, 3)
    assert type(net.trunk).__name__ == "NatureCNN"
    net = nets.build({"type": "cnn", "hidden": [64, 64], "activation": "relu", "dueling": True}, ATARI, 3)
    assert type(net.head).__name__ == "DuelingHead"
    # ... but set to something else they are a mistake
    with pytest.raises(UserError, match="net.hidden is a setting of mlp, not of cnn"):
        nets.build(NetConfig(type="cnn", hidden=[256]), ATARI, 3)
    net = nets.build(NetConfig(type="mlp", hidden=[32], activation="tanh"), gym.spaces.Discrete(5), 2)
    assert net.trunk.out_dim == 32


@pytest.mark.parametrize("spec, space, fragment", [
    ("cnn", gym.spaces.Discrete(4), r"net cnn takes image observations, a Box of shape \(C, H, W\), not Discrete; "),
    ("cnn", gym.spaces.Box(-1, 1, (4,)), r"not a Box of shape \(4,\); use net=mlp$"),
    ("cnn", gym.spaces.Box(0, 255, (210, 160, 3), np.uint8), "channels last"),
    ({"type": "cnn", "hiden": [3]}, ATARI, "did you mean 'hidden'"),
    ({"type": "cnm"}, ATARI, "did you mean 'cnn'"),
    ({"type": "mlp", "hidden": 256}, ATARI, "list of layer sizes"),
    ({"dueling": "yes"}, ATARI, "net.dueling"),
    (3, ATARI, "a net spec is a name"),
])
def test_bad_net_specs(spec, space, fragment):
    with pytest.raises(UserError, match=fragment):
        nets.build(spec, space, 2)


def test_mlp_fast_forward_equals_its_modules():
    """MLP.forward applies body's layers as functions (and tanh through numpy on CPU): same values and gradients
    as calling the nn.Sequential, including the double backward TRPO's Fisher-vector products take."""
    import gymnasium as gym

    from nets.mlp import build_mlp, fast_tanh

    torch.manual_seed(0)
    for act in ("tanh", "relu"):
        mlp = build_mlp(gym.spaces.Box(-1, 1, (5,)), [16, 8], act)
        x = torch.randn(7, 5)
        torch.testing.assert_close(mlp(x), mlp.body(x))
    x = torch.randn(32, 4, requires_grad=True)
    (g1,) = torch.autograd.grad(fast_tanh(x).pow(3).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(torch.tanh(x).pow(3).sum(), x, create_graph=True)
    torch.testing.assert_close(g1, g2)
    (h1,) = torch.autograd.grad(g1.sum(), x)
    (h2,) = torch.autograd.grad(g2.sum(), x)
    torch.testing.assert_close(h1, h2, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(fast_tanh(x), torch.tanh(x))


@pytest.mark.parametrize("spec", [{"type": "mlp", "hidden": [32, 16]},
                                  {"type": "mlp", "hidden": [8], "activation": "tanh", "dueling": True},
                                  {"type": "mlp", "hidden": []}])
def test_numpy_forward_is_forward_on_the_live_weights(spec):
    """Acting through numpy gives torch's numbers, follows in-place updates and weights given new storage."""
    torch.manual_seed(3)
    space = gym.spaces.Box(-1, 1, (2, 3), np.float32)
    net = nets.build(spec, space, 4)
    assert net.numpy_forward_available()
    obs = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)

    def check() -> None:
        with torch.no_grad():
            want = net(torch.as_tensor(obs)).numpy()
        got = net.numpy_forward(obs)
        assert got.shape == (5, 4) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    check()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(-1.5)
    check()
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight.data = m.weight.data.clone() + 0.25
    check()


def test_numpy_forward_is_not_offered_where_it_does_not_apply():
    assert not nets.build("cnn", ATARI, 6).numpy_forward_available()
    box = gym.spaces.Box(-1, 1, (3,))
    assert not nets.build({"type": "mlp", "activation": "elu"}, box, 2).numpy_forward_available()
    assert not nets.build("mlp", gym.spaces.Discrete(5), 2).numpy_forward_available()  # one-hot input
    assert not nets.build("mlp", box, 2).double().numpy_forward_available()


@pytest.mark.parametrize("spec, in_shape", [({"type": "mlp", "hidden": [32, 16]}, (2, 3)),
                                            ({"type": "mlp", "hidden": [8, 8], "activation": "tanh"}, (40,)),
                                            ({"type": "mlp", "hidden": []}, (5,))])
def test_hand_grad_equals_autograd(spec, in_shape):
    """nets.handgrad gives forward's output and autograd's gradients, and replaces (not adds to) .grad."""
    torch.manual_seed(4)
    net = nets.build(spec, gym.spaces.Box(-1, 1, in_shape, np.float32), 3)
    assert net.hand_grad_layers() is not None
    x = torch.randn(24, *in_shape) * 2
    weights = torch.randn(24, 3)  # loss = sum(weights * out): d loss / d out = weights
    out = net(x)
    (out * weights).sum().backward()
    want = [p.grad.clone() for p in net.parameters()]
    for _ in range(2):  # the second pass finds .grad filled and must overwrite it
        got_out, tape = net.hand_forward(x)
        torch.testing.assert_close(got_out, out.detach())
        net.hand_backward(tape, weights)
        for p, w in zip(net.parameters(), want, strict=True):
            torch.testing.assert_close(p.grad, w, rtol=1e-5, atol=1e-6)
    net.zero_grad(set_to_none=True)  # .grad None: hand_backward allocates it
    net.hand_backward(net.hand_forward(x)[1], weights)
    for p, w in zip(net.parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-5, atol=1e-6)


def test_hand_grad_is_not_offered_where_it_does_not_apply():
    box = gym.spaces.Box(-1, 1, (3,))
    assert nets.build("cnn", ATARI, 6).hand_grad_layers() is None
    assert nets.build({"type": "mlp", "dueling": True}, box, 2).hand_grad_layers() is None
    assert nets.build({"type": "mlp", "activation": "elu"}, box, 2).hand_grad_layers() is None
    assert nets.build("mlp", gym.spaces.Discrete(5), 2).hand_grad_layers() is None  # one-hot input
    assert nets.build("mlp", box, 2).double().hand_grad_layers() is None
