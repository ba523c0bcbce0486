"""Agent registry: name -> class, with a one-line description for `rlkit list`."""

from __future__ import annotations

import importlib

from rlkit.errors import UserError, did_you_mean

# name -> ("module:Class", one-line description)
REGISTRY: dict[str, tuple[str, str]] = {
    "eps_greedy": ("agents.bandits:EpsGreedy",
                   "epsilon-greedy bandit: sample-average or constant step size, optimistic initial values"),
    "ucb": ("agents.bandits:UCB", "upper-confidence-bound bandit action selection (Sutton & Barto 2.7)"),
    "gradient_bandit": ("agents.bandits:GradientBandit",
                        "softmax preferences by stochastic gradient ascent, with or without baseline (S&B 2.8)"),
    "q_learning": ("agents.td:QLearning", "tabular Q-learning, off-policy TD control (S&B 6.5)"),
    "sarsa": ("agents.td:Sarsa", "tabular SARSA, on-policy TD control (S&B 6.4)"),
    "expected_sarsa": ("agents.td:ExpectedSarsa", "tabular Expected SARSA (S&B 6.6)"),
    "dqn": ("agents.dqn:DQN", "deep Q-network with double Q, prioritized replay, n-step returns, dueling head"),
    "reinforce": ("agents.reinforce:Reinforce",
                  "Monte-Carlo policy gradient on whole episodes; baseline none, batch mean or learned V(s)"),
    "a2c": ("agents.a2c:A2C", "synchronous advantage actor-critic: n-step/GAE advantages over many envs, RMSprop"),
    "ppo": ("agents.ppo:PPO", "proximal policy optimization: clipped surrogate, GAE, minibatch epochs, target KL"),
    "trpo": ("agents.trpo:TRPO", "trust region policy optimization: conjugate-gradient natural step, KL line search"),
    "es": ("agents.es:ES", "evolution strategies on a numpy policy: hill climbing (SEEDS.md) or antithetic OpenAI-ES"),
}


def get(name: str) -> type:
    """The agent class registered as `name`; a UserError with a 'did you mean' otherwise."""
    if name not in REGISTRY:
        raise UserError(f"unknown agent '{name}'{did_you_mean(name, REGISTRY)}; "
                        f"available: {', '.join(REGISTRY)} (rlkit list)")
    module, attr = REGISTRY[name][0].split(":")
    return getattr(importlib.import_module(module), attr)
