"""DQN vs Stable-Baselines3 (kept for its old name): `dqn_sb3.py cartpole|pong [options]` runs
`pg_sb3.py dqn-cartpole|dqn-pong [options]`, where the protocols live."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg_sb3 import main  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] in ("cartpole", "pong"):
        args = [f"dqn-{args[0]}", *args[1:]] + (["--tag", "fp32"] if args[0] == "pong" else [])
    sys.argv = [sys.argv[0], *args]
    sys.exit(main())
