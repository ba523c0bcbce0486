"""A one-step continuous-action task for learning tests: act a in [-3, 3], get -(a - 1.5)^2, so a good greedy
policy acts 1.5. `noisy_obs=True` (`env.noisy_obs=true`) shows uniform noise instead of a constant 0: the
observation carries no information, but a policy's features vary from step to step (gSDE's noise is features
times a matrix, so a constant 0 observation would give it almost none)."""

import gymnasium as gym
import numpy as np


class Target(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-3.0, 3.0, (1,), np.float32)

    def __init__(self, noisy_obs: bool = False):
        self.noisy_obs = noisy_obs

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, 1).astype(np.float32) if self.noisy_obs else np.zeros(1, np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        a = float(np.clip(action, -3.0, 3.0)[0])
        return self._obs(), -(a - 1.5) ** 2, True, False, {}
