"""Forward and backward of a stack of Linear layers by hand: the gradients autograd would give, written
straight into each parameter's `.grad`, without building a graph.

Why: on one CPU thread much of a small net's gradient step is per-op overhead. DQN's CartPole step
(MLP [256, 256] ReLU, batch 64) took 456 us through autograd and 367 us by hand. The matmuls are the
same (~260 us). PPO's two [64, 64] tanh MLPs on 256 rows save proportionally more.

    forward:   h_0 = x;   z_l = h_{l-1} W_l^T + b_l;   h_l = act(z_l) for l < L;   output = z_L (a head: no act)
    backward:  g = dLoss/d(output);  for l = L..1:
                   g <- g * act'(z_l)     for l < L, from the output h_l: relu 1[h_l > 0], tanh 1 - h_l^2
                   dW_l = g^T h_{l-1};   db_l = sum over rows of g;   g <- g W_l   (not needed below layer 1)

Only relu and tanh (their derivatives are functions of their outputs) on float inputs; callers check
`supported` and fall back to autograd otherwise. Tests compare every gradient with autograd's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

F = TypeVar("F", bound=Callable[..., Any])

ACTIVATIONS = ("relu", "tanh")
"""activations whose derivative this module computes from their outputs"""


def supported(layers: Sequence[nn.Module], activation: str) -> bool:
    """Whether these layers can run here: plain Linear layers with biases, float32, relu/tanh."""
    return (activation in ACTIVATIONS and len(layers) > 0
            and all(type(m) is nn.Linear and m.bias is not None for m in layers)
            and all(p.dtype == torch.float32 for m in layers for p in m.parameters()))


def without_grad(fn: F) -> F:
    """torch.no_grad() around `fn` unless gradients are already off: the context manager costs ~1.2 us a call,
    the check ~0.1 us, and such calls nest (an A2C update makes 6: hand_evaluate, hand_backward and the
    forward/backward of each net inside them)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _act_(z: torch.Tensor, activation: str) -> torch.Tensor:
    """act(z) (relu in place; tanh by numpy, as nets.mlp.fast_tanh: numpy's kernel on the CPU is ~10x torch's)."""
    if activation == "relu":
        return z.clamp_min_(0.0)
    return torch.from_numpy(np.tanh(z.numpy()))


def _act_grad(g: torch.Tensor, h: torch.Tensor, activation: str) -> torch.Tensor:
    """g * act'(z), given h = act(z) (the kernels autograd's ReLU and Tanh backward use)."""
    if activation == "relu":
        return torch.ops.aten.threshold_backward(g, h, 0)
    return torch.ops.aten.tanh_backward(g, h)


@without_grad
def forward(layers: Sequence[nn.Linear], activation: str, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(output, tape): tape holds each layer's input, then the output (what `backward` needs)."""
    tape = [x]
    last = len(layers) - 1
    for i, m in enumerate(layers):
        x = torch.addmm(m.bias, x, m.weight.t())
        if i < last:
            x = _act_(x, activation)
        tape.append(x)
    return x, tape


def _set_grad(p: torch.Tensor, value: torch.Tensor) -> None:
    if p.grad is None:
        p.grad = value.detach().clone()
    else:
        p.grad.copy_(value)


@without_grad
def backward(layers: Sequence[nn.Linear], activation: str, tape: list[torch.Tensor], grad_out: torch.Tensor) -> None:
    """Write d loss / d theta into every layer's weight.grad and bias.grad (replacing what was there), given
    grad_out = d loss / d output for the tape of `forward`."""
    g = grad_out
    last = len(layers) - 1
    for i in range(last, -1, -1):
        m, h_in, h_out = layers[i], tape[i], tape[i + 1]
        weight, bias = m.weight, m.bias  # (each nn.Module attribute lookup costs ~0.4 us)
        weight_grad, bias_grad = weight.grad, bias.grad
        if i < last:
            g = _act_grad(g, h_out, activation)
        # dW = g^T h_in: MKL is slow on a thin output (4 input features: 13 us instead of 4), so it computes
        # the transpose there
        if h_in.shape[1] < g.shape[1]:
            _set_grad(weight, h_in.t().mm(g).t())
        elif weight_grad is not None and weight_grad.is_contiguous():
            torch.mm(g.t(), h_in, out=weight_grad)
        else:
            _set_grad(weight, g.t().mm(h_in))
        if bias_grad is not None:
            torch.sum(g, 0, out=bias_grad)
        else:
            _set_grad(bias, g.sum(0))
        if i > 0:
            g = g.mm(weight)
