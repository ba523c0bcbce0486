"""Our agents vs Stable-Baselines3 / sb3-contrib, side by side in one invocation: a thin wrapper over `rlkit bench`
that fixes the protocol of each committed result and copies it to bench/results/.

  dqn-cartpole:
            `rlkit bench agent=dqn env=cartpole seeds=5 threshold=475 eval_every=2500 eval_episodes=10` (zoo preset,
            50k steps; our double_q/replay/n_step/loss/dueling held at SB3's behaviour by rlkit/sb3map.py).

  ppo-cartpole, a2c-cartpole, trpo-cartpole:
            `rlkit bench agent=<a> env=cartpole seeds=5 threshold=475 eval_every=5000 eval_episodes=10`
            with each agent's zoo preset on both sides (ppo 100k, a2c 100k, trpo 100k steps).
  ppo-pendulum:
            `rlkit bench agent=ppo env=pendulum seeds=5 threshold=-200 eval_every=5000 eval_episodes=10`.
  ppo-pong: training steps/s with CleanRL's Atari recipe (8 envs x 128 steps, 4 epochs, batch 256) over
            `--pong-steps` env steps after the first rollout; no evaluation; 3 repeats (seeds) per side.
  dqn-pong: the Atari preset (100k buffer, learning starts at 100k); training steps/s over `--pong-steps` steps after
            learning starts and the peak RSS with the buffer full; total_steps cut to learning_starts + that
            stretch with epsilon 1 -> 0.9 over it (the preset's epsilon around step 100k). No evaluation; 3 repeats.
  --ours key=value adds words for both sides where SB3 has the key (e.g. precision=bf16: ours only, reported).

Writes bench/results/bench_<agent>_<env>[_<tag>].{md,csv,png}.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CURVES = {
    "dqn-cartpole": ["agent=dqn", "env=cartpole", "threshold=475", "eval_every=2500"],
    "ppo-cartpole": ["agent=ppo", "env=cartpole", "threshold=475", "eval_every=5000"],
    "a2c-cartpole": ["agent=a2c", "env=cartpole", "threshold=475", "eval_every=5000"],
    "trpo-cartpole": ["agent=trpo", "env=cartpole", "threshold=475", "eval_every=5000"],
    "ppo-pendulum": ["agent=ppo", "env=pendulum", "threshold=-200", "eval_every=5000"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=[*CURVES, "ppo-pong", "dqn-pong"])
    p.add_argument("--pong-steps", type=int, default=None,
                   help="env steps measured (ppo: after the first rollout, default 8192; dqn: after learning starts, "
                        "default 1000)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per side (default 5; Pong speed tasks: 3 repeats, whose median steps/s is reported: "
                        "single runs on a shared VM moved by +/- 10%%)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--ours", nargs="*", default=[], help="extra key=value words (both sides unless SB3 fixes the key)")
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    common = [f"threads={args.threads}", f"workers={args.workers}", "progress=false", "tensorboard=false"]
    agent, env = args.task.split("-")
    if args.task in CURVES:
        words = [*CURVES[args.task], f"seeds={args.seeds or 5}", "eval_episodes=10"]
        files = ("report.md", "results.csv", "curves.png")
    elif args.task == "ppo-pong":
        first = 8 * 128  # one rollout of the preset: warm-up, not measured
        total = first + (args.pong_steps or 8192)
        words = ["agent=ppo", "env=pong", f"seeds={args.seeds or 3}", f"total_steps={total}", "eval_episodes=0",
                 f"eval_every={total}", f"measure_after={first}"]
        files = ("report.md", "results.csv")
    else:
        total = 100_000 + (args.pong_steps or 1000)
        # epsilon 1 -> 0.9 over the cut run = the preset's value at step 100k (1 -> 0.01 over 1M steps)
        words = ["agent=dqn", "env=pong", f"seeds={args.seeds or 3}", f"total_steps={total}", "save_replay=false",
                 "epsilon.end=0.9",
                 "epsilon.fraction=1.0", "eval_episodes=0", f"eval_every={total}", "measure_after=100000"]
        files = ("report.md", "results.csv")
    from rlkit.bench import execute, plan

    pl = plan("bench", [*words, *args.ours, *common])
    rc = execute(pl)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{agent}_{env}" + (f"_{args.tag}" if args.tag else "")
    for name in files:
        suffix = Path(name).suffix
        shutil.copy(pl.out / name, args.out / f"{stem}{suffix}")
        print(f"wrote {args.out / (stem + suffix)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
