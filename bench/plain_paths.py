"""Run an rlkit command with our small-MLP shortcuts off, to test whether a shortcut changes what an agent learns.

    python bench/plain_paths.py --acting sweep agent=ppo env=pendulum seeds=0..179 threshold=-200 \\
        eval_every=50000 eval_episodes=10 workers=2 threads=1 progress=false
    python bench/plain_paths.py --grads sweep agent=ppo env=pendulum seeds=0..99 ...

--acting: rollouts are sampled by the policy's torch step() instead of nets.policy.NumpyActor (the path
          tests/test_sb3_lockstep.py and bench/lockstep_sb3.py check against SB3).
--grads:  ppo and a2c take their gradients by autograd instead of by hand (nets.handgrad).

An experiment, not a setting. Each shortcut computes the same numbers as its plain path to float rounding
(tests/test_policy.py, tests/test_nets.py, tests/test_sb3_lockstep.py), so a seed's run parts from the default
one after a few updates; compare many seeds' finals with the default's, e.g. `python bench/compare_finals.py <bench csv>
<this sweep's results.csv>:ppo=plain --combine --sides plain rlkit`. The switches are made at import, from
sys.argv, so the spawned worker processes of `workers=N` (which import this file as their main module and get
the parent's sys.argv) run the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agents.a2c  # noqa: E402
import agents.ppo  # noqa: E402
import nets.policy  # noqa: E402

SWITCHES = ("--acting", "--grads")


def _no_numpy_acting(self: nets.policy.ActorCritic) -> bool:
    """numpy_acting_available() under --acting: never, so the Collector calls step() and value()."""
    return False


def apply(switches: list[str]) -> None:
    """Turn the named shortcuts off in this process."""
    if "--acting" in switches:
        nets.policy.ActorCritic.numpy_acting_available = _no_numpy_acting  # type: ignore[method-assign]
    if "--grads" in switches:
        agents.ppo.PPO.hand_grad_loss = False
        agents.a2c.A2C.hand_grad_loss = False


apply([a for a in sys.argv[1:] if a in SWITCHES])

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a not in SWITCHES]
    if len(args) == len(sys.argv) - 1:
        print("error: name a shortcut to turn off, --acting and/or --grads, before the rlkit command, e.g. "
              "python bench/plain_paths.py --acting sweep agent=ppo env=pendulum seeds=0..9", file=sys.stderr)
        sys.exit(2)
    from rlkit.cli import main

    sys.exit(main(args))
