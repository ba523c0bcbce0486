"""Environment registry: short aliases, any gymnasium id, and custom envs by `module:Class` or `file.py:Class`.

Our envs are registered with gymnasium as `rlkit/<Name>-v0` when this package is imported, so
`gym.make("envs:rlkit/Rooms-v0")` works in plain gymnasium and Stable-Baselines3 code too.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlkit.errors import UserError, did_you_mean

# Our own envs, registered with gymnasium under the rlkit/ namespace.
_OWN = {
    "rlkit/Rooms-v0": dict(entry_point="envs.rooms:RoomsEnv", max_episode_steps=100),
    "rlkit/Bandit-v0": dict(entry_point="envs.bandit:BanditEnv"),
}
for _id, _kw in _OWN.items():
    if _id not in gym.registry:
        gym.register(id=_id, **_kw)

# alias -> (gymnasium id, one-line description)
ALIASES: dict[str, tuple[str, str]] = {
    "bandit": ("rlkit/Bandit-v0", "k-armed bandit testbed (Sutton & Barto ch. 2); batch-native, 2000 problems at once"),
    "rooms": ("rlkit/Rooms-v0", "the five-rooms Q-learning example of the notes (SEEDS.md); ANSI render"),
    "cartpole": ("CartPole-v1", "balance a pole on a cart (gymnasium classic control)"),
    "frozenlake": ("FrozenLake-v1", "4x4 slippery frozen lake, reach the goal (gymnasium toy text)"),
    "cliffwalking": ("CliffWalking-v1", "4x12 grid with a cliff, Sutton & Barto Example 6.6 (gymnasium toy text)"),
    "taxi": ("Taxi-v4", "pick up and drop off a passenger on a 5x5 grid (gymnasium toy text)"),
    "acrobot": ("Acrobot-v1", "swing a two-link arm above a line (gymnasium classic control)"),
    "mountaincar": ("MountainCar-v0", "drive an underpowered car up a hill (gymnasium classic control)"),
    "pendulum": ("Pendulum-v1", "swing up and hold a pendulum, continuous torque (gymnasium classic control)"),
    "lunarlander": ("LunarLander-v3", "land a craft on a pad (gymnasium Box2D; needs the box2d extra)"),
    "pong": ("ALE/Pong-v5", "Atari Pong, DQN preprocessing (envs/atari.py); any ALE/<Game>-v5 id works too"),
    "breakout": ("ALE/Breakout-v5", "Atari Breakout, DQN preprocessing (envs/atari.py); 5 lives"),
    "spaceinvaders": ("ALE/SpaceInvaders-v5", "Atari Space Invaders, DQN preprocessing (envs/atari.py)"),
}

# gymnasium id -> "module:Class" of an array version of n copies that steps exactly like make_vec over gym.make
VECTOR: dict[str, str] = {"CartPole-v1": "envs.cartpole_vec:CartPoleVec"}

# gymnasium id -> "module:Class" of a batch-native version (many independent copies stepped as one array)
BATCH: dict[str, str] = {"rlkit/Bandit-v0": "envs.bandit:BanditTestbed"}


@dataclass(frozen=True)
class EnvRef:
    """A resolved env name: a gymnasium id, or a custom constructor, plus constructor kwargs."""

    name: str
    gym_id: str | None = None
    factory: Callable[..., Any] | None = field(default=None, compare=False)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """A file-name-safe short name for run folders."""
        base = self.name
        if ":" in base:
            base = base.rsplit(":", 1)[1]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "env"


def resolve(name: str, kwargs: dict[str, Any] | None = None) -> EnvRef:
    """Turn what the user typed after `env=` into an EnvRef; unknown names get a 'did you mean'."""
    kwargs = dict(kwargs or {})
    if ALIASES.get(name, (name,))[0].startswith("ALE/"):
        _register_ale()
    if name in ALIASES:
        return EnvRef(name, ALIASES[name][0], None, kwargs)
    if ":" in name:
        return _resolve_custom(name, kwargs)
    if name in gym.registry:
        return EnvRef(name, name, None, kwargs)
    try:  # let gymnasium decide about versions (e.g. 'Taxi-v3' is deprecated in favour of v4)
        gym.spec(name)
    except gym.error.Error as e:
        if not isinstance(e, gym.error.NameNotFound | gym.error.NamespaceNotFound):
            raise UserError(f"env '{name}': {_strip(str(e))}") from None
    choices = list(ALIASES) + list(gym.registry)
    raise UserError(
        f"unknown env '{name}'{did_you_mean(name, choices)}; use an alias (rlkit list), "
        "a gymnasium id such as CartPole-v1, or a custom env as module:Class or path/to/file.py:Class"
    )


def _register_ale() -> None:
    """Register the ALE/<Game>-v5 envs, only once one is asked for: importing ale_py takes a while."""
    import ale_py

    gym.register_envs(ale_py)


def _resolve_custom(name: str, kwargs: dict[str, Any]) -> EnvRef:
    target, attr = name.rsplit(":", 1)
    if target.endswith(".py"):
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise UserError(f"custom env '{name}': no file {target}; give an existing path/to/file.py:Class")
        mod_name = "rlkit_custom_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
        try:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        except Exception as e:  # the user's file failed to import: show its error, not ours
            raise UserError(f"custom env '{name}' does not import: {type(e).__name__}: {e}") from None
        name = f"{path}:{attr}"  # absolute, so eval/resume work from any folder
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`, find modules in the current folder
        try:
            module = importlib.import_module(target)
        except Exception as e:
            raise UserError(
                f"custom env '{name}' does not import: {type(e).__name__}: {e}; "
                "check the module is importable from this folder, or give path/to/file.py:Class"
            ) from None
    if "/" in attr or re.search(r"-v\d+$", attr):  # gymnasium's own 'module:EnvId' form
        if attr not in gym.registry:
            raise UserError(f"custom env '{name}': importing {target} did not register '{attr}'")
        return EnvRef(name, attr, None, kwargs)
    if not hasattr(module, attr):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise UserError(f"custom env '{name}': {target} has no '{attr}'{did_you_mean(attr, public)}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise UserError(f"custom env '{name}': {attr} is not a class or factory function")
    return EnvRef(name, None, factory, kwargs)


def make(ref: EnvRef, render_mode: str | None = None, training: bool = True) -> gym.Env:
    """Build one gymnasium env from a ref; a kwarg the env does not take is a UserError naming it.

    `training=False` asks for the evaluation variant where one exists (Atari: no reward clipping)."""
    kwargs = dict(ref.kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        if ref.gym_id is not None and ref.gym_id.startswith("ALE/"):
            from envs.atari import make_atari

            env = make_atari(ref.gym_id, training=training, **kwargs)
        elif ref.gym_id is not None:
            env = gym.make(ref.gym_id, **kwargs)
        else:
            env = ref.factory(**kwargs)
    except TypeError as e:
        msg = str(e).split(" was raised from the environment creator")[0]
        raise UserError(f"env '{ref.name}' rejected its arguments {kwargs}: {msg}") from None
    except (ValueError, AssertionError) as e:
        raise UserError(f"env '{ref.name}' with {kwargs}: {e}") from None
    except gym.error.DependencyNotInstalled as e:
        hint = "pip install 'rlkit[box2d]'" if "box2d" in str(e).lower() else "install the package it names"
        raise UserError(f"env '{ref.name}' needs a package that is not installed ({_strip(str(e))[:120]}); {hint}") \
            from None
    if not isinstance(env, gym.Env):
        raise UserError(f"custom env '{ref.name}' returned {type(env).__name__}, not a gymnasium.Env")
    return env


def make_vector(ref: EnvRef, n_envs: int, asynchronous: bool = False) -> gym.vector.VectorEnv:
    """The training vector env of deep agents: the array version where one exists (VECTOR; default kwargs, in
    process, 4+ copies: below that numpy's per-call overhead loses to one Python env, measured 48 vs 24 us per
    step for one copy, 52 vs 116 us for eight), else rlkit.vec.make_vec over `make(ref, training=True)` copies
    (SAME_STEP autoreset either way)."""
    from rlkit.vec import make_vec

    if ref.gym_id in VECTOR and not ref.kwargs and not asynchronous and n_envs >= 4:
        module, cls = VECTOR[ref.gym_id].split(":")
        return getattr(importlib.import_module(module), cls)(n_envs)
    return make_vec(lambda: make(ref, training=True), n_envs, asynchronous=asynchronous)


def make_batch(ref: EnvRef, n: int, seed: int) -> Any:
    """A batch-native env of `n` independent copies (only for envs that have one, e.g. bandit)."""
    path = BATCH.get(ref.gym_id or "")
    if path is None:
        have = ", ".join(a for a, (gid, _) in ALIASES.items() if gid in BATCH)
        raise UserError(f"env '{ref.name}' has no batch-native version; this agent needs one of: {have}")
    module, attr = path.split(":")
    cls = getattr(importlib.import_module(module), attr)
    try:
        return cls(n=n, seed=seed, **ref.kwargs)
    except TypeError as e:
        raise UserError(f"env '{ref.name}' rejected its arguments {ref.kwargs}: {e}") from None
    except ValueError as e:
        raise UserError(f"env '{ref.name}' with {ref.kwargs}: {e}") from None


def describe(name: str) -> str:
    """The one-line description of an alias (or of a custom env class)."""
    if name in ALIASES:
        return ALIASES[name][1]
    ref = resolve(name)
    doc = inspect.getdoc(ref.factory) if ref.factory else None
    return (doc or ref.gym_id or name).splitlines()[0]


def _strip(msg: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", msg).strip()
