"""Where an A2C CartPole update's time goes: the parts of our small-MLP on-policy path, timed in one process.

    taskset -c 1 .venv/bin/python bench/onpolicy_parts.py           # one core, one torch thread

Prints microseconds per call (best of 5 repeats of timeit) for: acting on 8 CartPole observations (numpy
actor vs torch's `step`), stepping 8 CartPole copies (our CartPoleVec vs gymnasium's SyncVectorEnv, with a
policy that keeps episodes ~90 steps long), GAE on a 5 x 8 rollout, one A2C update after 4k steps of
training (logged and unlogged), and the wall-clock of 20k A2C training steps in 5k stretches (as
`rlkit bench` calls learn()). These are the figures quoted in the docstrings of nets/policy.py
(NumpyActor), envs/cartpole_vec.py and agents/onpolicy.py; the comparison with SB3 is bench/pg_sb3.py's.
"""

from __future__ import annotations

import sys
import tempfile
import time
import timeit
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlkit.bench import RecordingLogger  # noqa: E402
from rlkit.checkpoint import Checkpointer  # noqa: E402
from rlkit.overrides import parse_words  # noqa: E402
from rlkit.rollout import compute_gae  # noqa: E402
from rlkit.runs import resolve_spec  # noqa: E402
from rlkit.train import build  # noqa: E402
from rlkit.vec import make_vec  # noqa: E402


def per_call_us(fn, number: int = 2000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def a2c(seed: int = 0):
    words = ["agent=a2c", "env=cartpole", f"seed={seed}", "total_steps=100000", "threads=1"]
    agent, env = build(resolve_spec(parse_words(words), words))
    tmp = Path(tempfile.mkdtemp())
    return agent, env, RecordingLogger(tmp, 100_000), Checkpointer(tmp / "ck", every=10**12)


def env_step_us(env: gym.vector.VectorEnv, n: int = 20000) -> float:
    """Mean time of env.step alone, under a noisy balancing policy (episodes of ~90 steps)."""
    obs, _ = env.reset(seed=0)
    flip = np.random.default_rng(0).random((n, env.num_envs)) < 0.3
    total = 0.0
    for i in range(n):
        actions = ((obs[:, 2] + 0.5 * obs[:, 3] > 0) ^ flip[i]).astype(np.int64)
        t0 = time.perf_counter()
        obs, *_ = env.step(actions)
        total += time.perf_counter() - t0
    return total / n * 1e6


def main() -> None:
    agent, env, logger, ckpt = a2c()
    policy = agent.policy
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    actor = policy.numpy_actor()
    with torch.no_grad():
        rows = [("numpy actor: step, 8 observations", per_call_us(lambda: actor.step(obs), 20000)),
                ("numpy actor: value, 8 observations", per_call_us(lambda: actor.value(obs), 20000)),
                ("building a numpy actor (once per rollout)", per_call_us(policy.numpy_actor, 20000)),
                ("torch step(), 8 observations", per_call_us(lambda: policy.step(torch.as_tensor(obs)), 20000))]
    rows.append(("CartPoleVec step, 8 copies", env_step_us(env)))
    rows.append(("SyncVectorEnv step, 8 gym.make copies", env_step_us(make_vec(lambda: gym.make("CartPole-v1"), 8))))
    rng = np.random.default_rng(0)
    r, v, nv = (rng.normal(size=(5, 8)).astype(np.float32) for _ in range(3))
    term = rng.random((5, 8)) < 0.05
    rows.append(("GAE, 5 x 8 rollout", per_call_us(lambda: compute_gae(r, v, nv, term, term, 0.99, 1.0), 20000)))

    agent, env, logger, ckpt = a2c()
    agent.learn(env, 4000, logger, ckpt)
    for due in (True, False):
        agent.log_due = due

        def update() -> None:
            with torch.inference_mode():
                agent.update()
        rows.append((f"A2C update, {'logged' if due else 'not logged'} (inference mode, as learn() runs it)",
                     per_call_us(update)))
    for name, us in rows:
        print(f"{us:9.1f} us  {name}")

    for seed in (0, 2):
        agent, env, logger, ckpt = a2c(seed)
        stretches = []
        for target in range(5000, 20001, 5000):
            t0 = time.perf_counter()
            agent.learn(env, target, logger, ckpt)
            stretches.append(time.perf_counter() - t0)
        print(f"A2C seed {seed}: 20k steps in {sum(stretches) * 1000:.0f} ms "
              f"(5k stretches: {', '.join(f'{s * 1000:.0f}' for s in stretches)} ms), {agent.episode} episodes")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
