"""Output heads, and `Net`: the trunk (observation -> features) followed by a head (features -> outputs)."""

from __future__ import annotations

import torch
from torch import nn


class DuelingHead(nn.Module):
    """Q = V + A - mean_a A (Wang et al. 2016, eq. 9), from separate linear value and advantage streams.

    Subtracting the mean advantage makes V and A identifiable without changing the greedy action.
    """

    def __init__(self, in_dim: int, n_actions: int):
        super().__init__()
        self.v = nn.Linear(in_dim, 1)
        self.adv = nn.Linear(in_dim, n_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.adv(features)
        return self.v(features) + adv - adv.mean(dim=-1, keepdim=True)


def make_head(in_dim: int, output_dim: int, dueling: bool = False) -> nn.Module:
    """A plain Linear(in_dim, output_dim), or the dueling head."""
    return DuelingHead(in_dim, output_dim) if dueling else nn.Linear(in_dim, output_dim)


class Net(nn.Module):
    """trunk (observation batch -> features of size trunk.out_dim) then head (features -> output_dim numbers)."""

    def __init__(self, trunk: nn.Module, head: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))
