"""Replay memory: uniform sampling, n-step returns, the sum tree, prioritized replay, Atari frame
de-duplication and checkpoint round trips, against hand-computed values and fake envs."""

from __future__ import annotations

import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.checkpoint import to_tensors
from rlkit.replay import Batch, PrioritizedReplayBuffer, ReplayBuffer, SumTree
from rlkit.vec import real_next_obs

# -- fake envs --------------------------------------------------------------------------------------


class CounterEnvs:
    """n envs whose obs is (env, episode, t) as float32; reward encodes the same triple; episodes last
    `lengths[env]` steps (None: forever) and end by termination on even episodes, truncation on odd ones."""

    def __init__(self, n_envs: int, lengths: list[int | None]):
        self.n, self.lengths = n_envs, lengths
        self.episode = np.zeros(n_envs, int)
        self.t = np.zeros(n_envs, int)

    def obs(self) -> np.ndarray:
        return np.stack([np.arange(self.n), self.episode, self.t], 1).astype(np.float32)

    def step(self) -> tuple[np.ndarray, ...]:
        obs = self.obs()
        actions = (10 * np.arange(self.n) + self.t) % 7
        rewards = reward_of(obs)
        self.t += 1
        next_obs = self.obs()
        ended = np.array([n is not None and t == n for t, n in zip(self.t, self.lengths)])
        terminated, truncated = ended & (self.episode % 2 == 0), ended & (self.episode % 2 == 1)
        self.episode[ended] += 1
        self.t[ended] = 0
        return obs, actions, rewards, next_obs, terminated, truncated


def reward_of(obs: np.ndarray) -> np.ndarray:
    return (1000 * obs[:, 0] + 100 * obs[:, 1] + obs[:, 2]).astype(np.float32)


def fill(buf: ReplayBuffer, env: CounterEnvs, steps: int) -> None:
    for _ in range(steps):
        buf.add(*env.step())


class FrameStackEnvs:
    """n envs of random uint8 frames stacked k deep (oldest first), the stack padded with the reset frame at an
    episode start like FrameStackObservation(padding_type="reset"); episodes of random length end by
    termination or truncation. Pixel row 0 of every frame encodes (frame id, env), so a test can tell which
    frames a stack holds. Keeps the reference n-step transitions of every env in the order they complete."""

    def __init__(self, n_envs: int, k: int, n_step: int, gamma: float, seed: int, size: int = 84, max_len: int = 30):
        self.n, self.k, self.n_step, self.gamma, self.size, self.max_len = n_envs, k, n_step, gamma, size, max_len
        self.rng = np.random.default_rng(seed)
        self.frames: dict[tuple[int, int], np.ndarray] = {}
        self.next_id = [0] * n_envs
        self.stack: list[list[int]] = [[] for _ in range(n_envs)]
        self.left = [0] * n_envs
        self.ends_terminal = [False] * n_envs
        self.episode: list[list[tuple]] = [[] for _ in range(n_envs)]  # steps of the running episode
        self.done_transitions: list[list[dict]] = [[] for _ in range(n_envs)]  # completed, in completion order
        for e in range(n_envs):
            self._reset(e)

    def _new_frame(self, e: int) -> int:
        fid = self.next_id[e]
        self.next_id[e] += 1
        f = self.rng.integers(0, 256, (self.size, self.size), np.uint8)
        f[0, :4] = np.frombuffer(np.uint32(fid).tobytes(), np.uint8)
        f[0, 4] = e
        self.frames[(e, fid)] = f
        return fid

    def _reset(self, e: int) -> None:
        self.stack[e] = [self._new_frame(e)] * self.k
        self.left[e] = int(self.rng.integers(1, self.max_len + 1))
        self.ends_terminal[e] = bool(self.rng.random() < 0.5)

    def build(self, e: int, ids: list[int]) -> np.ndarray:
        return np.stack([self.frames[(e, i)] for i in ids])

    def obs(self) -> np.ndarray:
        return np.stack([self.build(e, self.stack[e]) for e in range(self.n)])

    def step(self) -> tuple[np.ndarray, ...]:
        obs = self.obs()
        actions = self.rng.integers(0, 6, self.n)
        rewards = self.rng.normal(size=self.n).astype(np.float32)
        terminated, truncated = np.zeros(self.n, bool), np.zeros(self.n, bool)
        next_obs = []
        for e in range(self.n):
            ids = list(self.stack[e])
            self.stack[e] = ids[1:] + [self._new_frame(e)]
            self.left[e] -= 1
            next_obs.append(self.build(e, self.stack[e]))
            ended = self.left[e] == 0
            terminated[e], truncated[e] = ended and self.ends_terminal[e], ended and not self.ends_terminal[e]
            self.episode[e].append((ids, int(actions[e]), float(rewards[e]), list(self.stack[e]), terminated[e]))
            self._complete(e, ended)
            if ended:
                self._reset(e)
        return obs, actions, rewards, np.stack(next_obs), terminated, truncated

    def _complete(self, e: int, ended: bool) -> None:
        """Record the n-step transitions that this step completed (the reference the buffer must match)."""
        steps, n = self.episode[e], self.n_step
        starts = range(max(0, len(steps) - n), len(steps) if ended else len(steps) - n + 1)
        for t in starts:
            m = min(n, len(steps) - t)
            last = steps[t + m - 1]
            ret = sum(self.gamma**i * steps[t + i][2] for i in range(m))
            self.done_transitions[e].append({"obs": steps[t][0], "action": steps[t][1], "reward": ret,
                                             "next_obs": last[3], "done": float(ended and last[4]),
                                             "discount": self.gamma**m})
        if ended:
            self.episode[e] = []


def frame_key(stack: np.ndarray) -> tuple[int, int]:
    """(env, frame id) of a stack's newest frame."""
    newest = stack[-1]
    return int(newest[0, 4]), int(np.frombuffer(newest[0, :4].tobytes(), np.uint32)[0])


def roundtrip(state: dict) -> dict:
    """Through the checkpoint format: numpy -> tensors -> torch.save -> torch.load(weights_only=True)."""
    buf = io.BytesIO()
    torch.save(to_tensors(state), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# -- uniform replay ---------------------------------------------------------------------------------


def test_shapes_and_dtypes_with_three_envs():
    buf = ReplayBuffer(300, (3,), np.float32, n_envs=3, seed=1)
    fill(buf, CounterEnvs(3, [7, 5, None]), 20)
    assert len(buf) == 60
    b = buf.sample(32)
    assert isinstance(b, Batch)
    assert b.obs.shape == b.next_obs.shape == (32, 3) and b.obs.dtype == b.next_obs.dtype == np.float32
    assert b.actions.shape == (32,) and b.actions.dtype == np.int64
    for x in (b.rewards, b.dones, b.discounts, b.weights):
        assert x.shape == (32,) and x.dtype == np.float32
    assert b.indices.shape == (32,) and b.indices.dtype == np.int64
    np.testing.assert_array_equal(b.weights, 1.0)
    np.testing.assert_allclose(b.discounts, 0.99)


def test_box_actions_keep_their_shape_and_dtype():
    buf = ReplayBuffer(10, (2,), np.float32, action_shape=(2,), action_dtype=np.float32)
    buf.add(np.zeros((1, 2)), np.array([[0.5, -1.5]]), [1.0], np.ones((1, 2)), [False], [False])
    b = buf.sample(4)
    assert b.actions.shape == (4, 2) and b.actions.dtype == np.float32
    np.testing.assert_array_equal(b.actions, [[0.5, -1.5]] * 4)


def test_sampled_transitions_are_real_ones():
    buf = ReplayBuffer(600, (3,), np.float32, n_envs=3, seed=2)
    fill(buf, CounterEnvs(3, [7, 5, 11]), 150)
    b = buf.sample(2000)
    env, episode, t = b.obs.T
    np.testing.assert_array_equal(b.rewards, reward_of(b.obs))
    np.testing.assert_array_equal(b.actions, (10 * env + t) % 7)
    np.testing.assert_array_equal(b.next_obs[:, :2], b.obs[:, :2])  # the same env and episode...
    np.testing.assert_array_equal(b.next_obs[:, 2], t + 1)  # ... one step later (the final obs at an end)
    last = t + 1 == np.array([7, 5, 11])[env.astype(int)]
    np.testing.assert_array_equal(b.dones, last & (episode % 2 == 0))  # even episodes terminate, odd truncate


def test_wraparound_keeps_the_newest_capacity_transitions():
    buf = ReplayBuffer(30, (3,), np.float32, n_envs=3, seed=3)  # 10 per env
    fill(buf, CounterEnvs(3, [None] * 3), 25)
    assert len(buf) == 30
    b = buf.sample(3000)
    seen = {(int(e), int(t)) for e, _, t in b.obs}
    assert seen == {(e, t) for e in range(3) for t in range(15, 25)}


def test_capacity_is_split_evenly_between_envs():
    buf = ReplayBuffer(31, (3,), np.float32, n_envs=3)
    assert buf.env_capacity == 10
    fill(buf, CounterEnvs(3, [None] * 3), 40)
    assert len(buf) == 30


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(10, (3,), np.float32).sample(1)


# -- n-step returns ---------------------------------------------------------------------------------


def test_n_step_returns_cut_at_termination_and_bootstrap_through_truncation():
    # env 0: episode a (rewards 1,2,3,4) terminates after 4 steps, then episode b starts
    # env 1: episode c (rewards 10,20) is truncated after 2 steps, then episode d runs on
    code = {"a": 100, "b": 200, "c": 300, "d": 400}
    env0 = [("a0", "a1", 1, 0, 0), ("a1", "a2", 2, 0, 0), ("a2", "a3", 3, 0, 0), ("a3", "a4", 4, 1, 0),
            ("b0", "b1", 5, 0, 0), ("b1", "b2", 6, 0, 0)]
    env1 = [("c0", "c1", 10, 0, 0), ("c1", "c2", 20, 0, 1), ("d0", "d1", 30, 0, 0), ("d1", "d2", 40, 0, 0),
            ("d2", "d3", 50, 0, 0), ("d3", "d4", 60, 0, 0)]

    def o(name: str) -> list[float]:
        return [code[name[0]] + int(name[1:])]

    buf = ReplayBuffer(100, (1,), np.float32, n_envs=2, n_step=3, gamma=0.5, seed=4)
    for s0, s1 in zip(env0, env1):
        steps = (s0, s1)
        buf.add([o(s[0]) for s in steps], [int(o(s[0])[0]) for s in steps], [s[2] for s in steps],
                [o(s[1]) for s in steps], [bool(s[3]) for s in steps], [bool(s[4]) for s in steps])

    # obs: (reward sum, next obs, done, discount); b0, b1, d2 and d3 still wait for more rewards
    expected = {
        "a0": (1 + 0.5 * 2 + 0.25 * 3, "a3", 0, 0.125),
        "a1": (2 + 0.5 * 3 + 0.25 * 4, "a4", 1, 0.125),  # the termination is the 3rd step: no bootstrap
        "a2": (3 + 0.5 * 4, "a4", 1, 0.25),
        "a3": (4, "a4", 1, 0.5),
        "c0": (10 + 0.5 * 20, "c2", 0, 0.25),  # truncated: bootstrap from the final obs c2
        "c1": (20, "c2", 0, 0.5),
        "d0": (30 + 0.5 * 40 + 0.25 * 50, "d3", 0, 0.125),
        "d1": (40 + 0.5 * 50 + 0.25 * 60, "d4", 0, 0.125),
    }
    assert len(buf) == len(expected)
    b = buf.sample(2000)
    got = {}
    for i in range(len(b.indices)):
        got[int(b.obs[i, 0])] = (float(b.rewards[i]), int(b.next_obs[i, 0]), float(b.dones[i]),
                                 float(b.discounts[i]), int(b.actions[i]))
    want = {o(k)[0]: (r, o(nxt)[0], d, disc, o(k)[0]) for k, (r, nxt, d, disc) in expected.items()}
    assert got == want


def test_a_broken_obs_sequence_cuts_the_episode_as_a_truncation():
    """After a resume the envs restart mid-episode: pending steps complete as truncated (bootstrap)."""
    buf = ReplayBuffer(100, (1,), np.float32, n_step=3, gamma=0.5)
    buf.add([[0.0]], [0], [1.0], [[1.0]], [False], [False])
    buf.add([[1.0]], [0], [2.0], [[2.0]], [False], [False])
    assert len(buf) == 0
    buf.add([[50.0]], [0], [7.0], [[51.0]], [False], [False])  # not the previous next obs (2.0)
    b = buf.sample(500)
    got = {(float(o[0]), float(r), float(n[0]), float(d), float(g))
           for o, r, n, d, g in zip(b.obs, b.rewards, b.next_obs, b.dones, b.discounts)}
    assert got == {(0.0, 1 + 0.5 * 2, 2.0, 0.0, 0.25), (1.0, 2.0, 2.0, 0.0, 0.5)}


# -- sum tree ---------------------------------------------------------------------------------------


def test_sum_tree_totals_find_and_min():
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 2.0, 0.0, 3.0, 4.0]))
    assert tree.total == 10.0 and tree.min == 1.0
    prefix = np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99, 10.0])
    np.testing.assert_array_equal(tree.find(prefix), [0, 0, 1, 1, 3, 3, 4, 4, 4])
    tree.update(np.array([0, 4]), np.array([0.0, 0.5]))
    assert tree.total == 5.5 and tree.min == 0.5
    np.testing.assert_array_equal(tree[np.arange(5)], [0, 2, 0, 3, 0.5])
    np.testing.assert_array_equal(tree.find(np.array([0.0, 1.99, 2.0, 4.99, 5.0, 5.49])), [1, 1, 3, 3, 4, 4])
    with pytest.raises(ValueError):
        tree.update(np.array([1]), np.array([-1.0]))


def chi2_pvalue(observed: np.ndarray, expected: np.ndarray) -> float:
    """scipy.stats.chisquare's p-value; without scipy, the Wilson-Hilferty approximation of the chi2 tail."""
    try:
        from scipy.stats import chisquare
    except ImportError:
        stat = float(((observed - expected) ** 2 / expected).sum())
        dof = len(observed) - 1
        z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
        return 0.5 * math.erfc(z / math.sqrt(2))
    return float(chisquare(observed, expected).pvalue)


def test_sum_tree_draws_in_proportion_to_priority():
    rng = np.random.default_rng(5)
    p = np.array([1.0, 0.0, 2.0, 5.0, 0.0, 0.5, 3.0, 8.0, 0.25, 4.0, 0.0])
    tree = SumTree(len(p))
    tree.update(np.arange(len(p)), p)
    idx = tree.find(rng.random(200_000) * tree.total)
    counts = np.bincount(idx, minlength=len(p))
    assert counts[p == 0].sum() == 0
    pos = p > 0
    assert chi2_pvalue(counts[pos], p[pos] / p.sum() * len(idx)) > 0.001


# -- prioritized replay -----------------------------------------------------------------------------


def test_prioritized_sampling_frequencies_and_weights():
    buf = PrioritizedReplayBuffer(16, (3,), np.float32, alpha=0.6, beta=0.4, seed=6)
    fill(buf, CounterEnvs(1, [None]), 6)
    b = buf.sample(8)
    np.testing.assert_allclose(b.weights, 1.0)  # all new transitions share the max priority 1
    td = np.array([0.5, 1.0, 2.0, 3.0, 0.0, 0.1])
    buf.update_priorities(np.arange(6), td)
    p = (np.abs(td) + 1e-6) ** 0.6
    np.testing.assert_allclose(buf.tree[np.arange(6)], p)
    assert buf.max_priority == pytest.approx(p.max())

    buf.add(*_continue(buf))  # a 7th transition: max priority
    assert buf.tree[np.array([6])][0] == pytest.approx(p.max())
    p_all = np.r_[p, p.max()]
    draws = np.concatenate([buf.sample(64).indices for _ in range(2000)])
    counts = np.bincount(draws, minlength=16)
    assert counts[7:].sum() == 0
    assert chi2_pvalue(counts[:7], p_all / p_all.sum() * len(draws)) > 0.001

    buf.beta = 0.7
    b = buf.sample(64)
    n = len(buf)
    w = (n * p_all / p_all.sum()) ** -0.7
    np.testing.assert_allclose(b.weights, w[b.indices] / w.max(), rtol=1e-6)
    assert b.weights.max() <= 1.0
    assert len(buf) == 7


def test_prioritized_sampling_is_stratified():
    """One draw per equal segment of [0, total): with 8 equal priorities a batch of 8 takes each once."""
    buf = PrioritizedReplayBuffer(8, (3,), np.float32, seed=12)
    fill(buf, CounterEnvs(1, [None]), 8)
    for _ in range(20):
        np.testing.assert_array_equal(buf.sample(8).indices, np.arange(8))


def _continue(buf: ReplayBuffer) -> tuple:
    """One more step continuing the env behind `buf` (obs = its last next_obs)."""
    obs = buf.last_obs.copy()
    nxt = obs.copy()
    nxt[:, 2] += 1
    return obs, [1], reward_of(obs), nxt, [False], [False]


def test_priorities_of_overwritten_slots_are_new_and_zero_td_stays_positive():
    buf = PrioritizedReplayBuffer(4, (3,), np.float32, alpha=1.0, eps=0.01)
    fill(buf, CounterEnvs(1, [None]), 4)
    buf.update_priorities(np.arange(4), np.array([0.0, 9.0, 1.0, 1.0]))
    assert buf.tree[np.array([0])][0] == pytest.approx(0.01)
    buf.add(*_continue(buf))  # overwrites slot 0 with a fresh transition at the max priority
    assert buf.tree[np.array([0])][0] == pytest.approx(9.01)
    assert buf.tree.total == pytest.approx(9.01 + 9.01 + 1.01 + 1.01)


# -- frame de-duplication ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_step", [1, 3])
def test_frame_stacks_are_rebuilt_exactly(n_step):
    gamma, k = 0.9, 4
    env = FrameStackEnvs(2, k, n_step, gamma, seed=7 + n_step)
    buf = PrioritizedReplayBuffer(400, (k, 84, 84), np.uint8, n_envs=2, n_step=n_step, gamma=gamma,
                                  frame_stack=k, seed=8)
    uniform = ReplayBuffer(400, (k, 84, 84), np.uint8, n_envs=2, n_step=n_step, gamma=gamma, frame_stack=k, seed=8)
    checked = 0
    for step in range(700):
        batch = env.step()
        buf.add(*batch)
        uniform.add(*batch)
        if step % 100 == 99:
            sampleable = {e: env.done_transitions[e][-buf.env_capacity:] for e in range(2)}
            allowed = {(e, tr["obs"][-1]): tr for e in range(2) for tr in sampleable[e]}
            assert len(buf) == len(uniform) <= buf.capacity
            assert step < 300 or len(buf) > 0.8 * buf.capacity
            for b in (buf.sample(64), uniform.sample(64)):
                for i in range(64):
                    e, fid = frame_key(b.obs[i])
                    tr = allowed[(e, fid)]  # a KeyError here: an overwritten or unknown transition was sampled
                    np.testing.assert_array_equal(b.obs[i], env.build(e, tr["obs"]))
                    np.testing.assert_array_equal(b.next_obs[i], env.build(e, tr["next_obs"]))
                    assert b.actions[i] == tr["action"] and b.dones[i] == tr["done"]
                    assert b.rewards[i] == pytest.approx(tr["reward"], rel=1e-5, abs=1e-5)
                    assert b.discounts[i] == pytest.approx(tr["discount"])
                    checked += 1
    assert checked == 14 * 64
    assert any(tr["obs"][0] == tr["obs"][-1] for trs in env.done_transitions for tr in trs)  # padded stacks seen


class TinyFrames(gym.Env):
    """8x8 uint8 frames with (env, episode, t) in the first pixels; episodes end at random: terminated, or
    truncated by a TimeLimit."""

    observation_space = gym.spaces.Box(0, 255, (8, 8), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, index: int):
        self.index, self.episode, self.t = index, -1, 0

    def _frame(self) -> np.ndarray:
        f = self.np_random.integers(0, 256, (8, 8), np.uint8)
        f[0, :3] = self.index, self.episode % 256, self.t
        return f

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        return self._frame(), float(action) + self.t, bool(self.np_random.random() < 0.08), False, {}


def test_gymnasium_frame_stack_in_a_vector_env_is_rebuilt_exactly():
    """The real wrappers: FrameStackObservation (padding with the reset frame) in a SAME_STEP SyncVectorEnv,
    final observations taken from infos as the agents do."""
    n_envs, k = 3, 4

    def make(i: int):
        return lambda: gym.wrappers.FrameStackObservation(gym.wrappers.TimeLimit(TinyFrames(i), 12), k)

    envs = gym.vector.SyncVectorEnv([make(i) for i in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    buf = ReplayBuffer(300, (k, 8, 8), np.uint8, n_envs=n_envs, frame_stack=k, seed=13)
    seen = {}
    obs, _ = envs.reset(seed=14)
    for _ in range(150):
        actions = envs.action_space.sample()
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        real_next = real_next_obs(next_obs, infos)
        buf.add(obs, actions, rewards, real_next, terminated, truncated)
        for i in range(n_envs):
            seen[obs[i].tobytes()] = (real_next[i], rewards[i], float(terminated[i]), actions[i])
        obs = next_obs
    assert 250 < len(buf) <= 300  # episodes of ~10 steps: the frame ring's slack runs out a little
    b = buf.sample(256)
    for i in range(256):
        nxt, r, done, a = seen[b.obs[i].tobytes()]
        np.testing.assert_array_equal(b.next_obs[i], nxt)
        assert (b.rewards[i], b.dones[i], b.actions[i]) == (r, done, a)


def test_frames_are_stored_once():
    for cls in (ReplayBuffer, PrioritizedReplayBuffer):
        buf = cls(10_000, (4, 84, 84), np.uint8, n_envs=2, n_step=3, frame_stack=4)
        assert buf.nbytes / buf.capacity < 1.1 * 84 * 84
    plain = ReplayBuffer(10_000, (4, 84, 84), np.uint8, n_envs=2)
    assert plain.nbytes / plain.capacity > 4 * 84 * 84  # without de-duplication each stack is stored whole


def test_frame_stack_checks_its_input():
    buf = ReplayBuffer(10, (2, 3, 3), np.uint8, frame_stack=2)
    rgb = np.arange(18, dtype=np.uint8).reshape(1, 2, 3, 3)  # channels, not a padded frame stack
    with pytest.raises(ValueError, match="reset frame"):
        buf.add(rgb, [0], [0.0], rgb, [False], [False])
    f0, f1, f2 = (np.full((1, 1, 3, 3), v, np.uint8) for v in (1, 2, 3))
    buf.add(np.concatenate([f0, f0], 1), [0], [0.0], np.concatenate([f0, f1], 1), [False], [False])
    before = {name: a.copy() for name, a in buf.state_dict()["arrays"].items()}
    with pytest.raises(ValueError, match="share 1 frames"):
        buf.add(np.concatenate([f0, f1], 1), [0], [0.0], np.concatenate([f2, f2], 1), [False], [False])
    for name, a in buf.state_dict()["arrays"].items():  # a refused add changes nothing
        np.testing.assert_array_equal(a, before[name], err_msg=name)
    with pytest.raises(ValueError, match="frame_stack=3 needs"):
        ReplayBuffer(10, (4, 3, 3), np.uint8, frame_stack=3)


# -- state ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_state_dict_round_trip_continues_exactly(cls):
    def make() -> ReplayBuffer:
        return cls(60, (4, 8, 8), np.uint8, n_envs=2, n_step=3, gamma=0.9, frame_stack=4, seed=9)

    env = FrameStackEnvs(2, 4, 3, 0.9, seed=10, size=8, max_len=12)
    steps = [env.step() for _ in range(120)]
    a = make()
    for s in steps[:100]:
        a.add(*s)
    if cls is PrioritizedReplayBuffer:
        b = a.sample(16)
        a.update_priorities(b.indices, np.linspace(0, 3, 16))
    state = roundtrip(a.state_dict())
    b = make()
    b.load_state_dict(state)
    assert len(a) == len(b) and a.nbytes == b.nbytes
    for s in steps[100:]:
        for buf in (a, b):
            buf.add(*s)
        x, y = a.sample(32), b.sample(32)
        for name in Batch._fields:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
        if cls is PrioritizedReplayBuffer:
            td = np.abs(x.rewards) + 0.1
            a.update_priorities(x.indices, td)
            b.update_priorities(y.indices, td)


def test_early_state_is_small_and_config_is_checked():
    buf = ReplayBuffer(100_000, (4, 84, 84), np.uint8, frame_stack=4)
    env = FrameStackEnvs(1, 4, 1, 0.99, seed=11)
    for _ in range(5):
        buf.add(*env.step())
    state = buf.state_dict()
    assert sum(np.asarray(v).nbytes for v in state["arrays"].values()) < 200_000
    fresh = ReplayBuffer(100_000, (4, 84, 84), np.uint8, frame_stack=4)
    fresh.load_state_dict(roundtrip(state))
    np.testing.assert_array_equal(fresh.sample(8).obs, buf.sample(8).obs)
    with pytest.raises(ValueError, match="does not fit"):
        ReplayBuffer(1000, (4, 84, 84), np.uint8, frame_stack=4).load_state_dict(state)
