"""The main job (`make demo`): a quick end-to-end train + eval + plot through the real `rlkit` commands.

1. Q-learning on the notes' rooms example (prints the 400/500 Q matrix).
2. SARSA and Q-learning on cliff walking (Sutton & Barto Example 6.6), each evaluated greedily.
3. One PNG overlaying both cliff-walking learning curves.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

RLKIT = [sys.executable, "-m", "rlkit"]


def run(*words: str) -> str:
    print(f"\n$ rlkit {shlex.join(words)}", flush=True)
    proc = subprocess.run([*RLKIT, *words], stdout=subprocess.PIPE, text=True)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        sys.exit(proc.returncode)
    return proc.stdout.strip().splitlines()[-1]


def main() -> None:
    t0 = time.perf_counter()
    rooms = run("train", "agent=q_learning", "env=rooms")
    run("eval", rooms)
    cliff = [run("train", f"agent={agent}", "env=cliffwalking", "seed=0") for agent in ("sarsa", "q_learning")]
    for r in cliff:
        run("eval", r)
    out = Path("runs") / "demo-cliffwalking.png"
    run("plot", *cliff, f"out={out}")
    print(f"\ndemo done in {time.perf_counter() - t0:.0f}s: runs in runs/, learning curves in {out}")


if __name__ == "__main__":
    main()
