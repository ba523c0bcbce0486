"""Tabular TD control: the update rules by hand, the notes' rooms matrices, and Sutton & Barto Example 6.6."""

import csv

import gymnasium as gym
import numpy as np
import pytest

from agents.td import (
    eps_greedy_probs,
    expected_sarsa_target,
    greedy,
    q_learning_target,
    sarsa_target,
    td_update,
)
from envs.rooms import Q_BOOTSTRAP, Q_TERMINAL
from rlkit.checkpoint import Checkpointer


def test_targets_by_hand():
    q_next = np.array([1.0, 4.0, 2.0])
    assert q_learning_target(-1.0, q_next, None, 0.9, False) == pytest.approx(-1 + 0.9 * 4)
    assert q_learning_target(-1.0, q_next, np.array([1, 0, 1]), 0.9, False) == pytest.approx(-1 + 0.9 * 2)
    assert q_learning_target(-1.0, q_next, None, 0.9, True) == -1.0
    assert sarsa_target(0.5, q_next, 2, 0.5, False) == pytest.approx(0.5 + 0.5 * 2)
    pi = eps_greedy_probs(q_next, 0.3, None)
    assert pi == pytest.approx([0.1, 0.8, 0.1])
    assert expected_sarsa_target(0.0, q_next, pi, 1.0, False) == pytest.approx(0.1 * 1 + 0.8 * 4 + 0.1 * 2)
    assert eps_greedy_probs(np.array([3.0, 3.0, 0.0, 9.0]), 0.2, np.array([1, 1, 1, 0])) == pytest.approx(
        [0.2 / 3 + 0.4, 0.2 / 3 + 0.4, 0.2 / 3, 0.0])
    q = np.zeros((2, 2))
    assert td_update(q, 1, 0, 10.0, 0.5) == 10.0 and q[1, 0] == 5.0
    # the notes' first worked steps: Q(1,5) = 100 + 0.8 * 0, then Q(3,1) = 0 + 0.8 * max(Q(1,3), Q(1,5)) = 80
    q = np.zeros((6, 6))
    mask1 = np.array([0, 0, 0, 1, 0, 1])
    td_update(q, 1, 5, q_learning_target(100, q[5], np.array([0, 1, 0, 0, 1, 1]), 0.8, False), 1.0)
    td_update(q, 3, 1, q_learning_target(0, q[1], mask1, 0.8, False), 1.0)
    assert (q[1, 5], q[3, 1]) == (100.0, 80.0)


def test_greedy_breaks_ties_at_random():
    rng = np.random.default_rng(0)
    picks = {greedy(np.array([1.0, 1.0, 0.0, 1.0]), None, rng) for _ in range(200)}
    assert picks == {0, 1, 3}
    assert greedy(np.array([5.0, 1.0, 1.0]), np.array([0, 1, 1]), rng) in (1, 2)


@pytest.mark.parametrize("goal, expected", [("bootstrap", Q_BOOTSTRAP), ("terminal", Q_TERMINAL)])
def test_rooms_reproduces_the_notes(cli, goal, expected):
    """`rlkit train agent=q_learning env=rooms` (preset: gamma 0.8, lr 1) ends with the notes' matrices."""
    rc, run, out = cli.train("agent=q_learning", "env=rooms", f"env.goal={goal}")
    assert rc == 0, out
    step, state = Checkpointer(run / "checkpoints", 1).load()
    q = np.asarray(state["agent"]["q"])
    assert np.array_equal(np.round(q), np.round(expected))
    if goal == "terminal":
        assert np.allclose(q, Q_TERMINAL)  # exact: 51.2 and all
        assert np.array_equal(np.round(100 * q / q.max()), np.round(Q_TERMINAL))
    assert "Q-table" in out and "Q normalized (100 * Q / max Q)" in out
    assert "matches the notes' matrix for this goal mode (rounded): yes" in out
    # the printed normalized table carries the notes' rows, e.g. row 3: 0 80 51 0 80 0
    assert any(line.split() == ["3", "0", "80", "51", "0", "80", "0"] for line in out.splitlines())


def _online_returns(run, first, last):
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return np.mean([float(r["charts/return"]) for r in rows[first - 1:last]])


def _greedy_path(q):
    """States visited by the greedy policy on the 4x12 cliff from the start (36), at most 60 moves."""
    moves = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
    s, path = 36, [36]
    while s != 47 and len(path) < 60:
        r, c = divmod(s, 12)
        dr, dc = moves[int(np.argmax(q[s]))]
        r, c = min(max(r + dr, 0), 3), min(max(c + dc, 0), 11)
        s = 36 if (r == 3 and 1 <= c <= 10) else r * 12 + c
        path.append(s)
    return path


def test_cliff_walking_example_6_6(cli):
    """Sutton & Barto Example 6.6 (eps 0.1, alpha 0.5): SARSA ~ -25 online, Q-learning ~ -50; paths differ."""
    seeds = range(10)
    result = {}
    for agent in ("sarsa", "q_learning"):
        rets, paths = [], []
        for seed in seeds:
            rc, run, out = cli.train(f"agent={agent}", "env=cliffwalking", f"seed={seed}")
            assert rc == 0, out
            rets.append(_online_returns(run, 400, 500))
            paths.append(_greedy_path(np.asarray(Checkpointer(run / "checkpoints", 1).load()[1]["agent"]["q"])))
        result[agent] = (np.mean(rets), paths)
    sarsa, qlearn = result["sarsa"][0], result["q_learning"][0]
    assert -35 <= sarsa <= -15, sarsa
    assert -75 <= qlearn <= -38, qlearn
    # Q-learning's greedy path runs along the cliff edge (row 2) in the optimal 13 moves ...
    for path in result["q_learning"][1]:
        assert len(path) - 1 == 13 and all(divmod(s, 12)[0] >= 2 for s in path)
    # ... SARSA's keeps away from it: up to row 0 or 1 in the middle columns
    for path in result["sarsa"][1]:
        assert min(divmod(s, 12)[0] for s in path if 1 <= s % 12 <= 10) <= 1


def test_tuple_and_masked_spaces(cli):
    rc, run, out = cli.train("agent=expected_sarsa", "env=Blackjack-v1", "total_steps=3000", "gamma=1.0")
    assert rc == 0, out  # Tuple(Discrete(32), Discrete(11), Discrete(2)) flattened to 704 rows
    assert np.asarray(Checkpointer(run / "checkpoints", 1).load()[1]["agent"]["q"]).shape == (704, 2)
    rc, run, out = cli.train("agent=q_learning", "env=taxi", "total_steps=30000")
    assert rc == 0, out


def test_truncation_bootstraps_termination_does_not():
    """Rooms in bootstrap mode ends episodes by truncation, so Q(5,5) grows past 100 toward 500."""
    from agents.td import QLearning, TDConfig

    env = gym.make("rlkit/Rooms-v0", goal="bootstrap")
    agent = QLearning(TDConfig(gamma=0.8, lr=1.0), env)
    agent.q[5, 5] = 100.0
    target = agent.target(100.0, 5, np.array([0, 1, 0, 0, 1, 1]), terminated=False, a_next=None)
    assert target == pytest.approx(180.0)
    assert agent.target(100.0, 5, None, terminated=True, a_next=None) == 100.0
