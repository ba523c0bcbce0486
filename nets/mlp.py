"""Multilayer perceptron trunk over a flattened (Box) or one-hot (Discrete) observation."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from rlkit.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


class MLP(nn.Module):
    """x -> (Linear -> activation) per hidden size; Discrete observations are one-hot encoded.

    `out_dim` is the last hidden size (the input size when there is no hidden layer)."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "relu",
                 one_hot: int | None = None):
        super().__init__()
        self.one_hot = one_hot
        layers: list[nn.Module] = []
        last = in_dim
        for h in hidden:
            layers += [nn.Linear(last, int(h)), ACTIVATIONS[activation]()]
            last = int(h)
        self.body = nn.Sequential(*layers)
        self.out_dim = last

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot is not None:
            x = nn.functional.one_hot(obs.long().reshape(-1), self.one_hot).float()
        else:
            x = obs.float().reshape(obs.shape[0], -1)
        return self.body(x)


def build_mlp(observation_space: gym.Space, hidden: Sequence[int] = (64, 64), activation: str = "relu") -> MLP:
    """An MLP trunk sized for a Box (flattened) or Discrete (one-hot) observation space."""
    if activation not in ACTIVATIONS:
        raise UserError(f"net.activation={activation}: use one of {', '.join(ACTIVATIONS)}")
    if (isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence)
            or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)):
        raise UserError(f"net.hidden={hidden}: give a list of layer sizes, e.g. net.hidden=[64,64] (or [] for none)")
    if isinstance(observation_space, gym.spaces.Discrete):
        n = int(observation_space.n)
        return MLP(n, hidden, activation, one_hot=n)
    if isinstance(observation_space, gym.spaces.Box):
        return MLP(int(gym.spaces.flatdim(observation_space)), hidden, activation)
    raise UserError(f"net mlp takes Box or Discrete observations, not {observation_space}")
