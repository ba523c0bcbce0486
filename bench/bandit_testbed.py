"""Reproduce Sutton & Barto (2018) Figures 2.2, 2.4 and 2.5 on the 10-armed testbed with rlkit's agents.

    .venv/bin/python bench/bandit_testbed.py                     # 2000 runs x 1000 steps, as in the book
    .venv/bin/python bench/bandit_testbed.py --runs 300 --out /tmp/bandit

Figure 2.2: greedy, eps = 0.01 and eps = 0.1 (sample averages) on q* ~ N(0, 1), rewards ~ N(q*, 1).
Figure 2.4: UCB with c = 2 against eps = 0.1 on the same testbed.
Figure 2.5: gradient bandit, alpha 0.1 and 0.4, with and without baseline, on q* ~ N(4, 1).

Every method runs the agent classes of agents/bandits.py through their own `learn` loop (n problems
stepped as one array); all methods of a figure share the seed, hence the same q* (common random numbers).
Writes <out>/bandit_fig2_2.{png,csv,md}, prints the table at step 1000 and checks it against the book.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.bandits import UCB, BanditAgent, EpsGreedy, GradientBandit
from rlkit.checkpoint import Checkpointer

LAST = 50  # the table averages steps (steps - LAST, steps]; the single value at the last step is shown beside it


@dataclass(frozen=True)
class Method:
    label: str
    agent: type[BanditAgent]
    overrides: dict[str, Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    panel: str = "fig2.2"
    published: tuple[float, float] | None = None  # (average reward, % optimal) at step 1000, read off the book


METHODS = [
    Method("greedy", EpsGreedy, {"epsilon": 0.0}, published=(1.02, 35)),
    Method("eps=0.01", EpsGreedy, {"epsilon": 0.01}, published=(1.29, 58)),
    Method("eps=0.1", EpsGreedy, {"epsilon": 0.1}, published=(1.37, 80)),
    Method("UCB c=2", UCB, {"c": 2.0}, published=(1.49, 85)),
    *[Method(f"gradient a={a} {'with' if b else 'without'} baseline", GradientBandit, {"alpha": a, "baseline": b},
             {"q_mean": 4.0}, panel="fig2.5")
      for b in (True, False) for a in (0.1, 0.4)],
]
FIGURE = {"fig2.2": "Figures 2.2 + 2.4: 10-armed testbed, q* ~ N(0, 1)",
          "fig2.5": "Figure 2.5: gradient bandit, q* ~ N(4, 1)"}


class Curves:
    """Stands in for rlkit.logger.Logger: keeps the per-step metrics in memory."""

    def __init__(self, steps: int):
        self.reward = np.full(steps, np.nan)
        self.optimal_pct = np.full(steps, np.nan)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.reward[step - 1] = metrics["charts/reward"]
        self.optimal_pct[step - 1] = metrics["charts/optimal_pct"]


def run(method: Method, runs: int, steps: int, seed: int, ckpt_dir: Path) -> tuple[Curves, float]:
    """Train one method on `runs` problems for `steps` pulls; (curves, wall seconds of learn)."""
    cls = method.agent
    cfg = cls.Config(seed=seed, total_steps=steps, n_problems=runs, progress=False, tensorboard=False,
                     **method.overrides)
    env = cls.make_env(envs.resolve("bandit", method.env_kwargs), cfg)
    agent = cls(cfg, env)
    curves = Curves(steps)
    t0 = time.perf_counter()
    agent.learn(env, steps, curves, Checkpointer(ckpt_dir, every=2**62))  # never due: nothing is written
    return curves, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2000, help="independent problems (the book: 2000)")
    p.add_argument("--steps", type=int, default=1000, help="pulls per problem (the book: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the testbeds and the agents")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="output folder")
    args = p.parse_args(argv)
    if args.runs < 1 or args.steps < LAST:
        p.error(f"--runs must be >= 1 and --steps >= {LAST}")
    args.out.mkdir(parents=True, exist_ok=True)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python bench/bandit_testbed.py", *given])

    results: dict[str, tuple[Curves, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in METHODS:
            results[m.label] = run(m, args.runs, args.steps, args.seed, Path(tmp))
            print(f"  {m.label:<32s} {results[m.label][1]:6.2f} s", file=sys.stderr)

    rows = []
    for m in METHODS:
        c, wall = results[m.label]
        rows.append({
            "method": m, "wall": wall,
            "reward": float(c.reward[-LAST:].mean()), "reward_last": float(c.reward[-1]),
            "optimal": float(c.optimal_pct[-LAST:].mean()), "optimal_last": float(c.optimal_pct[-1]),
        })
    by = {r["method"].label: r for r in rows}
    checks = [
        ("eps=0.1 average reward in [1.30, 1.45]", 1.30 <= by["eps=0.1"]["reward"] <= 1.45),
        ("eps=0.1 % optimal in [75, 85]", 75 <= by["eps=0.1"]["optimal"] <= 85),
        ("eps=0.01 average reward in [1.20, 1.35]", 1.20 <= by["eps=0.01"]["reward"] <= 1.35),
        ("greedy average reward in [0.95, 1.10]", 0.95 <= by["greedy"]["reward"] <= 1.10),
        ("UCB c=2 average reward above eps=0.1", by["UCB c=2"]["reward"] > by["eps=0.1"]["reward"]),
        *[(f"gradient a={a}: % optimal with baseline above without",
           by[f"gradient a={a} with baseline"]["optimal"] > by[f"gradient a={a} without baseline"]["optimal"])
          for a in (0.1, 0.4)],
    ]
    table = _table(rows, args.steps)
    verdict = "\n".join(f"- [{'PASS' if ok else 'FAIL'}] {name}" for name, ok in checks)
    if (args.runs, args.steps) != (2000, 1000):
        verdict += f"\n- (the ranges are for 2000 runs x 1000 steps; this run used {args.runs} x {args.steps})"

    _write_csv(args.out / "bandit_fig2_2.csv", results, args.steps)
    _plot(args.out / "bandit_fig2_2.png", results, args)
    eps01_wall = by["eps=0.1"]["wall"]
    others = ", ".join(f"{r['method'].label} {r['wall']:.2f} s" for r in rows if r["method"].label != "eps=0.1")
    (args.out / "bandit_fig2_2.md").write_text(f"""# Sutton & Barto Figures 2.2, 2.4, 2.5: the 10-armed testbed

Produced by `{command}` ({args.runs} runs x {args.steps} steps, seed {args.seed}; numpy {np.__version__},
Python {platform.python_version()}, {platform.machine()}).
Plot: `bandit_fig2_2.png`; per-step curves: `bandit_fig2_2.csv`.

Agents: `agents/bandits.py` (`EpsGreedy`, `UCB`, `GradientBandit`, each through its own `learn` loop) on
`envs/bandit.py:BanditTestbed` (all {args.runs} problems stepped as one numpy array). Sample-average values,
Q_1 = 0; gradient bandit baseline = average of the earlier rewards (R̄_1 = R_1). Methods of one figure share
the seed, so they face the same q* (common random numbers).

Wall time of one {args.runs} x {args.steps} eps-greedy (eps=0.1) run, `learn()` only: **{eps01_wall:.2f} s**
(single thread on a {os.cpu_count()}-CPU machine; other methods: {others}).

## At step {args.steps}

"avg" = mean over steps {args.steps - LAST + 1}-{args.steps}; "@{args.steps}" = the single step {args.steps}
(over {args.runs} runs). "book" = approximate readings of the published figures at step 1000; ratio = avg / book.

{table}

## Acceptance

{verdict}
""")
    print(table)
    print()
    print(verdict)
    print(f"\nwall time of one {args.runs} x {args.steps} eps=0.1 run: {eps01_wall:.2f} s; "
          f"wrote {args.out}/bandit_fig2_2.*")
    return 0 if all(ok for _, ok in checks) else 1


def _table(rows: list[dict[str, Any]], steps: int) -> str:
    head = (f"| method | panel | reward avg | reward @{steps} | book reward | ratio | % optimal avg "
            f"| % optimal @{steps} | book % optimal | ratio |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        m = r["method"]
        if m.published:
            book_r, book_o = m.published
            pub = [f"{book_r:.2f}", f"{r['reward'] / book_r:.3f}", f"{book_o:.0f}", f"{r['optimal'] / book_o:.3f}"]
        else:
            pub = ["-", "-", "-", "-"]
        lines.append(f"| {m.label} | {m.panel} | {r['reward']:.3f} | {r['reward_last']:.3f} | {pub[0]} | {pub[1]} "
                     f"| {r['optimal']:.1f} | {r['optimal_last']:.1f} | {pub[2]} | {pub[3]} |")
    return "\n".join(lines)


def _slug(label: str) -> str:
    return label.replace("=", "").replace(" ", "_").replace("with_baseline", "baseline").replace(
        "without_baseline", "no_baseline").lower()


def _write_csv(path: Path, results: dict[str, tuple[Curves, float]], steps: int) -> None:
    header = ["step"] + [f"{_slug(k)}/{col}" for k in results for col in ("reward", "optimal_pct")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for t in range(steps):
            w.writerow([t + 1] + [f"{v:.5g}" for c, _ in results.values() for v in (c.reward[t], c.optimal_pct[t])])


def _plot(path: Path, results: dict[str, tuple[Curves, float]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    steps = np.arange(1, args.steps + 1)
    for row, panel in enumerate(FIGURE):
        for m in (m for m in METHODS if m.panel == panel):
            c = results[m.label][0]
            axes[row, 0].plot(steps, c.reward, lw=0.9, label=m.label)
            axes[row, 1].plot(steps, c.optimal_pct, lw=0.9, label=m.label)
        axes[row, 0].set_ylabel("average reward")
        axes[row, 1].set_ylabel("% optimal action")
        axes[row, 1].set_ylim(0, 100)
        for ax in axes[row]:
            ax.set_title(FIGURE[panel], fontsize=10)
            ax.grid(alpha=0.3)
        axes[row, 1].legend(fontsize=8, loc="lower right")
    for ax in axes[1]:
        ax.set_xlabel("steps")
    fig.suptitle(f"Sutton & Barto ch. 2 reproduced with rlkit: {args.runs} runs x {args.steps} steps, seed {args.seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
