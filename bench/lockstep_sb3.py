"""Whole PPO runs of ours and SB3's in lockstep (rlkit/lockstep.py): the same actions, env seeds and minibatch orders.

    python bench/lockstep_sb3.py [agent=ppo env=pendulum key=value ...] [--seeds 5] [--rollouts K] [--bench-csv F]

For each seed, SB3's PPO trains as the bench's SB3 side of that seed does, draw for draw; two of ours follow it
on SB3's sampled actions and minibatch orders: "ours" (hand gradients, as rlkit trains) and "autograd" (the same
rule through autograd: only float rounding differs, the control). Printed and written to
bench/results/lockstep_<agent>_<env>.{md,png}: the largest weight difference of each pair after every update,
and the three final greedy evaluations (the bench's episodes for the seed). --bench-csv: a bench results.csv of
the same words, whose SB3 finals this run's SB3 side should reproduce.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    from rlkit.errors import UserError
    from rlkit.lockstep import track_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("words", nargs="*", default=["agent=ppo", "env=pendulum"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--rollouts", type=int, default=None, help="rollouts per run (default: the whole budget)")
    p.add_argument("--bench-csv", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    if args.seeds < 1 or (args.rollouts is not None and args.rollouts < 1):
        print("error: --seeds and --rollouts must be at least 1 (e.g. --seeds 5)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    words = [*args.words, "threads=1"]
    agent = next(w.split("=", 1)[1] for w in words if w.startswith("agent="))
    env = next(w.split("=", 1)[1] for w in words if w.startswith("env="))
    bench_sb3 = {}
    if args.bench_csv:
        sys.path.insert(0, str(ROOT / "bench"))
        from compare_finals import finals_by_side

        bench_sb3 = finals_by_side(args.bench_csv).get("sb3", {})
    runs = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        try:
            tracked = track_run(words, seed=seed, rollouts=args.rollouts)
        except (UserError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        runs.append(tracked)
        e = tracked.evals
        took = time.perf_counter() - t0
        print(f"seed {seed}: {len(tracked.step_size)} updates, {tracked.steps:,} steps in {took:.0f} s;"
              f" final weight gaps ours-sb3 {tracked.gaps['ours-sb3'][-1]:.3f}, autograd-sb3 "
              f"{tracked.gaps['autograd-sb3'][-1]:.3f}, ours-autograd {tracked.gaps['ours-autograd'][-1]:.3f};"
              f" evals ours {e['ours']:.1f}, autograd {e['autograd']:.1f}, sb3 {e['sb3']:.1f}", flush=True)
    pairs = ("ours-sb3", "autograd-sb3", "ours-autograd")
    lines = [f"# Lockstep: {agent} on {env}, ours and SB3 fed the same draws", "",
             f"Command: `python bench/lockstep_sb3.py {' '.join(args.words)} --seeds {args.seeds}"
             + (f" --rollouts {args.rollouts}" if args.rollouts else "")
             + (f" --bench-csv {args.bench_csv}" if args.bench_csv else "") + "` (torch threads 1)", "",
             "SB3's PPO trains as the bench's SB3 side of each seed; \"ours\" (hand gradients, as rlkit trains) and "
             "\"autograd\" (the same rule through autograd: only float rounding differs) follow it on SB3's sampled "
             "actions and minibatch orders, with their own envs, normalizers, GAE and optimizer; no weights are "
             "copied after the start. Weight gap: the largest |difference| of any weight between the two; step: the "
             "largest change of an SB3 weight in that update.", "",
             "| seed | updates | weight gap after update 1 / 5 / 20 / last: ours-sb3 | autograd-sb3 | ours-autograd "
             "| final eval ours | autograd | sb3 | " + ("sb3 in the bench |" if bench_sb3 else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if bench_sb3 else "")]
    def at(g: list[float]) -> str:
        return " / ".join(f"{g[i]:.1e}" if i < len(g) else "-" for i in (0, 4, 19, len(g) - 1))

    for seed, t in enumerate(runs):
        e = t.evals
        lines.append(f"| {seed} | {len(t.step_size)} | {at(t.gaps['ours-sb3'])} | {at(t.gaps['autograd-sb3'])} | "
                     f"{at(t.gaps['ours-autograd'])} | {e['ours']:.1f} | {e['autograd']:.1f} | {e['sb3']:.1f} |"
                     + (f" {bench_sb3[seed]:.1f} |" if seed in bench_sb3 else (" - |" if bench_sb3 else "")))
    def median_at(pair: str, i: int) -> str:
        return f"{np.median([t.gaps[pair][min(i, len(t.gaps[pair]) - 1)] for t in runs]):.1e}"

    lines += ["", "Median over seeds of the weight gap after update 5 / 20 / the last: " + "; ".join(
        f"{pair} {median_at(pair, 4)} / {median_at(pair, 19)} / {median_at(pair, 10**9)}" for pair in pairs)
        + f" (median step size {np.median([s for t in runs for s in t.step_size]):.1e}). Largest gap of our rollout "
        "to SB3's at the first update (same weights): " + ", ".join(
            f"{k} {max(t.rollout_gap[0][k] for t in runs):.1e}" for k in ("obs", "rewards", "adv", "ret")) + ".", "",
        "Reading: a rule of ours that differs from SB3's would carry ours away from SB3 faster than from its "
        "rounding twin. The final evaluations of the two followers are not scores of our PPO: once their weights "
        "part from SB3's, they keep learning from SB3's actions, which their own policy no longer samples (off-policy "
        "data for PPO); SB3's column is an ordinary on-policy run, the bench's SB3 run of that seed.", ""]
    stem = f"lockstep_{agent}_{env}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for pair, color in zip(pairs, ("C0", "C1", "C2")):
        for i, t in enumerate(runs):
            ax.plot(range(1, len(t.gaps[pair]) + 1), t.gaps[pair], color=color, alpha=0.6,
                    label=pair if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("largest |weight difference|")
    ax.set_title(f"{agent} {env}: ours and SB3 on the same draws ({len(runs)} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=110)
    print(f"wrote {args.out / stem}.md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
