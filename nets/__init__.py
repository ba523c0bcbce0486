"""Function approximators any agent can use: `nets.build(spec, observation_space, output_dim)`.

A spec is a name (`"mlp"`) or a dict (`{"type": "mlp", "hidden": [64, 64], "activation": "tanh"}`);
the net takes a batch of observations (flattened from the observation space) and returns
`output_dim` numbers per observation (Q-values, logits, a value...).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from torch import nn

from rlkit.errors import UserError, did_you_mean

# name -> ("module:builder", one-line description)
REGISTRY: dict[str, tuple[str, str]] = {
    "mlp": ("nets.mlp:build_mlp", "multilayer perceptron: flattened observation -> hidden layers -> output"),
}


def build(spec: str | dict[str, Any], observation_space: gym.Space, output_dim: int) -> nn.Module:
    """The net named by `spec`, sized for `observation_space` and `output_dim`."""
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.pop("type", "mlp")
    if kind not in REGISTRY:
        raise UserError(f"unknown net '{kind}'{did_you_mean(kind, REGISTRY)}; available: {', '.join(REGISTRY)}")
    module, attr = REGISTRY[kind][0].split(":")
    builder = getattr(importlib.import_module(module), attr)
    try:
        return builder(observation_space, output_dim, **spec)
    except TypeError as e:
        raise UserError(f"net '{kind}' does not take {sorted(spec)}: {e}") from None
