"""Side-by-side benchmarks against Stable-Baselines3: same env, hyperparameters, seeds, thread count
and evaluation protocol, each training run in a fresh process (so peak memory is its own).

Protocol: every `eval_every` env steps, training pauses and the greedy policy plays `eval_episodes`
episodes on a separate evaluation env (seeds seed+10000, ...), scored by one function for both
sides; wall-clock time to a threshold counts training time only (evaluation excluded). Both sides
train on rlkit's env construction (`envs.make`), so wrappers are identical. Hyperparameters are
translated by an explicit table; keys with no SB3 equivalent are listed in the report.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# our DQN key -> SB3 DQN keyword (None: SB3 has no such option; the report lists it)
SB3_DQN_KEYS: dict[str, str | None] = {
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
    "max_grad_norm": "max_grad_norm",
    "net.hidden": "policy_kwargs.net_arch",
    "net.type": "policy (MlpPolicy / CnnPolicy)",
    "seed": "seed",
    "device": "device",
    "double_q": None,
    "replay": None,
    "per_alpha": None,
    "per_beta": None,
    "n_step": None,
    "loss": None,
    "net.dueling": None,
}
# settings under which our DQN is the same algorithm as SB3's (SB3 has plain DQN, uniform replay, Huber loss)
SB3_DQN_SAME_ALGORITHM = {"double_q": False, "replay": "uniform", "n_step": 1, "loss": "huber", "net.dueling": False}


@dataclass
class BenchRun:
    """One training run of one side: the eval curve and the throughput/memory figures."""

    side: str
    seed: int
    steps: list[int] = field(default_factory=list)
    train_wall_s: list[float] = field(default_factory=list)
    eval_mean: list[float] = field(default_factory=list)
    train_steps_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def first_reaching(self, threshold: float) -> tuple[int | None, float | None]:
        """(env steps, training seconds) of the first evaluation at or above the threshold."""
        for s, w, r in zip(self.steps, self.train_wall_s, self.eval_mean):
            if r >= threshold:
                return s, w
        return None, None


def sb3_dqn_kwargs(cfg: Any, obs_space: Any) -> tuple[str, dict[str, Any]]:
    """(policy name, DQN(...) kwargs) for our DQNConfig, through SB3_DQN_KEYS."""
    from agents.dqn import net_spec

    kind = net_spec(cfg.net, obs_space)["type"]
    kwargs = dict(
        learning_rate=cfg.lr, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size, gamma=cfg.gamma, train_freq=cfg.train_freq, gradient_steps=cfg.gradient_steps,
        target_update_interval=cfg.target_update_interval, tau=cfg.tau,
        exploration_initial_eps=cfg.epsilon.start,
        exploration_final_eps=cfg.epsilon.start if cfg.epsilon.end is None else cfg.epsilon.end,
        exploration_fraction=cfg.epsilon.fraction, max_grad_norm=cfg.max_grad_norm, seed=cfg.seed,
        device="cpu" if cfg.device == "auto" else cfg.device, verbose=0,
    )
    if kind == "mlp":
        kwargs["policy_kwargs"] = {"net_arch": list(cfg.net.hidden)}
        return "MlpPolicy", kwargs
    return "CnnPolicy", kwargs


def unmapped_keys(cfg: Any) -> list[str]:
    """Our keys without an SB3 counterpart, with the value this run used."""
    from rlkit.config import to_dict
    from rlkit.runs import _flat

    flat = _flat(to_dict(cfg))
    return [f"{k}={flat[k]}" for k, v in SB3_DQN_KEYS.items() if v is None and k in flat]


# --------------------------------------------------------------------------------------------------
# one training run, in its own process


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _evaluate(policy, env, episodes: int, seed: int) -> float:
    returns = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs))
            ret += float(r)
            done = term or trunc
        returns.append(ret)
    return float(np.mean(returns))


def run_one(side: str, words: list[str], eval_every: int, eval_episodes: int, threads: int,
            stop_at: float | None = None, measure_after: int | None = None) -> dict[str, Any]:
    """Train one side on the spec given by `words` (rlkit train words); return a BenchRun as a dict.

    `measure_after`: training steps/s is measured over the steps after this one (e.g. learning_starts).
    `stop_at`: stop early once an evaluation reaches this return (time-to-threshold runs)."""
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # both sides: denormal Adam state otherwise slows either ~2x
    from rlkit.evaluation import EVAL_SEED_OFFSET
    from rlkit.overrides import parse_words
    from rlkit.runs import resolve_spec

    spec = resolve_spec(parse_words(words), words)
    cfg = spec.config
    run = BenchRun(side=side, seed=cfg.seed)
    measure_after = cfg.learning_starts if measure_after is None else measure_after
    eval_seed = cfg.seed + EVAL_SEED_OFFSET
    if side == "rlkit":
        _run_ours(spec, run, eval_every, eval_episodes, eval_seed, stop_at, measure_after)
    else:
        _run_sb3(spec, run, eval_every, eval_episodes, eval_seed, stop_at, measure_after)
    run.peak_rss_mb = _peak_rss_mb()
    return asdict(run)


def _run_ours(spec, run: BenchRun, eval_every, eval_episodes, eval_seed, stop_at, measure_after) -> None:
    import tempfile

    from rlkit.checkpoint import Checkpointer
    from rlkit.logger import Logger
    from rlkit.train import build

    agent, env = build(spec)
    eval_env = type(agent).make_env(spec.env_ref, spec.config, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        logger = Logger(Path(tmp), spec.config.total_steps, tensorboard=False, progress=False)
        ckpt = Checkpointer(Path(tmp) / "ck", every=10**12)
        train_s, mark = 0.0, None
        while agent.steps_done < spec.config.total_steps:
            target = min(agent.steps_done + eval_every, spec.config.total_steps)
            t0 = time.perf_counter()
            if mark is None and agent.steps_done < measure_after < target:  # start the throughput clock there
                agent.learn(env, measure_after, logger, ckpt)
                mark = (agent.steps_done, train_s + time.perf_counter() - t0)
            elif mark is None and agent.steps_done >= measure_after:
                mark = (agent.steps_done, train_s)
            agent.learn(env, target, logger, ckpt)
            train_s += time.perf_counter() - t0
            mean = _evaluate(lambda o: int(agent.act([o], deterministic=True)[0]), eval_env, eval_episodes, eval_seed) \
                if eval_episodes else float("nan")
            run.steps.append(agent.steps_done)
            run.train_wall_s.append(train_s)
            run.eval_mean.append(mean)
            if stop_at is not None and mean >= stop_at:
                break
        logger.close()
    _throughput(run, mark, agent.steps_done, train_s)


def _run_sb3(spec, run: BenchRun, eval_every, eval_episodes, eval_seed, stop_at, measure_after) -> None:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    import envs

    cfg = spec.config
    ref = spec.env_ref
    vec = DummyVecEnv([lambda: envs.make(ref, training=True) for _ in range(cfg.n_envs)])
    eval_env = envs.make(ref, training=False)
    policy, kwargs = sb3_dqn_kwargs(cfg, vec.observation_space)
    model = DQN(policy, vec, **kwargs)
    state = {"train_s": 0.0, "t0": None, "mark": None}

    class EvalAndClock(BaseCallback):
        """Pauses the training clock to evaluate every eval_every steps (the same protocol as ours)."""

        def _on_training_start(self) -> None:
            state["t0"] = time.perf_counter()

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if state["mark"] is None and n >= measure_after:
                state["mark"] = (n, state["train_s"] + time.perf_counter() - state["t0"])
            if n % eval_every >= cfg.n_envs and n < cfg.total_steps:
                return True
            state["train_s"] += time.perf_counter() - state["t0"]
            mean = _evaluate(lambda o: int(model.predict(o, deterministic=True)[0]), eval_env, eval_episodes,
                             eval_seed) if eval_episodes else float("nan")
            run.steps.append(n)
            run.train_wall_s.append(state["train_s"])
            run.eval_mean.append(mean)
            state["t0"] = time.perf_counter()
            return not (stop_at is not None and mean >= stop_at)

    model.learn(total_timesteps=cfg.total_steps, callback=EvalAndClock())
    _throughput(run, state["mark"], model.num_timesteps, state["train_s"])


def _throughput(run: BenchRun, mark: tuple[int, float] | None, steps: int, train_s: float) -> None:
    if mark is not None and train_s > mark[1]:
        run.train_steps_per_s = (steps - mark[0]) / (train_s - mark[1])
    run.extra["measured_steps"] = steps - (mark[0] if mark else 0)


def run_isolated(side: str, words: list[str], **kw: Any) -> BenchRun:
    """run_one in a fresh spawned process (its own peak memory, no state shared with the other side)."""
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return BenchRun(**pool.submit(run_one, side, words, **kw).result())


# --------------------------------------------------------------------------------------------------
# summaries


def median_or_none(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.median(vals)) if vals else None


def summarize_pairs(runs: list[BenchRun], threshold: float) -> dict[str, dict[str, Any]]:
    """Per side: success rate, median (and range) env steps and train seconds to the threshold, steps/s, memory."""
    out: dict[str, dict[str, Any]] = {}
    for side in sorted({r.side for r in runs}):
        rs = [r for r in runs if r.side == side]
        reached = [r.first_reaching(threshold) for r in rs]
        steps = [s for s, _ in reached if s is not None]
        walls = [w for _, w in reached if w is not None]
        out[side] = {
            "runs": len(rs),
            "success": sum(s is not None for s, _ in reached),
            "steps_to_threshold": median_or_none(steps),
            "steps_range": (min(steps), max(steps)) if steps else None,
            "wall_to_threshold": median_or_none(walls),
            "wall_range": (min(walls), max(walls)) if walls else None,
            "train_steps_per_s": float(np.median([r.train_steps_per_s for r in rs])),
            "peak_rss_mb": float(np.median([r.peak_rss_mb for r in rs])),
            "final_eval": float(np.median([r.eval_mean[-1] for r in rs if r.eval_mean])) if rs else None,
        }
    return out


def plot_curves(runs: list[BenchRun], path: Path, title: str, threshold: float | None = None) -> Path:
    """Eval return vs env steps and vs training seconds, one faint line per seed, bold median per side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = {"rlkit": "tab:blue", "sb3": "tab:orange"}
    for side in sorted({r.side for r in runs}):
        for r in (r for r in runs if r.side == side):
            axes[0].plot(r.steps, r.eval_mean, color=colors.get(side), alpha=0.35, lw=1)
            axes[1].plot(r.train_wall_s, r.eval_mean, color=colors.get(side), alpha=0.35, lw=1)
        axes[0].plot([], [], color=colors.get(side), label=side)
    for ax, xl in zip(axes, ("env steps", "training wall seconds (evaluation excluded)")):
        if threshold is not None:
            ax.axhline(threshold, color="grey", ls="--", lw=0.8)
        ax.set_xlabel(xl)
        ax.set_ylabel("eval return (raw, greedy)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
