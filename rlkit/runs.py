"""Run specs and run folders.

A `RunSpec` is everything needed to rebuild a run: agent, env (+ constructor kwargs), the agent's
resolved config, where runs go, and which preset fed it. `rlkit train` resolves one from the command
line (defaults <- preset <- overrides) and saves it as `config.yaml`; `eval` and `resume` read it back.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import agents
import envs
from rlkit import __version__
from rlkit.checkpoint import atomic_write_text
from rlkit.config import Preset, TrainConfig, apply_overrides, load_presets, to_dict
from rlkit.errors import UserError

SPECIAL = ("agent", "env", "runs.dir")


@dataclass(frozen=True)
class RunSpec:
    """What a run is: agent, env, the agent's validated config, and provenance."""

    agent: str
    env: str
    env_kwargs: dict[str, Any]
    config: TrainConfig
    runs_dir: str = "runs"
    preset: str | None = None
    words: list[str] = field(default_factory=list)

    @property
    def env_ref(self) -> envs.EnvRef:
        return envs.resolve(self.env, self.env_kwargs)


def find_preset(agent: str, env_name: str) -> Preset | None:
    """The preset block of `agent` for this env: by the word typed, or by the gymnasium id it stands for."""
    presets = load_presets(agent)
    if env_name in presets:
        return presets[env_name]
    gym_id = envs.ALIASES.get(env_name, (env_name, ""))[0]
    for key, preset in presets.items():
        if envs.ALIASES.get(key, (key, ""))[0] == gym_id:
            return preset
    return None


def resolve_spec(values: dict[str, Any], words: list[str]) -> RunSpec:
    """Build the run spec from parsed `key=value` words: defaults <- (agent, env) preset <- overrides."""
    if "agent" not in values:
        raise UserError("missing agent=NAME, e.g. rlkit train agent=q_learning env=rooms (rlkit list shows agents)")
    if "env" not in values:
        raise UserError(f"missing env=NAME, e.g. rlkit train agent={values['agent']} env=rooms (rlkit list shows envs)")
    agent_name, env_name = str(values["agent"]), str(values["env"])
    cls = agents.get(agent_name)
    env_kw_user = {k[4:]: v for k, v in values.items() if k.startswith("env.")}
    rest = {k: v for k, v in values.items() if k not in SPECIAL and not k.startswith("env.")}
    preset = find_preset(agent_name, env_name)
    env_kwargs = {**(preset.env_kwargs if preset else {}), **env_kw_user}
    ref = envs.resolve(env_name, env_kwargs)  # validates the name (and imports a custom env)
    cfg = cls.Config()
    if preset:
        cfg = apply_overrides(cfg, preset.values, owner=f"preset {agent_name}.yaml:{preset.env_key}")
    cfg = apply_overrides(cfg, rest, owner=f"agent {agent_name}")
    return RunSpec(
        agent=agent_name, env=ref.name, env_kwargs=env_kwargs, config=cfg,
        runs_dir=str(values.get("runs.dir", "runs")),
        preset=f"{agent_name}.yaml:{preset.env_key} ({preset.source})" if preset else None,
        words=list(words),
    )


# --------------------------------------------------------------------------------------------------
# config.yaml


def spec_to_yaml(spec: RunSpec) -> str:
    data = {
        "agent": spec.agent,
        "env": spec.env,
        "env_kwargs": spec.env_kwargs,
        "runs_dir": spec.runs_dir,
        "preset": spec.preset,
        "command": "rlkit train " + " ".join(spec.words),
        "rlkit_version": __version__,
        "git_commit": git_commit(),
        "config": to_dict(spec.config),
    }
    header = "# rlkit resolved config: agent defaults <- preset <- command-line overrides.\n" \
             "# `rlkit eval` and `rlkit resume` rebuild the run from this file alone.\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def load_spec(run_dir: Path) -> RunSpec:
    """Read a run folder's config.yaml back into a validated RunSpec."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run folder {run_dir}; list them with: ls {run_dir.parent}")
    path = run_dir / "config.yaml"
    if not path.exists():
        raise UserError(f"{run_dir} has no config.yaml, so it is not an rlkit run folder")
    try:
        data = yaml.safe_load(path.read_text())
        cls = agents.get(data["agent"])
        cfg = apply_overrides(cls.Config(), _flat(data.get("config") or {}), owner=f"{path}")
        return RunSpec(agent=data["agent"], env=data["env"], env_kwargs=dict(data.get("env_kwargs") or {}),
                       config=cfg, runs_dir=str(data.get("runs_dir", "runs")), preset=data.get("preset"),
                       words=str(data.get("command", "")).split()[2:])
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{path} is corrupt ({type(e).__name__}: {e}); it cannot rebuild the run") from None


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and not k.endswith("kwargs"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def with_config(spec: RunSpec, overrides: dict[str, Any]) -> RunSpec:
    """The spec with some config keys changed (e.g. a longer total_steps on resume)."""
    return dataclasses.replace(spec, config=apply_overrides(spec.config, overrides, owner=f"agent {spec.agent}"))


# --------------------------------------------------------------------------------------------------
# run folders


def create_run_dir(spec: RunSpec) -> Path:
    """A new `runs/<agent>-<env>-<YYYYmmdd-HHMMSS>-s<seed>/` (suffix -2, -3... if taken); never reuses one."""
    root = Path(spec.runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create runs folder {root}: {e.strerror}; choose another with runs.dir=PATH") from None
    stem = f"{spec.agent}-{spec.env_ref.slug}-{time.strftime('%Y%m%d-%H%M%S')}-s{spec.config.seed}"
    for i in range(1, 1000):
        path = root / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / "checkpoints").mkdir()
        atomic_write_text(path / "config.yaml", spec_to_yaml(spec))
        return path
    raise UserError(f"too many runs named {stem}* in {root}")


def git_commit() -> str | None:
    """The commit of the rlkit source tree (with '+dirty' when it has uncommitted changes), or None."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def runs_root_of(run_dir: Path) -> Path:
    return Path(os.path.dirname(os.path.abspath(run_dir)))
