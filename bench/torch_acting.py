"""Run an rlkit command with the numpy actor off: rollouts are sampled by the policy's torch step(), the path
tests/test_sb3_lockstep.py and bench/lockstep_sb3.py check against SB3, instead of nets.policy.NumpyActor.

    python bench/torch_acting.py sweep agent=ppo env=pendulum seeds=0..179 threshold=-200 \\
        eval_every=50000 eval_episodes=10 workers=2 threads=1 progress=false

An experiment, not a setting: it asks whether the numpy acting path changes what an agent learns. Both paths
sample the same distribution (tests/test_policy.py) but round differently, so a seed's run parts from the
default one after a few updates; compare many seeds' finals with the default's, e.g.
`python bench/compare_finals.py <bench csv> <this sweep's results.csv> --combine --sides ppo rlkit`.
The switch is made at import, so the spawned worker processes of `workers=N` (which import this file as
their main module) act the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nets.policy  # noqa: E402


def _torch_acting_only(self: nets.policy.ActorCritic) -> bool:
    """numpy_acting_available() for this experiment: never, so the Collector calls step() and value()."""
    return False


nets.policy.ActorCritic.numpy_acting_available = _torch_acting_only  # type: ignore[method-assign]

if __name__ == "__main__":
    from rlkit.cli import main

    sys.exit(main(sys.argv[1:]))
