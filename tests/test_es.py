"""Evolution strategies: the update rules by hand, the numpy policy, determinism across worker counts,
a CartPole learning run with the preset, a continuous-action smoke run, budgets, and exact resume."""

import csv
import json

import gymnasium as gym
import numpy as np
import pytest

from agents.es import adam_ascent, antithetic_gradient, centered_ranks, hill_climb_update
from rlkit.checkpoint import Checkpointer
from rlkit.population import Evaluator, ParamPolicy, run_episode

# -- the update rules, with hand-made numbers -------------------------------------------------------


def test_hill_climb_update_blends_only_toward_a_strictly_better_mutant():
    champ, mutant = np.array([1.0, -2.0]), np.array([3.0, 2.0])
    np.testing.assert_allclose(hill_climb_update(champ, mutant, 10.0, 12.0, 0.25), [1.5, -1.0])  # 0.75 c + 0.25 m
    np.testing.assert_allclose(hill_climb_update(champ, mutant, 10.0, 12.0, 1.0), mutant)
    assert hill_climb_update(champ, mutant, 10.0, 10.0, 0.5) is champ  # a tie keeps the champion
    assert hill_climb_update(champ, mutant, 10.0, 9.0, 0.5) is champ


def test_centered_ranks_by_hand_with_ties():
    np.testing.assert_allclose(centered_ranks(np.array([3.0, 1.0, 2.0])), [0.5, -0.5, 0.0])
    # ranks 0 (for 0), 1 and 2 (the two 1s share 1.5), 3 (for 5); scaled by 1/3 and shifted by -0.5
    np.testing.assert_allclose(centered_ranks(np.array([1.0, 1.0, 5.0, 0.0])), [0.0, 0.0, 0.5, -0.5])
    np.testing.assert_allclose(centered_ranks(np.full(6, 500.0)), np.zeros(6))  # all tied: no signal
    r = centered_ranks(np.array([[10.0, -3.0], [7.0, 8.0]]))
    assert r.shape == (2, 2) and r[0, 0] == 0.5 and r[0, 1] == -0.5


def test_antithetic_gradient_by_hand():
    eps = np.array([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]])
    w_pos, w_neg = np.array([0.5, -0.5]), np.array([-0.5, 0.5])
    # (1 / (2 * 2 * 0.5)) * [(0.5 + 0.5) * eps_1 + (-0.5 - 0.5) * eps_2] = 0.5 * [1, 1, 1]
    np.testing.assert_allclose(antithetic_gradient(eps, w_pos, w_neg, 0.5), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(antithetic_gradient(eps, w_pos, w_pos, 0.5), [0.0, 0.0, 0.0])


def test_adam_ascent_by_hand():
    theta, g = np.array([1.0, 1.0]), np.array([2.0, -0.5])
    new, m, v = adam_ascent(theta, g, np.zeros(2), np.zeros(2), t=1, lr=0.1)
    np.testing.assert_allclose(m, [0.2, -0.05])
    np.testing.assert_allclose(v, [0.004, 0.00025])
    # step 1: lr sqrt(1 - 0.999) / (1 - 0.9) * m / sqrt(v) = lr * sign(g), up the gradient
    np.testing.assert_allclose(new, [1.1, 0.9], atol=1e-6)
    new2, m2, v2 = adam_ascent(new, np.array([0.0, 0.0]), m, v, t=2, lr=0.1)
    np.testing.assert_allclose(m2, 0.9 * m)
    step = 0.1 * np.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    np.testing.assert_allclose(new2, new + step * m2 / (np.sqrt(0.999 * v) + 1e-8))


# -- the numpy policy ---------------------------------------------------------------------------------


def test_linear_policy_argmax_and_tanh_bounds_by_hand():
    box4 = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    pol = ParamPolicy.for_spaces(box4, gym.spaces.Discrete(2))
    assert pol.n_params == 2 * 2 + 2
    theta = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.5])  # W = I, b = [0, 0.5]
    np.testing.assert_allclose(pol.outputs(theta, [[1.0, 0.8]]), [[1.0, 1.3]])
    assert list(pol.act(theta, [[1.0, 0.8], [1.0, 0.1]])) == [1, 0]
    pend = ParamPolicy.for_spaces(box4, gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    theta = np.array([1.0, -1.0, 0.0])  # a = 2 tanh(x0 - x1)
    a = pend.act(theta, [[0.5, 0.5], [10.0, 0.0], [0.0, 0.3]])
    assert a.shape == (3, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a[:, 0], [0.0, 2 * np.tanh(10.0), 2 * np.tanh(-0.3)], rtol=1e-6)
    asym = ParamPolicy.for_spaces(box4, gym.spaces.Box(0.0, 1.0, (1,), np.float32))
    assert float(asym.act(np.zeros(3), [[3.0, 1.0]])[0, 0]) == pytest.approx(0.5)  # tanh(0) -> mid-range


def test_mlp_policy_shapes_one_hot_and_zero_init():
    pol = ParamPolicy.for_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)), hidden=[4])
    assert pol.shapes == [(4, 3), (1, 4)] and pol.n_params == 3 * 4 + 4 + 4 * 1 + 1
    theta = pol.init(np.random.default_rng(0), 0.5)
    (w1, b1), (w2, b2) = pol.layers(theta)
    assert w1.std() > 0 and not b1.any() and not b2.any()
    np.testing.assert_allclose(pol.outputs(theta, [[0.1, 0.2, 0.3]]), [np.tanh(w1 @ [0.1, 0.2, 0.3]) @ w2.T])
    assert not pol.init(np.random.default_rng(0), 0.0).any()  # SEEDS.md: theta = 0
    tab = ParamPolicy.for_spaces(gym.spaces.Discrete(5), gym.spaces.Discrete(3))
    theta = np.zeros(tab.n_params)
    theta[2 * 5 + 4] = 1.0  # W[2, 4]: state 4 prefers action 2
    assert list(tab.act(theta, [4, 1])) == [2, 0]


def test_episode_runner_is_a_function_of_theta_and_seed():
    env = gym.make("CartPole-v1")
    pol = ParamPolicy.for_spaces(env.observation_space, env.action_space)
    theta = np.random.default_rng(1).standard_normal(pol.n_params)
    assert run_episode(env, pol, theta, 7) == run_episode(env, pol, theta, 7)
    assert run_episode(env, pol, np.zeros(pol.n_params), 7, max_steps=5)[1] <= 5
    ev = Evaluator("cartpole")
    returns, lengths = ev.evaluate(pol, np.stack([theta, -theta]), np.array([7, 8]))
    assert returns.shape == lengths.shape == (2, 2) and returns[0, 0] == run_episode(env, pol, theta, 7)[0]
    thetas = np.random.default_rng(2).standard_normal((5, pol.n_params))
    pooled = Evaluator("cartpole", workers=2)
    try:
        got = pooled.evaluate(pol, thetas, np.array([3, 4]))
        assert pooled._pool is not None and len(pooled._pool._processes) == 2  # really played elsewhere
    finally:
        pooled.close()
    here = ev.evaluate(pol, thetas, np.array([3, 4]))
    assert np.array_equal(got[0], here[0]) and np.array_equal(got[1], here[1])


# -- runs through the CLI -------------------------------------------------------------------------------


def _rows(run):
    """metrics.csv without the wall-clock columns."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("wall_s", "charts/sps")} for r in csv.DictReader(f)]


def _theta(run):
    return np.asarray(Checkpointer(run / "checkpoints", 1).load()[1]["agent"]["theta"])


def test_es_reaches_195_on_cartpole_with_its_preset(cli):
    """SEEDS.md hill climbing with the cartpole preset: eval mean >= 195 within the preset's 50k steps (seed 0)."""
    rc, run, out = cli.train("agent=es", "env=cartpole", "seed=0")
    assert rc == 0, out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_steps"] <= 50_000 + 2 * 500  # the budget, plus at most one trial
    assert summary["final_eval_return_mean"] >= 195, summary
    rc, out, err = cli("eval", str(run), "episodes=5")
    assert rc == 0 and json.loads((run / "eval.json").read_text())["return_mean"] >= 195
    rows = _rows(run)
    assert float(rows[0]["charts/return"]) == float(rows[0]["charts/length"])  # raw CartPole score: 1 per step
    assert "es/champion_return" in rows[0] and "es/accepted" in rows[0]


def test_same_seed_same_run_and_workers_do_not_change_it(cli):
    """openai_es: two runs with one seed match row for row; so does one with its population in 2 processes."""
    words = ["agent=es", "env=cartpole", "method=openai_es", "seed=4", "total_episodes=36", "eval_episodes=2"]
    runs = [cli.train(*words, f"workers={w}")[1] for w in (1, 1, 2)]
    assert all(runs)
    assert _rows(runs[0]) == _rows(runs[1]) == _rows(runs[2])
    assert np.array_equal(_theta(runs[0]), _theta(runs[2]))
    assert len(_rows(runs[0])) == 36 and json.loads((runs[2] / "summary.json").read_text())["episodes"] == 36


def test_continuous_actions_smoke_and_budgets(cli):
    """Pendulum (Box actions) with a small MLP; total_steps and total_episodes both stop a run."""
    rc, run, out = cli.train("agent=es", "env=pendulum", "method=openai_es", "hidden=[4]", "init_std=0.3",
                             "population=4", "total_steps=2000", "eval_episodes=2")
    assert rc == 0, out
    summary = json.loads((run / "summary.json").read_text())
    assert 2000 <= summary["total_steps"] < 2000 + 4 * 200 and summary["episodes"] == summary["total_steps"] // 200
    assert np.isfinite(summary["final_eval_return_mean"]) and summary["final_eval_return_mean"] < 0
    assert "es/grad_norm" in _rows(run)[0]
    rc, run, out = cli.train("agent=es", "env=pendulum", "method=hill_climb", "total_episodes=6", "total_steps=100000",
                             "eval_episodes=1")
    summary = json.loads((run / "summary.json").read_text())
    assert rc == 0 and summary["episodes"] == 6 and summary["total_steps"] == 6 * 200  # 3 hill-climbing trials


def test_resume_continues_exactly(cli):
    """A run extended by resume ends with the same policy, Adam state and curve as a straight run."""
    words = ["agent=es", "env=cartpole", "method=openai_es", "seed=2", "checkpoint_every=500", "eval_episodes=1"]
    rc, run, out = cli.train(*words, "total_episodes=24")
    assert rc == 0, out
    rc, out, err = cli("resume", str(run), "total_episodes=48", "progress=false", "tensorboard=false")
    assert rc == 0, err
    rc, straight, out = cli.train(*words, "total_episodes=48")
    assert rc == 0
    a = Checkpointer(run / "checkpoints", 1).load()[1]["agent"]
    b = Checkpointer(straight / "checkpoints", 1).load()[1]["agent"]
    for key in ("theta", "adam_m", "adam_v"):
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
    assert a["rng"] == b["rng"] and a["iteration"] == b["iteration"] == 8
    assert _rows(run) == _rows(straight)


@pytest.mark.parametrize("words, fragment", [
    (["method=openai_es", "population=7"], "population must be even; use population=8"),
    (["method=hillclimb"], "did you mean 'hill_climb'"),
    (["env=Blackjack-v1"], "needs a Box or Discrete observation space"),
])
def test_es_user_mistakes(cli, words, fragment):
    full = ["agent=es", *words] if any(w.startswith("env=") for w in words) else ["agent=es", "env=cartpole", *words]
    rc, run, out = cli.train(*full)
    assert rc == 2 and fragment in out and len(out.strip().splitlines()) == 1, out
