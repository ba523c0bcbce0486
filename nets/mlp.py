"""Multilayer perceptron over a flattened observation."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from rlkit.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


class MLP(nn.Module):
    """x -> Linear -> act -> ... -> Linear(output_dim); Discrete observations are one-hot encoded."""

    def __init__(self, in_dim: int, output_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "relu",
                 one_hot: int | None = None):
        super().__init__()
        self.one_hot = one_hot
        layers: list[nn.Module] = []
        last = in_dim
        for h in hidden:
            layers += [nn.Linear(last, int(h)), ACTIVATIONS[activation]()]
            last = int(h)
        layers.append(nn.Linear(last, output_dim))
        self.body = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot is not None:
            x = nn.functional.one_hot(obs.long().reshape(-1), self.one_hot).float()
        else:
            x = obs.float().reshape(obs.shape[0], -1)
        return self.body(x)


def build_mlp(observation_space: gym.Space, output_dim: int, hidden: Sequence[int] = (64, 64),
              activation: str = "relu") -> MLP:
    """An MLP sized for a Box (flattened) or Discrete (one-hot) observation space."""
    if activation not in ACTIVATIONS:
        raise UserError(f"net.activation={activation}: use one of {', '.join(ACTIVATIONS)}")
    if isinstance(observation_space, gym.spaces.Discrete):
        return MLP(int(observation_space.n), output_dim, hidden, activation, one_hot=int(observation_space.n))
    if isinstance(observation_space, gym.spaces.Box):
        return MLP(int(gym.spaces.flatdim(observation_space)), output_dim, hidden, activation)
    raise UserError(f"net mlp takes Box or Discrete observations, not {observation_space}")
