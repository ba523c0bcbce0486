"""nets.build: an MLP sized from the observation space."""

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
