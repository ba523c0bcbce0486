"""Our agents against Stable-Baselines3 in lockstep, built as `rlkit bench` builds the two sides.

When a bench's two sides differ, these tests say whether the algorithm differs or only the random draws:
- a rollout each side collects from the same weights and env seeds (actions made near-deterministic by a
  tiny std) holds the same normalized observations, rewards, values, advantages and returns, and leaves
  the same VecNormalize statistics (truncation bootstrap included);
- an update of each side from the same weights, rollout and minibatch order ends at the same weights,
  up to float rounding: under 1e-3 of the update's own step (measured: ~1e-5). PPO and A2C against SB3,
  gradients by hand and by autograd; TRPO against sb3-contrib; Discrete and Box actions;
- DQN's gradient steps on the batches SB3's DQN drew end at SB3's weights.
"""

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from rlkit import replay
from rlkit.bench import plan
from rlkit.lockstep import bench_spec, copy_weights, in_lockstep, make_pair, sb3_batch, sb3_key, track_run, update_gap
from rlkit.rollout import Batch, Collector, RolloutBuffer
from rlkit.runs import resolve_spec

GAUSSIAN = ["use_sde=false", "norm_obs=true", "norm_reward=true", "log_std_init=-1", "lr=3e-4"]
"""ppo pendulum as its preset was before it took the zoo's gSDE config: a plain Gaussian, normalized obs and reward"""


@pytest.mark.parametrize("words", [["agent=ppo", "env=pendulum", *GAUSSIAN], ["agent=ppo", "env=cartpole"],
                                   ["agent=a2c", "env=cartpole"], ["agent=trpo", "env=pendulum"],
                                   ["agent=ppo", "env=pendulum", "log_std_init=-1"]])  # gSDE: the preset's
def test_initial_weights_drawn_as_sb3s(words: list[str]) -> None:
    """The draws the lockstep tests leave out start the same way: every layer initialized from the same
    distribution as SB3's (orthogonal with the same gain: equal singular values; zero biases; the same log std)."""
    if words[0] == "agent=trpo":
        pytest.importorskip("sb3_contrib")
    agent, _, model, _ = make_pair([*words, "threads=1"])
    theirs = model.policy.state_dict()
    for k, v in agent.policy.state_dict().items():
        t = theirs[sb3_key(k)]
        assert v.shape == t.shape, k
        if v.ndim == 2 and not k.endswith("log_std"):  # (gSDE's log std is a matrix, filled with log_std_init)
            np.testing.assert_allclose(torch.linalg.svdvals(v), torch.linalg.svdvals(t), rtol=1e-4, err_msg=k)
            assert not torch.equal(v, t)  # drawn, not copied
        else:
            np.testing.assert_array_equal(v, t, err_msg=k)  # biases 0, log std at log_std_init


@pytest.mark.parametrize(("words", "hand"), [
    (["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256", *GAUSSIAN], True),
    (["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256", *GAUSSIAN], False),
    (["agent=ppo", "env=cartpole", "n_envs=4", "n_steps=64", "batch_size=64", "n_epochs=3"], True),
    (["agent=a2c", "env=cartpole", "n_envs=4", "n_steps=16"], True),
    (["agent=a2c", "env=cartpole", "n_envs=4", "n_steps=16"], False),
    (["agent=a2c", "env=pendulum", "n_envs=4"], True),
    # cg_damping 0.1 (sb3-contrib's default), not the CartPole preset's 1e-3: so little damping leaves the Fisher
    # ill-conditioned and conjugate gradient turns float rounding into % of a step (ours against ours with the
    # rollout's rows reordered: up to 5%), too coarse to tell a different rule from rounding
    (["agent=trpo", "env=cartpole", "n_envs=2", "n_steps=128", "batch_size=64", "n_critic_updates=3",
      "cg_damping=0.1"], False),
    (["agent=trpo", "env=pendulum", "n_envs=2", "n_steps=128", "batch_size=64", "n_critic_updates=3",
      "use_sde=false"], False),
    # gSDE (use_sde): the std of each action is the policy's features through the noise weights' std
    (["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256"], True),  # the preset's gSDE, sde_sample_freq 4
    (["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256"], False),
    (["agent=a2c", "env=pendulum", "n_envs=4", "use_sde=true"], True),
    (["agent=a2c", "env=pendulum", "n_envs=4", "use_sde=true"], False),
    (["agent=trpo", "env=pendulum", "n_envs=2", "n_steps=128", "batch_size=64", "n_critic_updates=3",
      "use_sde=true", "sde_sample_freq=4"], False),
])
def test_update_equals_sb3(words: list[str], hand: bool) -> None:
    """From the same weights and SB3's rollout, in SB3's minibatch order, one update of ours = one of SB3's
    (TRPO: of sb3-contrib's; its natural step, line search and critic epochs)."""
    agent_name = words[0].split("=")[1]
    if agent_name == "trpo":  # sb3-contrib's; it starts conjugate gradient at 1e-4 N(0, 1) noise, ours at 0
        pytest.importorskip("sb3_contrib")
    agent, _, model, _ = make_pair([*words, "threads=1"])
    assert agent.hand_grad == (agent_name != "trpo")  # small CPU MLPs: hand gradients by default (ppo, a2c)
    agent.hand_grad = hand
    gaps: list[float] = []

    def update_both(sb3_train: Any) -> None:
        batch = sb3_batch(model.rollout_buffer, agent)
        # SB3 draws a row order from numpy's global generator for each pass over the rollout: PPO one per
        # epoch; A2C one, for its single full batch; TRPO one for the policy step's full batch, then one per
        # critic epoch. Ours gets the rollout in the full batch's order (sums in the same order: TRPO's
        # conjugate gradient turns rounding into % of a step) and SB3's minibatch orders within it.
        full_pass = agent_name in ("a2c", "trpo")
        passes = {"ppo": getattr(model, "n_epochs", 0), "a2c": 1, "trpo": 1 + getattr(model, "n_critic_updates", 0)}
        state = np.random.get_state()
        orders = [np.random.permutation(len(batch.obs)) for _ in range(passes[agent_name])]
        np.random.set_state(state)
        if full_pass:
            first = orders.pop(0)
            batch = Batch(*(None if x is None else x[torch.as_tensor(first)] for x in batch))
            position = np.argsort(first)  # SB3's row i sits at position[i] of our reordered batch
            orders = [position[o] for o in orders]
        copy_weights(model, agent)
        before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
        sb3_train()
        agent.buffer = SimpleNamespace(get=lambda device=None, mask=None: batch)
        replay = iter(orders)
        agent.rng = SimpleNamespace(permutation=lambda n: next(replay))
        agent.step = model.num_timesteps  # schedules (lr, clip range) at the same progress
        for group in agent.optimizer.param_groups:
            group["lr"] = agent.lr()
        agent.update()
        gaps.append(update_gap(model, agent, before))

    in_lockstep(model, agent.cfg.total_steps, 3, update_both)
    assert len(gaps) == 3
    assert max(gaps) < 1e-3, gaps


@pytest.mark.parametrize("agent_name", ["ppo", "a2c"])
def test_rollout_equals_sb3(agent_name: str) -> None:
    """Same weights, env seeds and (near-deterministic) actions: the same rollout, normalization and GAE."""
    words = [f"agent={agent_name}", "env=pendulum", "n_envs=2", "n_steps=128", "log_std_init=-20", "threads=1",
             *(GAUSSIAN[:3] if agent_name == "ppo" else [])]
    agent, env, model, vecnorm = make_pair(words)
    assert vecnorm is not None and agent.obs_norm is not None and agent.reward_norm is not None
    copy_weights(model, agent)
    cfg = agent.cfg
    agent.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, env.single_observation_space.shape, np.float32,
                                 agent.policy.action_shape, agent.policy.action_dtype)
    collector = Collector(env, agent.policy, "cpu", agent.obs_norm, agent.reward_norm)
    collector.reset(seed=cfg.seed)
    truncations = [0]

    def compare(sb3_train: Any) -> None:
        agent.collect(collector, 10**9, None)
        b, rb = agent.buffer, model.rollout_buffer
        truncations[0] += int(b.truncated.sum())

        def close(ours: Any, theirs: Any) -> None:
            np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(theirs, np.float64).reshape(
                np.shape(ours)), rtol=1e-4, atol=1e-4)

        close(b.obs, rb.observations)
        close(b.actions, rb.actions)
        close(b.values, rb.values)
        # SB3 folds the truncation bootstrap into the reward: r + gamma V(real final obs)
        close(b.rewards + np.where(b.truncated, cfg.gamma * b.final_values, 0.0), rb.rewards)
        close(b.adv, rb.advantages)
        close(b.ret, rb.returns)
        close(agent.obs_norm.rms.mean, vecnorm.obs_rms.mean)
        close(agent.obs_norm.rms.var, vecnorm.obs_rms.var)
        close(agent.reward_norm.rms.var, vecnorm.ret_rms.var)
        assert agent.obs_norm.rms.count == vecnorm.obs_rms.count
        sb3_train()
        copy_weights(model, agent)

    # 3 x 128 steps: every env's first episode truncates at step 200
    in_lockstep(model, agent.cfg.total_steps, 3, compare)
    assert truncations[0] == cfg.n_envs


@pytest.mark.parametrize("numpy_acting", [True, False])
def test_sampled_actions_and_log_probs_equal_sb3s(numpy_acting: bool) -> None:
    """With real exploration noise and means pushed past the bounds: our rollout stores the unclipped sample and
    its log-prob under the policy, as SB3 does (the ratio's denominator), with standard normal noise. Both of
    our acting paths: numpy (small CPU MLPs) and torch."""
    agent, env, model, _ = make_pair(["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256", "log_std_init=0.5",
                                      "threads=1", *GAUSSIAN[:3]])
    with torch.no_grad():
        model.policy.action_net.bias.fill_(1.5)  # the mean at ~1.5: about 1 sample in 3 lies outside [-2, 2]
    copy_weights(model, agent)
    assert agent.policy.numpy_acting_available()
    if not numpy_acting:
        agent.policy.numpy_acting_available = lambda: False
    cfg = agent.cfg
    agent.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, env.single_observation_space.shape, np.float32,
                                 agent.policy.action_shape, agent.policy.action_dtype)
    collector = Collector(env, agent.policy, "cpu", agent.obs_norm, agent.reward_norm)
    collector.reset(seed=cfg.seed)
    agent.collect(collector, 10**9, None)
    b = agent.buffer
    obs, actions = torch.as_tensor(b.obs.reshape(-1, 3)), torch.as_tensor(b.actions.reshape(-1, 1))
    with torch.no_grad():
        values, logp, _ = model.policy.evaluate_actions(obs, actions)
        mean = model.policy.get_distribution(obs).distribution.mean.numpy().ravel()
    assert (np.abs(b.actions) > 2).sum() > 100  # stored unclipped (the env got them clipped)
    np.testing.assert_allclose(b.logp.ravel(), logp.numpy(), atol=1e-5)
    np.testing.assert_allclose(b.values.ravel(), values.numpy().ravel(), atol=1e-5)
    z = (b.actions.ravel() - mean) / np.exp(0.5)
    assert abs(z.mean()) < 0.15 and abs(z.std() - 1) < 0.15, (z.mean(), z.std())  # 512 draws: sd ~0.04 each


def test_bench_scores_both_sides_alike() -> None:
    """The bench's greedy evaluation gives the same returns to the same policy on either side: SB3's trained
    weights and VecNormalize statistics put into ours score what SB3's model scores, episode for episode."""
    from rlkit.bench import Job, _evaluate, _Sb3Actor

    words = ["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=256", "threads=1", *GAUSSIAN]
    agent, _, model, vecnorm = make_pair(words)
    model.learn(2048)  # a policy that is not the initial one, and statistics far from their prior
    copy_weights(model, agent)
    agent.obs_norm.rms.mean = vecnorm.obs_rms.mean.copy()
    agent.obs_norm.rms.var = vecnorm.obs_rms.var.copy()
    vecnorm.training = False
    spec = resolve_spec(plan("bench", [*words, "seeds=[0]"]).jobs[0].values, words)
    job = Job(0, "x", "x", {}, seed=3, total_steps=0, eval_every=1, eval_episodes=3)
    ours = _evaluate(agent, type(agent).make_env(spec.env_ref, spec.config, training=False), job)
    theirs = _evaluate(_Sb3Actor(model, vecnorm), type(agent).make_env(spec.env_ref, spec.config, training=False), job)
    assert ours == pytest.approx(theirs, abs=1e-3), (ours, theirs)
    assert np.abs(vecnorm.obs_rms.var - 1).max() > 0.1  # statistics that matter (1.5 x var moves the score by ~1)


def test_dqn_gradient_steps_equal_sb3() -> None:
    """From the same online and target weights, SB3's DQN train() and ours make the same gradient steps on the
    batches SB3 drew (Huber loss, TD targets that ignore truncation, Adam, global norm clipping)."""
    agent, _, model, _ = make_pair(["agent=dqn", "env=cartpole", "learning_starts=300", "train_freq=64",
                                    "gradient_steps=8", "threads=1"])
    assert not agent.cfg.double_q and agent.hand_grad  # held at SB3's DQN; the hand-gradient path
    names = [k for k in agent.q_net.state_dict()]  # trunk layers then head, as SB3's q_net Sequential
    sb3_online = [k for k in model.policy.state_dict() if k.startswith("q_net.q_net.")]
    assert len(names) == len(sb3_online)

    def copy(prefix: str, net: Any) -> None:
        theirs = model.policy.state_dict()
        net.load_state_dict({k: theirs[prefix + t[len("q_net.q_net."):]].clone() for k, t in zip(
            names, sb3_online, strict=True)})

    gaps: list[float] = []
    train, sample = model.train, model.replay_buffer.sample

    def train_both(gradient_steps: int, batch_size: int) -> None:
        drawn = []
        model.replay_buffer.sample = lambda *a, **kw: drawn.append(sample(*a, **kw)) or drawn[-1]
        copy("q_net.q_net.", agent.q_net)
        copy("q_net_target.q_net.", agent.target_net)
        before = {k: v.clone() for k, v in agent.q_net.state_dict().items()}
        train(gradient_steps, batch_size)
        for d in drawn:
            n = len(d.rewards)
            agent.train_step(replay.Batch(d.observations, d.actions.flatten(), d.rewards.flatten(),
                                          d.next_observations, d.dones.flatten(),
                                          torch.full((n,), agent.cfg.gamma), torch.ones(n),
                                          torch.zeros(n, dtype=torch.int64)))
        theirs = model.policy.state_dict()
        gaps.append(max(float((v - theirs[t]).abs().max() / (theirs[t] - before[k]).abs().max().clamp_min(1e-12))
                        for (k, v), t in zip(agent.q_net.state_dict().items(), sb3_online, strict=True)))
        assert len(drawn) == gradient_steps

    model.train = train_both
    model.learn(300 + 3 * 64)
    assert len(gaps) >= 3 and max(gaps) < 1e-3, gaps


def test_whole_run_lockstep_follows_the_bench_s_sb3_run_draw_for_draw() -> None:
    """rlkit.lockstep.track_run (bench/lockstep_sb3.py): its SB3 side is the bench's SB3 run of the seed (our
    followers draw nothing SB3 draws), the first rollout and update agree to float rounding on every pair, and the
    three policies are scored on the bench's episodes."""
    from rlkit.bench import Job, _evaluate, _Sb3Actor, build_sb3

    words = ["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=128", "batch_size=64", "n_epochs=2",
             "total_steps=768", "threads=1", *GAUSSIAN]
    tracked = track_run(words, seed=1, eval_episodes=2)
    assert len(tracked.step_size) == 3 and tracked.steps == 768
    assert all(len(g) == 3 and g[0] < 1e-5 for g in tracked.gaps.values()), tracked.gaps
    assert max(tracked.rollout_gap[0].values()) < 1e-5, tracked.rollout_gap[0]
    assert tracked.step_size[0] > 1e-3  # the first update moved the weights by far more than the gaps
    spec = bench_spec(words, seed=1)
    model, vecnorm, _ = build_sb3(spec)  # SB3 alone, as the bench's SB3 job of seed 1
    model.learn(768)
    vecnorm.training = False
    job = Job(0, "x", "x", {}, seed=1, total_steps=0, eval_every=1, eval_episodes=2)
    alone = _evaluate(_Sb3Actor(model, vecnorm), type(make_pair(words)[0]).make_env(spec.env_ref, spec.config,
                                                                                   training=False), job)
    assert tracked.evals["sb3"] == alone
    assert set(tracked.evals) == {"ours", "autograd", "sb3"} and all(-2000 < v < 0 for v in tracked.evals.values())
