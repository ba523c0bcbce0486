"""Bandit testbed and agents (Sutton & Barto ch. 2): statistics, the update rules by hand, the book's
ordering of methods, exact resume, evaluation."""

from __future__ import annotations

import csv
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agents
import envs
from agents import bandits
from agents.bandits import (
    UCB,
    EpsGreedy,
    GradientBandit,
    eps_greedy_actions,
    eps_greedy_probs,
    gradient_update,
    greedy,
    sample_average_update,
    sample_categorical,
    softmax,
    ucb_actions,
)
from envs.bandit import BanditEnv, BanditTestbed
from rlkit.checkpoint import Checkpointer
from rlkit.config import apply_overrides, load_presets
from rlkit.errors import UserError
from rlkit.logger import Logger


class Rows:
    """In-memory stand-in for Logger."""

    def __init__(self):
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log(self, step, metrics):
        self.rows.append((step, dict(metrics)))

    def curve(self, key):
        return np.array([m[key] for _, m in self.rows])


def never(tmp_path):
    return Checkpointer(tmp_path / "unused", every=2**62)


def train(cls, tmp_path, steps=1000, n=500, seed=0, env_kwargs=None, **over):
    cfg = cls.Config(seed=seed, total_steps=steps, n_problems=n, **over)
    env = cls.make_env(envs.resolve("bandit", env_kwargs or {}), cfg)
    agent = cls(cfg, env)
    log = Rows()
    agent.learn(env, steps, log, never(tmp_path))
    return agent, log


# --------------------------------------------------------------------------------------------------
# The testbed


def test_testbed_statistics():
    bed = BanditTestbed(n=4000, k=10, seed=1)
    assert bed.q_star.shape == (4000, 10)
    assert abs(bed.q_star.mean()) < 0.02 and abs(bed.q_star.std() - 1) < 0.02
    shifted = BanditTestbed(n=4000, seed=1, q_mean=4.0, q_std=2.0, reward_std=0.5)
    assert abs(shifted.q_star.mean() - 4) < 0.04 and abs(shifted.q_star.std() - 2) < 0.04
    a = np.arange(4000) % 10
    for b, std in ((bed, 1.0), (shifted, 0.5)):
        noise = np.concatenate([b.step(a) - b.q_star[np.arange(4000), a] for _ in range(20)])
        assert abs(noise.mean()) < 0.02 * std and abs(noise.std() - std) < 0.02 * std
    np.testing.assert_array_equal(bed.optimal_actions(), bed.q_star.argmax(axis=1))
    assert bed.is_optimal(bed.optimal_actions()).all() and not bed.is_optimal((bed.optimal_actions() + 1) % 10).any()
    assert bed.t == 20


def test_same_seed_same_testbed():
    a, b, c = BanditTestbed(n=5, seed=7), BanditTestbed(n=5, seed=7), BanditTestbed(n=5, seed=8)
    np.testing.assert_array_equal(a.q_star, b.q_star)
    assert not np.array_equal(a.q_star, c.q_star)
    acts = np.zeros(5, dtype=np.int64)
    np.testing.assert_array_equal(a.step(acts), b.step(acts))


def test_bernoulli_arms():
    bed = BanditTestbed(n=3000, k=5, seed=2, kind="bernoulli")
    assert bed.q_star.min() >= 0 and bed.q_star.max() <= 1 and abs(bed.q_star.mean() - 0.5) < 0.02
    a = np.full(3000, 3)
    r = np.stack([bed.step(a) for _ in range(200)])
    assert set(np.unique(r)) <= {0.0, 1.0}
    assert np.abs(r.mean(axis=0) - bed.q_star[:, 3]).max() < 0.15  # 200 pulls per problem
    assert abs(r.mean() - bed.q_star[:, 3].mean()) < 0.01


def test_nonstationary_random_walk():
    still = BanditTestbed(n=2000, seed=3)
    moving = BanditTestbed(n=2000, seed=3, nonstationary=True, walk_std=0.1)
    q0 = moving.q_star.copy()
    np.testing.assert_array_equal(q0, still.q_star)
    a = np.zeros(2000, dtype=np.int64)
    for _ in range(100):
        still.step(a)
        moving.step(a)
    np.testing.assert_array_equal(still.q_star, q0)
    drift = moving.q_star - q0
    assert abs(drift.mean()) < 0.02 and abs(drift.std() - 0.1 * math.sqrt(100)) < 0.03  # variance T walk_std^2
    assert moving.optimal_actions().tolist() == moving.q_star.argmax(axis=1).tolist()  # cache follows q*
    bern = BanditTestbed(n=100, seed=3, kind="bernoulli", nonstationary=True, walk_std=0.3)
    for _ in range(50):
        bern.step(a[:100])
    assert bern.q_star.min() >= 0 and bern.q_star.max() <= 1


def test_equal_start_counts_every_tied_arm_optimal():
    bed = BanditTestbed(n=4, k=3, seed=0, q_std=0.0, nonstationary=True)  # S&B Exercise 2.5: all q* equal
    assert bed.is_optimal(np.array([0, 1, 2, 1])).all()


@pytest.mark.parametrize("kwargs, word", [
    (dict(n=0), "n must"), (dict(k=1), "k must"), (dict(kind="poisson"), "kind must"),
    (dict(q_std=-1.0), "q_std must"), (dict(reward_std=float("nan")), "reward_std must"),
    (dict(walk_std=-0.1), "walk_std must"), (dict(nonstationary="yes"), "nonstationary must"),
    (dict(kind="bernoulli", q_mean=4.0), "gaussian arms only"), (dict(seed=-1), "seed must"),
])
def test_invalid_testbed_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        BanditTestbed(**kwargs)


def test_bad_env_kwargs_are_user_errors():
    with pytest.raises(UserError, match="kind must be one of"):
        envs.make_batch(envs.resolve("bandit", {"kind": "poisson"}), n=4, seed=0)
    with pytest.raises(UserError, match="rejected its arguments"):
        envs.make_batch(envs.resolve("bandit", {"arms": 3}), n=4, seed=0)
    with pytest.raises(UserError):
        envs.make(envs.resolve("bandit", {"q_std": -2}))


def test_step_rejects_bad_actions():
    bed = BanditTestbed(n=3, k=4, seed=0)
    with pytest.raises(ValueError, match="shape"):
        bed.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        bed.step(np.array([0, 1, 4]))


def test_testbed_state_round_trip():
    a = BanditTestbed(n=6, seed=1, nonstationary=True)
    acts = np.arange(6) % 10
    a.step(acts)
    state = a.get_state()
    b = BanditTestbed(n=6, seed=99, nonstationary=True)
    b.set_state(state)
    np.testing.assert_array_equal(a.step(acts), b.step(acts))
    np.testing.assert_array_equal(a.q_star, b.q_star)
    with pytest.raises(ValueError, match="shape"):
        BanditTestbed(n=7, seed=0).set_state(state)


# --------------------------------------------------------------------------------------------------
# The gymnasium env


@pytest.mark.parametrize("kwargs", [{}, dict(kind="bernoulli", nonstationary=True), dict(render_mode="ansi")])
def test_check_env(kwargs):
    check_env(gym.make("rlkit/Bandit-v0", **kwargs).unwrapped)


def test_bandit_env_episodes_and_problem():
    env = BanditEnv(k=4, episode_length=5)
    assert env.observation_space == gym.spaces.Discrete(1) and env.action_space == gym.spaces.Discrete(4)
    obs, info = env.reset(seed=3)
    q = env.q_star.copy()
    assert obs == 0 and info["optimal_action"] == int(q.argmax())
    flags = [env.step(1)[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]  # truncated, never terminated
    env.reset()
    np.testing.assert_array_equal(env.q_star, q)  # same problem goes on
    env.reset(seed=4)
    assert not np.array_equal(env.q_star, q)  # reseeding draws a new problem
    env.reset(seed=3)
    np.testing.assert_array_equal(env.q_star, q)
    fresh = BanditEnv(k=4, resample_on_reset=True)
    fresh.reset(seed=0)
    q0 = fresh.q_star.copy()
    fresh.reset()
    assert not np.array_equal(fresh.q_star, q0)


def test_bandit_env_shares_the_testbed_sampling():
    env = BanditEnv(q_mean=4.0, q_std=2.0, reward_std=0.5)
    env.reset(seed=0)
    bed = BanditTestbed(n=1, seed=0, q_mean=4.0, q_std=2.0, reward_std=0.5)
    np.testing.assert_array_equal(env.q_star, bed.q_star[0])  # same Arms code, same stream
    rewards = [env.step(2)[1] for _ in range(3)]
    np.testing.assert_array_equal(rewards, [bed.step(np.array([2]))[0] for _ in range(3)])
    env = BanditEnv(render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    assert "arm  0" in env.render() and "*" in env.render()


# --------------------------------------------------------------------------------------------------
# The math by hand


def test_greedy_breaks_ties_at_random_over_all_tied_arms():
    rng = np.random.default_rng(0)
    q = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [0.0, 0.0, 5.0, 0.0, 0.0]])
    picks = np.stack([greedy(q, rng) for _ in range(600)])
    assert set(picks[:, 0]) == {1, 2, 4}
    assert all(abs((picks[:, 0] == a).mean() - 1 / 3) < 0.07 for a in (1, 2, 4))
    assert set(picks[:, 1]) == {2}
    q_zero = np.zeros((1, 4))  # all tied: every arm
    assert set(int(greedy(q_zero, rng)[0]) for _ in range(200)) == {0, 1, 2, 3}


def test_eps_greedy_matches_its_probabilities():
    q = np.tile([0.0, 2.0, 1.0, 2.0], (20_000, 1))
    pi = eps_greedy_probs(q[:1], 0.2)[0]
    np.testing.assert_allclose(pi, [0.05, 0.45, 0.05, 0.45])  # eps/m + (1 - eps)/ties on the greedy arms
    a = eps_greedy_actions(q, 0.2, np.random.default_rng(1))
    np.testing.assert_allclose(np.bincount(a, minlength=4) / len(a), pi, atol=0.01)
    np.testing.assert_allclose(eps_greedy_probs(np.array([[0.0, 1.0, 0.0]]), 0.3), [[0.1, 0.8, 0.1]])


def test_ucb_tries_untried_arms_first_then_the_formula():
    q = np.array([[0.5, 9.0, 0.2], [1.0, 0.0, 2.0]])
    n = np.array([[3, 0, 1], [4, 1, 2]])
    np.testing.assert_array_equal(ucb_actions(q, n, t=8, c=2.0), [1, 2])  # row 0: arm 1 untried
    # row 1 by hand: 1 + 2 sqrt(ln 8 / 4) = 2.442, 0 + 2 sqrt(ln 8) = 2.884, 2 + 2 sqrt(ln 8 / 2) = 3.020
    assert ucb_actions(q[1:], n[1:], t=8, c=2.0)[0] == 2
    assert ucb_actions(q[1:], n[1:], t=8, c=0.0)[0] == 2  # c = 0: greedy
    assert ucb_actions(np.array([[1.0, 0.0]]), np.array([[1, 1]]), t=100, c=1.0)[0] == 0
    assert ucb_actions(np.array([[1.0, 0.0]]), np.array([[50, 1]]), t=100, c=1.0)[0] == 1  # 1.30 vs 2.15
    rng = np.random.default_rng(0)
    untried = {int(ucb_actions(np.zeros((1, 4)), np.array([[0, 2, 0, 0]]), 3, 2.0, rng)[0]) for _ in range(100)}
    assert untried == {0, 2, 3}


def test_softmax_and_sampling():
    h = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 1000.0], [np.log(1), np.log(2), np.log(3), np.log(4)]])
    pi = softmax(h)
    np.testing.assert_allclose(pi[0], 0.25)
    np.testing.assert_allclose(pi[1], [0, 0, 0, 1], atol=1e-12)  # no overflow
    np.testing.assert_allclose(pi[2], [0.1, 0.2, 0.3, 0.4])
    probs = np.tile(pi[2], (40_000, 1))
    a = sample_categorical(probs, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(a, minlength=4) / len(a), pi[2], atol=0.01)


def test_gradient_update_is_eq_2_12():
    h = np.array([[0.0, 0.0, 0.0], [0.5, -0.5, 0.0]])
    pi = softmax(h)
    a, r, rbar, alpha = np.array([1, 0]), np.array([2.0, -1.0]), np.array([0.5, 1.0]), 0.1
    new = gradient_update(h, pi, a, r, rbar, alpha)
    # row 0 by hand: H(A) += 0.1 (2 - 0.5)(1 - 1/3) = 0.1; H(other) -= 0.1 (1.5)(1/3) = 0.05
    np.testing.assert_allclose(new[0], [-0.05, 0.1, -0.05])
    for i in range(2):
        for b in range(3):
            expect = h[i, b] + alpha * (r[i] - rbar[i]) * ((b == a[i]) - pi[i, b])
            assert new[i, b] == pytest.approx(expect)
    np.testing.assert_allclose(new.sum(axis=1), h.sum(axis=1), atol=1e-12)  # the update moves no total preference
    np.testing.assert_array_equal(h, [[0.0, 0.0, 0.0], [0.5, -0.5, 0.0]])  # pure: input untouched
    no_baseline = gradient_update(h, pi, a, r, 0.0, alpha)
    np.testing.assert_allclose(no_baseline[0], [-2 / 30, 4 / 30, -2 / 30])


def test_sample_average_equals_the_mean():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(50, 2))  # 2 problems, 50 pulls of arm 1 then of arm 0
    q, n = np.zeros((2, 3)), np.zeros((2, 3), dtype=np.int64)
    for arm in (1, 0):
        for t in range(50):
            q, n = sample_average_update(q, n, np.array([arm, arm]), rewards[t])
    np.testing.assert_allclose(q[:, 1], rewards.mean(axis=0))
    np.testing.assert_allclose(q[:, 0], rewards.mean(axis=0))
    np.testing.assert_array_equal(n, [[50, 50, 0], [50, 50, 0]])
    q2, n2 = sample_average_update(np.array([[1.0, 4.0]]), np.array([[2, 2]]), np.array([1]), np.array([0.0]), 0.25)
    np.testing.assert_allclose(q2, [[1.0, 3.0]])  # constant step: 4 + 0.25 (0 - 4)
    np.testing.assert_array_equal(n2, [[2, 3]])


# --------------------------------------------------------------------------------------------------
# The agents


def test_book_ordering_of_methods(tmp_path):
    """Figure 2.2/2.4 with 500 runs: eps 0.1 > eps 0.01 > greedy, and UCB c=2 > eps 0.1 (last 100 steps)."""
    last = {}
    for name, cls, over in [("greedy", EpsGreedy, dict(epsilon=0.0)), ("eps0.01", EpsGreedy, dict(epsilon=0.01)),
                            ("eps0.1", EpsGreedy, dict(epsilon=0.1)), ("ucb", UCB, dict(c=2.0))]:
        _, log = train(cls, tmp_path, **over)
        last[name] = log.curve("charts/reward")[-100:].mean()
    assert last["ucb"] > last["eps0.1"] > last["eps0.01"] > last["greedy"]
    assert 1.25 < last["eps0.1"] < 1.5 and 0.9 < last["greedy"] < 1.15


def test_gradient_bandit_baseline_helps(tmp_path):
    """Figure 2.5 (q* ~ N(4, 1)): with the baseline the right arm is found far more often."""
    opt = {b: train(GradientBandit, tmp_path, n=300, steps=500, env_kwargs={"q_mean": 4.0}, baseline=b)[1]
           .curve("charts/optimal_pct")[-100:].mean() for b in (True, False)}
    assert opt[True] > 65 and opt[True] > opt[False] + 15


def test_optimistic_initial_values_explore(tmp_path):
    """Figure 2.3: greedy with Q_1 = 5 beats greedy with Q_1 = 0 in % optimal (alpha = 0.1)."""
    opt = {q0: train(EpsGreedy, tmp_path, n=300, steps=500, epsilon=0.0, step_size=0.1, q_init=q0)[1]
           .curve("charts/optimal_pct")[-100:].mean() for q0 in (0.0, 5.0)}
    assert opt[5.0] > opt[0.0] + 20


AGENT_CASES = [
    (EpsGreedy, dict(epsilon=0.1), {}),
    (EpsGreedy, dict(epsilon=0.1, step_size=0.1), dict(nonstationary=True, walk_std=0.05)),
    (UCB, dict(c=2.0), {}),
    (GradientBandit, dict(alpha=0.1, baseline=True), dict(q_mean=4.0)),
]


@pytest.mark.parametrize("cls, over, env_kwargs", AGENT_CASES)
def test_resume_matches_straight_run(tmp_path, cls, over, env_kwargs):
    steps, n = 80, 40
    cfg = cls.Config(seed=5, total_steps=steps, n_problems=n, **over)
    ref = envs.resolve("bandit", env_kwargs)

    env = cls.make_env(ref, cfg)
    straight = cls(cfg, env)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    logger = Logger(tmp_path / "a", steps, tensorboard=False, progress=False)
    straight.learn(env, steps, logger, Checkpointer(tmp_path / "a" / "checkpoints", every=steps // 2))
    logger.close()

    step, state = Checkpointer(tmp_path / "a" / "checkpoints", every=steps // 2).load("last")
    assert step == steps // 2
    other_env = BanditTestbed(n=n, seed=1234, **env_kwargs)  # a different q*: the checkpoint must restore it
    resumed = cls(cfg, other_env)
    resumed.load_state_dict(state["agent"])
    assert resumed.step == steps // 2
    logger = Logger(tmp_path / "b", steps, tensorboard=False, progress=False)
    resumed.learn(other_env, steps, logger, Checkpointer(tmp_path / "b" / "checkpoints", every=10**9))
    logger.close()

    for name in cls.arrays:
        np.testing.assert_array_equal(getattr(straight, name), getattr(resumed, name))
    np.testing.assert_array_equal(env.q_star, other_env.q_star)
    assert resumed.report() == straight.report()

    def curves(path):
        with open(path / "metrics.csv") as f:
            return [(r["step"], r["charts/reward"], r["charts/optimal_pct"]) for r in csv.DictReader(f)]

    a, b = curves(tmp_path / "a"), curves(tmp_path / "b")
    assert len(a) == steps and a[steps // 2 :] == b


def test_same_seed_same_numbers_other_seed_different(tmp_path):
    a = train(EpsGreedy, tmp_path, steps=50, n=20, seed=1)[1].curve("charts/reward")
    b = train(EpsGreedy, tmp_path, steps=50, n=20, seed=1)[1].curve("charts/reward")
    c = train(EpsGreedy, tmp_path, steps=50, n=20, seed=2)[1].curve("charts/reward")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_long_runs_log_block_averages(tmp_path, monkeypatch):
    monkeypatch.setattr(bandits, "MAX_LOG_ROWS", 10)
    agent, log = train(EpsGreedy, tmp_path, steps=105, n=8)
    assert [s for s, _ in log.rows] == [10 * i for i in range(1, 11)] + [105]
    every_step = Rows()
    cfg = EpsGreedy.Config(seed=0, total_steps=105, n_problems=8)
    monkeypatch.setattr(bandits, "MAX_LOG_ROWS", 1000)
    env = EpsGreedy.make_env(envs.resolve("bandit"), cfg)
    EpsGreedy(cfg, env).learn(env, 105, every_step, never(tmp_path))
    per_step = every_step.curve("charts/reward")
    np.testing.assert_allclose(log.curve("charts/reward")[:10], per_step[:100].reshape(10, 10).mean(axis=1))


def test_stop_request_checkpoints_and_returns(tmp_path):
    cfg = EpsGreedy.Config(seed=0, total_steps=100, n_problems=4)
    env = EpsGreedy.make_env(envs.resolve("bandit"), cfg)
    agent = EpsGreedy(cfg, env)
    ckpt = Checkpointer(tmp_path / "checkpoints", every=10**9)
    ckpt.stop_signal = 15
    agent.learn(env, 100, Rows(), ckpt)
    assert agent.step == 0 and ckpt.last_saved_step == 0


@pytest.mark.parametrize("cls, over, env_kwargs", AGENT_CASES)
def test_evaluate_reports_the_documented_keys(tmp_path, cls, over, env_kwargs):
    agent, _ = train(cls, tmp_path, steps=200, n=100, env_kwargs=env_kwargs, **over)
    result = agent.evaluate(agent.env, episodes=250, seed=3)
    assert {"episodes", "return_mean", "return_std", "return_min", "return_max", "length_mean",
            "optimal_pct", "expected_reward"} <= set(result)
    assert result["episodes"] == 250 and result["length_mean"] == 1.0
    assert 0 <= result["optimal_pct"] <= 100 and result["return_min"] <= result["return_mean"] <= result["return_max"]
    assert result == agent.evaluate(agent.env, episodes=250, seed=3)  # reproducible from the seed
    # a freshly built agent on another testbed, restored from the state, evaluates the trained problems
    clone = cls(agent.cfg, BanditTestbed(n=100, seed=77, **env_kwargs))
    clone.load_state_dict(agent.state_dict())
    assert clone.evaluate(clone.env, episodes=250, seed=3) == result


def test_trained_greedy_arm_is_mostly_optimal(tmp_path):
    agent, _ = train(EpsGreedy, tmp_path, steps=1000, n=300, epsilon=0.1)
    result = agent.evaluate(agent.env, episodes=300, seed=0)
    assert result["optimal_pct"] > 80
    assert result["expected_reward"] > 1.3  # E[max of 10 N(0,1)] = 1.54
    assert "average reward" in agent.report()


def test_agents_refuse_other_envs():
    cfg = EpsGreedy.Config(n_problems=4)
    with pytest.raises(UserError, match="no batch-native version"):
        EpsGreedy.make_env(envs.resolve("rooms"), cfg)
    with pytest.raises(UserError, match="env=bandit"):
        EpsGreedy(cfg, BanditEnv())


def test_load_rejects_a_checkpoint_of_another_shape(tmp_path):
    agent, _ = train(UCB, tmp_path, steps=5, n=6)
    other = UCB(UCB.Config(n_problems=7), BanditTestbed(n=7))
    with pytest.raises(UserError, match="shape"):
        other.load_state_dict(agent.state_dict())


def test_registry_configs_and_presets():
    for name, cls in [("eps_greedy", EpsGreedy), ("ucb", UCB), ("gradient_bandit", GradientBandit)]:
        assert agents.get(name) is cls
        preset = load_presets(name)["bandit"]
        assert "Sutton & Barto" in preset.source
        cfg = apply_overrides(cls.Config(), preset.values)
        assert cfg.total_steps == 1000 and cfg.n_problems == 2000
    assert load_presets("gradient_bandit")["bandit"].env_kwargs == {"q_mean": 4.0}
    with pytest.raises(UserError, match="epsilon"):
        apply_overrides(EpsGreedy.Config(), {"epsilon": 1.5})
    with pytest.raises(UserError, match="step_size"):
        apply_overrides(UCB.Config(), {"step_size": 0.0})
    assert apply_overrides(EpsGreedy.Config(), {"step_size": None}).step_size is None
