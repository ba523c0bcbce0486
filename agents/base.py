"""The contract between the runner (`rlkit train/eval/resume`) and an agent.

An agent is built from its config and the env it will train on, acts on batches of observations,
owns its training loop, and hands its whole state over as tensors and plain data. Shared mechanics
(checkpoints, logging, schedules, evaluation) are called from `rlkit/`, not inherited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import envs
from rlkit.checkpoint import Checkpointer
from rlkit.config import TrainConfig
from rlkit.logger import Logger


class Agent:
    """Base of every agent: defaults for env construction, evaluation and reporting."""

    Config: ClassVar[type[TrainConfig]] = TrainConfig
    family: ClassVar[str] = ""

    def __init__(self, cfg: TrainConfig, env: Any):
        self.cfg = cfg

    @classmethod
    def make_env(cls, ref: envs.EnvRef, cfg: TrainConfig, render_mode: str | None = None,
                 training: bool = True) -> Any:
        """The env this agent trains on (`training`) or is evaluated on; a gymnasium env by default.

        Training and evaluation envs may differ: Atari clips rewards and ends episodes on a lost life
        only for training, and deep agents train on a vector of envs but evaluate on one."""
        return envs.make(ref, render_mode=render_mode, training=training)

    def act(self, obs: Sequence[Any], deterministic: bool = False,
            action_mask: Sequence[Any] | None = None) -> np.ndarray:
        """Actions for a batch of observations (greedy when deterministic)."""
        raise NotImplementedError

    def learn(self, env: Any, total_steps: int, logger: Logger, ckpt: Checkpointer) -> None:
        """Train until `total_steps` (or cfg.total_episodes, or a stop request), saving through `ckpt`.

        Ask `ckpt.due(step)` between steps or episodes (it also runs the periodic evaluation of
        eval_every there, leaving every random stream of the agent as it was)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The whole training state: tables or weights, optimizer, RNGs, counters (tensors/plain data)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def policy_state_dict(self) -> dict[str, Any]:
        """What load_state_dict needs to act as now (the `best` checkpoint of eval_every): the whole state
        by default; an agent may leave out large training-only parts (DQN: its replay memory)."""
        return self.state_dict()

    @property
    def steps_done(self) -> int:
        """Environment steps taken so far (what resume continues from)."""
        return int(getattr(self, "step", 0))

    def evaluate(self, env: Any, episodes: int, seed: int, deterministic: bool = True) -> dict[str, Any]:
        """Play `episodes` episodes on `env` and return statistics of the raw return (see rlkit.evaluation)."""
        from rlkit.evaluation import evaluate

        return evaluate(self, env, episodes, seed, deterministic)

    def report(self) -> str | None:
        """Optional text printed at the end of training (e.g. a small Q-table)."""
        return None
