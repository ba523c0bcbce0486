"""Hyperparameter translation: our config keys -> Stable-Baselines3 (or sb3-contrib) arguments, one table per agent.

`rlkit bench` trains our agent and its SB3 counterpart with the same hyperparameters by passing our
resolved config through the agent's table. Every key of our config ends up in one of four places,
and the report lists where:

    "learning_rate"              a keyword argument of the SB3 algorithm's constructor
    "policy_kwargs.net_arch"     an entry of its policy_kwargs
    "policy"                     the policy name (MlpPolicy / CnnPolicy), from net.type
    "env.n_envs", "env.async"    how the training VecEnv is built (count; SubprocVecEnv vs DummyVecEnv)
    "VecNormalize.norm_obs"      an argument of a VecNormalize wrapper (added when norm_obs or norm_reward)
    "learn.total_timesteps"      an argument of model.learn
    HARNESS                      set by the bench protocol itself for both sides (evaluation, threads, logging)
    Fixed(v)                     SB3 has no such option and always behaves as v (the bench holds ours at v
                                 unless the command line sets it; then the report says the runs differ)
    None                         no SB3 equivalent: listed in the report with the value our side used

A key of our config that no table entry covers is listed as "not in the mapping table", never dropped.
A table entry covers dotted sub-keys too ("per_beta" covers per_beta.start, per_beta.end, ...).
Adding an agent is adding one `Sb3Table` to TABLES.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlkit.errors import UserError

HARNESS = "harness"


@dataclass(frozen=True)
class Fixed:
    """Our key has no SB3 option; SB3 always behaves as `value`."""

    value: Any


@dataclass(frozen=True)
class Sb3Table:
    """The SB3 algorithm (\"module:Class\") that matches one of our agents, and how each of our keys maps onto it."""

    algo: str
    keys: dict[str, str | Fixed | None]
    note: str = ""


# keys every rlkit config has (rlkit.config.TrainConfig) and how the bench treats them on both sides
_COMMON: dict[str, str | Fixed | None] = {
    "seed": "seed",
    "total_steps": "learn.total_timesteps",
    "total_episodes": None,  # SB3's learn() counts steps only
    "eval_episodes": HARNESS,  # the bench's eval protocol (eval_every, eval_episodes) replaces it
    "checkpoint_every": HARNESS,
    "eval_every": HARNESS,  # our periodic eval + best checkpoint stays off: the bench's protocol evaluates both sides
    "threads": HARNESS,  # torch.set_num_threads(threads) in both sides' worker processes
    "progress": HARNESS,
    "tensorboard": HARNESS,
    "device": "device",
    "net.type": "policy",
    "net.hidden": "policy_kwargs.net_arch",
    "net.activation": "policy_kwargs.activation_fn",
}

# on-policy keys that PPO, A2C and TRPO share (our agents use SB3's names for them)
_ON_POLICY: dict[str, str | Fixed | None] = {
    **_COMMON,
    "n_envs": "env.n_envs",
    "async_envs": "env.async",
    "n_steps": "n_steps",
    "lr": "learning_rate",
    "gamma": "gamma",
    "gae_lambda": "gae_lambda",
    "normalize_advantage": "normalize_advantage",
    "norm_obs": "VecNormalize.norm_obs",
    "norm_reward": "VecNormalize.norm_reward",
    "clip_obs": "VecNormalize.clip_obs",
    "clip_reward": "VecNormalize.clip_reward",
    "net.dueling": Fixed(False),
    "anneal_lr": "learning_rate.anneal",  # true: SB3 gets a linear schedule lr -> 0 (the zoo's lin_<lr>)
    "ortho_init": "policy_kwargs.ortho_init",
    "log_std_init": "policy_kwargs.log_std_init",
    "use_sde": "use_sde",
    "sde_sample_freq": "sde_sample_freq",
    "share_trunk": Fixed(None),  # SB3 shares the trunk for CnnPolicy and not for MlpPolicy, as our null does
    "precision": Fixed("fp32"),  # SB3 runs fp32; precision=bf16 on our side is reported as a difference
}

TABLES: dict[str, Sb3Table] = {
    "dqn": Sb3Table(
        algo="stable_baselines3:DQN",
        note="SB3's DQN is plain DQN (no double Q), uniform replay, 1-step, Huber loss, no dueling head",
        keys={
            **_COMMON,
            "n_envs": "env.n_envs",
            "async_envs": "env.async",
            "lr": "learning_rate",
            "buffer_size": "buffer_size",
            "learning_starts": "learning_starts",
            "batch_size": "batch_size",
            "gamma": "gamma",
            "train_freq": "train_freq",
            "gradient_steps": "gradient_steps",
            "target_update_interval": "target_update_interval",
            "tau": "tau",
            "epsilon.start": "exploration_initial_eps",
            "epsilon.end": "exploration_final_eps",
            "epsilon.fraction": "exploration_fraction",
            "epsilon.kind": Fixed("linear"),
            "max_grad_norm": "max_grad_norm",
            "double_q": Fixed(False),
            "replay": Fixed("uniform"),
            "per_alpha": None,  # prioritized replay only
            "per_beta": None,
            "n_step": Fixed(1),
            "loss": Fixed("huber"),
            "net.dueling": Fixed(False),
            "save_replay": HARNESS,  # what our checkpoints hold
            "precision": Fixed("fp32"),  # SB3 runs fp32; precision=bf16 on our side is reported as a difference
        },
    ),
    "ppo": Sb3Table(
        algo="stable_baselines3:PPO",
        keys={
            **_ON_POLICY,
            "batch_size": "batch_size",
            "n_epochs": "n_epochs",
            "clip_range": "clip_range",
            "clip_range_vf": "clip_range_vf",
            "ent_coef": "ent_coef",
            "vf_coef": "vf_coef",
            "max_grad_norm": "max_grad_norm",
            "target_kl": "target_kl",
            "recompute_adv": Fixed(False),  # SB3 computes the advantages once per rollout
        },
    ),
    "a2c": Sb3Table(
        algo="stable_baselines3:A2C",
        keys={
            **_ON_POLICY,
            "ent_coef": "ent_coef",
            "vf_coef": "vf_coef",
            "max_grad_norm": "max_grad_norm",
            "use_rms_prop": "use_rms_prop",
            "rms_prop_eps": "rms_prop_eps",
        },
    ),
    "trpo": Sb3Table(
        algo="sb3_contrib:TRPO",
        note="TRPO is in sb3-contrib (pip install rlkit[bench]); lr is the critic's learning rate there",
        keys={
            **_ON_POLICY,
            "batch_size": "batch_size",
            "target_kl": "target_kl",
            "cg_max_steps": "cg_max_steps",
            "cg_damping": "cg_damping",
            "line_search_shrinking_factor": "line_search_shrinking_factor",
            "line_search_max_iter": "line_search_max_iter",
            "n_critic_updates": "n_critic_updates",
            "sub_sampling_factor": "sub_sampling_factor",
            "ent_coef": Fixed(0.0),  # no entropy term in the natural step (ours rejects any other value)
            "vf_coef": None,  # unused on both sides: the critic has its own optimizer
            "max_grad_norm": Fixed(None),  # sb3-contrib does not clip the critic's gradient
        },
    ),
}

SCHEDULED = {"clip_range"}
"""SB3 arguments that take a float or a schedule: our Schedule keys (start, end, fraction, kind) map onto them."""


@dataclass(frozen=True)
class Sb3Schedule:
    """Our schedule as SB3 wants it: a picklable callable of progress_remaining (1 at the start, 0 at the end)."""

    start: float
    end: float | None = None
    fraction: float = 1.0
    kind: str = "linear"

    def __call__(self, progress_remaining: float) -> float:
        from rlkit import schedules
        from rlkit.config import Schedule

        return schedules.value(Schedule(self.start, self.end, self.fraction, self.kind), 1.0 - progress_remaining)


ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "gelu": "GELU"}  # torch.nn class names


@dataclass
class Sb3Setup:
    """Everything needed to build and train the SB3 side, plus what did not translate."""

    algo: str
    policy: str
    kwargs: dict[str, Any]
    n_envs: int = 1
    async_envs: bool = False
    vec_normalize: dict[str, Any] | None = None
    total_timesteps: int = 0
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (our key, SB3 target)
    unmapped: list[tuple[str, Any, str]] = field(default_factory=list)  # (our key, value used, why)


def table(agent: str) -> Sb3Table | None:
    """The agent's table, or None when SB3 has no counterpart."""
    return TABLES.get(agent)


def entry(tab: Sb3Table, key: str) -> tuple[bool, str | Fixed | None]:
    """(found, target) for one flat key: an exact entry, else the longest dotted prefix that has one."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        k = ".".join(parts[:n])
        if k in tab.keys:
            return True, tab.keys[k]
    return False, None


def align(agent: str, config_keys: list[str]) -> dict[str, Any]:
    """Our keys that SB3 fixes, at SB3's value (those this agent's config has): the same algorithm on both sides."""
    tab = TABLES[agent]
    return {k: v.value for k, v in tab.keys.items() if isinstance(v, Fixed) and k in config_keys}


def translate(agent: str, flat: dict[str, Any], image_obs: bool = False) -> Sb3Setup:
    """Our flat config (dotted keys -> values) as SB3 constructor/env/learn arguments, through the agent's table.

    `image_obs`: the observation space is an image, so net.type=null picks CnnPolicy (as our nets do)."""
    import torch.nn

    tab = TABLES.get(agent)
    if tab is None:
        raise UserError(f"agent '{agent}' has no Stable-Baselines3 mapping; mapped agents: {', '.join(TABLES)}")
    setup = Sb3Setup(algo=tab.algo, policy="CnnPolicy" if image_obs else "MlpPolicy", kwargs={})
    vecnorm: dict[str, Any] = {}
    scheduled: dict[str, dict[str, Any]] = {}
    anneal_lr = False
    for key, value in flat.items():
        found, target = entry(tab, key)
        if not found:
            setup.unmapped.append((key, value, "not in the mapping table"))
            continue
        if target is None:
            setup.unmapped.append((key, value, "no SB3 equivalent"))
            continue
        if isinstance(target, Fixed):
            same = value == target.value
            setup.unmapped.append((key, value, f"no SB3 option; SB3 behaves as {target.value!r}"
                                   + ("" if same else " (differs from ours)")))
            continue
        setup.mapped.append((key, target))
        if target == HARNESS:
            continue
        if target == "policy":
            if value is not None:
                setup.policy = {"mlp": "MlpPolicy", "cnn": "CnnPolicy"}.get(str(value), f"{value} (no SB3 policy)")
        elif target == "env.n_envs":
            setup.n_envs = int(value)
        elif target == "env.async":
            setup.async_envs = bool(value)
        elif target == "learn.total_timesteps":
            setup.total_timesteps = int(value)
        elif target in SCHEDULED:  # clip_range (a plain number) or clip_range.start / .end / .fraction / .kind
            scheduled.setdefault(target, {})[key.split(".", 1)[1] if "." in key else "start"] = value
        elif target == "learning_rate.anneal":
            anneal_lr = bool(value)
        elif target.startswith("VecNormalize."):
            vecnorm[target.split(".", 1)[1]] = value
        elif target.startswith("policy_kwargs."):
            name = target.split(".", 1)[1]
            if name == "activation_fn":
                value = getattr(torch.nn, ACTIVATIONS[str(value)])
            elif name == "net_arch":
                value = [int(h) for h in value]
            setup.kwargs.setdefault("policy_kwargs", {})[name] = value
        elif target == "exploration_final_eps" and value is None:  # our schedule with end=null stays at start
            setup.kwargs[target] = flat.get("epsilon.start")
        else:
            setup.kwargs[target] = value
    if setup.policy == "CnnPolicy":  # our cnn is the Nature CNN with its 512 features straight into the heads
        pk = setup.kwargs.setdefault("policy_kwargs", {})
        pk["net_arch"] = []
        pk.pop("activation_fn", None)
        for key in ("net.hidden", "net.activation"):
            if key in flat:
                setup.mapped = [(k, t) for k, t in setup.mapped if k != key]
                setup.unmapped.append((key, flat[key], "cnn: no MLP after the Nature CNN on either side "
                                                       "(SB3 gets net_arch=[])"))
    for name, parts in scheduled.items():
        sched = Sb3Schedule(parts["start"], parts.get("end"), parts.get("fraction", 1.0), parts.get("kind", "linear"))
        setup.kwargs[name] = sched.start if sched.end is None or sched.end == sched.start else sched
    if anneal_lr and "learning_rate" in setup.kwargs:
        setup.kwargs["learning_rate"] = Sb3Schedule(float(setup.kwargs["learning_rate"]), 0.0)
    if vecnorm.get("norm_obs") or vecnorm.get("norm_reward"):
        setup.vec_normalize = {"gamma": flat.get("gamma", 0.99), **vecnorm}
    return setup
