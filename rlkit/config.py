"""Typed configs: agent defaults <- (agent, env) preset <- user overrides -> one validated, frozen config.

Each agent declares a frozen dataclass (fields with a one-line docstring each, ranges in `Annotated`);
presets live in `rlkit/presets/<agent>.yaml`, one block per env with a `source:` line, like
rl-baselines3-zoo's hyperparameter files. Nothing here ever calls `eval`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any, Literal, Union

import yaml

from rlkit.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric field; `None` leaves that side open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return False
        return not (isinstance(x, float) and math.isnan(x))

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        return f"{left}{lo}, {hi}{right}"


Prob = Annotated[float, Range(0.0, 1.0)]
PositiveInt = Annotated[int, Range(1, None)]
NonNegInt = Annotated[int, Range(0, None)]
PositiveFloat = Annotated[float, Range(0.0, None, lo_open=True)]
NonNegFloat = Annotated[float, Range(0.0, None)]


@dataclass(frozen=True)
class Schedule:
    """A value annealed over training; `epsilon=0.1` on the command line means a constant 0.1."""

    start: float = 0.1
    """value at the first step"""
    end: float | None = None
    """value once the decay is over (null: stay at start)"""
    fraction: Prob = 1.0
    """fraction of total_steps over which start moves to end"""
    kind: Literal["linear", "exponential"] = "linear"
    """shape of the decay between start and end"""

    @classmethod
    def from_scalar(cls, value: Any) -> Schedule:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a schedule takes a number, e.g. epsilon=0.1, or epsilon.start/end/fraction")
        return cls(start=float(value), end=None)


@dataclass(frozen=True)
class NetConfig:
    """A function approximator for `nets.build`: `net=cnn`, or net.type / net.hidden / net.dueling."""

    type: str | None = None
    """mlp, cnn, ... (rlkit list shows them); null: chosen by the observation space"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden layer sizes of an mlp"""
    activation: Literal["relu", "tanh", "elu", "gelu"] = "relu"
    """activation of an mlp's hidden layers"""
    dueling: bool = False
    """dueling head: Q = V + A - mean(A) (Wang et al. 2016)"""

    @classmethod
    def from_scalar(cls, value: Any) -> NetConfig:
        if not isinstance(value, str):
            raise TypeError("a net is named, e.g. net=mlp or net=cnn")
        return cls(type=value)


@dataclass(frozen=True)
class TrainConfig:
    """Keys every agent has (the agent's own dataclass adds its hyperparameters)."""

    seed: NonNegInt = 0
    """seeds python, numpy, torch and the env; the same seed gives the same metrics"""
    total_steps: PositiveInt = 100_000
    """environment steps to train for"""
    total_episodes: PositiveInt | None = None
    """also stop after this many episodes (null: no episode limit)"""
    eval_episodes: PositiveInt = 10
    """episodes of the final evaluation (written to summary.json)"""
    eval_every: PositiveInt | None = None
    """evaluate every N env steps (eval/* in metrics.csv) and keep the best policy (checkpoint=best); null: off"""
    checkpoint_every: PositiveInt = 10_000
    """steps between checkpoints (one is also written at the end, on Ctrl-C and on SIGTERM)"""
    threads: PositiveInt = 1
    """torch intra-op threads; 1 is fastest for small nets on a few cores (see BENCHMARKS.md)"""
    progress: bool = True
    """live progress bar on a terminal (a plain line every 10% otherwise)"""
    tensorboard: bool = True
    """write TensorBoard events to the run folder's tb/"""


# --------------------------------------------------------------------------------------------------
# Field documentation and types


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring under each dataclass field (base classes included), read from the source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def type_name(tp: Any) -> str:
    """A short human name for a field type: 'float in [0, 1]', 'int', 'one of a|b', 'list of int'."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        rng = next((a for a in tp.__metadata__ if isinstance(a, Range)), None)
        return type_name(args[0]) + (f" in {rng}" if rng else "")
    if origin is Literal:
        return "one of " + "|".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in inner) + (" or null" if len(inner) < len(args) else "")
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return tp.__name__.lower()
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the field type `tp` (converting 1e5 -> 100000 for ints); UserError when it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        out = coerce(value, args[0], key)
        for meta in tp.__metadata__:
            if isinstance(meta, Range) and out is not None and not meta.contains(out):
                raise UserError(f"{key}={value} is out of range: {key} must be in {meta}")
        return out
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return coerce(value, a, key)
            except UserError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        raise UserError(f"{key}={_show(value)}: {key} expects {type_name(tp)}")
    if origin is Literal:
        if value in args:
            return value
        raise UserError(f"{key}={_show(value)}: {key} must be one of {', '.join(map(str, args))}"
                        f"{did_you_mean(str(value), map(str, args))}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise UserError(f"{key}={_show(value)}: {key} expects a list, e.g. {key}=[64,64]")
        return [coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}={_show(value)}: {key} expects a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return apply_overrides(tp(), _flatten(value), prefix=key + ".")
        if hasattr(tp, "from_scalar") and not isinstance(value, list | bool):
            try:
                return tp.from_scalar(value)
            except TypeError as e:
                raise UserError(f"{key}={_show(value)}: {e}") from None
        raise UserError(f"{key}={_show(value)}: {key} takes sub-keys ({', '.join(keys_of(tp, key + '.'))})")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{key}={_show(value)}: {key} expects true or false")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"{key}={_show(value)}: {key} expects an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"{key}={_show(value)}: {key} expects an integer")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{key}={_show(value)}: {key} expects a number, e.g. {key}=0.5")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key}={_show(value)}: {key} expects a string")
    return value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'eps': {'start': 1}} -> {'eps.start': 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def keys_of(cls: type, prefix: str = "") -> list[str]:
    """Every settable key of a config class, nested dataclasses dotted (epsilon.start)."""
    out = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(tp):
            out.extend(keys_of(tp, prefix + f.name + "."))
    return out


def apply_overrides(cfg: Any, overrides: dict[str, Any], prefix: str = "", owner: str = "") -> Any:
    """A new config with each dotted `key: value` set and checked; unknown keys get a 'did you mean'."""
    for key, value in overrides.items():
        cfg = _set(cfg, key.split("."), value, prefix, owner)
    return cfg


def _set(obj: Any, parts: list[str], value: Any, prefix: str, owner: str) -> Any:
    cls = type(obj)
    names = [f.name for f in dataclasses.fields(cls)]
    name = parts[0]
    full = prefix + ".".join(parts)
    if name not in names:
        valid = keys_of(cls, prefix)
        who = f" for {owner}" if owner else ""
        raise UserError(
            f"unknown key '{full}'{who}{did_you_mean(prefix + name, valid)}; valid keys: {', '.join(valid)}"
        )
    tp = _hints(cls)[name]
    if len(parts) == 1:
        return dataclasses.replace(obj, **{name: coerce(value, tp, prefix + name)})
    sub = getattr(obj, name)
    if dataclasses.is_dataclass(sub):
        return dataclasses.replace(obj, **{name: _set(sub, parts[1:], value, prefix + name + ".", owner)})
    if isinstance(sub, dict):
        new = dict(sub)
        new[".".join(parts[1:])] = value
        return dataclasses.replace(obj, **{name: new})
    raise UserError(f"'{full}': {prefix + name} is a {type_name(tp)}, it has no sub-keys; use {prefix + name}=VALUE")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain (YAML-safe) dict of a config."""
    return dataclasses.asdict(cfg)


def describe_keys(cls: type) -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) rows for help screens and `rlkit list <agent>`."""
    rows = []
    defaults = cls()
    for key in keys_of(cls):
        obj, owner = defaults, cls
        for part in key.split(".")[:-1]:
            owner = _hints(owner)[part]
            obj = getattr(obj, part)
        name = key.split(".")[-1]
        tp = _hints(owner)[name]
        if dataclasses.is_dataclass(tp):
            continue
        default = getattr(obj, name)
        rows.append((key, type_name(tp), _show(default), field_docs(owner).get(name, "")))
    return rows


# --------------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class Preset:
    """Values for one (agent, env) pair and where they come from."""

    env_key: str
    source: str
    values: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def load_presets(agent: str) -> dict[str, Preset]:
    """All presets of one agent, keyed by env alias or gymnasium id ({} when the agent has no file)."""
    try:
        text = resources.files("rlkit.presets").joinpath(f"{agent}.yaml").read_text()
    except FileNotFoundError:
        return {}
    data = yaml.safe_load(text) or {}
    out = {}
    for env_key, block in data.items():
        block = dict(block or {})
        source = block.pop("source", None)
        if not source:
            raise ValueError(f"preset {agent}.yaml:{env_key} has no 'source:' line")
        env_kwargs = block.pop("env_kwargs", {}) or {}
        out[env_key] = Preset(env_key, str(source), _flatten(block), dict(env_kwargs))
    return out
