"""Stable-Baselines3 saved models under rlkit's evaluation protocol (`rlkit eval model.zip algo=ppo env=...`).

The model is loaded with SB3's own loader (a zip holds pickled Python objects besides the weights:
evaluate only files you trust), its spaces are checked against the env rlkit builds for `env=`
(the evaluation env: Atari with the same preprocessing, whole games, raw scores), and it plays through
the same `rlkit.evaluation.evaluate` loop as our agents, so both libraries' eval.json compare key by key.
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.errors import UserError, did_you_mean

# algo= name -> (package, class); the sb3-contrib names follow rl-baselines3-zoo
ALGOS: dict[str, tuple[str, str]] = {
    "dqn": ("stable_baselines3", "DQN"),
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "ddpg": ("stable_baselines3", "DDPG"),
    "trpo": ("sb3_contrib", "TRPO"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
    "tqc": ("sb3_contrib", "TQC"),
    "ars": ("sb3_contrib", "ARS"),
    "crossq": ("sb3_contrib", "CrossQ"),
    "ppo_lstm": ("sb3_contrib", "RecurrentPPO"),
    "ppo_mask": ("sb3_contrib", "MaskablePPO"),
}
LIBRARY = {"stable_baselines3": "stable-baselines3", "sb3_contrib": "sb3-contrib"}
# objects a zip may carry that prediction never uses; replacing them avoids unpickling schedules
# saved by another Python version (rl-baselines3-zoo's enjoy.py does the same)
CUSTOM_OBJECTS = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0,
                  "clip_range_vf": None, "exploration_schedule": lambda _: 0.0}


def algo_class(algo: str) -> tuple[type, str]:
    """(SB3 class, library name) for an algo= word; UserError if unknown or its package is missing."""
    if algo not in ALGOS:
        raise UserError(f"unknown algo '{algo}'{did_you_mean(algo, ALGOS)}; Stable-Baselines3: "
                        f"{', '.join(a for a, (p, _) in ALGOS.items() if p == 'stable_baselines3')}; sb3-contrib: "
                        f"{', '.join(a for a, (p, _) in ALGOS.items() if p == 'sb3_contrib')}")
    package, name = ALGOS[algo]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise UserError(f"algo={algo} ({name}) comes from sb3-contrib, which is not installed: "
                        "pip install sb3-contrib") from None
    return getattr(module, name), LIBRARY[package]


def saved_policy(path: Path) -> str | None:
    """The policy class the zip's data file names (e.g. stable_baselines3.dqn.policies.DQNPolicy), read as
    JSON without unpickling anything; None when it cannot tell."""
    try:
        with zipfile.ZipFile(path) as z:
            pc = json.loads(z.read("data"))["policy_class"]
        found = re.search(r"<function (\w+)\.__init__", str(pc.get("__init__", "")))
        return f"{pc['__module__']}.{found.group(1)}" if found else str(pc["__module__"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, TypeError, AttributeError):
        return None


def check_zip(path: Path) -> Path:
    """The path, if it names a zip file; a UserError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file {path}; give the path of a Stable-Baselines3 model .zip")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a zip file; rlkit eval takes a run folder or a Stable-Baselines3 .zip")
    return path


def load_model(path: Path, algo: str) -> tuple[Any, str]:
    """(model on CPU, library) from a zip; UserError for a missing file or a zip of another algorithm."""
    path = check_zip(path)
    cls, library = algo_class(algo)
    try:
        model = cls.load(path, device="cpu", custom_objects=CUSTOM_OBJECTS)
    except Exception as e:  # a zip of another algorithm fails deep inside SB3: say what the zip holds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        held = saved_policy(path)
        hint = f" (the zip holds a {held}); is algo= right?" if held else "; is algo= right?"
        raise UserError(f"cannot load {path} as algo={algo}: {type(e).__name__}: {first}{hint}") from None
    return model, library


def space_mismatch(model_space: gym.Space, env_space: gym.Space) -> str | None:
    """Why an SB3 model's space does not fit the env's (None when it fits); channel-last images of a
    channel-first model are fine, SB3 transposes them itself."""
    if type(model_space) is not type(env_space):
        return f"the model's is {type(model_space).__name__}, the env's {type(env_space).__name__}"
    if isinstance(model_space, gym.spaces.Discrete | gym.spaces.MultiBinary):
        if model_space.n != env_space.n:
            return f"the model's is {model_space}, the env's {env_space}"
        return None
    if isinstance(model_space, gym.spaces.MultiDiscrete):
        same = np.array_equal(model_space.nvec, env_space.nvec)
        return None if same else f"the model's is {model_space}, the env's {env_space}"
    if isinstance(model_space, gym.spaces.Box):
        ms, es = tuple(model_space.shape), tuple(env_space.shape)
        if ms == es or (len(ms) == 3 and ms == (es[2], es[0], es[1])):
            return None
        return f"the model's has shape {ms}, the env's {es}"
    if isinstance(model_space, gym.spaces.Dict):
        if set(model_space.spaces) != set(env_space.spaces):
            return f"the model's has keys {sorted(model_space.spaces)}, the env's {sorted(env_space.spaces)}"
        for k in model_space.spaces:
            why = space_mismatch(model_space[k], env_space[k])
            if why:
                return f"[{k}]: {why}"
    return None


def check_spaces(model: Any, env: gym.Env, zip_path: Path, env_name: str) -> None:
    """UserError naming the space that differs when the model was trained on another env."""
    for what, ms, es in (("observation", model.observation_space, env.observation_space),
                         ("action", model.action_space, env.action_space)):
        why = space_mismatch(ms, es)
        if why:
            raise UserError(f"{zip_path} does not fit env={env_name}: {what} space: {why} "
                            "(was it trained on another env, or other wrappers?)")


class SB3Policy:
    """An SB3 model behind the Agent contract's act(), so rlkit's evaluation loop drives it.

    Recurrent policies (ppo_lstm) carry their state between steps; `episode_start` is raised by the
    EpisodeStarts wrapper on every reset. Maskable ones get the env's info["action_mask"]."""

    def __init__(self, model: Any):
        self.model = model
        self.state: Any = None
        self.episode_start = np.ones(1, dtype=bool)
        self.maskable = type(model).__name__ == "MaskablePPO"

    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        kwargs: dict[str, Any] = {}
        if self.maskable and action_mask is not None:
            kwargs["action_masks"] = np.asarray(action_mask)
        actions, self.state = self.model.predict(np.asarray(obs), state=self.state, episode_start=self.episode_start,
                                                 deterministic=deterministic, **kwargs)
        self.episode_start = np.zeros(1, dtype=bool)
        return np.asarray(actions)


class EpisodeStarts(gym.Wrapper):
    """Tells an SB3Policy that a new episode began (recurrent policies reset their state then)."""

    def __init__(self, env: gym.Env, policy: SB3Policy):
        super().__init__(env)
        self.policy = policy

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.policy.state, self.policy.episode_start = None, np.ones(1, dtype=bool)
        return self.env.reset(**kwargs)


def evaluate_zip(zip_path: Path, algo: str | None, env_name: str | None, env_kwargs: dict[str, Any],
                 episodes: int, deterministic: bool, seed: int | None, video: str | None, video_episodes: int,
                 out: Path | None, threads: int = 1) -> dict[str, Any]:
    """`rlkit eval model.zip algo=... env=...`: the same protocol and eval.json keys as a run's evaluation.

    Writes `<out>/eval.json` and videos under `<out>/videos/`; `out` defaults to `<zip path minus .zip>-eval/`
    (models/ppo_cartpole.zip -> models/ppo_cartpole-eval/)."""
    import torch

    import envs
    from rlkit.evaluation import EVAL_SEED_OFFSET, evaluate, record
    from rlkit.runs import write_json
    from rlkit.seeding import seed_everything
    from rlkit.video import RecordEpisodes, make_recordable

    zip_path = check_zip(zip_path)
    if algo is None:
        raise UserError(f"{zip_path} is a Stable-Baselines3 model: say which algorithm saved it with algo=NAME "
                        f"({', '.join(ALGOS)}), e.g. rlkit eval {zip_path} algo=ppo env=cartpole")
    if env_name is None:
        raise UserError(f"{zip_path}: say which env to evaluate it on with env=NAME, "
                        f"e.g. rlkit eval {zip_path} algo={algo} env=cartpole")
    ref = envs.resolve(env_name, env_kwargs)
    torch.set_num_threads(threads)
    model, library = load_model(zip_path, algo)
    env = envs.make(ref, training=False)
    check_spaces(model, env, zip_path, env_name)
    seed = EVAL_SEED_OFFSET if seed is None else seed
    seed_everything(seed)
    model.action_space.seed(seed)  # DQN's stochastic predict explores with action_space.sample()
    out = zip_path.with_name(zip_path.stem + "-eval") if out is None else Path(out)
    policy = SB3Policy(model)
    if video is not None:
        env.close()
        env, _ = make_recordable(lambda mode: envs.make(ref, render_mode=mode, training=False), env_name)
        step = int(getattr(model, "num_timesteps", 0))
        env = RecordEpisodes(env, out / "videos", video, min(video_episodes, episodes),
                             name=lambda i: f"{algo}-{zip_path.stem}-step{step}-seed{seed + i}")
    env = EpisodeStarts(env, policy)
    stats = evaluate(policy, env, episodes, seed, deterministic)
    env.close()
    result = record(stats, library=library, agent=algo, env=ref.name, env_kwargs=dict(env_kwargs),
                    source=str(zip_path), checkpoint="zip", checkpoint_step=int(getattr(model, "num_timesteps", 0)),
                    videos=getattr(env.env, "videos", []))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval.json", result)
    return result
