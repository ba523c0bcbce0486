"""Our on-policy agents against Stable-Baselines3 in lockstep: the same algorithm, or only the same random draws?

`rlkit bench` compares two libraries that draw different random numbers, so a gap between their scores
mixes luck with any difference in the algorithm. Here the draws are shared instead: both sides are built
as the bench builds them (`make_pair`), and SB3's learn() is run with its train() intercepted
(`in_lockstep`), so each of SB3's rollouts and updates can be repeated on our side. tests/test_sb3_lockstep.py
checks single rollouts and updates this way; `track_run` follows a whole training run:

    each rollout k: SB3 collects one (its own exploration noise); ours steps its own envs (same seeds) with
                    SB3's sampled actions, through our Collector, normalizers and GAE
                    ours updates on its own rollout in SB3's minibatch order; SB3 updates on its own
    no weights are copied after the first rollout, so every difference between the two rules accumulates

Float rounding accumulates too: PPO's clip range and gradient-norm threshold turn a 1e-7 difference into
whole samples counted or not, and over a run the weights part. `track_run` therefore also trains a control,
a second copy of ours that differs from the first only in float rounding (autograd instead of hand
gradients): a different rule would carry ours away from SB3 faster than from its own twin. Once the weights
have parted, the followers learn from actions their own policy no longer samples (off-policy data for PPO),
so their final scores are not scores of our PPO; the weight gaps are the measurement.

`python bench/lockstep_sb3.py agent=ppo env=pendulum --seeds 5` runs it over a preset's whole budget.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from rlkit.rollout import Batch, Collector, RolloutBuffer

# our ActorCritic's parameter names -> SB3's ActorCriticPolicy's (separate MLP trunks)
SB3_NAMES = (("pi_trunk.body.", "mlp_extractor.policy_net."), ("v_trunk.body.", "mlp_extractor.value_net."),
             ("pi_head.linear.", "action_net."), ("v_head.linear.", "value_net."), ("pi_head.log_std", "log_std"))


def sb3_key(key: str) -> str:
    """SB3's name of one of our ActorCritic's parameters."""
    for ours, theirs in SB3_NAMES:
        if key.startswith(ours):
            return theirs + key[len(ours):]
    raise KeyError(key)


def bench_spec(words: list[str], seed: int = 0) -> Any:
    """The run spec of `seed` in `rlkit bench <words>` (our keys that SB3 fixes held at its behaviour)."""
    from rlkit.bench import plan
    from rlkit.runs import resolve_spec

    return resolve_spec(plan("bench", [*words, f"seeds=[{seed}]"]).jobs[0].values, words)


def make_pair(words: list[str]) -> tuple[Any, Any, Any, Any]:
    """(our agent, its env, the SB3 model, its VecNormalize) for seed 0 of `rlkit bench <words>`, with our keys
    that SB3 fixes held at its behaviour as the bench holds them (e.g. dqn: double_q=false)."""
    from rlkit.bench import build_sb3
    from rlkit.train import build

    spec = bench_spec(words)
    agent, env = build(spec)
    model, vecnorm, _ = build_sb3(spec)
    return agent, env, model, vecnorm


def copy_weights(model: Any, agent: Any) -> None:
    """SB3's policy weights into ours (in place: the optimizer's flat buffer keeps them)."""
    theirs = model.policy.state_dict()
    agent.policy.load_state_dict({k: theirs[sb3_key(k)].clone() for k in agent.policy.state_dict()})


def update_gap(model: Any, agent: Any, before: dict[str, torch.Tensor]) -> float:
    """Largest |ours - SB3's| after an update from the same `before` weights, per parameter relative to how far
    SB3's update moved it (a float-rounding gap is ~1e-6 of the step; a different rule is of its order)."""
    theirs = model.policy.state_dict()
    gaps = []
    for k, v in agent.policy.state_dict().items():
        t = theirs[sb3_key(k)]
        gaps.append(float((v - t).abs().max() / (t - before[k]).abs().max().clamp_min(1e-12)))
    return max(gaps)


def sb3_batch(rb: Any, agent: Any) -> Batch:
    """SB3's filled rollout buffer as our Batch, rows in SB3's (env-major) order."""
    n = rb.buffer_size * rb.n_envs

    def flat(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a.swapaxes(0, 1).reshape(n, *a.shape[2:])), dtype=torch.float32)

    actions = flat(rb.actions).reshape(n, *agent.policy.action_shape)
    if agent.policy.action_dtype != np.float32:
        actions = actions.long()
    return Batch(flat(rb.observations), actions, flat(rb.log_probs), flat(rb.values), flat(rb.advantages),
                 flat(rb.returns), None)


class Enough(Exception):
    """Raised inside SB3's learn() to stop it after the rollouts in_lockstep was asked for."""


def in_lockstep(model: Any, total_steps: int, rollouts: int, after_collect: Any) -> None:
    """SB3's learn() over `total_steps` (so schedules see the same progress as ours), calling after_collect(train)
    where SB3 would train, stopped after `rollouts` rollouts."""
    train, done = model.train, [0]

    def train_and_count() -> None:
        after_collect(train)
        done[0] += 1
        if done[0] == rollouts:
            raise Enough

    model.train = train_and_count
    try:
        model.learn(total_steps)
    except Enough:
        pass
    finally:
        model.train = train
    if done[0] != rollouts:
        raise RuntimeError(f"SB3 trained on {done[0]} rollouts, not {rollouts}: total_steps too small")


def sb3_minibatch_orders(passes: int, n: int) -> list[np.ndarray]:
    """The row orders SB3's coming train() will draw from numpy's global generator, one per pass over the rollout
    (PPO: one per epoch), drawn ahead and the generator put back, so SB3 still draws them itself."""
    state = np.random.get_state()
    orders = [np.random.permutation(n) for _ in range(passes)]
    np.random.set_state(state)
    return orders


class ForcedActions:
    """Our policy acting with given actions (SB3's samples, one vector step per call) instead of its own draws:
    log pi(a|s) and V(s) are ours, from our current weights, as our Collector would store them."""

    def __init__(self, policy: Any):
        self.policy = policy
        self.actions: np.ndarray | None = None  # (n_steps, n_envs, *action_shape)
        self.t = 0

    def step(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None,
             deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = torch.as_tensor(self.actions[self.t]).reshape(len(obs), *self.policy.action_shape)
        if self.policy.action_dtype != np.float32:
            a = a.long()
        self.t += 1
        logp, _, values = self.policy.evaluate(obs, a, action_mask)
        return a, logp, values

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.value(obs)

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        return self.policy.env_actions(actions)


class Follower:
    """One of our agents following SB3's run: its own envs (SB3's seeds), Collector and normalizers, acting with
    SB3's sampled actions, updating on its own rollout in SB3's minibatch order."""

    def __init__(self, name: str, agent: Any, env: Any):
        cfg = agent.cfg
        self.name, self.agent = name, agent
        self.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, env.single_observation_space.shape, np.float32,
                                    agent.policy.action_shape, agent.policy.action_dtype)
        self.forced = ForcedActions(agent.policy)
        self.collector = Collector(env, self.forced, "cpu", agent.obs_norm, agent.reward_norm)
        self.collector.reset(seed=cfg.seed)

    def collect(self, actions: np.ndarray) -> RolloutBuffer:
        self.forced.actions, self.forced.t = actions, 0
        self.agent.buffer = self.buffer
        self.agent.collect(self.collector, 10**12, None)
        return self.buffer

    def update(self, orders: list[np.ndarray]) -> None:
        agent, cfg = self.agent, self.agent.cfg
        T, n = self.buffer.pos, cfg.n_envs
        env_major = torch.as_tensor(np.arange(T * n).reshape(T, n).T.reshape(-1))  # SB3's row i: our env_major[i]
        batch = self.buffer.get()
        batch = Batch(*(None if x is None else x[env_major] for x in batch))
        replay = iter(orders)
        rng, agent.rng = agent.rng, SimpleNamespace(permutation=lambda _: next(replay))
        agent.buffer = SimpleNamespace(get=lambda device=None, mask=None: batch)
        for group in agent.optimizer.param_groups:
            group["lr"] = agent.lr()
        with torch.inference_mode() if agent.hand_grad else contextlib.nullcontext():
            agent.update()
        agent.rng, agent.buffer = rng, self.buffer


@dataclass
class Tracked:
    """What track_run measured, one entry per rollout/update."""

    gaps: dict[str, list[float]] = field(default_factory=dict)
    """per pair ("ours-sb3", "autograd-sb3", "ours-autograd"): the largest |weight difference| after each update
    (never reset by copying)"""
    step_size: list[float] = field(default_factory=list)
    """per update: the largest |change| of an SB3 weight in it, the scale the gaps are read against"""
    rollout_gap: list[dict[str, float]] = field(default_factory=list)
    """per rollout, ours against SB3's: largest |difference| of the normalized obs, rewards (SB3's truncation
    bootstrap folded in), advantages and returns"""
    evals: dict[str, float] = field(default_factory=dict)
    """greedy evaluation return at the end, by name: ours, autograd, sb3"""
    steps: int = 0


def _gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((v - b[k]).abs().max()) for k, v in a.items())


def track_run(words: list[str], seed: int = 0, rollouts: int | None = None, eval_episodes: int = 10,
              progress: Any = None) -> Tracked:
    """Train SB3's PPO and two of ours side by side, ours fed SB3's actions and minibatch orders (module docstring):
    "ours" (hand gradients, as rlkit trains small CPU MLPs) and "autograd" (the same rule through autograd:
    different float rounding only, the control). The SB3 side is the bench's SB3 run of `seed`, draw for draw
    (our agents are built first, so they draw nothing from the generators SB3 uses). Default: SB3's whole budget
    (`total_steps` rounded up to whole rollouts, as SB3 trains). Then all three are scored as the bench scores,
    on seed's evaluation episodes. `progress(k, tracked)` is called after each update."""
    from rlkit.bench import Job, _evaluate, _Sb3Actor, build_sb3, sb3_on_policy_total
    from rlkit.train import build

    spec = bench_spec(words, seed)
    followers = []
    for name in ("ours", "autograd"):
        agent, env = build(spec)
        if type(agent).__name__ != "PPO":
            raise ValueError("track_run follows PPO only (SB3 draws A2C's and TRPO's row orders differently)")
        agent.hand_grad = agent.hand_grad and name == "ours"
        followers.append(Follower(name, agent, env))
    model, vecnorm, _ = build_sb3(spec)
    for f in followers:
        copy_weights(model, f.agent)  # the only copy: the same starting point
    cfg = spec.config
    per_rollout = cfg.n_envs * cfg.n_steps
    rollouts = rollouts or sb3_on_policy_total(cfg) // per_rollout
    out = Tracked(gaps={"ours-sb3": [], "autograd-sb3": [], "ours-autograd": []})

    def both(sb3_train: Any) -> None:
        rb = model.rollout_buffer
        actions = rb.actions.copy()
        b = [f.collect(actions) for f in followers][0]
        out.rollout_gap.append({
            "obs": float(np.abs(b.obs - rb.observations.reshape(b.obs.shape)).max()),
            "rewards": float(np.abs(b.rewards + np.where(b.truncated, cfg.gamma * b.final_values, 0.0)
                                    - rb.rewards.reshape(b.rewards.shape)).max()),
            "adv": float(np.abs(b.adv - rb.advantages.reshape(b.adv.shape)).max()),
            "ret": float(np.abs(b.ret - rb.returns.reshape(b.ret.shape)).max()),
        })
        orders = sb3_minibatch_orders(cfg.n_epochs, b.pos * cfg.n_envs)
        before = {k: v.clone() for k, v in model.policy.state_dict().items()}
        sb3_train()
        for f in followers:
            f.update(orders)
        theirs = model.policy.state_dict()
        ours, autograd = ({sb3_key(k): v for k, v in f.agent.policy.state_dict().items()} for f in followers)
        out.gaps["ours-sb3"].append(_gap(ours, theirs))
        out.gaps["autograd-sb3"].append(_gap(autograd, theirs))
        out.gaps["ours-autograd"].append(_gap(ours, autograd))
        out.step_size.append(max(float((v - before[k]).abs().max()) for k, v in theirs.items()))
        out.steps = followers[0].agent.step
        if progress is not None:
            progress(len(out.step_size), out)

    in_lockstep(model, cfg.total_steps, rollouts, both)
    if eval_episodes:  # the bench's scoring: greedy, raw returns, seed's evaluation episodes
        job = Job(0, "x", "x", {}, seed=seed, total_steps=0, eval_every=1, eval_episodes=eval_episodes)
        if vecnorm is not None:
            vecnorm.training = False
        make_env = type(followers[0].agent).make_env
        for name, actor in [*((f.name, f.agent) for f in followers), ("sb3", _Sb3Actor(model, vecnorm))]:
            out.evals[name] = _evaluate(actor, make_env(spec.env_ref, spec.config, training=False), job)
    return out
