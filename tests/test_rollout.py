"""Rollouts: GAE and Monte-Carlo returns against hand-computed values on a trajectory with a termination
and a truncation, advantage normalization, the collector's bootstrap from the real final observation,
normalizer statistics and their checkpoint round trip, schedules."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit import schedules
from rlkit.checkpoint import to_tensors
from rlkit.config import Schedule
from rlkit.normalize import ObsNormalizer, RewardNormalizer, RunningMeanStd
from rlkit.rollout import (
    Collector,
    RolloutBuffer,
    compute_gae,
    compute_returns,
    explained_variance,
    minibatches,
    normalize_advantage,
)

GAMMA, LAM = 0.9, 0.8


def two_env_buffer() -> RolloutBuffer:
    """Env 0: rewards 1..5, V = 0.5..2.5, terminated at t=1, truncated at t=3 with V(real final obs) = 10,
    V(s_5) = 3. Env 1: reward 1 every step, V = 0 everywhere, no episode end."""
    buf = RolloutBuffer(3, 2, (1,), np.float32, (), np.int64)  # capacity 3 < 5 steps: it must grow
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0]
    values = [0.5, 1.0, 1.5, 2.0, 2.5]
    for t in range(5):
        buf.add(np.zeros((2, 1)), np.zeros(2), np.zeros(2), np.array([values[t], 0.0]), np.array([rewards[t], 1.0]),
                np.array([t == 1, False]), np.array([t == 3, False]), np.array([10.0 if t == 3 else 0.0, 0.0]))
    buf.last_values[:] = [3.0, 0.0]
    return buf


def test_gae_by_hand_with_termination_and_truncation():
    buf = two_env_buffer()
    assert buf.capacity >= 5 and buf.pos == 5
    # next values: V(s1)=1, (terminated: ignored), V(s3)=2, V(real final obs)=10, V(s5)=3
    assert np.allclose(buf.next_values()[:, 0][[0, 2, 3, 4]], [1.0, 2.0, 10.0, 3.0])
    buf.compute_gae(GAMMA, LAM)
    # t=4: 5 + .9*3 - 2.5 = 5.2;  t=3 (truncated): 4 + .9*10 - 2 = 11;  t=2: 3 + .9*2 - 1.5 + .72*11 = 11.22
    # t=1 (terminated): 2 - 1 = 1;  t=0: 1 + .9*1 - .5 + .72*1 = 2.12
    adv0 = [2.12, 1.0, 11.22, 11.0, 5.2]
    assert np.allclose(buf.adv[:, 0], adv0)
    assert np.allclose(buf.ret[:, 0], np.array(adv0) + [0.5, 1.0, 1.5, 2.0, 2.5])
    # env 1: delta = 1 each step, A_t = 1 + .72 A_{t+1}
    assert np.allclose(buf.adv[:, 1], [2.88038656, 2.611648, 2.2384, 1.72, 1.0])
    # lam = 1 with the same values gives the Monte-Carlo return bootstrapped the same way
    buf.compute_gae(GAMMA, 1.0)
    ret_gae = buf.ret.copy()
    buf.compute_returns(GAMMA)
    assert np.allclose(ret_gae, buf.ret)


def test_monte_carlo_returns_by_hand():
    buf = two_env_buffer()
    buf.compute_returns(GAMMA)
    # t=4: 5 + .9*3 = 7.7;  t=3 (truncated): 4 + .9*10 = 13;  t=2: 3 + .9*13 = 14.7;  t=1 (terminated): 2;  t=0: 2.8
    assert np.allclose(buf.ret[:, 0], [2.8, 2.0, 14.7, 13.0, 7.7])
    assert np.allclose(buf.ret[:, 1], [4.0951, 3.439, 2.71, 1.9, 1.0])
    assert np.allclose(buf.adv, buf.ret - buf.values[:5])
    buf.compute_returns(GAMMA, bootstrap=False)  # no critic: a truncated episode (and the cut end) count 0 after
    assert np.allclose(buf.ret[:, 0], [2.8, 2.0, 3 + .9 * 4, 4.0, 5.0])
    # the pure function on one env agrees
    r = compute_returns(np.array([1.0, 2.0]), np.array([7.0, 7.0]), np.array([False, True]), np.array([False, True]),
                        0.5)
    assert np.allclose(r, [2.0, 2.0])
    adv, ret = compute_gae(np.array([1.0]), np.array([0.5]), np.array([2.0]), np.array([False]), np.array([False]),
                           0.5, 0.9)
    assert np.allclose(adv, [1.5]) and np.allclose(ret, [2.0])


def test_complete_episode_mask_episode_time_and_flat_batches():
    buf = two_env_buffer()
    mask = buf.complete_episodes_mask()
    assert mask[:, 0].tolist() == [True, True, True, True, False] and not mask[:, 1].any()
    assert buf.episode_time()[:, 0].tolist() == [0, 1, 0, 1, 0]
    assert buf.episode_time()[:, 1].tolist() == [0, 1, 2, 3, 4]
    buf.compute_returns(GAMMA)
    b = buf.get(mask=mask)
    assert torch.allclose(b.ret, torch.tensor([2.8, 2.0, 14.7, 13.0]))
    full = buf.get()
    assert full.obs.shape == (10, 1) and full.ret[1].item() == pytest.approx(4.0951)  # row = (t, env)
    rows = torch.cat([m.ret for m in minibatches(full, 4, np.random.default_rng(0))])
    assert len(rows) == 10 and torch.allclose(rows.sort().values, full.ret.sort().values)


def test_normalize_advantage_and_explained_variance():
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0])
    out = normalize_advantage(adv)
    assert out.mean().abs() < 1e-6 and out.std().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(out, (adv - 3.0) / (adv.std() + 1e-8))
    assert normalize_advantage(torch.tensor([5.0])).item() == 0.0
    assert explained_variance(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert explained_variance(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(0.0)


def test_running_mean_std_matches_numpy_and_normalizers_round_trip():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(300, 2))
    rms = RunningMeanStd((2,), epsilon=1e-12)
    for chunk in np.split(data, [7, 100, 101, 250]):
        rms.update(chunk)
    assert np.allclose(rms.mean, data.mean(0)) and np.allclose(rms.var, data.var(0))

    norm = ObsNormalizer((2,), clip=5.0)
    for chunk in np.split(data, 3):
        norm(chunk, update=True)
    x = norm(data[:4])
    assert x.dtype == np.float32 and np.allclose(x, np.clip((data[:4] - data.mean(0)) / data.std(0), -5, 5), atol=1e-3)
    assert np.abs(norm(np.full((1, 2), 1e6))).max() == 5.0  # clipped

    rew = RewardNormalizer(2, gamma=0.5)
    for t in range(20):
        rew(np.array([1.0, 2.0]), np.array([t % 5 == 4, False]))
    # checkpoint round trip: tensors in, the same statistics and the same outputs out, frozen (update=False)
    for obj, fresh in ((norm, ObsNormalizer((2,), clip=5.0)), (rew, RewardNormalizer(2, gamma=0.5))):
        buf = io.BytesIO()
        torch.save(to_tensors(obj.state_dict()), buf)
        fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
        assert np.allclose(fresh.rms.mean, obj.rms.mean) and np.allclose(fresh.rms.var, obj.rms.var)
        assert fresh.rms.count == obj.rms.count
    assert np.allclose(fresh.returns, rew.returns)
    before = fresh.rms.var.copy()
    out = fresh(np.array([1.0, 1.0]), np.array([False, False]), update=False)
    assert np.array_equal(fresh.rms.var, before) and np.allclose(out, 1.0 / np.sqrt(before + 1e-8))


def test_schedules_constant_and_linear():
    assert schedules.value(Schedule(0.2), 0.7) == 0.2
    assert schedules.value(Schedule(2.5e-4, 0.0), 0.25) == pytest.approx(1.875e-4)  # zoo's lin_2.5e-4
    assert schedules.linear(1.0, 0.0, 0.3, fraction=0.5) == pytest.approx(0.4)
    assert schedules.linear(1.0, 0.0, 0.9, fraction=0.5) == 0.0


class Ticker(gym.Env):
    """obs = [t]; episode ends at t = length by termination (terminal=True) or truncation; reward 1 per step."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int, terminal: bool):
        self.length, self.terminal, self.t = length, terminal, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t == self.length
        return np.array([self.t], np.float32), 1.0, end and self.terminal, end and not self.terminal, {}


class ObsValuePolicy:
    """Acts 0; V(s) = 100 + obs, so a bootstrap from the real final obs is recognisable."""

    def step(self, obs, action_mask=None, deterministic=False):
        n = len(obs)
        return torch.zeros(n, dtype=torch.long), torch.zeros(n), self.value(obs)

    def value(self, obs):
        return 100.0 + obs[:, 0]

    def env_actions(self, actions):
        return actions


def test_collector_bootstraps_truncation_from_the_real_final_obs():
    env = gym.vector.SyncVectorEnv(
        [lambda: gym.wrappers.RecordEpisodeStatistics(Ticker(3, terminal=False)),
         lambda: gym.wrappers.RecordEpisodeStatistics(Ticker(2, terminal=True))],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    seen = []
    buf = RolloutBuffer(5, 2, (1,), np.float32, (), np.int64)
    col = Collector(env, ObsValuePolicy())
    col.reset(seed=0)
    taken, episodes = col.collect(buf, 5, step=0, on_episode=lambda s, r, n: seen.append((s, r, n)))
    assert taken == 10 and episodes == 3  # env 0 ends at vector step 3, env 1 at steps 2 and 4
    assert buf.obs[:, 0, 0].tolist() == [0, 1, 2, 0, 1] and buf.truncated[:, 0].tolist() == [0, 0, 1, 0, 0]
    assert buf.final_values[2, 0] == 103.0  # V(obs [3]), the real final obs, not the reset obs [0]
    assert buf.terminated[:, 1].tolist() == [0, 1, 0, 1, 0] and not buf.final_values[:, 1].any()
    assert buf.last_values.tolist() == [102.0, 101.0]  # V of the obs after the last step
    assert seen == [(4, 2.0, 2), (6, 3.0, 3), (8, 2.0, 2)]  # (env steps so far, raw return, length)


def test_recompute_gae_bootstraps_the_new_critic_from_the_stored_final_and_last_obs():
    env = gym.vector.SyncVectorEnv(
        [lambda: gym.wrappers.RecordEpisodeStatistics(Ticker(3, terminal=False)),
         lambda: gym.wrappers.RecordEpisodeStatistics(Ticker(2, terminal=True))],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    buf = RolloutBuffer(5, 2, (1,), np.float32, (), np.int64)
    col = Collector(env, ObsValuePolicy())
    col.reset(seed=0)
    col.collect(buf, 5)
    buf.compute_gae(GAMMA, LAM)
    adv, ret = buf.adv.copy(), buf.ret.copy()
    # the critic that collected the rollout gives the advantages computed at collection
    buf.recompute_gae(lambda o: 100.0 + o[:, 0], GAMMA, LAM)
    assert np.allclose(buf.adv, adv) and np.allclose(buf.ret, ret)
    # a changed critic, V(s) = 2 obs: env 0 sees obs 0,1,2 | 0,1 (truncated at t=2, real final obs 3), s_T = 2;
    # env 1 sees 0,1 | 0,1 | 0 (terminated at t=1 and t=3; their next values do not count), s_T = 1
    buf.recompute_gae(lambda o: 2.0 * o[:, 0], GAMMA, LAM)
    values = 2.0 * buf.obs[:, :, 0]
    nxt = np.array([[2, 2], [4, 0], [6, 2], [2, 0], [4, 2]], np.float32)
    want_adv, want_ret = compute_gae(buf.rewards, values, nxt, buf.terminated, buf.dones, GAMMA, LAM)
    assert np.allclose(buf.adv, want_adv) and np.allclose(buf.ret, want_ret)
    assert buf.adv[2, 0] == pytest.approx(1 + GAMMA * 6 - 4)  # truncated: bootstrapped from V(3) = 6, not V(0)
    assert buf.values[:, 0].tolist() == [100, 101, 102, 100, 101]  # V_old kept for PPO's value clipping
