"""The five-rooms Q-learning example of the lecture notes (SEEDS.md), as a gymnasium env.

Rooms 0..4 and the outside, state 5 (the goal). An action names the room to move to; R[s][a] is the
reward of moving s -> a, and -1 marks a wall (no door: the agent stays put and gets -1).
`info["action_mask"]` lists the doors, so agents explore "among the doors of the current state".

Two goal semantics (SEEDS.md):
- ``goal="bootstrap"`` (the notes): arriving at 5 ends the episode as a *truncation*; the state is not
  terminal, so a TD update bootstraps through it (Q(5,5) -> 500, the 400/500 matrix).
- ``goal="terminal"``: arriving at 5 *terminates*; no bootstrap from it, which gives the normalized
  matrix (Q(5,5) = 100, Q(1,5) = 100, Q(3,1) = 80, ...).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

GOAL = 5

# R[s, a]: reward for moving from s to a; -1 where there is no door (SEEDS.md, the worked grid example).
R = np.array(
    [
        [-1, -1, -1, -1, 0, -1],
        [-1, -1, -1, 0, -1, 100],
        [-1, -1, -1, 0, -1, -1],
        [-1, 0, 0, -1, 0, -1],
        [0, -1, -1, 0, -1, 100],
        [-1, 0, -1, -1, 0, 100],
    ],
    dtype=np.float64,
)
DOORS = R >= 0

# The converged matrices of the notes, for tests and for the printed comparison.
Q_BOOTSTRAP = np.array(
    [
        [0, 0, 0, 0, 400, 0],
        [0, 0, 0, 320, 0, 500],
        [0, 0, 0, 320, 0, 0],
        [0, 400, 256, 0, 400, 0],
        [320, 0, 0, 320, 0, 500],
        [0, 400, 0, 0, 400, 500],
    ],
    dtype=np.float64,
)
Q_TERMINAL = np.array(
    [
        [0, 0, 0, 0, 80, 0],
        [0, 0, 0, 64, 0, 100],
        [0, 0, 0, 64, 0, 0],
        [0, 80, 51.2, 0, 80, 0],
        [64, 0, 0, 64, 0, 100],
        [0, 80, 0, 0, 80, 100],
    ],
    dtype=np.float64,
)


class RoomsEnv(gym.Env):
    """Five rooms and the outside (state 5): move through doors, +100 for stepping outside."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, goal: str = "bootstrap", render_mode: str | None = None):
        if goal not in ("bootstrap", "terminal"):
            raise ValueError(f"goal must be 'bootstrap' or 'terminal', got {goal!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.goal = goal
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(6)
        self.action_space = gym.spaces.Discrete(6)
        self.s = 0
        self.last: tuple[int, int] | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.s = int(self.np_random.integers(6))  # uniformly random start, the goal included
        self.last = None
        return self.s, {"action_mask": DOORS[self.s].astype(np.int8)}

    def step(self, action: Any):
        a = int(action)
        s = self.s
        r = float(R[s, a])
        s_next = a if DOORS[s, a] else s  # a wall leaves the agent where it is
        self.s, self.last = s_next, (s, a)
        arrived = DOORS[s, a] and s_next == GOAL
        terminated = bool(arrived and self.goal == "terminal")
        truncated = bool(arrived and self.goal == "bootstrap")
        return s_next, r, terminated, truncated, {"action_mask": DOORS[s_next].astype(np.int8)}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        cells = [f"[{i}]" if i == self.s else f" {i} " for i in range(5)]
        out = f"({GOAL})" if self.s == GOAL else f" {GOAL} "
        doors = " ".join(str(a) for a in np.flatnonzero(DOORS[self.s]))
        moved = f"  moved {self.last[0]}->{self.last[1]}" if self.last else ""
        return f"rooms {' '.join(cells)} | outside {out}   doors from {self.s}: {doors}{moved}\n"

    def reference_q(self) -> np.ndarray:
        """The converged Q matrix of the notes for this goal mode (400/500, or the normalized one)."""
        return Q_BOOTSTRAP if self.goal == "bootstrap" else Q_TERMINAL

    # Exact save/restore of the mid-episode state, used by checkpoints.
    def get_state(self) -> dict[str, Any]:
        return {"s": self.s}

    def set_state(self, state: dict[str, Any]) -> None:
        self.s = int(state["s"])
