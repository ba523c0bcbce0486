"""Benchmarks: ours against Stable-Baselines3 (or against published reference figures), and sweeps.

    rlkit bench agent=dqn env=cartpole seeds=5 [total_steps=N] [threshold=475] [against=sb3|reference]
                [workers=N] [eval_every=K] [eval_episodes=N] [backend=local|ray] [key=value ...]
    rlkit sweep agent=dqn env=cartpole seeds=0..9 lr=[1e-4,3e-4] [backend=ray] [...]

Protocol (the same for every side): every `eval_every` env steps training pauses and the greedy policy
plays `eval_episodes` episodes on a separate evaluation env (episode i of run seed s reset with
10000 + s x eval_episodes + i: both sides of a seed play the same episodes, no two seeds share one),
scored by one function (rlkit.evaluation.evaluate) for both sides; wall time counts training only.
On-policy agents pause after the update of the rollout that reaches the evaluation step, on both sides,
and the last evaluation scores the model training ends with. SB3 finishes the rollout that crosses
total_timesteps, so against SB3 our side is given the same budget, total_steps rounded up to whole
rollouts (n_envs x n_steps): the same env steps and the same whole updates on both sides, with the
schedules (lr, clip) running over total_steps on both (ours alone would stop at total_steps with a shorter
last rollout; measured on Pendulum ppo over 180 seeds, that last short update cost 1.9 IQM points).
Both sides build their envs through `envs.make`, so wrappers are identical, and run the same seeds
with the same torch thread count. Hyperparameters reach SB3 through the agent's table in
rlkit/sb3map.py; keys with no SB3 equivalent are listed in the report. Agents with no SB3 counterpart
are measured against REFERENCES (figures from SEEDS.md / Sutton & Barto) with the same report.

Each (side, config, seed) is one job, run in a fresh process (its own peak memory): locally in up to
`workers` processes at once, each pinned to an equal share of the CPUs, or as Ray tasks with a CPU/GPU
request. A job whose process dies is reported as failed; finished results are appended to results.csv
as they arrive, so nothing finished is lost. Output: runs/<bench|sweep>-<agent>-<env>-<time>/ with
results.csv, runs.jsonl, report.md and curves.png.

What an agent needs for this (the contract resume already relies on): `learn(env, n, ...)` trains
until steps_done >= n and can be called again with a larger n to continue, with its schedules read
from cfg.total_steps (not from n); `act(obs, deterministic=True)` applies any observation
normalization itself. A new SB3 counterpart is one table in rlkit/sb3map.py; a new reference figure
is one entry in REFERENCES (plus a measure in MEASURES if none fits).
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlkit import sb3map
from rlkit.errors import UserError
from rlkit.logger import Logger

EXIT_SOME_FAILED = 3  # the report was written, but some jobs failed (listed in it)


# --------------------------------------------------------------------------------------------------
# Reference figures for agents without an SB3 counterpart


@dataclass(frozen=True)
class Reference:
    """A published figure our agent should reproduce, and how to measure ours at each evaluation point."""

    metric: str
    """what is measured, in words (the report's 'final' row)"""
    value: float
    """the reference figure"""
    tolerance: float
    """an evaluation point 'reaches' the reference when |ours - value| <= tolerance"""
    source: str
    """where the figure comes from"""
    measure: str
    """name in MEASURES: (agent, metric rows logged since the last evaluation) -> float"""
    eval_every: int
    """default evaluation interval in env steps"""


def _mean_of(column: str) -> Callable[[Any, list[dict[str, float]]], float]:
    def measure(agent: Any, rows: list[dict[str, float]]) -> float:
        vals = [r[column] for r in rows if column in r]
        return float(np.mean(vals)) if vals else float("nan")

    return measure


def _q_deviation(agent: Any, rows: list[dict[str, float]]) -> float:
    return float(np.abs(agent.q - agent.env.unwrapped.reference_q()).max())


GREEDY_EVAL = "greedy_eval"
"""a Reference measure meaning: the bench's own greedy evaluation on a separate env (as for SB3 benches)"""

MEASURES: dict[str, Callable[[Any, list[dict[str, float]]], float]] = {
    "mean_reward": _mean_of("charts/reward"),
    "mean_episode_return": _mean_of("charts/return"),
    "q_deviation": _q_deviation,
}

# (agent, env alias) -> Reference; the agent's preset for that env supplies the hyperparameters
REFERENCES: dict[tuple[str, str], Reference] = {
    ("eps_greedy", "bandit"): Reference(
        "average reward per step over the last 50 steps (2000 problems)", 1.37, 0.05,
        "Sutton & Barto (2018) Figure 2.2, eps=0.1 at step 1000 (SEEDS.md: near 1.4)", "mean_reward", 50),
    ("ucb", "bandit"): Reference(
        "average reward per step over the last 50 steps (2000 problems)", 1.49, 0.05,
        "Sutton & Barto (2018) Figure 2.4, UCB c=2 at step 1000", "mean_reward", 50),
    ("q_learning", "rooms"): Reference(
        "max abs(Q - Q_notes) over the 6x6 matrix (goal bootstraps: the 400/500 matrix)", 0.0, 0.5,
        "SEEDS.md, the notes' converged rooms Q-matrix", "q_deviation", 1000),
    ("sarsa", "cliffwalking"): Reference(
        "mean return of the training episodes since the last evaluation (online, eps=0.1)", -25.0, 5.0,
        "Sutton & Barto (2018) Example 6.6 / Figure 6.4: SARSA about -25 per episode", "mean_episode_return", 1000),
    ("q_learning", "cliffwalking"): Reference(
        "mean return of the training episodes since the last evaluation (online, eps=0.1)", -50.0, 10.0,
        "Sutton & Barto (2018) Example 6.6 / Figure 6.4: Q-learning about -50 per episode", "mean_episode_return",
        1000),
    ("es", "cartpole"): Reference(
        "greedy evaluation return (eval_episodes episodes on a separate env)", 500.0, 25.0,
        "CartPole-v1's maximum return: SEEDS.md's hill climber on a linear policy solves it "
        "(bench/results/es_cartpole.md: median 150 episodes over 10 seeds)", GREEDY_EVAL, 5000),
    ("reinforce", "cartpole"): Reference(
        "greedy evaluation return (eval_episodes episodes on a separate env)", 500.0, 25.0,
        "CartPole-v1's maximum return (SB3 has no REINFORCE; SEEDS.md gives its update, not a figure)",
        GREEDY_EVAL, 5000),
}


# --------------------------------------------------------------------------------------------------
# Jobs and their results


@dataclass
class Job:
    """One training run: which side, the words that resolve its config, and the evaluation protocol."""

    id: int
    label: str  # the report column: "rlkit", "sb3", or a sweep config such as "lr=0.0001"
    side: str  # "rlkit" (our agent) or "sb3"
    values: dict[str, Any]  # parsed words for rlkit.runs.resolve_spec (agent, env, seed, overrides)
    seed: int
    total_steps: int
    eval_every: int
    eval_episodes: int
    measure_after: int = 0  # training steps/s is measured over the steps after this one
    reference: tuple[str, str] | None = None  # key into REFERENCES: measure that instead of eval returns
    threads: int = 1  # torch threads of the run (its CPU request on Ray)
    cpus: list[int] | None = None  # CPU affinity of the job's process (local backend)


@dataclass
class BenchRun:
    """What one job produced: the eval curve, throughput and memory, or the error that stopped it."""

    job: int
    label: str
    side: str
    seed: int
    steps: list[int] = field(default_factory=list)
    train_wall_s: list[float] = field(default_factory=list)
    eval_mean: list[float] = field(default_factory=list)
    train_steps_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def first_reaching(self, reached: Callable[[float], bool]) -> tuple[int | None, float | None]:
        """(env steps, training seconds) of the first evaluation that `reached` accepts."""
        for s, w, r in zip(self.steps, self.train_wall_s, self.eval_mean):
            if reached(r):
                return s, w
        return None, None


def run_job(job: Job, progress: Callable[[tuple], None] | None = None) -> dict[str, Any]:
    """Train one job in this process and return its BenchRun as a dict (what the workers call)."""
    if job.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job.cpus)
    import torch

    from rlkit.runs import resolve_spec

    spec = resolve_spec(dict(job.values), [])
    torch.set_num_threads(spec.config.threads)
    torch.set_flush_denormal(True)  # both sides: denormal Adam state otherwise slows either ~2x
    run = BenchRun(job=job.id, label=job.label, side=job.side, seed=job.seed)
    run.extra["host"] = platform.node()
    run.extra["torch_threads"] = torch.get_num_threads()

    def on_eval(step: int, wall: float, value: float) -> None:
        run.steps.append(int(step))
        run.train_wall_s.append(float(wall))
        run.eval_mean.append(float(value))
        if progress is not None:
            progress(("eval", job.id, int(step), float(value)))

    if job.side == "sb3":
        mark, steps, train_s = _run_sb3(spec, job, on_eval)
    else:
        mark, steps, train_s = _run_ours(spec, job, on_eval)
        from rlkit.device import keep_freed_memory

        run.extra["malloc_keep_freed"] = keep_freed_memory()  # build() turned it on (where glibc has it)
    if mark is not None and train_s > mark[1]:
        run.train_steps_per_s = (steps - mark[0]) / (train_s - mark[1])
    run.extra["trained_steps"] = steps
    run.extra["train_s"] = train_s
    run.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    return asdict(run)


def eval_seed(seed: int, episodes: int) -> int:
    """The env seed of the first evaluation episode of run seed `seed`: 10000 + seed x episodes. Both sides of a
    seed play the same episodes (a paired comparison), and no two run seeds share one, so the spread over seeds
    is the spread of independent runs (with seed + 10000 + i, seeds 0-4 played 14 distinct episodes, not 50)."""
    from rlkit.evaluation import EVAL_SEED_OFFSET

    return EVAL_SEED_OFFSET + seed * max(episodes, 1)


def _evaluate(agent: Any, env: Any, job: Job) -> float:
    from rlkit.evaluation import evaluate

    if job.eval_episodes == 0:
        return float("nan")
    return evaluate(agent, env, job.eval_episodes, eval_seed(job.seed, job.eval_episodes),
                    deterministic=True)["return_mean"]


class RecordingLogger(Logger):
    """A quiet Logger that also keeps the metric rows in memory (reference measures read them)."""

    def __init__(self, run_dir: Path, total_steps: int):
        super().__init__(run_dir, total_steps, tensorboard=False, progress=False)
        self.rows: list[dict[str, float]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.rows.append(dict(metrics))
        super().log(step, metrics)


def _run_ours(spec: Any, job: Job, on_eval: Callable[[int, float, float], None]) -> tuple[Any, int, float]:
    from rlkit.checkpoint import Checkpointer
    from rlkit.train import build

    agent, env = build(spec)
    eval_env = type(agent).make_env(spec.env_ref, spec.config, training=False)
    ref = REFERENCES[job.reference] if job.reference else None
    measure = MEASURES[ref.measure] if ref and ref.measure != GREEDY_EVAL else None
    total = job.total_steps  # cfg.total_steps, or against SB3 on-policy its whole-rollout budget (plan)
    if total != spec.config.total_steps:
        agent.rollout_end = total  # every rollout whole, as SB3's; the schedules still run over cfg.total_steps
    with tempfile.TemporaryDirectory() as tmp:
        logger = RecordingLogger(Path(tmp), total)
        ckpt = Checkpointer(Path(tmp) / "ck", every=10**12)
        train_s, mark = 0.0, None
        while agent.steps_done < total:
            before = agent.steps_done
            target = min((before // job.eval_every + 1) * job.eval_every, total)
            t0 = time.perf_counter()
            if mark is None and before < job.measure_after < target:  # start the throughput clock there
                agent.learn(env, job.measure_after, logger, ckpt)
                mark = (agent.steps_done, time.perf_counter() - t0 + train_s)
            elif mark is None and before >= job.measure_after:
                mark = (before, train_s)
            agent.learn(env, target, logger, ckpt)
            train_s += time.perf_counter() - t0
            if agent.steps_done == before:  # stopped by its own limit (e.g. total_episodes)
                break
            value = measure(agent, logger.rows) if measure else _evaluate(agent, eval_env, job)
            logger.rows.clear()
            on_eval(agent.steps_done, train_s, value)
        logger.close()
    return mark, agent.steps_done, train_s


class _Sb3Actor:
    """An SB3 model behind our Agent.act contract, so one evaluation function scores both sides."""

    def __init__(self, model: Any, vecnorm: Any = None):
        self.model, self.vecnorm = model, vecnorm

    def act(self, obs: Any, deterministic: bool = False, action_mask: Any = None) -> np.ndarray:
        obs = np.asarray(obs)
        if self.vecnorm is not None:
            obs = self.vecnorm.normalize_obs(obs)
        return self.model.predict(obs, deterministic=deterministic)[0]


def sb3_algo(name: str) -> type:
    """The SB3 algorithm class for "module:Class"; a UserError naming the extra to install when missing."""
    import importlib

    module, cls = name.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        raise UserError(f"{cls} needs the {module.replace('_', '-')} package: pip install 'rlkit[bench]'") from None


def build_sb3(spec: Any) -> tuple[Any, Any, sb3map.Sb3Setup]:
    """(SB3 model, its VecNormalize or None, the translation) for one of our run specs: the SB3 side of a bench,
    on the same envs (envs.make, training=True). tests/test_sb3_lockstep.py checks it learns as our agent does."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    import envs
    from rlkit.config import to_dict
    from rlkit.runs import _flat

    ref, cfg = spec.env_ref, spec.config
    probe = envs.make(ref, training=True)
    image = len(getattr(probe.observation_space, "shape", ()) or ()) == 3
    probe.close()
    setup = sb3map.translate(spec.agent, _flat(to_dict(cfg)), image_obs=image)
    vec_cls = SubprocVecEnv if setup.async_envs else DummyVecEnv
    vec = vec_cls([lambda: envs.make(ref, training=True) for _ in range(setup.n_envs)])
    vecnorm = None
    if setup.vec_normalize:
        vec = vecnorm = VecNormalize(vec, **setup.vec_normalize)
    model = sb3_algo(setup.algo)(setup.policy, vec, verbose=0, **setup.kwargs)
    return model, vecnorm, setup


def _run_sb3(spec: Any, job: Job, on_eval: Callable[[int, float, float], None]) -> tuple[Any, int, float]:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    import envs

    model, vecnorm, setup = build_sb3(spec)
    eval_env = envs.make(spec.env_ref, training=False)
    actor = _Sb3Actor(model, vecnorm)
    total = setup.total_timesteps
    # On-policy algorithms are evaluated where ours are: after the update of the rollout that reached the
    # evaluation point, and at the end on the model learn() returns (evaluating mid-rollout would score a
    # policy one update behind ours, and the final one would miss SB3's last update); the steps/s span starts
    # there too, after an update, as ours does. Off-policy ones train every train_freq steps, as ours do, so
    # both are evaluated (and the span starts) at the step itself.
    at_update = isinstance(model, OnPolicyAlgorithm)
    state: dict[str, Any] = {"train_s": 0.0, "t0": 0.0, "mark": None, "next": min(job.eval_every, total)}

    def mark_if_due(n: int) -> None:
        if state["mark"] is None and n >= job.measure_after:
            state["mark"] = (n, state["train_s"] + time.perf_counter() - state["t0"])

    def evaluate_if_due(n: int) -> None:
        if state["next"] is None or n < state["next"]:
            return
        state["train_s"] += time.perf_counter() - state["t0"]
        if vecnorm is not None:
            vecnorm.training = False
        on_eval(n, state["train_s"], _evaluate(actor, eval_env, job))
        if vecnorm is not None:
            vecnorm.training = True
        state["next"] = None if n >= total else min((n // job.eval_every + 1) * job.eval_every, total)
        state["t0"] = time.perf_counter()

    class EvalAndClock(BaseCallback):
        """Pauses the training clock to evaluate every eval_every steps (the protocol our side follows)."""

        def _on_training_start(self) -> None:
            state["t0"] = time.perf_counter()

        def _on_step(self) -> bool:
            if not at_update:
                mark_if_due(self.num_timesteps)
                evaluate_if_due(self.num_timesteps)
            return True

        def _on_rollout_start(self) -> None:  # the previous rollout's update is done
            if at_update:  # so the throughput span starts, as ours does, after that update
                mark_if_due(self.num_timesteps)
                evaluate_if_due(self.num_timesteps)

        def _on_training_end(self) -> None:
            if at_update:
                evaluate_if_due(self.num_timesteps)

    model.learn(total_timesteps=total, callback=EvalAndClock())
    if state["next"] is not None:  # learn() ended between evaluation points
        state["train_s"] += time.perf_counter() - state["t0"]
    return state["mark"], int(model.num_timesteps), state["train_s"]


# --------------------------------------------------------------------------------------------------
# Planning: words -> jobs


BENCH_KEYS = ("seeds", "threshold", "against", "workers", "eval_every", "eval_episodes", "measure_after",
              "backend", "ray.address", "ray.num_cpus", "ray.gpus", "ray.retries", "runs.dir")


@dataclass
class Plan:
    """All jobs of one bench or sweep invocation, and how to report them."""

    kind: str  # "bench" or "sweep"
    agent: str
    env: str
    jobs: list[Job]
    labels: list[str]  # report columns, in order
    opts: dict[str, Any]
    out: Path
    command: str
    threshold: float | None = None
    reference: tuple[str, str] | None = None
    sb3: sb3map.Sb3Setup | None = None  # the translation of the first seed's config (for the report)
    aligned: dict[str, Any] = field(default_factory=dict)  # our keys held at SB3's fixed behaviour


def parse_seeds(value: Any) -> list[int]:
    """seeds=5 -> 0..4; seeds=0..9 -> 0..9 inclusive; seeds=[1,3,7] -> those."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and value > 0:
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                 for v in value):
        return [int(v) for v in value]
    if isinstance(value, str) and ".." in value:
        a, _, b = value.partition("..")
        if a.strip().isdigit() and b.strip().isdigit() and int(a) <= int(b):
            return list(range(int(a), int(b) + 1))
    raise UserError(f"seeds={value!r}: use a count (seeds=5 -> 0..4), a range (seeds=0..9) or a list (seeds=[1,3])")


def _opt(values: dict[str, Any], key: str, kind: type, default: Any, minimum: float | None = None) -> Any:
    if key not in values:
        return default
    v = values[key]
    ok = isinstance(v, kind) and not isinstance(v, bool) if kind is not bool else isinstance(v, bool)
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v, ok = float(v), True
    if not ok or (minimum is not None and v < minimum):
        lo = f" >= {minimum:g}" if minimum is not None else ""
        raise UserError(f"{key}={v!r}: expected {'a number' if kind is float else kind.__name__}{lo}")
    return v


def plan(kind: str, words: list[str]) -> Plan:
    """Resolve the words of `rlkit bench` / `rlkit sweep` into jobs; every user mistake surfaces here."""
    from rlkit.config import keys_of, to_dict
    from rlkit.overrides import parse_words
    from rlkit.runs import _flat, resolve_spec

    values = parse_words(words)
    for k in ("agent", "env"):
        if k not in values:
            raise UserError(f"missing {k}=NAME, e.g. rlkit {kind} agent=dqn env=cartpole seeds=5")
    if "seed" in values:
        raise UserError(f"rlkit {kind} takes seeds=N (or seeds=0..9, seeds=[1,3]), not seed=")
    agent, env = str(values["agent"]), str(values["env"])
    import agents
    from agents.onpolicy import OnPolicyAgent

    cls = agents.get(agent)
    bench_opts = {k: values.pop(k) for k in list(values) if k in BENCH_KEYS}
    seeds = parse_seeds(bench_opts.get("seeds", 5 if kind == "bench" else 1))
    workers = _opt(bench_opts, "workers", int, 1, 0)
    backend = bench_opts.get("backend", "local")
    if backend not in ("local", "ray"):
        raise UserError(f"backend={backend!r}: use backend=local (processes on this machine) or backend=ray")

    # which reference: SB3 (a mapping table) or published figures
    reference = None
    against = bench_opts.get("against")
    if kind == "bench":
        has_ref = (agent, env) in REFERENCES
        if against is None:
            against = "sb3" if sb3map.table(agent) else "reference" if has_ref else None
        if against is None:
            refs = sorted({a for a in sb3map.TABLES} | {f"{a} env={e}" for a, e in REFERENCES})
            raise UserError(f"agent '{agent}' has no Stable-Baselines3 mapping and no reference figures for env "
                            f"'{env}', so there is nothing to bench it against; benchable: {', '.join(refs)}")
        if against not in ("sb3", "reference"):
            raise UserError(f"against={against!r}: use against=sb3 or against=reference")
        if against == "sb3" and not sb3map.table(agent):
            raise UserError(f"agent '{agent}' has no Stable-Baselines3 mapping (rlkit/sb3map.py has: "
                            f"{', '.join(sb3map.TABLES)}); try against=reference")
        if against == "reference":
            if not has_ref:
                have = ", ".join(f"agent={a} env={e}" for a, e in REFERENCES)
                raise UserError(f"no reference figures for agent={agent} env={env}; references exist for: {have}")
            reference = (agent, env)

    # the grid of configs: list values of non-list keys are swept (sweep only)
    defaults = _flat(to_dict(cls.Config()))
    swept: dict[str, list[Any]] = {}
    if kind == "sweep":
        for k, v in values.items():
            if k in ("agent", "env") or not isinstance(v, list):
                continue
            is_list_key = isinstance(defaults.get(k), list)
            if not is_list_key or (v and all(isinstance(x, list) for x in v)):
                if not v:
                    raise UserError(f"{k}=[]: a swept key needs at least one value")
                swept[k] = v
    grid = [dict(zip(swept, combo)) for combo in itertools.product(*swept.values())] or [{}]

    config_keys = keys_of(cls.Config)
    aligned = sb3map.align(agent, config_keys) if against == "sb3" else {}
    aligned = {k: v for k, v in aligned.items() if k not in values}
    jobs: list[Job] = []
    labels: list[str] = []
    first_spec = None
    for point in grid:
        label = ",".join(f"{k}={_short(v)}" for k, v in point.items()) or ("rlkit" if kind == "bench" else agent)
        for seed in seeds:
            v = {**aligned, **values, **point, "seed": seed}
            spec = resolve_spec(v, [])  # validates every key and value before anything runs
            first_spec = first_spec or spec
            cfg = spec.config
            total = cfg.total_steps
            ref = REFERENCES[reference] if reference else None
            eval_every = _opt(bench_opts, "eval_every", int, ref.eval_every if ref else max(1, total // 20), 1)
            eval_episodes = _opt(bench_opts, "eval_episodes", int, cfg.eval_episodes, 0)
            measure_after = _opt(bench_opts, "measure_after", int, int(getattr(cfg, "learning_starts", 0)), 0)
            sides = ["rlkit", "sb3"] if against == "sb3" else ["rlkit"]
            if against == "sb3" and issubclass(cls, OnPolicyAgent):
                total = sb3_on_policy_total(cfg)
            for side in sides:
                lab = side if kind == "bench" and side == "sb3" else label
                jobs.append(Job(len(jobs), lab, side, v, seed, total, eval_every, eval_episodes, measure_after,
                                reference, cfg.threads))
                if lab not in labels:
                    labels.append(lab)
    assert first_spec is not None
    setup = None
    if against == "sb3":
        import envs as envs_mod

        probe = envs_mod.make(first_spec.env_ref, training=True)
        image = len(getattr(probe.observation_space, "shape", ()) or ()) == 3
        probe.close()
        setup = sb3map.translate(agent, _flat(to_dict(first_spec.config)), image_obs=image)
        sb3_algo(setup.algo)  # a missing sb3-contrib is a user error now, not a crash in every worker
    threshold = bench_opts.get("threshold")
    if threshold is not None:
        threshold = _opt(bench_opts, "threshold", float, None)
    elif reference is None:
        gym_id = first_spec.env_ref.gym_id
        if gym_id:
            import gymnasium as gym

            try:
                threshold = gym.spec(gym_id).reward_threshold
            except Exception:  # an id gymnasium cannot spec (custom namespaces): no threshold
                threshold = None
    if backend == "ray":
        retries = _opt(bench_opts, "ray.retries", int, 1, 0)
        gpus = _opt(bench_opts, "ray.gpus", float, 0.0, 0)
        bench_opts.update({"ray.retries": retries, "ray.gpus": gpus})
    runs_dir = Path(str(bench_opts.get("runs.dir", "runs")))
    out = runs_dir / f"{kind}-{agent}-{first_spec.env_ref.slug}-{time.strftime('%Y%m%d-%H%M%S')}"  # made by execute
    opts = {**bench_opts, "workers": workers, "backend": backend, "seeds": seeds, "swept": list(swept),
            "against": against}
    return Plan(kind, agent, first_spec.env, jobs, labels, opts, out, f"rlkit {kind} " + " ".join(words),
                threshold, reference, setup, aligned)


def sb3_on_policy_total(cfg: Any) -> int:
    """The env steps an SB3 on-policy algorithm takes for cfg.total_steps: it collects whole rollouts of
    n_envs x n_steps until total_timesteps is reached, so the last one ends at or past it."""
    per = int(cfg.n_envs) * int(cfg.n_steps)
    return -(-int(cfg.total_steps) // per) * per


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else json.dumps(v).replace(" ", "") if isinstance(v, list) else str(v)


def _new_dir(root: Path, stem: str) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create runs folder {root}: {e.strerror}; choose another with runs.dir=PATH") from None
    for i in range(1, 1000):
        path = root / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"too many folders named {stem}* in {root}")


# --------------------------------------------------------------------------------------------------
# Progress display across all jobs


class Progress:
    """One bar per job on a terminal (rich); elsewhere one plain line per evaluation and per finished job."""

    def __init__(self, jobs: list[Job], enabled: bool = True):
        self.jobs = {j.id: j for j in jobs}
        self.done = 0
        self.live = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self._bar = None
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("eval {task.fields[last]}"), TimeElapsedColumn(),
                                     console=Console(stderr=True))
            self._tasks = {j.id: self._bar.add_task(self._name(j), total=j.total_steps, last="-", start=False)
                           for j in jobs}
            self._bar.start()

    @staticmethod
    def _name(j: Job) -> str:
        return f"{j.label} seed {j.seed}"

    def started(self, job_id: int) -> None:
        if self._bar is not None:
            self._bar.start_task(self._tasks[job_id])

    def update(self, msg: tuple) -> None:
        _, job_id, step, value = msg
        j = self.jobs[job_id]
        if self._bar is not None:
            self._bar.update(self._tasks[job_id], completed=min(step, j.total_steps), last=f"{value:.2f}")
        elif self.enabled:
            print(f"[{self.done}/{len(self.jobs)} done] {self._name(j)}: step {step}/{j.total_steps}, "
                  f"eval {value:.2f}", file=sys.stderr, flush=True)

    def finished(self, run: BenchRun) -> None:
        self.done += 1
        j = self.jobs[run.job]
        if self._bar is not None:
            self._bar.update(self._tasks[run.job], completed=j.total_steps,
                             description=self._name(j) + ("" if run.ok else " FAILED"))
        if self.enabled and (self._bar is None or not run.ok):
            what = (f"{run.train_steps_per_s:,.0f} training steps/s, peak {run.peak_rss_mb:,.0f} MB" if run.ok
                    else f"FAILED: {run.error.strip().splitlines()[-1] if run.error else '?'}")
            line = f"[{self.done}/{len(self.jobs)} done] {self._name(j)}: {what}"
            (self._bar.console.print if self._bar is not None else _eprint)(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _eprint(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Backends: local processes (pinned) and Ray tasks


def _child(job: Job, queue: Any) -> None:
    """Entry point of a local worker process: run the job, send progress and the result (or the traceback)."""
    try:
        queue.put(("done", job.id, run_job(job, queue.put)))
    except BaseException:  # noqa: BLE001  (everything, KeyboardInterrupt included, goes back as a failure)
        queue.put(("error", job.id, traceback.format_exc()))


def cpu_slots(workers: int) -> list[list[int] | None]:
    """An equal, disjoint share of this process's CPUs per worker; None (no pinning) when there are too few."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    per = len(cpus) // workers if cpus else 0
    if per < 1:
        return [None] * workers
    return [cpus[i * per:(i + 1) * per] for i in range(workers)]


def run_local(jobs: list[Job], workers: int, on_result: Callable[[BenchRun], None], progress: Progress) -> None:
    """Run the jobs in fresh spawned processes, `workers` at a time, each pinned to its CPU share."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    slots = cpu_slots(workers)
    free = list(range(workers))
    pending = list(jobs)
    running: dict[int, tuple[Any, int]] = {}  # job id -> (process, slot)
    results: set[int] = set()

    def finish(job_id: int, run: BenchRun) -> None:
        proc, slot = running.pop(job_id)
        proc.join(timeout=10)
        free.append(slot)
        results.add(job_id)
        on_result(run)
        progress.finished(run)

    def handle(msg: tuple) -> None:
        kind, job_id = msg[0], msg[1]
        job = next(j for j in jobs if j.id == job_id)
        if kind == "eval":
            progress.update(msg)
        elif kind == "done" and job_id in running:
            finish(job_id, BenchRun(**msg[2]))
        elif kind == "error" and job_id in running:
            finish(job_id, BenchRun(job_id, job.label, job.side, job.seed, error=msg[2]))

    try:
        while pending or running:
            while pending and free:
                job = pending.pop(0)
                slot = free.pop(0)
                job.cpus = slots[slot]
                proc = ctx.Process(target=_child, args=(job, q), daemon=True)
                proc.start()
                running[job.id] = (proc, slot)
                progress.started(job.id)
            try:
                handle(q.get(timeout=0.5))
            except queue_mod.Empty:
                pass
            for job_id, (proc, _) in list(running.items()):
                if not proc.is_alive() and job_id in running:
                    try:  # its last messages may still be in the pipe
                        while job_id in running:
                            handle(q.get(timeout=2.0))
                    except queue_mod.Empty:
                        job = next(j for j in jobs if j.id == job_id)
                        finish(job_id, BenchRun(job_id, job.label, job.side, job.seed,
                                                error=f"worker process died (exit code {proc.exitcode})"))
    finally:
        for proc, _ in running.values():
            proc.terminate()


def run_inline(jobs: list[Job], on_result: Callable[[BenchRun], None], progress: Progress) -> None:
    """workers=0: run the jobs one after another in this process (for debugging; memory is not per run)."""
    for job in jobs:
        progress.started(job.id)
        try:
            run = BenchRun(**run_job(job, progress.update))
        except Exception:  # noqa: BLE001  (reported like a failed worker)
            run = BenchRun(job.id, job.label, job.side, job.seed, error=traceback.format_exc())
        on_result(run)
        progress.finished(run)


def ray_init(opts: dict[str, Any]) -> None:
    """Join ray.address (e.g. auto), or start a local Ray instance (ray.num_cpus CPUs), unless one is running."""
    try:
        import ray
    except ImportError:
        raise UserError("backend=ray needs Ray: pip install 'rlkit[ray]'") from None
    if ray.is_initialized():
        return
    address = opts.get("ray.address")
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address:
        kw["address"] = str(address)
    elif "ray.num_cpus" in opts:
        kw["num_cpus"] = int(opts["ray.num_cpus"])
    try:
        ray.init(**kw)
    except ConnectionError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot reach a Ray cluster at ray.address={address} ({first}); start one with "
                        "`ray start --head`, or drop ray.address for a local instance") from None


def run_ray(jobs: list[Job], opts: dict[str, Any], on_result: Callable[[BenchRun], None],
            progress: Progress, extra: dict[str, Any]) -> None:
    """Submit every job as a Ray task (CPU/GPU request, retries on worker death); gather as they finish. Ray's
    version and the cluster go into `extra` first, so an interrupted bench still reports them; Ctrl-C cancels the
    tasks not yet finished (on a shared cluster they would otherwise run on for nobody)."""
    import ray
    from ray.util.queue import Queue

    extra.update({"ray": ray.__version__, "ray_resources": ray.cluster_resources()})

    remote = ray.remote(max_calls=1)(_ray_job)  # a fresh worker process per task: its own peak memory
    queue = Queue(actor_options={"num_cpus": 0})  # progress messages from the tasks
    refs: dict[Any, Job] = {}
    for job in jobs:
        ref = remote.options(num_cpus=job.threads, num_gpus=float(opts.get("ray.gpus", 0.0)),
                             max_retries=int(opts.get("ray.retries", 1)), retry_exceptions=False).remote(job, queue)
        refs[ref] = job
        progress.started(job.id)
    pending = list(refs)

    def drain() -> None:
        n = queue.size()
        for msg in queue.get_nowait_batch(n) if n else []:
            progress.update(msg)

    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            drain()
            for ref in ready:
                job = refs[ref]
                try:
                    run = BenchRun(**ray.get(ref))
                except Exception as e:  # noqa: BLE001  (a task error or a worker that died after its retries)
                    msg = str(e).strip().splitlines()
                    run = BenchRun(job.id, job.label, job.side, job.seed, error=f"{type(e).__name__}: "
                                   + (msg[0] if msg else ""))
                on_result(run)
                progress.finished(run)
        drain()
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        queue.shutdown()


def _ray_job(job: Job, queue: Any) -> dict[str, Any]:
    return run_job(job, queue.put)


# --------------------------------------------------------------------------------------------------
# The command


def execute(p: Plan, progress_enabled: bool = True) -> int:
    """Run a plan's jobs, writing results as they arrive, then the report and curves. Returns the exit code."""
    if p.opts["backend"] == "ray":
        ray_init(p.opts)  # an unreachable cluster is a user error before anything is written
    p.out = _new_dir(p.out.parent, p.out.name)
    csv_path = p.out / "results.csv"
    with open(csv_path, "w") as f:
        f.write("side,seed,step,train_wall_s,eval,train_steps_per_s,peak_rss_mb\n")
        if p.reference:
            f.write(f"reference,,,,{REFERENCES[p.reference].value},,\n")
    runs: list[BenchRun] = []

    def on_result(run: BenchRun) -> None:
        runs.append(run)
        with open(p.out / "runs.jsonl", "a") as f:
            f.write(json.dumps(asdict(run)) + "\n")
        if run.ok:
            with open(csv_path, "a") as f:
                for s, w, e in zip(run.steps, run.train_wall_s, run.eval_mean):
                    f.write(f"{run.label},{run.seed},{s},{w:.3f},{e:.4f},{run.train_steps_per_s:.2f},"
                            f"{run.peak_rss_mb:.0f}\n")

    print(f"{p.kind} {p.out}: {len(p.jobs)} runs ({', '.join(p.labels)} x seeds {p.opts['seeds']}), "
          f"backend {p.opts['backend']}" + (f", {p.opts['workers']} worker(s)" if p.opts["backend"] == "local" else ""),
          flush=True)
    progress = Progress(p.jobs, enabled=progress_enabled)
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    interrupted = False
    try:
        if p.opts["backend"] == "ray":
            run_ray(p.jobs, p.opts, on_result, progress, extra)
        elif p.opts["workers"] == 0:
            run_inline(p.jobs, on_result, progress)
        else:
            run_local(p.jobs, p.opts["workers"], on_result, progress)
    except KeyboardInterrupt:  # Ctrl-C: the runs that finished still get their report and curves
        interrupted = True
    finally:
        progress.close()
    extra["elapsed_s"] = time.perf_counter() - t0
    if interrupted:  # a run the interrupt itself stopped is not a failure of the run
        runs[:] = [r for r in runs
                   if not (r.error and r.error.strip().splitlines()[-1].startswith("KeyboardInterrupt"))]
        extra["interrupted"] = f"interrupted (Ctrl-C) after {len(runs)} of {len(p.jobs)} runs"
    runs.sort(key=lambda r: r.job)
    from rlkit import benchreport

    table = benchreport.write(p, runs, extra)
    print(table)
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed (listed in report.md)", flush=True)
    print(str(p.out), flush=True)
    if interrupted:
        print(f"rlkit: {extra['interrupted']}; results.csv, report.md and curves.png in {p.out} cover those",
              file=sys.stderr, flush=True)
        return 130
    return EXIT_SOME_FAILED if failed else 0
