"""Atari with the DQN preprocessing (envs/atari.py): observations, clipping, full-game scores, lives, routing."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.atari import EpisodicLife, fire_reset_wrapped, make_atari
from rlkit.errors import UserError


def play(env, seed, steps=None, rng_seed=0):
    """Random actions from reset(seed) until the episode ends (or `steps`): lists of rewards, infos, ends."""
    rng = np.random.default_rng(rng_seed)
    obs, _ = env.reset(seed=seed)
    rewards, infos = [], []
    while True:
        obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        rewards.append(r)
        infos.append(info)
        if term or trunc or (steps is not None and len(rewards) == steps):
            return rewards, infos, term, trunc


def test_pong_observations_are_stacks_of_84x84_frames():
    env = make_atari("ALE/Pong-v5")
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert env.action_space == gym.spaces.Discrete(6)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all((obs[i] == obs[0]).all() for i in range(4))  # padding repeats the reset frame
    prev = obs
    for t in range(30):
        obs, *_ = env.step(t % 6)
        np.testing.assert_array_equal(obs[:3], prev[1:])  # consecutive stacks share 3 frames
        prev = obs
    assert len({obs[i].tobytes() for i in range(4)}) == 4  # the ball moves: 4 different frames
    assert 0 < obs.mean() < 255


def test_training_clips_rewards_eval_does_not_and_both_report_the_raw_score():
    # Same seed, same actions, no life-loss ends: the two envs play the same game of Space Invaders.
    train_r, train_info, *_ = play(make_atari("ALE/SpaceInvaders-v5", training=True), seed=3)
    eval_r, eval_info, *_ = play(make_atari("ALE/SpaceInvaders-v5", training=False), seed=3)
    assert len(train_r) == len(eval_r)
    assert max(abs(r) for r in eval_r) > 1  # invaders are worth 5 to 30 points
    assert set(train_r) <= {-1.0, 0.0, 1.0}
    assert train_r == [float(np.sign(r)) for r in eval_r]
    assert train_info[-1]["episode"]["r"] == eval_info[-1]["episode"]["r"] == sum(eval_r) > sum(train_r)
    assert all("episode" not in info for info in train_info[:-1] + eval_info[:-1])


def test_a_full_game_of_pong_reports_its_raw_score_and_so_does_a_truncation():
    env = make_atari("ALE/Pong-v5", training=False)
    rewards, infos, term, trunc = play(env, seed=1)
    assert term and not trunc
    assert max(rewards.count(1.0), rewards.count(-1.0)) == 21  # a game of Pong ends when one side has 21
    episode = infos[-1]["episode"]
    assert episode["r"] == sum(rewards)
    assert episode["l"] == len(rewards) + 2  # two steps of FIRE reset belong to the game too
    assert episode["frames"] >= 4 * episode["l"]  # plus the no-op frames at reset
    env = make_atari("ALE/Pong-v5", training=True, max_episode_steps=100)
    rewards, infos, term, trunc = play(env, seed=1)
    assert trunc and not term and len(rewards) == 98
    assert infos[-1]["episode"] == {"r": sum(rewards), "l": 100, "frames": infos[-1]["episode_frame_number"]}


def test_terminal_on_life_loss_ends_training_episodes_not_the_game():
    env = make_atari("ALE/Breakout-v5", training=True, terminal_on_life_loss=True)
    ale = env.unwrapped.ale
    env.reset(seed=5)
    assert ale.lives() == 5
    rng = np.random.default_rng(5)  # a seed whose random play scores (3 points)
    lives_at_end, clipped = [], 0.0
    for _ in range(5):
        while True:
            _, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            clipped += r
            if term or trunc:
                break
        assert term and not trunc
        lives_at_end.append(ale.lives())
        if ale.lives() > 0:
            assert "episode" not in info
            env.reset()  # plays on: the same game, one life less
            assert ale.lives() == lives_at_end[-1]
    assert lives_at_end == [4, 3, 2, 1, 0]
    assert info["episode"]["r"] >= clipped > 0  # bricks are worth 1, 4 or 7: the raw score is at least the clipped one
    env.reset()
    assert ale.lives() == 5  # after a game over, a new game

    eval_env = make_atari("ALE/Breakout-v5", training=False, terminal_on_life_loss=True)
    assert not any(isinstance(w, EpisodicLife) for w in _chain(eval_env))
    rewards, infos, term, _ = play(eval_env, seed=0)
    assert term and eval_env.unwrapped.ale.lives() == 0
    assert infos[-1]["episode"]["r"] == sum(rewards)


def test_fire_reset_when_the_game_has_fire():
    meanings = {g: make_atari(f"ALE/{g}-v5").unwrapped.get_action_meanings() for g in ("Pong", "Breakout", "Freeway")}
    assert meanings["Breakout"] == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    assert meanings["Pong"] == ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]  # Pong has FIRE too (as SB3)
    assert "FIRE" not in meanings["Freeway"]
    assert fire_reset_wrapped(make_atari("ALE/Breakout-v5"))
    assert fire_reset_wrapped(make_atari("ALE/Pong-v5"))
    assert not fire_reset_wrapped(make_atari("ALE/Freeway-v5"))
    assert not fire_reset_wrapped(make_atari("ALE/Breakout-v5", fire_reset=False))
    with pytest.raises(ValueError, match="no FIRE action"):
        make_atari("ALE/Freeway-v5", fire_reset=True)


def test_resolve_and_make_route_ale_ids():
    assert envs.resolve("pong").gym_id == "ALE/Pong-v5"
    assert envs.resolve("spaceinvaders").gym_id == "ALE/SpaceInvaders-v5"
    assert envs.resolve("ALE/Breakout-v5").gym_id == "ALE/Breakout-v5"
    with pytest.raises(UserError, match=r"unknown env 'ALE/Nope-v5' \(did you mean 'ALE/"):
        envs.resolve("ALE/Nope-v5")
    with pytest.raises(UserError, match="did you mean 'ALE/Pong-v5'"):
        envs.resolve("ALE/pong-v5")
    ref = envs.resolve("breakout", {"terminal_on_life_loss": True, "max_episode_steps": 50})
    train = envs.make(ref)
    kinds = {type(w).__name__ for w in _chain(train)}
    assert {"EpisodicLife", "TransformReward", "FrameStackObservation", "AtariPreprocessing"} <= kinds
    assert train.get_wrapper_attr("_max_episode_steps") == 50
    evaluation = envs.make(ref, training=False, render_mode="rgb_array")
    assert not {"EpisodicLife", "TransformReward"} & {type(w).__name__ for w in _chain(evaluation)}
    evaluation.reset(seed=0)
    assert evaluation.render().shape == (210, 160, 3)  # full-colour frames for videos
    with pytest.raises(UserError, match="rejected its arguments.*terminal_on_lifeloss"):
        envs.make(envs.resolve("pong", {"terminal_on_lifeloss": True}))
    with pytest.raises(UserError, match="no FIRE action"):
        envs.make(envs.resolve("ALE/Freeway-v5", {"fire_reset": True}))


def test_rgb_stacks_are_channel_first():
    env = make_atari("ALE/Pong-v5", grayscale=False, frame_stack=2)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (6, 84, 84)
    assert obs.dtype == np.uint8


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")  # checking the wrapped env is the point
@pytest.mark.parametrize("kwargs", [{}, {"terminal_on_life_loss": True}])
def test_passes_the_gymnasium_env_checker(kwargs):
    check_env(make_atari("ALE/Breakout-v5", max_episode_steps=200, **kwargs), skip_render_check=True)


def _chain(env):
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env
