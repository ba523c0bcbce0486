"""DQN vs Stable-Baselines3, side by side in one invocation: a thin wrapper over `rlkit bench`.

  cartpole: `rlkit bench agent=dqn env=cartpole seeds=5 threshold=475 eval_every=2500 eval_episodes=10`:
            the zoo preset (50k steps) on each side, alternating, each run in a fresh process; our
            double_q/replay/n_step/loss/dueling held at SB3's behaviour (rlkit/sb3map.py).
            Writes bench/results/bench_dqn_cartpole.{md,csv,png}.
  pong:     the Atari preset (100k buffer, learning starts at 100k); training steps/s measured over
            the steps after learning starts, and the peak resident memory once the buffer holds
            100k transitions. total_steps is cut to learning_starts + the measured stretch, with
            epsilon 1 -> 0.9 over it: the preset's epsilon around step 100k, on both sides alike.
            No evaluation. Writes bench/results/dqn_pong.{md,csv}.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["cartpole", "pong"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pong-steps", type=int, default=1000, help="training steps measured after learning starts")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    common = [f"threads={args.threads}", f"workers={args.workers}", "progress=false", "tensorboard=false"]
    if args.task == "cartpole":
        words = ["agent=dqn", "env=cartpole", f"seeds={args.seeds}", "threshold=475", "eval_every=2500",
                 "eval_episodes=10", *common]
        stem, files = "bench_dqn_cartpole", ("report.md", "results.csv", "curves.png")
    else:
        total = 100_000 + args.pong_steps
        # epsilon 1 -> 0.9 over the cut run = the preset's value at step 100k (1 -> 0.01 over 1M steps)
        words = ["agent=dqn", "env=pong", "seeds=1", f"total_steps={total}", "save_replay=false", "epsilon.end=0.9",
                 "epsilon.fraction=1.0", "eval_episodes=0", f"eval_every={total}", "measure_after=100000", *common]
        stem, files = "dqn_pong", ("report.md", "results.csv")
    from rlkit.bench import execute, plan

    pl = plan("bench", words)
    rc = execute(pl)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in files:
        suffix = Path(name).suffix
        shutil.copy(pl.out / name, args.out / f"{stem}{suffix}")
        print(f"wrote {args.out / (stem + suffix)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
