"""Atari 2600 games with the standard DQN preprocessing (Mnih et al. 2015; SB3's AtariWrapper; CleanRL).

Returns are raw game scores of full games: `info["episode"] = {"r", "l", "frames"}` is recorded below
reward clipping and life-loss termination, and appears only on the step where the whole game ends
(game over, or the `max_episode_steps` truncation). With `terminal_on_life_loss` a lost life ends the
agent's episode (`terminated=True`) but not the game: that step carries no `info["episode"]`, and the
next `reset()` plays on from where the game was instead of starting a new one.

Wrappers, bottom to top:
    AtariEnv               ALE, frameskip=1, sticky actions off by default (repeat_action_probability=0)
    AtariPreprocessing     up to `noop_max` random no-ops on reset; repeat each action `frame_skip` frames,
                           max-pool the last two (sprites flicker); 84x84 grayscale (gymnasium's wrapper)
    TimeLimit              `max_episode_steps` agent steps, a truncation (27,000 steps = 108,000 frames)
    RecordGameScore        raw score and length of the full game -> info["episode"]
    EpisodicLife           training + terminal_on_life_loss only: a lost life ends the episode
    FireReset              games with a FIRE action (auto, as SB3): press FIRE after each reset
    TransformReward(sign)  training + clip_rewards only: reward -> sign(reward) (Mnih et al. 2015)
    FrameStackObservation  the last `frame_stack` frames, padded by repeating the reset frame:
                           obs (4, 84, 84) uint8; consecutive observations share 3 frames

An eval env (`training=False`) never clips rewards and never ends an episode on a lost life.
"""

from __future__ import annotations

from typing import Any

import ale_py
import gymnasium as gym
import numpy as np

gym.register_envs(ale_py)


def make_atari(
    env_id: str,
    training: bool = True,
    *,
    noop_max: int = 30,
    frame_skip: int = 4,
    screen_size: int = 84,
    grayscale: bool = True,
    terminal_on_life_loss: bool = False,
    clip_rewards: bool = True,
    frame_stack: int = 4,
    fire_reset: bool | None = None,
    repeat_action_probability: float = 0.0,
    max_episode_steps: int | None = 27_000,
    render_mode: str | None = None,
) -> gym.Env:
    """An ALE game with the DQN preprocessing; `training=False` gives the eval env (raw rewards, whole games).

    `fire_reset=None` presses FIRE after reset exactly when the game has a FIRE action.
    `max_episode_steps=None` leaves only ALE's own cap of 108,000 frames.
    `grayscale=False` stacks RGB frames channel-first: obs (3 * frame_stack, H, W).
    """
    if frame_stack < 1:
        raise ValueError(f"frame_stack={frame_stack}: stack at least 1 frame")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps={max_episode_steps}: give a positive number of agent steps, or null")
    # Our TimeLimit counts agent steps; ALE's own frame cap would cut a few steps earlier (no-op and FIRE
    # frames count there), so it is lifted (0 = none) while ours is on.
    frame_cap = 0 if max_episode_steps is not None else 108_000
    # AtariPreprocessing reads ALE's screen itself; a grayscale per-frame observation is just cheaper to
    # copy (~15% more steps/s on Pong) and render() still gives RGB frames.
    env = gym.make(env_id, frameskip=1, repeat_action_probability=repeat_action_probability,
                   full_action_space=False, max_num_frames_per_episode=frame_cap, render_mode=render_mode,
                   obs_type="grayscale" if grayscale else "rgb")
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size,
                                          terminal_on_life_loss=False, grayscale_obs=grayscale)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    env = RecordGameScore(env)
    if training and terminal_on_life_loss:
        env = EpisodicLife(env)
    meanings = env.unwrapped.get_action_meanings()
    if fire_reset is None:
        fire_reset = "FIRE" in meanings
    if fire_reset:
        if "FIRE" not in meanings or len(meanings) < 3:
            raise ValueError(f"fire_reset=true: {env_id} has no FIRE action (its actions: {', '.join(meanings)})")
        env = FireReset(env)
    if training and clip_rewards:
        env = gym.wrappers.TransformReward(env, _sign)
    env = gym.wrappers.FrameStackObservation(env, frame_stack)
    if not grayscale:
        env = StackChannels(env)
    return env


def _sign(r: float) -> float:
    return float(np.sign(r))


def fire_reset_wrapped(env: gym.Env) -> bool:
    """Whether `env` presses FIRE on reset (a FireReset wrapper is in its chain)."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, FireReset):
            return True
        env = env.env
    return False


class RecordGameScore(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Sums the raw reward and counts the agent steps of the whole game; reports them when the game ends.

    It sits below life-loss termination and reward clipping, so `info["episode"]["r"]` is the score of a
    full game as the game counts it. `l` counts every agent step the game took, those taken by the reset
    wrappers above (FIRE, the no-op that follows a lost life) included; `frames` is ALE's frame count of
    the game, the no-op reset frames included.
    """

    reports_raw_episodes = True  # rlkit.vec must not add RecordEpisodeStatistics (it would see clipped rewards)

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.ret, self.steps = 0.0, 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.ret, self.steps = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.ret += float(reward)
        self.steps += 1
        if terminated or truncated:
            frames = int(self.env.unwrapped.ale.getEpisodeFrameNumber())
            info = {**info, "episode": {"r": self.ret, "l": self.steps, "frames": frames}}
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A lost life ends the episode but not the game: reset then takes a no-op step instead of restarting.

    Mnih et al. 2015 (Methods, "Training details"); the game itself only restarts on a real game over,
    a truncation, or an explicit `reset(seed=...)`.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None or options is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the no-op ended the game: start a new one
                obs, info = self.env.reset()
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Presses FIRE (then action 2) after reset, for games that wait for it (OpenAI baselines, SB3)."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        for action in (self.fire, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class StackChannels(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """(stack, H, W, 3) RGB stacks -> (stack * 3, H, W), channel-first like the grayscale stack."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        n, h, w, c = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (n * c, h, w), np.uint8)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        n, h, w, c = obs.shape
        return np.ascontiguousarray(obs.transpose(0, 3, 1, 2)).reshape(n * c, h, w)
