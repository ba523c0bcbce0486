"""Running observation and reward normalization, as Stable-Baselines3's VecNormalize does it.

    obs    -> clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)        mean/var over every obs seen
    reward -> clip(reward / sqrt(Var[R] + eps), -clip_reward, clip_reward)    R = discounted return so far

Rewards are divided by the standard deviation of the running discounted return (not of the
reward), and never shifted, so the sign of a reward and the optimal policy are unchanged. The
statistics are part of the agent's state: checkpoints save them and evaluation uses them frozen
(`update=False`); what is logged as an episode's return is always the raw score.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _array(x: Any) -> np.ndarray:
    """A checkpointed tensor or list back to a float64 numpy array."""
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)


class RunningMeanStd:
    """Mean and variance of a stream of batches, merged by Chan et al.'s parallel algorithm (float64)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)  # as SB3: a tiny prior count keeps the first update well defined

    def update(self, x: np.ndarray) -> None:
        """Fold in a batch `x` of shape (B, *shape)."""
        x = np.asarray(x, dtype=np.float64)
        b_mean, b_var, b_count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean = self.mean + delta * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = _array(state["mean"]), _array(state["var"])
        self.count = float(state["count"])


class ObsNormalizer:
    """obs -> clip((obs - mean) / sqrt(var + eps), -clip, clip), the statistics updated on request."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.eps = eps

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        """Normalize a batch of observations (B, *shape); `update` folds the batch into the statistics first."""
        obs = np.asarray(obs)
        if update:
            self.rms.update(obs)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.eps)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state)


class RewardNormalizer:
    """r_t -> clip(r_t / sqrt(Var[R_t] + eps), -clip, clip), R_t = gamma R_{t-1} + r_t per env (0 at episode ends)."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(())
        self.gamma = gamma
        self.clip = clip
        self.eps = eps
        self.returns = np.zeros(n_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray, update: bool = True) -> np.ndarray:
        """Scaled rewards of one vector step; `dones` (terminated | truncated) restart the running returns."""
        rewards = np.asarray(rewards, dtype=np.float64)
        if update:
            self.returns = self.returns * self.gamma + rewards
            self.rms.update(self.returns)
        out = np.clip(rewards / np.sqrt(self.rms.var + self.eps), -self.clip, self.clip).astype(np.float32)
        if update:
            self.returns[np.asarray(dones, dtype=bool)] = 0.0
        return out

    def reset(self) -> None:
        """Forget the returns in flight (the envs were reset)."""
        self.returns[:] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {**self.rms.state_dict(), "returns": self.returns.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state)
        self.returns = _array(state["returns"])
