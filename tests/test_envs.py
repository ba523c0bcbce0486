"""Env registry (aliases, gymnasium ids, custom envs) and the rooms env."""

import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.rooms import DOORS, R, RoomsEnv
from rlkit.errors import UserError


def test_rooms_passes_gymnasium_env_checker():
    for goal in ("bootstrap", "terminal"):
        check_env(gym.make("rlkit/Rooms-v0", goal=goal, render_mode="ansi").unwrapped, skip_render_check=False)


def test_rooms_dynamics_and_goal_semantics():
    env = RoomsEnv(goal="bootstrap")
    starts = {env.reset(seed=s)[0] for s in range(60)}
    assert starts == set(range(6))  # uniformly random start, the goal included
    env.s = 1
    s, r, term, trunc, info = env.step(5)
    assert (s, r, term, trunc) == (5, 100.0, False, True)  # arrival at 5 is a truncation: bootstrap through it
    assert list(info["action_mask"]) == [0, 1, 0, 0, 1, 1]
    env = RoomsEnv(goal="terminal")
    env.reset(seed=0)
    env.s = 4
    assert env.step(5)[1:4] == (100.0, True, False)
    env.s = 0
    assert env.step(1)[:4] == (0, -1.0, False, False)  # no door: stay put, reward -1
    assert (R >= 0).sum() == DOORS.sum() == 13
    text = RoomsEnv(render_mode="ansi")
    text.reset(seed=1)
    assert "doors from" in text.render()


def test_aliases_and_gym_ids_resolve():
    for alias, (gym_id, _) in envs.ALIASES.items():
        ref = envs.resolve(alias)
        assert ref.gym_id == gym_id
        assert gym_id in gym.registry
    assert envs.resolve("Acrobot-v1").gym_id == "Acrobot-v1"
    env = gym.make("envs:rlkit/Rooms-v0")  # plain gymnasium users reach our envs through the module prefix
    assert env.observation_space == gym.spaces.Discrete(6)


@pytest.mark.parametrize("name, fragment", [
    ("roms", "did you mean 'rooms'"), ("Taxi-v3", "deprecated"), ("nosuchmodule:Env", "does not import"),
    ("missing/file.py:Env", "no file"), ("gymnasium:NotAThing", "has no 'NotAThing'"),
])
def test_bad_env_names(name, fragment):
    with pytest.raises(UserError, match=fragment):
        envs.resolve(name)


CUSTOM = textwrap.dedent('''
    import gymnasium as gym
    import numpy as np

    class Corridor(gym.Env):
        """A corridor of n cells: walk right to the end."""
        def __init__(self, n=5, render_mode=None):
            self.n = n
            self.observation_space = gym.spaces.Discrete(n)
            self.action_space = gym.spaces.Discrete(2)
        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.s = 0
            return 0, {}
        def step(self, a):
            self.s = max(0, min(self.n - 1, self.s + (1 if a == 1 else -1)))
            done = self.s == self.n - 1
            return self.s, float(done), done, False, {}

    def make_corridor(n=4):
        return gym.wrappers.TimeLimit(Corridor(n), 50)
''')


def test_custom_env_by_file_and_by_module(tmp_path, monkeypatch):
    (tmp_path / "corridor_mod.py").write_text(CUSTOM)
    ref = envs.resolve(f"{tmp_path}/corridor_mod.py:Corridor", {"n": 7})
    env = envs.make(ref)
    assert env.observation_space.n == 7
    assert ref.slug == "Corridor"
    monkeypatch.chdir(tmp_path)
    ref = envs.resolve("corridor_mod:make_corridor")
    assert envs.make(ref).observation_space.n == 4
    with pytest.raises(UserError, match="rejected its arguments"):
        envs.make(envs.resolve("corridor_mod:Corridor", {"width": 3}))
    (tmp_path / "broken_mod.py").write_text("import nonexistent_thing\n")
    with pytest.raises(UserError, match="does not import: ModuleNotFoundError"):
        envs.resolve("broken_mod.py:X")
    with pytest.raises(UserError, match="does not import"):
        envs.resolve("broken_mod:X")


def test_custom_env_trains_from_the_cli(cli, tmp_path):
    (tmp_path / "corridor_mod.py").write_text(CUSTOM)
    rc, run, out = cli.train("agent=q_learning", "env=corridor_mod.py:Corridor", "env.n=6", "total_steps=3000",
                             "epsilon=0.3")
    assert rc == 0, out
    assert run.name.startswith("q_learning-Corridor-")
    rc, out, err = cli("eval", str(run), "episodes=3")
    assert rc == 0, err
    assert "return (raw): 1.000" in out


def test_cartpole_array_env_steps_exactly_like_gymnasium_copies():
    """envs.make_vector('cartpole') (numpy arrays) == make_vec over gym.make copies: obs, rewards, flags, final
    observations and episode statistics, step for step through thousands of steps and many episode ends."""
    from envs.cartpole_vec import CartPoleVec
    from rlkit.vec import finished_episodes, make_vec, real_next_obs

    n = 4
    fast = envs.make_vector(envs.resolve("cartpole", {}), n)
    assert isinstance(fast, CartPoleVec)
    ref = make_vec(lambda: gym.make("CartPole-v1"), n)
    assert fast.single_observation_space == ref.single_observation_space
    a, b = fast.reset(seed=3)[0], ref.reset(seed=3)[0]
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    ends = truncations = 0
    for t in range(3000):
        # mostly a balancing policy so that some episodes reach the 500-step time limit
        act = (a[:, 2] + 0.5 * a[:, 3] > 0).astype(np.int64) if t % 3 else rng.integers(0, 2, n)
        out_a, out_b = fast.step(act), ref.step(act)
        for x, y in zip(out_a[:4], out_b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(real_next_obs(out_a[0], out_a[4]), real_next_obs(out_b[0], out_b[4]))
        assert finished_episodes(out_a[4]) == finished_episodes(out_b[4])
        ends += len(finished_episodes(out_a[4]))
        truncations += int(out_a[3].sum())
        a = out_a[0]
    assert ends > 20 and truncations > 0
    with pytest.raises(ValueError, match="CartPole actions"):
        fast.step(np.array([0, 1, 2, 0]))
    # env kwargs, fewer than 4 copies or worker processes: the gymnasium copies
    assert not isinstance(envs.make_vector(envs.resolve("cartpole", {"max_episode_steps": 100}), 4), CartPoleVec)
    assert not isinstance(envs.make_vector(envs.resolve("cartpole", {}), 1), CartPoleVec)


@pytest.mark.parametrize("actions", [[0, 1, 2, 0], [0, 1, -1, 0], [0, 0.5, 1, 0], [0, 1, 0], [[0, 1], [1, 0]]])
def test_cartpole_array_env_rejects_actions_outside_0_and_1(actions):
    """CartPoleVec takes exactly num_envs actions in {0, 1}; anything else is a ValueError naming the rule
    (not a silent lookup: a -1 would index the force table from its end)."""
    from envs.cartpole_vec import CartPoleVec

    env = CartPoleVec(4)
    env.reset(seed=0)
    before = env.state.copy()
    with pytest.raises(ValueError, match=r"CartPole actions must be 4 values in \{0, 1\}"):
        env.step(np.asarray(actions))
    np.testing.assert_array_equal(env.state, before)  # nothing stepped
    env.step(np.array([0, 1, 1, 0]))
