"""Episodes to a perfect CartPole-v1 score with a linear policy: hill climbing vs OpenAI-ES, 10 seeds each.

    .venv/bin/python bench/es_cartpole.py                          # both methods, seeds 0-9, rlkit/presets/es.yaml
    .venv/bin/python bench/es_cartpole.py --methods openai_es --seeds 0 1 2 --set sigma=0.05 --out /tmp/es

Each run is `rlkit train agent=es env=cartpole method=M seed=S` (the cartpole preset), driven iteration
by iteration through the agent's own `train_iteration`. After every iteration whose policy changed, the
current policy (the champion, or the ES mean) plays 10 held-out episodes (env seeds 10000 + seed x 10 + i,
rlkit bench's rule: no two run seeds share one; not counted as training). "Episodes to 500" = training
episodes consumed, by every candidate of every iteration (champion re-evaluations included), until that
evaluation first averages 500, the maximum.
The preset was tuned on seeds 0-9; seeds 10-19 are run too and reported apart (held out).
Writes <out>/es_cartpole.{md,csv,png} (the plot shows seeds 0-9) and es_cartpole_curves.csv.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlkit.bench import eval_seed  # noqa: E402
from rlkit.evaluation import evaluate  # noqa: E402
from rlkit.overrides import parse_words  # noqa: E402
from rlkit.runs import git_commit, resolve_spec  # noqa: E402
from rlkit.train import build  # noqa: E402

TARGET = 500.0
EVAL_EPISODES = 10
KEYS = {"hill_climb": ("sigma", "alpha", "episodes_per_eval", "hidden", "init_std"),
        "openai_es": ("sigma", "population", "lr", "weight_decay", "episodes_per_eval", "hidden", "init_std")}

# How the cartpole preset was chosen: a sweep on these same seeds 0-9 (`--quiet --methods M --set ...`),
# measured before the preset existed, with the defaults otherwise. Stated in the report as it is.
SWEEP = """\
The preset's values were chosen **on these same seeds 0-9** (so their rows are in-sample; the held-out rows
are not), from this sweep (`bench/es_cartpole.py --quiet --methods M --set ...`; median training episodes
to 500, 10 seeds; measured with the earlier evaluation seeds seed + 10000 + i, where neighbouring run seeds
shared 9 of their 10 evaluation episodes):

- hill_climb, one episode per candidate: alpha 0.2: 411; 0.3: 317; **0.5: 150**; 0.7: 188; 1.0: 161.
  Three episodes per candidate: alpha 0.5: 603; 1.0: 354 (9/10 reached 500).
  sigma 0.1, 0.5 and 2.0 give the same results: a linear argmax policy started at theta = 0 is invariant to
  the scale of theta, and sigma only scales every champion and mutant.
- openai_es (sigma 0.1; only lr/sigma matters from theta = 0), population x Adam lr:
  4: lr 0.02 268, 0.05 288, 0.1 244 (9/10), 0.2 374 (8/10); **6: 0.02 402, 0.03 315, 0.05 291**, 0.07 318,
  0.1 432, 0.2 330; 8: 0.05 296, 0.1 272, 0.2 412; 10: 0.02 550, 0.05 405, 0.1 310, 0.2 340;
  20: 0.02 930, 0.05 680, 0.1 520, 0.2 370. Weight decay 0.005 (population 6, lr 0.05): 285; init_std 0.1: 474.
  Differences under ~50 episodes between settings are within seed noise.

A previous attempt reported medians of ~140 (hill_climb) and ~160 (openai_es) episodes; its protocol is not
recorded. Here a seed counts only when the policy being trained scores 500 on all 10 held-out episodes,
which is stricter than a single training episode reaching 500. Hill climbing's two slow seeds stall in
different ways (700 trials logged by hand with the preset): seed 7 holds a good champion that wins or ties
almost every comparison (19 accepted mutants in 630 trials; a mutant must do strictly better on the shared
episode, impossible when the champion scores 500), so it changes only on the starts it fails; seed 5 climbs
slowly through poor policies (training returns 60-150, about 30% of mutants accepted) while |theta| grows
with each accepted blend, so the fixed sigma is an ever smaller relative step.
"""


class Count:
    """Stands in for rlkit.logger.Logger: counts training episodes and keeps their raw returns."""

    def __init__(self) -> None:
        self.returns: list[float] = []

    def episode(self, step: int, ret: float, length: int, **extra: float) -> None:
        self.returns.append(ret)


def run(method: str, seed: int, budget: int, overrides: list[str]) -> dict[str, Any]:
    """Train one seed until the held-out evaluation averages TARGET or `budget` training episodes are spent."""
    words = ["agent=es", "env=cartpole", f"method={method}", f"seed={seed}", *overrides]
    spec = resolve_spec(parse_words(words), words)
    agent, env = build(spec)
    eval_env = type(agent).make_env(spec.env_ref, spec.config, training=False)
    log = Count()
    curve: list[tuple[int, int, float]] = []
    train_s, last_theta, score = 0.0, None, float("nan")
    while agent.episode < budget:
        t0 = time.perf_counter()
        agent.train_iteration(env, log)
        train_s += time.perf_counter() - t0
        if last_theta is None or not np.array_equal(agent.theta, last_theta):
            score = evaluate(agent, eval_env, EVAL_EPISODES, eval_seed(seed, EVAL_EPISODES))["return_mean"]
            last_theta = agent.theta.copy()
            curve.append((agent.episode, agent.step, score))
        if score >= TARGET:
            break
    env.close()
    done = score >= TARGET
    return {"method": method, "seed": seed, "success": done,
            "episodes_to_500": agent.episode if done else None, "steps_to_500": agent.step if done else None,
            "iterations": agent.iteration, "train_s": round(train_s, 3), "final_eval": score,
            "n_params": agent.theta.size, "curve": curve, "config": spec.config}


def iqr(xs: list[float]) -> tuple[float, float]:
    q1, q3 = np.percentile(xs, [25, 75])
    return float(q1), float(q3)


def plot(results: list[dict[str, Any]], methods: list[str], budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"hill_climb": "tab:blue", "openai_es": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for k, m in enumerate(methods):
        rs = [r for r in results if r["method"] == m]
        eps = [r["episodes_to_500"] if r["success"] else budget for r in rs]
        axes[0].boxplot([eps], positions=[k], widths=0.5, showfliers=False)
        jitter = np.random.default_rng(k).uniform(-0.12, 0.12, len(eps))
        axes[0].scatter(k + jitter, eps, color=colors.get(m), zorder=3,
                        marker="o", label=f"{m} ({sum(r['success'] for r in rs)}/{len(rs)} reached 500)")
        for r in rs:
            e, _, s = zip(*r["curve"]) if r["curve"] else ((), (), ())
            axes[1].step(e, s, where="post", color=colors.get(m), alpha=0.45, lw=1)
        axes[1].plot([], [], color=colors.get(m), label=m)
    axes[0].set_xticks(range(len(methods)), methods)
    axes[0].set_ylabel("training episodes to eval mean 500")
    axes[0].legend(fontsize=8)
    axes[1].axhline(TARGET, color="grey", ls="--", lw=0.8)
    axes[1].set_xlabel("training episodes (all candidates)")
    axes[1].set_ylabel(f"held-out eval return, mean of {EVAL_EPISODES} (raw)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("CartPole-v1, linear policy: episodes to a perfect score (one line/dot per seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["hill_climb", "openai_es"])
    p.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--holdout", nargs="*", type=int, default=list(range(10, 20)),
                   help="extra seeds reported apart: the preset was not tuned on them (none: --holdout)")
    p.add_argument("--budget", type=int, default=3000, help="training episodes before a seed counts as failed")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides on top of the preset")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--quiet", action="store_true", help="print the summary only (for hyperparameter sweeps)")
    args = p.parse_args()
    import gymnasium
    import torch

    commit = git_commit()  # before this run rewrites the (tracked) result files
    results = []
    t0 = time.perf_counter()
    for m in args.methods:
        for s in [*args.seeds, *([] if args.quiet else args.holdout)]:
            r = run(m, s, args.budget, args.set)
            r["holdout"] = s not in args.seeds
            results.append(r)
            if not args.quiet:
                print(f"{m:10s} seed {s}: episodes to 500 {r['episodes_to_500']}, steps {r['steps_to_500']}, "
                      f"{r['iterations']} iterations, {r['train_s']:.1f}s", flush=True)
    wall = time.perf_counter() - t0
    rows = []
    for holdout in (False, True):
        for m in args.methods:
            rs = [r for r in results if r["method"] == m and r["holdout"] == holdout]
            if not rs:
                continue
            eps = [r["episodes_to_500"] for r in rs if r["success"]]
            steps = [r["steps_to_500"] for r in rs if r["success"]]
            med = float(np.median(eps)) if eps else None
            seeds = [r["seed"] for r in rs]
            label = f"{min(seeds)}-{max(seeds)}" + (" (held out)" if holdout else "")
            rows.append((m, label, len(eps), len(rs), med, iqr(eps) if eps else None,
                         (min(eps), max(eps)) if eps else None, float(np.median(steps)) if steps else None,
                         float(np.median([r["train_s"] for r in rs]))))
            print(f"{m} seeds {label}: {len(eps)}/{len(rs)} reached 500; median episodes {med}, "
                  f"IQR {rows[-1][5]}, median steps {rows[-1][7]}", flush=True)
    if args.quiet:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "es_cartpole.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "held_out", "success", "episodes_to_500", "steps_to_500", "iterations",
                    "train_s", "final_eval"])
        for r in results:
            w.writerow([r["method"], r["seed"], int(r["holdout"]), int(r["success"]), r["episodes_to_500"],
                        r["steps_to_500"], r["iterations"], r["train_s"], r["final_eval"]])
    with open(args.out / "es_cartpole_curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "train_episodes", "train_steps", "eval_return_mean"])
        for r in results:
            for e, st, sc in r["curve"]:
                w.writerow([r["method"], r["seed"], e, st, sc])
    plot([r for r in results if not r["holdout"]], args.methods, args.budget, args.out / "es_cartpole.png")
    lines = [
        "# Evolution strategies on CartPole-v1: training episodes to a perfect score, linear policy",
        "",
        f"Command: `.venv/bin/python bench/es_cartpole.py{''.join(' ' + a for a in sys.argv[1:])}` "
        f"(seeds {args.seeds[0]}-{args.seeds[-1]}, then held-out seeds "
        f"{args.holdout[0] if args.holdout else '-'}-{args.holdout[-1] if args.holdout else '-'}; budget {args.budget} "
        f"training episodes per seed). Measured at commit {commit} on a shared 2-core machine "
        f"({platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"gymnasium {gymnasium.__version__}, torch {torch.__version__} unused in the loop; 1 process, workers=1); "
        f"whole bench {wall:.0f} s wall.",
        "",
        "Protocol: `rlkit train agent=es env=cartpole method=M seed=S` with the `cartpole` preset of "
        "`rlkit/presets/es.yaml`, driven one iteration at a time. After each iteration that changed the policy, "
        f"the current policy (hill_climb: the champion; openai_es: the mean theta) plays {EVAL_EPISODES} held-out "
        "episodes (env seeds 10000 + seed x 10 + i, disjoint across run seeds; not counted). Episodes to 500 = "
        "training episodes of every candidate (champion re-evaluations included) consumed until that evaluation "
        "first averages 500 (the maximum). Returns are raw CartPole scores. Train s = wall seconds inside the "
        "training iterations (evaluation excluded), on a machine shared with other jobs: indicative only.",
        "",
        "| method | seeds | reached 500 | median episodes to 500 | IQR | range | median env steps to 500 "
        "| median train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, label, ok, n, med, q, rng, st, ts in rows:
        lines.append(f"| {m} | {label} | {ok}/{n} | {med if med is None else f'{med:.0f}'} | "
                     f"{'-' if q is None else f'{q[0]:.0f}-{q[1]:.0f}'} | "
                     f"{'-' if rng is None else f'{rng[0]}-{rng[1]}'} | "
                     f"{'-' if st is None else f'{st:,.0f}'} | {ts:.2f} |")
    lines += ["", "Hyperparameters (preset values, with `--set` overrides):", ""]
    for m in args.methods:
        cfg = next(r["config"] for r in results if r["method"] == m)
        lines.append(f"- {m}: " + ", ".join(f"{k}={getattr(cfg, k)}" for k in KEYS.get(m, KEYS["openai_es"]))
                     + f" ({next(r['n_params'] for r in results if r['method'] == m)} parameters)")
    if not args.set and args.seeds == list(range(10)):
        lines += ["", SWEEP.rstrip()]
    lines += ["", "Per seed: `es_cartpole.csv`; evaluation curves: `es_cartpole_curves.csv`; plot: `es_cartpole.png`."]
    (args.out / "es_cartpole.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'es_cartpole.md'}")


if __name__ == "__main__":
    main()
