"""Function approximators any agent can use: `nets.build(spec, observation_space, output_dim)`.

Every net is a trunk (observation batch -> features, sized `trunk.out_dim`) followed by a head
(features -> `output_dim` numbers: Q-values, logits, a value...): a Linear layer, or with
`dueling: true` the dueling head Q = V + A - mean(A) (Wang et al. 2016).

A spec is a name (`"cnn"`), a dict (`{"type": "mlp", "hidden": [64, 64], "activation": "tanh"}`), a
config dataclass with those fields, or None; without a type the net is chosen by the observation space
(`default_spec`): the Nature DQN cnn for image observations, an mlp otherwise.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from torch import nn

from nets.cnn import MIN_SIZE
from nets.heads import DuelingHead, Net, make_head
from rlkit.errors import UserError, did_you_mean

__all__ = ["REGISTRY", "DuelingHead", "Net", "build", "default_spec"]

# name -> ("module:builder", one-line description); a builder takes (observation_space, **kwargs) -> trunk
REGISTRY: dict[str, tuple[str, str]] = {
    "mlp": ("nets.mlp:build_mlp", "multilayer perceptron: flattened or one-hot observation -> hidden layers"),
    "cnn": ("nets.cnn:build_cnn", "Nature DQN conv tower (Mnih et al. 2015) on (C, H, W) images -> 512 features"),
}

HEAD_KEYS = ("dueling",)
"""spec keys every net takes: they shape the head, not the trunk"""


def default_spec(observation_space: gym.Space) -> dict[str, Any]:
    """The net chosen when the spec names none: cnn for uint8 (C, H, W) images, mlp for everything else."""
    shape = getattr(observation_space, "shape", None) or ()
    image = (isinstance(observation_space, gym.spaces.Box) and observation_space.dtype == np.uint8
             and len(shape) == 3 and min(shape[1:]) >= MIN_SIZE)
    return {"type": "cnn" if image else "mlp"}


def build(spec: str | Mapping[str, Any] | Any | None, observation_space: gym.Space, output_dim: int) -> nn.Module:
    """The net named by `spec`, sized for `observation_space`, giving `output_dim` numbers per observation.

    A key that belongs to another net and is left at that net's default (e.g. a config's `hidden: [64, 64]`
    when the net is a cnn) is ignored, so one `net` config section serves every net; set to anything
    else it is a UserError.
    """
    spec = _as_dict(spec)
    kind = spec.pop("type", None) or default_spec(observation_space)["type"]
    if not isinstance(kind, str) or kind not in REGISTRY:
        raise UserError(f"unknown net '{kind}'{did_you_mean(str(kind), REGISTRY)}; available: {', '.join(REGISTRY)}")
    dueling = spec.pop("dueling", False)
    if not isinstance(dueling, bool):
        raise UserError(f"net.dueling={dueling}: give true or false")
    if isinstance(output_dim, bool) or not isinstance(output_dim, int | np.integer) or output_dim < 1:
        raise ValueError(f"output_dim must be a positive int, not {output_dim!r}")
    builder = _builder(kind)
    trunk = builder(observation_space, **_kwargs_for(kind, spec))
    return Net(trunk, make_head(trunk.out_dim, int(output_dim), dueling))


def _as_dict(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, str):
        return {"type": spec}
    if isinstance(spec, Mapping):
        return dict(spec)
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    raise UserError(f"a net spec is a name (net=cnn) or keys (net.type, net.hidden, ...), not {spec!r}")


def _builder(kind: str) -> Callable[..., nn.Module]:
    module, attr = REGISTRY[kind][0].split(":")
    return getattr(importlib.import_module(module), attr)


def _params(kind: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments a net's builder takes (its observation space aside)."""
    return dict(list(inspect.signature(_builder(kind)).parameters.items())[1:])


def _kwargs_for(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    own = _params(kind)
    takes = ", ".join([*own, *HEAD_KEYS])
    kwargs = {}
    for key, value in spec.items():
        if key in own:
            kwargs[key] = value
            continue
        owners = {other: _params(other)[key] for other in REGISTRY if other != kind and key in _params(other)}
        if owners and all(_same(value, p.default) for p in owners.values()):
            continue  # another net's setting, left at its default
        if owners:
            raise UserError(f"net.{key} is a setting of {' and '.join(owners)}, not of {kind}; {kind} takes: {takes}")
        known = {k for other in REGISTRY for k in _params(other)} | set(HEAD_KEYS)
        raise UserError(f"net '{kind}' does not take '{key}'{did_you_mean(key, known)}; it takes: {takes}")
    return kwargs


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return list(value) == list(default)
    return default is not inspect.Parameter.empty and value == default
