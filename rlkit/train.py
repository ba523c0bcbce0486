"""The runner behind `rlkit train`, `rlkit resume` and `rlkit eval`: build, learn, checkpoint, evaluate.

Everything a user can get wrong is checked before the run folder is created, so a mistake leaves
nothing half-written. SIGINT/SIGTERM during learning write a final checkpoint and exit cleanly.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

import agents
from rlkit.checkpoint import Checkpointer
from rlkit.device import keep_freed_memory
from rlkit.errors import UserError
from rlkit.evaluation import EVAL_SEED_OFFSET, record, rngs_preserved
from rlkit.logger import Logger
from rlkit.runs import RunSpec, create_run_dir, load_spec, with_config, write_json
from rlkit.seeding import global_rng_state, seed_everything, set_global_rng_state

EXIT_INTERRUPTED = 130  # what shells report for a run stopped by Ctrl-C; the run is saved and resumable
RESUME_KEYS = ("total_steps", "total_episodes", "checkpoint_every", "progress", "tensorboard", "eval_episodes",
               "eval_every")


def say(msg: str = "") -> None:
    print(msg, flush=True)


def build(spec: RunSpec, training: bool = True, render_mode: str | None = None) -> tuple[Any, Any]:
    """(agent, env) for a spec, with the training env or the evaluation env; UserError for a mismatch."""
    cls = agents.get(spec.agent)
    torch.set_num_threads(spec.config.threads)
    # Adam's second-moment estimates decay into denormal floats, which the CPU handles ~5x slower
    # (measured: a DQN gradient step 4.0 -> 2.2 ms); flushing them to zero changes no result we report.
    torch.set_flush_denormal(True)
    keep_freed_memory()  # no page faults on every large tensor (rlkit.device)
    seed_everything(spec.config.seed)
    env = cls.make_env(spec.env_ref, spec.config, render_mode=render_mode, training=training)
    return cls(spec.config, env), env


def train(spec: RunSpec) -> int:
    """`rlkit train`: a new run folder, learning, final checkpoint, evaluation, summary. Returns an exit code."""
    agent, env = build(spec)  # any user mistake surfaces here, before a folder exists
    run_dir = create_run_dir(spec)
    say(f"run {run_dir}  (agent {spec.agent}, env {spec.env}, seed {spec.config.seed}, "
        f"torch threads {spec.config.threads})")
    if spec.preset:
        say(f"preset {spec.preset}")
    return _learn_and_finish(spec, run_dir, agent, env, resumed_from=None)


def resume(run_dir: Path, overrides: dict[str, Any]) -> int:
    """`rlkit resume`: rebuild from config.yaml, load the last checkpoint, continue with the same counters."""
    run_dir = Path(run_dir)
    spec = load_spec(run_dir)
    bad = [k for k in overrides if k not in RESUME_KEYS]
    if bad:
        raise UserError(f"resume can change only {', '.join(RESUME_KEYS)}; not {', '.join(bad)} "
                        "(start a new run with rlkit train to change hyperparameters)")
    if overrides:
        spec = with_config(spec, overrides)
        from rlkit.checkpoint import atomic_write_text
        from rlkit.runs import spec_to_yaml

        atomic_write_text(run_dir / "config.yaml", spec_to_yaml(spec))
    agent, env = build(spec)
    ckpt = Checkpointer(run_dir / "checkpoints", every=spec.config.checkpoint_every)
    step, state = ckpt.load("last")
    agent.load_state_dict(state["agent"])
    if "rng" in state:
        set_global_rng_state(state["rng"])
    done = agent.steps_done >= spec.config.total_steps or (
        spec.config.total_episodes is not None and getattr(agent, "episode", 0) >= spec.config.total_episodes)
    if done:
        say(f"{run_dir} already finished at step {agent.steps_done}; extend it with "
            f"rlkit resume {run_dir} total_steps=N (N > {agent.steps_done})")
        say(str(run_dir))
        return 0
    say(f"resuming {run_dir} from step {step} (target {spec.config.total_steps})")
    return _learn_and_finish(spec, run_dir, agent, env, resumed_from=(step, state))


def _learn_and_finish(spec: RunSpec, run_dir: Path, agent: Any, env: Any,
                      resumed_from: tuple[int, dict[str, Any]] | None) -> int:
    cfg = spec.config
    logger = Logger(run_dir, cfg.total_steps, tensorboard=cfg.tensorboard, progress=cfg.progress,
                    desc=f"{spec.agent} {spec.env}")
    ckpt = Checkpointer(run_dir / "checkpoints", every=cfg.checkpoint_every)
    ckpt.extras = {"logger": logger.state_dict, "rng": global_rng_state}
    if resumed_from is not None:
        step, state = resumed_from
        logger.resume(step, state.get("logger", {"wall_s": 0.0, "episodes": 0, "recent_returns": []}))
        ckpt.last_saved_step = step
    periodic = None
    if cfg.eval_every is not None:
        periodic = PeriodicEval(spec, agent, logger, ckpt)
        ckpt.set_periodic(cfg.eval_every, periodic, after_step=agent.steps_done)
    ckpt.install_signal_handlers()
    t0, start_step = time.perf_counter(), agent.steps_done
    try:
        agent.learn(env, cfg.total_steps, logger, ckpt)
    finally:
        ckpt.restore_signal_handlers()
        logger.close()
    ckpt.save(agent.steps_done, agent.state_dict())
    if ckpt.stop_requested:
        name = "SIGINT" if ckpt.stop_signal == signal.SIGINT else "SIGTERM"
        say(f"stopped by {name} at step {agent.steps_done}; checkpoint saved. Continue with: rlkit resume {run_dir}")
        _write_summary(spec, run_dir, agent, logger, eval_stats=None, interrupted=True)
        return EXIT_INTERRUPTED if ckpt.stop_signal == signal.SIGINT else 128 + signal.SIGTERM
    train_s = time.perf_counter() - t0
    eval_env = type(agent).make_env(spec.env_ref, cfg, training=False)
    stats = agent.evaluate(eval_env, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
    if periodic is not None:  # the final evaluation is one of the series (same episodes and seeds)
        periodic.record(agent.steps_done, stats)
        logger.close()
    report = agent.report()
    if report:
        say(report)
    done_now = agent.steps_done - start_step  # a resumed run counts only the steps of this session
    say(f"trained {agent.steps_done} steps, {logger.episodes} episodes"
        + (f" ({done_now} in this session)" if start_step else "") + f" in {train_s:.1f}s "
        f"({done_now / max(train_s, 1e-9):,.0f} steps/s, {cfg.threads} torch thread(s))")
    say(f"final eval: return {stats['return_mean']:.3f} +/- {stats['return_std']:.3f} "
        f"over {stats['episodes']} episodes (raw game score, greedy policy)"
        + (f"; {stats['cut_episodes']} episode(s) cut at the eval step cap: the greedy policy loops"
           if stats.get("cut_episodes") else ""))
    if periodic is not None and periodic.best_step is not None:
        say(f"best eval: return {periodic.best:.3f} at step {periodic.best_step} "
            f"(rlkit eval {run_dir} checkpoint=best)")
    _write_summary(spec, run_dir, agent, logger, eval_stats=stats, interrupted=False)
    say(str(run_dir))
    return 0


class PeriodicEval:
    """eval_every: the greedy policy plays eval_episodes on a separate eval env; the result goes to
    metrics.csv (eval/return_mean, eval/return_std, eval/length_mean) and a new best score saves the
    policy as the run's `best` checkpoint. Runs inside the agent's loop (from ckpt.due) without moving
    its random streams, and its time is left out of wall_s."""

    def __init__(self, spec: RunSpec, agent: Any, logger: Logger, ckpt: Checkpointer):
        self.spec, self.agent, self.logger, self.ckpt = spec, agent, logger, ckpt
        self.env: Any = None
        best = ckpt.best()
        self.best = float(best["return_mean"]) if best else float("-inf")
        self.best_step: int | None = int(best["step"]) if best else None
        self.last_step: int | None = None

    def __call__(self, step: int) -> None:
        t0 = time.perf_counter()
        cfg = self.spec.config
        if self.env is None:
            self.env = type(self.agent).make_env(self.spec.env_ref, cfg, training=False)
        with rngs_preserved(self.agent):
            stats = self.agent.evaluate(self.env, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
        self.record(step, stats)
        self.logger.exclude_time(time.perf_counter() - t0)

    def record(self, step: int, stats: dict[str, Any]) -> None:
        """Log one evaluation and keep the policy if it beats the best so far."""
        if step == self.last_step:
            return
        self.last_step = step
        self.logger.log(step, {"eval/return_mean": stats["return_mean"], "eval/return_std": stats["return_std"],
                               "eval/length_mean": stats["length_mean"]})
        if stats["return_mean"] > self.best:
            self.best, self.best_step = stats["return_mean"], step
            self.ckpt.save_best(step, self.agent.policy_state_dict(),
                                {"return_mean": stats["return_mean"], "return_std": stats["return_std"],
                                 "episodes": stats["episodes"], "seed": stats["seed"]})


def _write_summary(spec: RunSpec, run_dir: Path, agent: Any, logger: Logger, eval_stats: dict[str, Any] | None,
                   interrupted: bool) -> None:
    summary = {
        "agent": spec.agent,
        "env": spec.env,
        "env_kwargs": spec.env_kwargs,
        "seed": spec.config.seed,
        "total_steps": agent.steps_done,
        "target_steps": spec.config.total_steps,
        "episodes": logger.episodes,
        "wall_s": round(logger.elapsed(), 3),
        "threads": spec.config.threads,
        "interrupted": interrupted,
        "final_eval_return_mean": None if eval_stats is None else eval_stats["return_mean"],
        "final_eval_return_std": None if eval_stats is None else eval_stats["return_std"],
        "final_eval_episodes": None if eval_stats is None else eval_stats["episodes"],
        "best_eval": _best_eval(run_dir),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    write_json(run_dir / "summary.json", summary)


def _best_eval(run_dir: Path) -> dict[str, Any] | None:
    best = Checkpointer(run_dir / "checkpoints", every=1).best()
    return None if best is None else {"step": best["step"], "return_mean": best["return_mean"]}


def evaluate_run(run_dir: Path, episodes: int | None = None, deterministic: bool = True, seed: int | None = None,
                 checkpoint: str | int = "last", video: str | None = None, video_episodes: int = 1,
                 out: Path | None = None) -> dict[str, Any]:
    """`rlkit eval`: rebuild the run from config.yaml (env, wrappers; normalization statistics come back
    with the agent's state), load a checkpoint, play episodes (recording the first `video_episodes`),
    write eval.json to `out` (default: the run folder) and return its record."""
    from rlkit.video import RecordEpisodes, make_recordable

    run_dir = Path(run_dir)
    spec = load_spec(run_dir)
    ckpt = Checkpointer(run_dir / "checkpoints", every=spec.config.checkpoint_every)
    step, state = ckpt.load(checkpoint)
    render_mode = None
    if video is not None:  # the agent is built with the env it plays, whatever it keeps of it
        cls = agents.get(spec.agent)
        probe, render_mode = make_recordable(
            lambda mode: cls.make_env(spec.env_ref, spec.config, render_mode=mode, training=False), spec.env)
        probe.close()
    agent, env = build(spec, training=False, render_mode=render_mode)
    agent.load_state_dict(state["agent"])
    seed = spec.config.seed + EVAL_SEED_OFFSET if seed is None else seed
    episodes = episodes or spec.config.eval_episodes
    out = run_dir if out is None else Path(out)
    if video is not None:
        label = f"{checkpoint}-step{step}" if checkpoint in ("last", "best") else f"step{step}"
        env = RecordEpisodes(env, out / "videos", video, min(video_episodes, episodes),
                             name=lambda i: f"{spec.agent}-{label}-seed{seed + i}")
    stats = agent.evaluate(env, episodes, seed=seed, deterministic=deterministic)
    if hasattr(env, "close"):
        env.close()  # writes the last video
    result = record(stats, library="rlkit", agent=spec.agent, env=spec.env, env_kwargs=spec.env_kwargs,
                    source=str(run_dir), checkpoint=str(checkpoint), checkpoint_step=step,
                    videos=getattr(env, "videos", []))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval.json", result)
    return result
