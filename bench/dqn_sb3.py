"""DQN vs Stable-Baselines3, side by side in one invocation (rlkit.bench does the work).

  cartpole: 5 seeds of the zoo preset on each side, alternating rlkit / SB3, each run in a fresh
            process; eval (10 greedy episodes) every 2,500 steps; success = an eval mean >= 475;
            time to 475 counts training seconds only. Ours runs with double_q=false so both sides
            run the same algorithm (SB3's DQN has no double Q).
  pong:     the Atari preset (100k buffer, learning starts at 100k); training steps/s measured over
            the steps after learning starts, and the peak resident memory once the buffer holds
            100k transitions. total_steps is cut to learning_starts + the measured stretch, with
            epsilon 1 -> 0.9 over it: the preset's epsilon around step 100k, on both sides alike.

Both sides use rlkit's env construction (identical wrappers), 1 torch thread, flushed denormals.
Writes bench/results/dqn_<task>.{md,csv,png} and prints ratios ours/SB3.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlkit import bench  # noqa: E402


def _versions() -> str:
    import gymnasium
    import stable_baselines3
    import torch

    from rlkit.runs import git_commit

    return (f"rlkit {git_commit() or '?'}, SB3 {stable_baselines3.__version__}, torch {torch.__version__}, "
            f"gymnasium {gymnasium.__version__}, Python {platform.python_version()}, {platform.machine()}")


def cartpole(args) -> None:
    words = lambda seed: ["agent=dqn", "env=cartpole", f"seed={seed}", "double_q=false"]  # noqa: E731
    runs = []
    for seed in range(args.seeds):
        for side in ("rlkit", "sb3"):
            r = bench.run_isolated(side, words(seed), eval_every=2500, eval_episodes=10, threads=args.threads,
                                   stop_at=None if args.full else 475.0)
            s, w = r.first_reaching(475)
            print(f"seed {seed} {side:5s}: reached 475 at {s} steps, {w and round(w, 1)} s; "
                  f"{r.train_steps_per_s:,.0f} training steps/s; peak {r.peak_rss_mb:.0f} MB", flush=True)
            runs.append(r)
    summary = bench.summarize_pairs(runs, 475.0)
    _write(args.out / "dqn_cartpole", runs, summary, "CartPole-v1, zoo DQN preset (double_q=false on our side)",
           threshold=475.0, command=" ".join(sys.argv))


def pong(args) -> None:
    stretch = args.pong_steps
    # epsilon 1 -> 0.9 over the cut run = the preset's value at step 100k (1 -> 0.01 over 1M steps)
    words = ["agent=dqn", "env=pong", "double_q=false", f"total_steps={100_000 + stretch}", "save_replay=false",
             "epsilon.end=0.9", "epsilon.fraction=1.0"]
    runs = []
    for side in ("rlkit", "sb3"):
        r = bench.run_isolated(side, words, eval_every=100_000 + stretch, eval_episodes=0, threads=args.threads,
                               measure_after=100_000)
        print(f"pong {side:5s}: {r.train_steps_per_s:.1f} training steps/s after learning starts; "
              f"peak {r.peak_rss_mb:.0f} MB", flush=True)
        runs.append(r)
    summary = bench.summarize_pairs(runs, float("inf"))
    _write(args.out / "dqn_pong", runs, summary, f"Pong, Atari DQN preset, {stretch} training steps after 100k",
           threshold=None, command=" ".join(sys.argv))


def _fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def _rng(side: dict) -> str:
    return str(tuple(round(x, 1) for x in side["wall_range"])) if side["wall_range"] else ""


def _write(stem: Path, runs, summary, title: str, threshold: float | None, command: str) -> None:
    ours, sb3 = summary["rlkit"], summary["sb3"]

    def ratio(k):
        a, b = ours[k], sb3[k]
        return "-" if a is None or b in (None, 0) else f"{a / b:.2f}"

    rows = [
        ("runs", ours["runs"], sb3["runs"], "-"),
        ("success (eval >= threshold)", ours["success"], sb3["success"], "-"),
        ("median env steps to threshold (range)",
         f"{_fmt(ours['steps_to_threshold'], 0)} {ours['steps_range'] or ''}",
         f"{_fmt(sb3['steps_to_threshold'], 0)} {sb3['steps_range'] or ''}", ratio("steps_to_threshold")),
        ("median training s to threshold (range)", f"{_fmt(ours['wall_to_threshold'])} {_rng(ours)}",
         f"{_fmt(sb3['wall_to_threshold'])} {_rng(sb3)}", ratio("wall_to_threshold")),
        ("training steps/s (median)", _fmt(ours["train_steps_per_s"]), _fmt(sb3["train_steps_per_s"]),
         ratio("train_steps_per_s")),
        ("peak resident memory MB (median)", _fmt(ours["peak_rss_mb"], 0), _fmt(sb3["peak_rss_mb"], 0),
         ratio("peak_rss_mb")),
    ]
    if threshold is None:
        rows = [r for r in rows if "threshold" not in r[0]]
    table = "| figure | rlkit | SB3 | ratio rlkit/SB3 |\n|---|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["side", "seed", "steps", "train_wall_s", "eval_mean", "train_steps_per_s", "peak_rss_mb"])
        for r in runs:
            for s, t, e in zip(r.steps, r.train_wall_s, r.eval_mean):
                w.writerow([r.side, r.seed, s, f"{t:.3f}", f"{e:.2f}", f"{r.train_steps_per_s:.2f}",
                            f"{r.peak_rss_mb:.0f}"])
    if threshold is not None:
        bench.plot_curves(runs, stem.with_suffix(".png"), title, threshold)
    unmapped = ", ".join(k for k, v in bench.SB3_DQN_KEYS.items() if v is None)
    stem.with_suffix(".md").write_text(f"""# DQN vs Stable-Baselines3: {title}

Command: `{command}` ({_versions()}; 1 torch thread per side, each run in a fresh process,
sides alternating; training time excludes evaluation).

{table}

Our keys with no SB3 counterpart (held at SB3-equivalent values for this comparison): {unmapped}.
Per-eval data: `{stem.name}.csv`{"; curves: `" + stem.name + ".png`" if threshold is not None else ""}.
""")
    print(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["cartpole", "pong"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pong-steps", type=int, default=1000, help="training steps measured after learning starts")
    p.add_argument("--full", action="store_true", help="cartpole: train the full 50k steps instead of stopping at 475")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    {"cartpole": cartpole, "pong": pong}[args.task](args)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
