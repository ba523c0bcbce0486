"""Output heads, and `Net`: the trunk (observation -> features) followed by a head (features -> outputs)."""

from __future__ import annotations

import numpy as np
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

    def hand_grad_layers(self) -> list[nn.Linear] | None:
        """The Linear layers (trunk's, then the head) if nets.handgrad can run this net: a float-input
        relu/tanh MLP trunk and a plain linear head in float32; None otherwise (use autograd)."""
        from nets import handgrad
        from nets.mlp import MLP

        trunk = self.trunk
        if not (isinstance(trunk, MLP) and trunk.one_hot is None and type(self.head) is nn.Linear):
            return None
        layers = [*trunk._linears, self.head]
        return layers if handgrad.supported(layers, trunk.activation) else None

    def hand_forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(forward(obs), the tape hand_backward needs), without an autograd graph (nets.handgrad)."""
        from nets import handgrad

        layers = [*self.trunk._linears, self.head]  # only where hand_grad_layers() is not None (not re-checked)
        return handgrad.forward(layers, self.trunk.activation, obs.float().reshape(obs.shape[0], -1))

    def hand_backward(self, tape: list[torch.Tensor], grad_out: torch.Tensor) -> None:
        """Set every parameter's .grad to d loss / d theta, given grad_out = d loss / d forward(obs)."""
        from nets import handgrad

        handgrad.backward([*self.trunk._linears, self.head], self.trunk.activation, tape, grad_out)

    def numpy_forward_available(self) -> bool:
        """Whether numpy_forward can stand in for forward: a float-input MLP trunk with relu/tanh, a linear or
        dueling head, float32 weights on the CPU."""
        from nets.mlp import MLP, NUMPY_ACTIVATIONS

        trunk = self.trunk
        return (isinstance(trunk, MLP) and trunk.one_hot is None and trunk.activation in NUMPY_ACTIVATIONS
                and isinstance(self.head, nn.Linear | DuelingHead)
                and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in self.parameters()))

    def numpy_forward(self, obs: np.ndarray) -> np.ndarray:
        """forward(obs) computed by numpy on the live weights (views, no copy), for acting on a few
        observations: a [256, 256] MLP Q-net answers one observation in ~13 us instead of ~22 us through
        torch's per-op overhead. Only where numpy_forward_available()."""
        from nets.mlp import numpy_stack, numpy_views

        head = self.head
        out = [head.adv, head.v] if isinstance(head, DuelingHead) else [head]
        views = numpy_views(self, "_numpy_views", [*self.trunk._linears, *out])
        n_hidden = len(self.trunk._linears)
        x = numpy_stack(views[:n_hidden], self.trunk.activation, obs, True) if n_hidden else obs
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        if isinstance(head, DuelingHead):
            (wa, ba), (wv, bv) = views[n_hidden:]
            adv = x @ wa + ba
            return x @ wv + bv + adv - adv.mean(axis=-1, keepdims=True)
        w, b = views[n_hidden]
        return x @ w + b
