"""`rlkit` command line: parse words, dispatch, map errors to exit codes (0 ok, 2 user error, 1 bug).

    rlkit train agent=q_learning env=rooms [key=value ...]
    rlkit eval runs/<id> [episodes=20] [deterministic=true] [seed=N] [checkpoint=best|last|<step>] [video=gif|mp4]
    rlkit eval model.zip algo=ppo env=cartpole [episodes=20] ...    (a Stable-Baselines3 model)
    rlkit plot runs/<id> [runs/<id2> ...] [out=curves.png] [window=N]
    rlkit compare runs/<a> runs/<b> ... [out=PNG] [band=minmax|ci] [x=steps|wall]
    rlkit resume runs/<id> [total_steps=N]
    rlkit list [AGENT]
    rlkit bench agent=dqn env=cartpole [seeds=5] [against=sb3|reference] [workers=N] [backend=ray] [key=value ...]
    rlkit sweep agent=dqn env=cartpole [seeds=0..9] [lr=[1e-4,3e-4] ...] [backend=ray]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from rlkit.errors import UserError

EPILOG_TRAIN = """\
words are key=value overrides in Hydra's style:
  agent=NAME            an agent (rlkit list)
  env=NAME              an alias (rooms, bandit, cartpole, ...), a gymnasium id (Acrobot-v1),
                        module:Class or path/to/file.py:Class
  env.<kw>=VALUE        a keyword argument for the env's constructor (env.goal=terminal)
  runs.dir=PATH         where run folders go (default: runs)
  <key>=VALUE           any key of the agent's config (rlkit list AGENT shows them), dotted for
                        nested ones (epsilon.start=1.0); values: 3, 1e-4, true, null, [64,64], 'text'
The config is the agent's defaults <- the preset for (agent, env) <- these overrides.
The last line printed is the run folder. Ctrl-C saves a checkpoint; continue with rlkit resume.

examples:
  rlkit train agent=q_learning env=rooms
  rlkit train agent=sarsa env=cliffwalking total_episodes=500 seed=3
  rlkit train agent=eps_greedy env=bandit epsilon=0.01
  rlkit train agent=q_learning env=rooms --help     (the agent's keys)
"""

EPILOG_EVAL = """\
words:
  episodes=N            episodes to play (default: the run's eval_episodes; 10 for a zip)
  deterministic=BOOL    greedy policy (default true)
  seed=N                first episode seed (default: the run's seed + 10000, as the final eval in train)
  checkpoint=WHICH      last (default), best (kept by training with eval_every=N) or a step number
  video=gif|mp4         record episodes to <out>/videos/ (rgb frames, or the env's text drawn as images)
  video_episodes=N      how many of the episodes to record (default 1)
  out=DIR               where eval.json and videos/ go (default: the run folder; <zip minus .zip>-eval/)
  algo=NAME env=NAME    for a Stable-Baselines3 .zip: the algorithm that saved it (dqn, ppo, a2c, sac, td3,
                        ddpg; trpo, qrdqn, tqc, ars, crossq, ppo_lstm, ppo_mask with sb3-contrib) and the
                        env it plays (built as for our agents: the same wrappers, Atari too); env.<kw>=VALUE
Prints mean +/- std and min/max of the raw return and the episode length; writes eval.json with the
same keys for runs and zips. SB3 loads a zip by unpickling parts of it: evaluate only files you trust.

examples:
  rlkit eval runs/dqn-cartpole-20260101-120000-s0 checkpoint=best video=gif
  rlkit eval ppo_cartpole.zip algo=ppo env=cartpole episodes=20
"""

EPILOG_COMPARE = """\
words:
  out=PATH              the PNG to write (default: runs/compare-<time>.png beside the first run)
  band=minmax|ci        shaded band across seeds: min-max (default) or a 95% bootstrap CI of the mean
  x=steps|wall          x axis: environment steps (default) or training wall seconds
  metric=NAME           a metrics.csv column (default: charts/return, or charts/reward for bandits;
                        eval/return_mean for runs trained with eval_every)
  window=N              moving average over N rows of each seed before averaging (default: rows/50)
Runs of the same agent, env and hyperparameters (seed aside) are one curve: the mean over seeds, with
the band. Prints a table of the final values (the mean of each seed's last 10% of rows).
"""

EPILOG_PLOT = """\
words:
  out=PATH              the PNG to write (default: <run>/curves.png for one run, runs/compare-<time>.png)
  window=N              moving-average window in rows (default: rows/50)
"""

EPILOG_RESUME = """\
Continues from the run's last checkpoint with the same step counter, curve and RNG states.
words: total_steps=N (to extend a finished run), total_episodes, checkpoint_every, progress,
       tensorboard, eval_episodes.
"""


EPILOG_BENCH = """\
Trains our agent and its Stable-Baselines3 counterpart (hyperparameters translated by rlkit/sb3map.py)
on the same env, seeds, threads and evaluation protocol, or, for agents SB3 lacks, measures ours
against published reference figures. Writes runs/bench-<agent>-<env>-<time>/ with results.csv,
runs.jsonl, report.md and curves.png; the last line printed is that folder.
words:
  agent=NAME env=NAME    as for rlkit train (the agent's preset for the env applies)
  seeds=N|A..B|[..]      seeds: 5 -> 0..4 (default 5)
  against=sb3|reference  what to compare with (default: sb3 when mapped, else reference)
  threshold=X            success = an evaluation >= X (default: the env's reward_threshold)
  eval_every=K           env steps between evaluations (default total_steps/20)
  eval_episodes=N        greedy episodes per evaluation (default the config's eval_episodes; 0: none)
  measure_after=N        training steps/s counted after this step (default learning_starts)
  workers=N              runs at once in local processes, each pinned to an equal CPU share (default 1;
                        0: one after another in this process, for debugging)
  backend=local|ray      ray: one Ray task per run (pip install 'rlkit[ray]');
  ray.address=auto       join a running cluster; ray.num_cpus=N, ray.gpus=G (per task), ray.retries=R
  runs.dir=PATH          where the folder goes (default runs)
  <key>=VALUE            any key of the agent's config, applied to both sides (threads=1, total_steps=...)
Exit codes: 0 all runs finished, 2 a mistake in the words, 3 some runs failed (listed in report.md).

examples:
  rlkit bench agent=dqn env=cartpole seeds=5 threshold=475 eval_every=2500 eval_episodes=10
  rlkit bench agent=eps_greedy env=bandit seeds=3
"""

EPILOG_SWEEP = """\
Trains our agent for every combination of the list-valued keys x every seed, and reports them side
by side in the bench format (runs/sweep-<agent>-<env>-<time>/). A list-typed key (net.hidden) is
swept with a list of lists: net.hidden=[[64],[256,256]]. Other words as for rlkit bench.

examples:
  rlkit sweep agent=dqn env=cartpole seeds=0..9 lr=[1e-4,3e-4] backend=ray
  rlkit sweep agent=q_learning env=cliffwalking seeds=3 lr=[0.1,0.5] epsilon=[0.05,0.1] workers=2
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise UserError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlkit", description="rlkit: train, evaluate and compare RL agents on gymnasium envs.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="run `rlkit <command> --help` for a command's words.")
    sub = p.add_subparsers(dest="cmd", metavar="<command>", parser_class=_Parser)
    raw = argparse.RawDescriptionHelpFormatter
    t = sub.add_parser("train", help="train an agent; writes a run folder", epilog=EPILOG_TRAIN, formatter_class=raw)
    t.add_argument("words", nargs="*", metavar="key=value")
    e = sub.add_parser("eval", help="replay a run's (or an SB3 zip's) saved policy; writes eval.json",
                       epilog=EPILOG_EVAL, formatter_class=raw)
    e.add_argument("run", help="a run folder, e.g. runs/q_learning-rooms-20260101-120000-s0, or an SB3 .zip")
    e.add_argument("words", nargs="*", metavar="key=value")
    pl = sub.add_parser("plot", help="PNG of learning curves of one or more runs", epilog=EPILOG_PLOT,
                        formatter_class=raw)
    pl.add_argument("runs", nargs="+", metavar="run-or-key=value")
    c = sub.add_parser("compare", help="PNG of learning curves, seeds of one agent/env aggregated; prints a table",
                       epilog=EPILOG_COMPARE, formatter_class=raw)
    c.add_argument("runs", nargs="+", metavar="run-or-key=value")
    r = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint", epilog=EPILOG_RESUME,
                       formatter_class=raw)
    r.add_argument("run")
    r.add_argument("words", nargs="*", metavar="key=value")
    li = sub.add_parser("list", help="agents, env aliases and nets (or one agent's config keys)")
    li.add_argument("agent", nargs="?", help="show this agent's keys, defaults and presets")
    b = sub.add_parser("bench", help="ours vs Stable-Baselines3 (or reference figures): report + curves",
                       epilog=EPILOG_BENCH, formatter_class=raw)
    b.add_argument("words", nargs="*", metavar="key=value")
    sw = sub.add_parser("sweep", help="a grid of configs x seeds, locally or on Ray: report + curves",
                        epilog=EPILOG_SWEEP, formatter_class=raw)
    sw.add_argument("words", nargs="*", metavar="key=value")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(argv) >= 2 and argv[0] == "train" and any(a in ("-h", "--help") for a in argv):
            agent = next((w.split("=", 1)[1] for w in argv if w.startswith("agent=")), None)
            if agent:
                return cmd_list(agent)
        args = _parser().parse_args(argv)
        if args.cmd is None:
            _parser().print_help()
            return 0
        return COMMANDS[args.cmd](args)
    except UserError as e:
        print(f"rlkit: error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("rlkit: interrupted", file=sys.stderr, flush=True)
        return 130
    except SystemExit as e:  # argparse --help
        return int(e.code or 0)
    except Exception:
        traceback.print_exc()
        print("rlkit: internal error (a bug in rlkit: please report it with the traceback above)", file=sys.stderr)
        return 1


def cmd_train(args: argparse.Namespace) -> int:
    from rlkit.overrides import parse_words
    from rlkit.runs import resolve_spec
    from rlkit.train import train

    spec = resolve_spec(parse_words(args.words), args.words)
    return train(spec)


def cmd_resume(args: argparse.Namespace) -> int:
    from rlkit.overrides import parse_words
    from rlkit.train import resume

    return resume(Path(args.run), parse_words(args.words))


def cmd_eval(args: argparse.Namespace) -> int:
    from rlkit.config import NonNegInt, PositiveInt, coerce
    from rlkit.overrides import parse_words

    words = parse_words(args.words)
    target = Path(args.run)
    is_zip = target.suffix == ".zip" or target.is_file()
    allowed: dict[str, object] = {"episodes": PositiveInt | None, "deterministic": bool, "seed": NonNegInt | None,
                                  "checkpoint": str, "video": str, "video_episodes": PositiveInt, "out": str}
    if is_zip:
        allowed = {**{k: v for k, v in allowed.items() if k != "checkpoint"}, "algo": str, "env": str}
    for k in words:
        if k not in allowed and not (is_zip and k.startswith("env.")):
            from rlkit.errors import did_you_mean

            if not is_zip and k in ("algo", "env"):
                raise UserError(f"{k}= is for Stable-Baselines3 .zip files; a run folder already knows its agent "
                                "and env (config.yaml)")
            raise UserError(f"unknown key '{k}' for eval{did_you_mean(k, allowed)}; valid keys: {', '.join(allowed)}")
    opts = {k: coerce(v, allowed[k], k) for k, v in words.items() if k in allowed}
    video = opts.get("video")
    if video is not None and video not in ("gif", "mp4"):
        raise UserError(f"video={video}: use video=gif or video=mp4")
    if "video_episodes" in opts and video is None:
        raise UserError(f"video_episodes={opts['video_episodes']} needs video=gif or video=mp4")
    if "out" in opts:
        out = Path(opts["out"])
    else:
        out = target.with_name(target.stem + "-eval") if is_zip else target
    deterministic = opts.get("deterministic", True)
    if is_zip:
        from rlkit.sb3_models import evaluate_zip

        env_kwargs = {k[4:]: v for k, v in words.items() if k.startswith("env.")}
        stats = evaluate_zip(target, opts.get("algo"), opts.get("env"), env_kwargs, opts.get("episodes") or 10,
                             deterministic, opts.get("seed"), video, opts.get("video_episodes", 1), out)
        what = f"{args.run} ({stats['library']} {stats['agent']} on {stats['env']}, {stats['checkpoint_step']} steps"
    else:
        from rlkit.train import evaluate_run

        ckpt = opts.get("checkpoint", "last")
        if ckpt not in ("last", "best"):
            try:
                ckpt = int(ckpt)
            except ValueError:
                raise UserError(f"checkpoint={ckpt}: use checkpoint=last, checkpoint=best or checkpoint=<step>") \
                    from None
        stats = evaluate_run(target, opts.get("episodes"), deterministic, opts.get("seed"), ckpt, video,
                             opts.get("video_episodes", 1), out)
        which = f"{ckpt} checkpoint, " if ckpt in ("last", "best") else "checkpoint "
        what = f"{args.run} ({which}at step {stats['checkpoint_step']}"
    print(f"{what}, {'greedy' if deterministic else 'stochastic'} policy, seeds {stats['seed']}.."
          f"{stats['seed'] + stats['episodes'] - 1})")
    print(f"return (raw): {stats['return_mean']:.3f} +/- {stats['return_std']:.3f}  "
          f"min {stats['return_min']:.3f}  max {stats['return_max']:.3f}  over {stats['episodes']} episodes")
    print(f"episode length: {stats['length_mean']:.1f} +/- {stats['length_std']:.1f}  "
          f"min {stats['length_min']}  max {stats['length_max']}")
    from rlkit.evaluation import RECORD_KEYS

    for k, v in stats.items():
        if k not in RECORD_KEYS:
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if stats.get("cut_episodes"):
        print(f"note: {stats['cut_episodes']} episode(s) were cut at the eval step cap (the policy loops)")
    for v in stats["videos"]:
        print(f"video: {v['path']} ({v['frames']} frames at {v['fps']:g} fps"
              + (", cut: GIFs keep the first frames only, use video=mp4" if v["cut"] else "") + ")")
    print(f"wrote {out / 'eval.json'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rlkit.config import PositiveInt, coerce
    from rlkit.overrides import parse_word
    from rlkit.plotting import compare_runs

    keys = ("out", "band", "x", "metric", "window")
    runs, opts = [], {}
    for w in args.runs:
        if "=" in w and not Path(w).exists():
            k, v = parse_word(w)
            if k not in keys:
                from rlkit.errors import did_you_mean

                raise UserError(f"unknown key '{k}' for compare{did_you_mean(k, keys)}; valid keys: {', '.join(keys)}")
            opts[k] = v
        else:
            runs.append(Path(w))
    if not runs:
        raise UserError("compare needs run folders, e.g. rlkit compare runs/<a> runs/<b>")
    for r in runs:
        if not r.is_dir():
            raise UserError(f"no run folder {r}")
    band, x = str(opts.get("band", "minmax")), str(opts.get("x", "steps"))
    if band not in ("minmax", "ci"):
        raise UserError(f"band={band}: use band=minmax or band=ci")
    if x not in ("steps", "wall"):
        raise UserError(f"x={x}: use x=steps or x=wall")
    window = coerce(opts["window"], PositiveInt, "window") if "window" in opts else None
    out = Path(str(opts["out"])) if "out" in opts else runs[0].parent / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png"
    path, table = compare_runs(runs, out, band=band, x=x, metric=opts.get("metric"), window=window)
    print(table)
    print(f"wrote {path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rlkit.config import PositiveInt, coerce
    from rlkit.overrides import parse_word
    from rlkit.plotting import plot_runs

    runs, opts = [], {}
    for w in args.runs:
        if "=" in w and not Path(w).exists():
            k, v = parse_word(w)
            if k not in ("out", "window"):
                raise UserError(f"unknown key '{k}' for plot; valid keys: out, window")
            opts[k] = v
        else:
            runs.append(Path(w))
    if not runs:
        raise UserError("plot needs at least one run folder, e.g. rlkit plot runs/<id>")
    for r in runs:
        if not r.is_dir():
            raise UserError(f"no run folder {r}")
    window = coerce(opts["window"], PositiveInt, "window") if "window" in opts else None
    if "out" in opts:
        out = Path(str(opts["out"]))
    elif len(runs) == 1:
        out = runs[0] / "curves.png"
    else:
        out = runs[0].parent / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png"
    path = plot_runs(runs, out, window)
    print(f"wrote {path}")
    return 0


def cmd_list(args_or_agent) -> int:
    import agents
    import envs
    import nets

    agent = args_or_agent if isinstance(args_or_agent, str) else args_or_agent.agent
    if agent:
        from rlkit.config import describe_keys, load_presets

        cls = agents.get(agent)
        print(f"{agent}: {agents.REGISTRY[agent][1]}")
        print(f"keys (rlkit train agent={agent} env=... key=value):")
        rows = describe_keys(cls.Config)
        w = max(len(r[0]) for r in rows)
        for key, tp, default, doc in rows:
            print(f"  {key:<{w}}  {default:<10} {tp:<22} {doc}")
        presets = load_presets(agent)
        if presets:
            print("presets:")
            for env_key, p in presets.items():
                print(f"  env={env_key:<14} {p.source}")
        return 0
    print("agents:")
    for name, (_, desc) in agents.REGISTRY.items():
        print(f"  {name:<16} {desc}")
    print("envs (aliases; any gymnasium id, module:Class or path/to/file.py:Class also works):")
    for name, (gym_id, desc) in envs.ALIASES.items():
        print(f"  {name:<16} {desc} [{gym_id}]")
    print("nets (function approximators, nets.build(spec, observation_space, output_dim)):")
    for name, (_, desc) in nets.REGISTRY.items():
        print(f"  {name:<16} {desc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rlkit.bench import execute, plan

    return execute(plan(args.cmd, args.words))


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "resume": cmd_resume, "list": cmd_list,
            "compare": cmd_compare}
COMMANDS.update(bench=cmd_bench, sweep=cmd_bench)
