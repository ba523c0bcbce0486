"""`rlkit bench` and `rlkit sweep`: the SB3 mapping tables, the statistics, a tiny bench end to end,
reference benches, sweep grids, failures that are reported rather than lost (local and Ray), bad input."""

import csv
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rlkit import bench, sb3map, stats
from rlkit.config import to_dict
from rlkit.runs import _flat, resolve_spec

# tiny DQN settings for end-to-end runs: a few thousand steps in seconds
TINY_DQN = ["net.hidden=[32]", "learning_starts=200", "train_freq=4", "gradient_steps=1", "buffer_size=5000",
            "target_update_interval=250"]

CRASH_ENV = '''
import os
import gymnasium as gym


class CrashEnv(gym.Env):
    """A 4-state chain; with crash=true, building it kills the whole process (and logs the death to `log`)."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, crash=False, log=None):
        if crash:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\\n")
            os._exit(1)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action):
        self.t += 1
        return self.t % 4, float(action), False, self.t >= 10, {}
'''
# a two-config sweep of a cheap agent on it: one config finishes, the other's process dies
CRASH_SWEEP = ["agent=q_learning", "env.crash=[false,true]", "total_steps=200", "eval_every=100", "eval_episodes=1"]


def _dqn_flat(*words):
    values = {"agent": "dqn", "env": "cartpole"}
    for w in words:
        k, v = w.split("=", 1)
        values[k] = v
    from rlkit.overrides import parse_words

    spec = resolve_spec(parse_words([f"{k}={v}" for k, v in values.items()]), [])
    return _flat(to_dict(spec.config))


# --------------------------------------------------------------------------------------------------
# mapping tables


def test_dqn_config_translates_to_sb3_kwargs_exactly():
    setup = sb3map.translate("dqn", _dqn_flat("double_q=false", "seed=3"))
    assert setup.algo == "stable_baselines3:DQN" and setup.policy == "MlpPolicy"
    assert setup.kwargs == {
        "seed": 3, "learning_rate": 2.3e-3, "buffer_size": 100_000, "learning_starts": 1000, "batch_size": 64,
        "gamma": 0.99, "train_freq": 256, "gradient_steps": 128, "target_update_interval": 10, "tau": 1.0,
        "exploration_initial_eps": 1.0, "exploration_final_eps": 0.04, "exploration_fraction": 0.16,
        "max_grad_norm": 10.0, "device": "auto",
        "policy_kwargs": {"net_arch": [256, 256], "activation_fn": torch.nn.ReLU},
    }
    assert (setup.n_envs, setup.async_envs, setup.total_timesteps, setup.vec_normalize) == (1, False, 50_000, None)
    unmapped = {k: (v, why) for k, v, why in setup.unmapped}
    # nothing silently dropped: every key is translated, set by the harness, or listed with its value
    assert {k for k, _ in setup.mapped} | set(unmapped) == set(_dqn_flat())
    assert not any(why == "not in the mapping table" for _, why in unmapped.values())
    assert unmapped["double_q"] == (False, "no SB3 option; SB3 behaves as False")
    assert unmapped["per_alpha"] == (0.6, "no SB3 equivalent")
    assert ("double_q", True, "no SB3 option; SB3 behaves as False (differs from ours)") in \
        sb3map.translate("dqn", _dqn_flat()).unmapped  # our default is double Q
    # epsilon.end=null means "stay at start" on our side, so SB3 gets start as its final value
    assert sb3map.translate("dqn", _dqn_flat("epsilon=0.2")).kwargs["exploration_final_eps"] == 0.2
    # image observations pick the CNN policy, as our nets do
    assert sb3map.translate("dqn", {"net.type": None}, image_obs=True).policy == "CnnPolicy"


def test_bench_holds_our_keys_at_sb3_behaviour_unless_told():
    p = bench.plan("bench", ["agent=dqn", "env=cartpole", "seeds=1", "double_q=true", "runs.dir=runs"])
    assert "double_q" not in p.aligned and p.aligned["n_step"] == 1 and p.aligned["loss"] == "huber"
    assert all(j.values["double_q"] is True for j in p.jobs) and [j.side for j in p.jobs] == ["rlkit", "sb3"]
    assert p.threshold == 475.0  # CartPole-v1's reward_threshold when threshold= is not given


@pytest.mark.parametrize("agent,module,cls", [("ppo", "stable_baselines3", "PPO"), ("a2c", "stable_baselines3", "A2C"),
                                              ("trpo", "sb3_contrib", "TRPO")])
def test_on_policy_tables_translate_config_dicts(agent, module, cls):
    sb3_cls = getattr(pytest.importorskip(module), cls)
    flat = {"seed": 1, "total_steps": 20_000, "threads": 1, "n_envs": 8, "n_steps": 32, "lr": 3e-4, "gamma": 0.98,
            "gae_lambda": 0.8, "normalize_advantage": True, "norm_obs": True, "norm_reward": False,
            "net.type": "mlp", "net.hidden": [64, 64], "net.activation": "tanh", "device": "cpu",
            "our_new_trick": 7}
    extra = {"ppo": {"batch_size": 256, "n_epochs": 20, "clip_range": 0.2, "ent_coef": 0.0, "vf_coef": 0.5,
                     "max_grad_norm": 0.5, "target_kl": None},
             "a2c": {"ent_coef": 0.01, "vf_coef": 0.25, "max_grad_norm": 0.5, "use_rms_prop": True},
             "trpo": {"batch_size": 128, "target_kl": 0.01, "cg_max_steps": 15, "n_critic_updates": 10}}[agent]
    setup = sb3map.translate(agent, {**flat, **extra})
    assert setup.algo == f"{module}:{cls}" and setup.policy == "MlpPolicy"
    assert setup.kwargs == {"seed": 1, "n_steps": 32, "learning_rate": 3e-4, "gamma": 0.98, "gae_lambda": 0.8,
                            "normalize_advantage": True, "device": "cpu",
                            "policy_kwargs": {"net_arch": [64, 64], "activation_fn": torch.nn.Tanh}, **extra}
    assert (setup.n_envs, setup.total_timesteps) == (8, 20_000)
    assert setup.vec_normalize == {"gamma": 0.98, "norm_obs": True, "norm_reward": False}
    assert ("our_new_trick", 7, "not in the mapping table") in setup.unmapped
    # every keyword a table can produce is a real argument of the SB3 class
    params = set(inspect.signature(sb3_cls.__init__).parameters)
    targets = {t for t in sb3map.TABLES[agent].keys.values() if isinstance(t, str) and t != sb3map.HARNESS}
    kwargs = {t for t in targets if "." not in t and t != "policy"}
    assert kwargs <= params, kwargs - params
    vecnorm = {t.split(".", 1)[1] for t in targets if t.startswith("VecNormalize.")}
    from stable_baselines3.common.vec_env import VecNormalize

    assert vecnorm <= set(inspect.signature(VecNormalize.__init__).parameters)


# --------------------------------------------------------------------------------------------------
# statistics


def test_iqm_and_bootstrap_ci():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (1, 4, 5, 10, 37):
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    assert stats.iqm(x) == pytest.approx(3.0)  # the outlier is cut
    lo, hi = stats.bootstrap_ci(x)
    assert lo <= stats.iqm(x) <= hi and (lo, hi) == stats.bootstrap_ci(x)  # seeded: reproducible
    wide = stats.bootstrap_ci(rng.normal(size=5))
    narrow = stats.bootstrap_ci(rng.normal(size=500), reps=300)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert stats.median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0, 4.0) and stats.median_iqr([]) is None
    assert bench.parse_seeds(3) == [0, 1, 2] and bench.parse_seeds("2..4") == [2, 3, 4]


def test_difference_ci_and_probability_of_improvement():
    rng = np.random.default_rng(1)
    same_a, same_b = rng.normal(size=40), rng.normal(size=40)
    d, lo, hi = stats.difference_ci(same_a, same_b)
    assert d == pytest.approx(stats.iqm(same_a) - stats.iqm(same_b)) and lo < 0 < hi  # one distribution
    d, lo, hi = stats.difference_ci(same_a + 3.0, same_b)
    assert 0 < lo < d < hi  # shifted by 3 standard deviations: resolved
    assert stats.difference_ci(same_a, same_b) == stats.difference_ci(same_a, same_b)  # seeded: reproducible
    shared = rng.normal(scale=10.0, size=40)  # what both sides of a seed share (its evaluation episodes)
    _, lo_i, hi_i = stats.difference_ci(shared + same_a + 2.0, shared + same_b)
    d, lo_p, hi_p = stats.difference_ci(shared + same_a + 2.0, shared + same_b, paired=True)
    assert lo_i < 0 < hi_i and 0 < lo_p < d < hi_p  # pairing cancels the shared part: the shift shows
    with pytest.raises(ValueError, match="equal lengths"):
        stats.difference_ci([1.0, 2.0], [1.0], paired=True)
    assert stats.probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert stats.probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert stats.probability_of_improvement([1, 3], [2, 3]) == pytest.approx((0 + 0 + 1 + 0.5) / 4)
    assert np.isnan(stats.probability_of_improvement([], [1.0]))
    assert bench.parse_seeds([5, 1]) == [5, 1]


# --------------------------------------------------------------------------------------------------
# end to end


def _rows(out: Path) -> list[dict]:
    return list(csv.DictReader(open(out / "results.csv")))


def test_bench_evaluation_episodes_are_paired_across_sides_and_disjoint_across_seeds(monkeypatch):
    from rlkit import evaluation

    played: dict[tuple[str, int], list[int]] = {}

    def record(agent, env, episodes, seed, deterministic):
        played[agent] = list(range(seed, seed + episodes))  # episode i is reset with seed + i
        return {"return_mean": 0.0}

    monkeypatch.setattr(evaluation, "evaluate", record)
    for seed in (0, 1, 2, 7):
        for side in ("rlkit", "sb3"):
            bench._evaluate((side, seed), None, bench.Job(0, side, side, {}, seed, 1000, 100, 4))
    for seed in (0, 1, 2, 7):
        assert played[("rlkit", seed)] == played[("sb3", seed)]  # both sides play the same episodes
    seen = [e for (side, _), eps in played.items() if side == "rlkit" for e in eps]
    assert len(seen) == len(set(seen)) == 16 and min(seen) >= evaluation.EVAL_SEED_OFFSET  # no seed shares one


def test_tiny_bench_writes_results_report_and_curves_with_both_sides(cli, tmp_path):
    # workers=0 runs in this process (no ~5 s of imports per fresh process); the local test below spawns
    rc, out, err = cli("bench", "agent=dqn", "env=cartpole", "seeds=2", "total_steps=2000", "eval_every=1000",
                       "eval_episodes=2", "workers=0", f"runs.dir={tmp_path}", *TINY_DQN)
    assert rc == 0, out + err
    folder = Path(out.strip().splitlines()[-1])
    assert folder.name.startswith("bench-dqn-cartpole-")
    rows = _rows(folder)
    assert {(r["side"], r["seed"], r["step"]) for r in rows} == {
        (side, seed, step) for side in ("rlkit", "sb3") for seed in ("0", "1") for step in ("1000", "2000")}
    assert all(float(r["eval"]) > 0 and float(r["train_steps_per_s"]) > 0 for r in rows)
    report = (folder / "report.md").read_text()
    assert "| figure | rlkit | SB3 | ratio rlkit/SB3 |" in report
    for needle in ("success (eval >= 475", "IQM [95% bootstrap CI]", "training steps/s", "peak resident memory",
                   "torch.set_num_threads(1)", "stable-baselines3 ", "Machine:", "`lr` -> `learning_rate`",
                   "| `per_alpha` | 0.6 | no SB3 equivalent |", "in the calling process",
                   "Final eval, rlkit - SB3: IQM difference", "run of ours ends above a run of SB3's"):
        assert needle in report, needle
    assert "on-policy, so on both sides after the update" not in report  # dqn: evaluated at the step itself
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [json.loads(line) for line in open(folder / "runs.jsonl")]
    assert len(runs) == 4 and all(r["error"] is None and r["peak_rss_mb"] > 50 for r in runs)
    assert "[4/4 done]" in err  # the progress display covers every seed and side


def test_interrupted_bench_reports_the_runs_that_finished(cli, tmp_path, monkeypatch):
    """Ctrl-C during a bench: exit 130 with one line, and results.csv, report.md and curves.png cover the runs
    that finished; a run the interrupt itself stopped (its worker got the signal too) is not listed as failed."""
    real = bench.run_inline

    def two_runs_then_ctrl_c(jobs, on_result, progress):
        real(jobs[:2], on_result, progress)  # seed 0, both sides
        on_result(bench.BenchRun(jobs[2].id, jobs[2].label, jobs[2].side, jobs[2].seed,
                                 error="Traceback (most recent call last):\n  ...\nKeyboardInterrupt\n"))
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run_inline", two_runs_then_ctrl_c)
    rc, out, err = cli("bench", "agent=dqn", "env=cartpole", "seeds=2", "total_steps=1000", "eval_every=1000",
                       "eval_episodes=2", "workers=0", f"runs.dir={tmp_path}", *TINY_DQN)
    assert rc == 130, out + err
    folder = Path(out.strip().splitlines()[-1])
    assert {(r["side"], r["seed"]) for r in _rows(folder)} == {("rlkit", "0"), ("sb3", "0")}
    report = (folder / "report.md").read_text()
    assert "interrupted (Ctrl-C) after 2 of 4 runs" in report and "| runs finished | 1 | 1 |" in report
    assert "failed" not in report.lower() and "Traceback" not in err
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert err.strip().splitlines()[-1] == (f"rlkit: interrupted (Ctrl-C) after 2 of 4 runs; results.csv, report.md "
                                            f"and curves.png in {folder} cover those")


def test_reference_bench_reproduces_the_rooms_q_matrix(cli, tmp_path):
    rc, out, err = cli("bench", "agent=q_learning", "env=rooms", "seeds=1", "workers=0", f"runs.dir={tmp_path}")
    assert rc == 0, out + err
    folder = Path(out.strip().splitlines()[-1])
    report = (folder / "report.md").read_text()
    assert "| figure | rlkit | reference | ratio rlkit/reference |" in report
    assert "| success (within 0.5 of 0 at some evaluation) | 1/1 |" in report
    assert all(line.count("|") == 5 for line in report.splitlines() if line.startswith("| final"))
    rows = _rows(folder)
    assert rows[0]["side"] == "reference" and float(rows[0]["eval"]) == 0.0
    ours = [float(r["eval"]) for r in rows if r["side"] == "rlkit"]
    assert ours[0] > 10 and ours[-1] < 0.5  # far from the notes' matrix early, on it at the end


@pytest.mark.parametrize("agent", ["es", "reinforce"])
def test_agents_without_sb3_bench_against_the_cartpole_maximum_with_the_greedy_evaluation(cli, tmp_path, agent):
    rc, out, err = cli("bench", f"agent={agent}", "env=cartpole", "seeds=1", "workers=0", "total_steps=10000",
                       "eval_every=5000", "eval_episodes=3", f"runs.dir={tmp_path}")
    assert rc == 0, out + err
    folder = Path(out.strip().splitlines()[-1])
    report = (folder / "report.md").read_text()
    assert "| figure | rlkit | reference | ratio rlkit/reference |" in report
    assert "episode i of seed s: env seed 10000 + 3 s + i" in report  # the greedy evaluation's episodes
    rows = _rows(folder)
    assert rows[0]["side"] == "reference" and float(rows[0]["eval"]) == 500.0
    ours = [(int(r["step"]), float(r["eval"])) for r in rows if r["side"] == "rlkit"]
    assert [s for s, _ in ours][-1] >= 10_000 and all(9 <= v <= 500 for _, v in ours)  # real CartPole returns


def test_sweep_grid_and_a_dead_local_worker_is_reported(cli, tmp_path):
    env_file = tmp_path / "crash_env.py"
    env_file.write_text(CRASH_ENV)
    log = tmp_path / "deaths.txt"
    rc, out, err = cli("sweep", *CRASH_SWEEP, f"env={env_file}:CrashEnv", f"env.log={log}", "workers=2",
                       f"runs.dir={tmp_path}")
    assert rc == bench.EXIT_SOME_FAILED, out + err
    folder = Path(out.strip().splitlines()[-1])
    rows = _rows(folder)
    assert {r["side"] for r in rows} == {"env.crash=False"} and len(rows) == 2  # the finished run is kept
    report = (folder / "report.md").read_text()
    assert "| env.crash=True | 0 | worker process died (exit code 1) |" in report
    assert "| config | runs finished | final eval return (raw), IQM [95% bootstrap CI] |" in report
    assert "\n|---|---|---|---|---|\n| env.crash=False | 1 | 10.0 [10.0, 10.0] |" in report  # greedy: action 1
    assert len(log.read_text().split()) == 1


def test_sweep_plans_the_grid():
    p = bench.plan("sweep", ["agent=dqn", "env=cartpole", "seeds=0..1", "lr=[1e-4,3e-4]", "net.hidden=[64,64]",
                             "runs.dir=runs"])
    assert p.labels == ["lr=0.0001", "lr=0.0003"] and len(p.jobs) == 4
    assert all(j.values["net.hidden"] == [64, 64] and j.side == "rlkit" for j in p.jobs)
    assert [(j.values["lr"], j.seed) for j in p.jobs] == [(1e-4, 0), (1e-4, 1), (3e-4, 0), (3e-4, 1)]
    p = bench.plan("sweep", ["agent=dqn", "env=cartpole", "net.hidden=[[8],[16,16]]", "runs.dir=runs"])
    assert p.labels == ["net.hidden=[8]", "net.hidden=[16,16]"]


@pytest.mark.parametrize("words,needle", [
    (["agent=gradient_bandit", "env=bandit"], "no Stable-Baselines3 mapping and no reference figures"),
    (["agent=q_learning", "env=rooms", "against=sb3"], "has no Stable-Baselines3 mapping"),
    (["agent=dqn", "env=cartpole", "against=reference"], "no reference figures for agent=dqn env=cartpole"),
    (["agent=dqn", "env=cartpole", "seeds=abc"], "seeds='abc'"),
    (["agent=dqn", "env=cartpole", "seed=1"], "takes seeds=N"),
    (["agent=dqn", "env=cartpole", "lrr=0.1"], "did you mean 'lr'"),
    (["agent=dqn", "env=cartpole", "backend=spark"], "backend='spark'"),
])
def test_bench_bad_input_is_one_line_exit_2(cli, tmp_path, words, needle):
    rc, out, err = cli("bench", *words, f"runs.dir={tmp_path}")
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing half-written


# --------------------------------------------------------------------------------------------------
# Ray


def test_interrupted_ray_sweep_cancels_the_unfinished_tasks_and_reports_the_finished(cli, tmp_path, monkeypatch):
    """Ctrl-C during a Ray sweep: the tasks not yet finished are cancelled (on a shared cluster they would run on
    for nobody), and the report covers the finished run with Ray's version in it."""
    ray = pytest.importorskip("ray")
    cancelled, real_cancel, real_finished = [], ray.cancel, bench.Progress.finished

    def cancel(ref, **kw):
        cancelled.append(ref)
        return real_cancel(ref, **kw)

    def ctrl_c_after_the_first(self, run):
        real_finished(self, run)
        raise KeyboardInterrupt

    monkeypatch.setattr(ray, "cancel", cancel)
    monkeypatch.setattr(bench.Progress, "finished", ctrl_c_after_the_first)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        rc, out, err = cli("sweep", "agent=q_learning", "env=rooms", "lr=[0.1,0.5]", "seeds=2", "total_steps=200",
                           "eval_every=100", "eval_episodes=1", "backend=ray", f"runs.dir={tmp_path}")
    finally:
        ray.shutdown()
    assert rc == 130, out + err
    assert len(cancelled) == 3  # 4 tasks, 1 finished
    folder = Path(out.strip().splitlines()[-1])
    assert len({(r["side"], r["seed"]) for r in _rows(folder)}) == 1
    report = (folder / "report.md").read_text()
    assert "interrupted (Ctrl-C) after 1 of 4 runs" in report and f"ray {ray.__version__}" in report
    assert "Traceback" not in err


def test_ray_sweep_finishes_one_task_and_reports_the_killed_one(cli, tmp_path):
    ray = pytest.importorskip("ray")
    env_file = tmp_path / "crash_env.py"
    env_file.write_text(CRASH_ENV)
    log = tmp_path / "deaths.txt"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rc, out, err = cli("sweep", *CRASH_SWEEP, f"env={env_file}:CrashEnv", f"env.log={log}", "backend=ray",
                           "ray.retries=1", f"runs.dir={tmp_path}")
    finally:
        ray.shutdown()
    assert rc == bench.EXIT_SOME_FAILED, out + err
    folder = Path(out.strip().splitlines()[-1])
    rows = _rows(folder)
    assert [(r["side"], r["step"]) for r in rows] == [("env.crash=False", "100"), ("env.crash=False", "200")]
    assert len(log.read_text().split()) == 2  # killed, retried once, killed again
    report = (folder / "report.md").read_text()
    assert "| env.crash=True | 0 | WorkerCrashedError" in report and "Ray tasks" in report
    assert "env.crash=False seed 0: step 100/200, eval" in err  # progress comes back from the tasks
    runs = [json.loads(line) for line in open(folder / "runs.jsonl")]
    assert sorted(r["error"] is None for r in runs) == [False, True]


def test_sb3_side_runs_box_actions_with_vecnormalize():
    """Our PPO does not exist on this branch: drive the SB3 side with a PPO-shaped config on Pendulum."""
    from dataclasses import dataclass, field
    from types import SimpleNamespace

    import envs
    from rlkit.config import NetConfig

    @dataclass(frozen=True)
    class PPOLike:
        seed: int = 0
        total_steps: int = 256
        threads: int = 1
        n_envs: int = 2
        n_steps: int = 64
        batch_size: int = 64
        n_epochs: int = 1
        lr: float = 3e-4
        norm_obs: bool = True
        norm_reward: bool = True
        net: NetConfig = field(default_factory=lambda: NetConfig(hidden=[16]))

    spec = SimpleNamespace(agent="ppo", env_ref=envs.resolve("pendulum"), config=PPOLike())
    job = bench.Job(0, "sb3", "sb3", {}, 0, 256, eval_every=128, eval_episodes=1)
    evals = []
    mark, steps, train_s = bench._run_sb3(spec, job, lambda s, w, v: evals.append((s, v)))
    assert steps == 256 and [s for s, _ in evals] == [128, 256] and train_s > 0
    assert all(-2000 < v < 0 for _, v in evals)  # raw Pendulum returns (200 steps of cost), not normalized ones


@pytest.mark.parametrize("agent", ["ppo", "a2c"])
def test_both_sides_are_evaluated_after_the_same_updates(agent):
    """On-policy: each evaluation (and the final one) scores a policy after as many updates on either side:
    after the update of the rollout that reached the evaluation point; at the end, the model learn() returns."""
    pytest.importorskip("stable_baselines3")
    words = [f"agent={agent}", "env=pendulum", "n_envs=2", "n_steps=64", "total_steps=500", "seeds=[0]",
             "eval_every=200", "eval_episodes=1"]
    job = bench.plan("bench", words).jobs[0]
    spec = resolve_spec(job.values, words)
    points = {}
    for side, run in (("rlkit", bench._run_ours), ("sb3", bench._run_sb3)):
        points[side] = []
        run(spec, job, lambda step, train_s, value, side=side: points[side].append(step))
    # rollouts of 2 x 64 = 128 steps; SB3 finishes the one that crosses 500, and ours is given the same budget
    assert job.total_steps == bench.sb3_on_policy_total(spec.config) == 512 and spec.config.total_steps == 500
    assert points == {"rlkit": [256, 512], "sb3": [256, 512]}
    assert [s // 128 for s in points["rlkit"]] == [s // 128 for s in points["sb3"]] == [2, 4]


def test_only_an_on_policy_bench_against_sb3_rounds_the_budget_up_to_whole_rollouts():
    """SB3's on-policy algorithms end on a whole rollout; its off-policy ones, sweeps and reference benches keep
    total_steps as given (ours then ends at total_steps, with a shorter last rollout if need be)."""
    pytest.importorskip("stable_baselines3")
    common = ["env=cartpole", "total_steps=1000", "seeds=[0]"]
    ppo = bench.plan("bench", ["agent=ppo", "n_envs=2", "n_steps=64", *common])
    assert [j.total_steps for j in ppo.jobs] == [1024, 1024]  # 8 rollouts of 128, both sides
    assert [j.total_steps for j in bench.plan("bench", ["agent=a2c", "n_envs=8", "n_steps=5", *common]).jobs] \
        == [1000, 1000]  # 25 rollouts of 40 exactly
    assert [j.total_steps for j in bench.plan("bench", ["agent=dqn", *common]).jobs] == [1000, 1000]
    assert [j.total_steps for j in bench.plan("sweep", ["agent=ppo", "n_envs=2", "n_steps=64", *common]).jobs] \
        == [1000]
    from rlkit.benchreport import _whole_rollouts

    assert "total_steps=1,000 rounded up to whole rollouts of 2 x 64" in _whole_rollouts(ppo)
    assert _whole_rollouts(bench.plan("bench", ["agent=dqn", *common])) == ""


def test_report_names_the_update_aligned_evaluation_for_on_policy_agents_only():
    from rlkit.benchreport import _on_policy

    assert [_on_policy(a) for a in ("ppo", "a2c", "trpo", "reinforce")] == [True] * 4
    assert [_on_policy(a) for a in ("dqn", "es", "q_learning")] == [False] * 3


def test_throughput_spans_hold_the_same_updates_on_both_sides(monkeypatch):
    """steps/s is counted after measure_after: on both sides the span starts after the update of the rollout that
    reached it, so it holds as many updates as rollouts (a clock that advances only in updates counts them)."""
    import agents.ppo

    pytest.importorskip("stable_baselines3")
    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])

    def ticking(update):
        def wrapped(*args, **kwargs):
            clock[0] += 1.0
            return update(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(agents.ppo.PPO, "update", ticking(agents.ppo.PPO.update))
    build_sb3 = bench.build_sb3

    def ticking_sb3(spec):
        model, vecnorm, setup = build_sb3(spec)
        model.train = ticking(model.train)
        return model, vecnorm, setup

    monkeypatch.setattr(bench, "build_sb3", ticking_sb3)
    words = ["agent=ppo", "env=pendulum", "n_envs=2", "n_steps=64", "n_epochs=1", "total_steps=512", "seeds=[0]",
             "eval_every=512", "eval_episodes=1", "measure_after=128"]
    job = bench.plan("bench", words).jobs[0]
    spec = resolve_spec(job.values, words)
    for run in (bench._run_ours, bench._run_sb3):
        mark, steps, train_s = run(spec, job, lambda *a: None)
        # 4 rollouts of 128 steps; the span after step 128 holds rollouts 2-4 and their 3 updates
        assert (mark[0], steps, train_s - mark[1]) == (128, 512, 3.0), run.__name__


@pytest.mark.parametrize("agent", ["ppo", "a2c", "trpo"])
def test_our_on_policy_configs_are_fully_covered_and_schedules_translate(agent):
    """Every key of our agent's resolved CartPole config is translated, set by the harness or listed with a
    reason; annealed lr and clip range become SB3 schedules equal to ours along training."""
    from rlkit import schedules
    from rlkit.config import to_dict
    from rlkit.overrides import parse_words

    spec = resolve_spec(parse_words([f"agent={agent}", "env=cartpole"]), [])
    flat = _flat(to_dict(spec.config))
    setup = sb3map.translate(agent, flat)
    assert not [u for u in setup.unmapped if u[2] == "not in the mapping table"], setup.unmapped
    cfg = spec.config
    lr = setup.kwargs["learning_rate"]
    for progress in (0.0, 0.3, 1.0):
        ours = schedules.linear(cfg.lr, 0.0, progress) if cfg.anneal_lr else cfg.lr
        assert (lr(1 - progress) if callable(lr) else lr) == pytest.approx(ours)
        if agent == "ppo":
            clip = setup.kwargs["clip_range"]
            assert callable(clip) and clip(1 - progress) == pytest.approx(schedules.value(cfg.clip_range, progress))
    if agent == "ppo":  # the zoo's CartPole preset anneals both (lin_1e-3, lin_0.2)
        assert callable(lr) and setup.kwargs["clip_range"](1.0) == pytest.approx(0.2)
        import pickle

        assert pickle.loads(pickle.dumps(lr))(0.5) == pytest.approx(lr(0.5))
    if agent == "trpo":
        assert ("ent_coef", 0.0, "no SB3 option; SB3 behaves as 0.0") in setup.unmapped


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_cnn_policies_get_no_mlp_after_the_nature_cnn(agent):
    """Our Nature CNN feeds its 512 features straight into the heads; SB3's CnnPolicy must too (net_arch=[])."""
    from rlkit.config import to_dict
    from rlkit.overrides import parse_words

    spec = resolve_spec(parse_words([f"agent={agent}", "env=pong"]), [])
    setup = sb3map.translate(agent, _flat(to_dict(spec.config)), image_obs=True)
    assert setup.policy == "CnnPolicy" and setup.kwargs["policy_kwargs"]["net_arch"] == []
    assert "activation_fn" not in setup.kwargs["policy_kwargs"]
    assert any(k == "net.hidden" and "net_arch=[]" in why for k, _, why in setup.unmapped)


def _bench_script(name: str) -> Any:
    """bench/<name>.py loaded as a module (the bench scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(bench.__file__).parent.parent / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_finals_recomputes_the_report_line_from_a_results_csv(tmp_path, capsys, monkeypatch):
    module = _bench_script("compare_finals")
    path = tmp_path / "results.csv"
    rows = ["side,seed,step,train_wall_s,eval,train_steps_per_s,peak_rss_mb"]
    for seed, (ours, theirs) in enumerate([(10, 8), (20, 19), (30, 27), (40, 41)]):
        rows += [f"rlkit,{seed},100,1.0,-500,1,1", f"rlkit,{seed},200,2.0,{ours},1,1",
                 f"sb3,{seed},100,1.0,-500,1,1", f"sb3,{seed},200,2.0,{theirs},1,1"]
    path.write_text("\n".join(rows) + "\n")
    assert module.finals_by_side(path) == {"rlkit": {0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0},
                                           "sb3": {0: 8.0, 1: 19.0, 2: 27.0, 3: 41.0}}
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path)])
    assert module.main() == 0
    out = capsys.readouterr().out
    # IQM of 4 = mean of the middle 2: (20 + 30) / 2 - (19 + 27) / 2 = 2; the last step's eval, not the first
    assert "IQM difference +2.0" in out and "seeds resampled in pairs" in out and "4 seeds" in out
    (tmp_path / "notes.txt").write_text("# not a results file\n")
    for bad, message in ((tmp_path / "missing.csv", "cannot read"), (tmp_path / "notes.txt", "not a bench results")):
        monkeypatch.setattr("sys.argv", ["compare_finals.py", str(bad)])
        assert module.main() == 2
        assert message in capsys.readouterr().err


def test_report_ratio_of_figures_that_are_not_both_positive_is_not_printed():
    """A final IQM of 35.3 against -4.3 is no 'ratio -8.19' (bench a2c lunarlander printed that), nor is -227.8
    against -198.2 a 'ratio 1.15' (ours is the worse there); positive figures get their quotient."""
    from rlkit.benchreport import _ratio

    def side(final: float) -> dict:
        return {"final": (final, final - 1, final + 1), "finished": 3}

    assert _ratio(side(35.3), side(-4.3), "final") == "- (not both positive)"
    assert _ratio(side(-227.8), side(-198.2), "final") == "- (not both positive)"
    assert _ratio(side(30.0), side(20.0), "final") == "1.50"
    assert _ratio(side(5.0), side(0.0), "final") == "-"


def test_report_comparison_pairs_the_seeds_both_sides_ran_and_names_the_rest():
    """A seed one side lacks (a failed or interrupted run) is left out and named; the rest stay paired."""
    from rlkit.benchreport import comparison

    ours, theirs = {4: 99.0, 0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0}, {0: 8.0, 1: 19.0, 2: 27.0, 3: 41.0, 5: -99.0}
    line = comparison({"rlkit": {"final_by_seed": ours}, "sb3": {"final_by_seed": theirs}})[0]
    d, lo, hi = stats.difference_ci([10, 20, 30, 40], [8, 19, 27, 41], paired=True)
    assert f"IQM difference {d:+,.1f}, 95% bootstrap CI [{lo:+,.1f}, {hi:+,.1f}]" in line and d == 2.0
    assert "seeds resampled in pairs" in line and "; 4 seeds; seeds only one side ran, left out: rlkit 4; SB3 5" in line
    assert f"{stats.probability_of_improvement([10, 20, 30, 40], [8, 19, 27, 41]):.2f}." in line
    # one seed in common is no pairing: each side over its own seeds, and the line says why
    line = comparison({"rlkit": {"final_by_seed": {0: 1.0, 1: 2.0}}, "sb3": {"final_by_seed": {1: 0.0, 2: 5.0}}})[0]
    assert "each side resampled over its own 2 / 2 seeds (fewer than 2 seeds in common)" in line


def test_compare_finals_combines_the_runs_of_several_files(tmp_path, capsys, monkeypatch):
    """--combine: one comparison over the union of the files' seeds; a seed in two files must end alike there."""
    module = _bench_script("compare_finals")
    header = "side,seed,step,train_wall_s,eval,train_steps_per_s,peak_rss_mb"

    def results(name: str, finals: dict[int, tuple[float, float]]) -> Path:
        rows = [header] + [f"{side},{seed},200,2.0,{v},1,1" for seed, pair in finals.items()
                           for side, v in zip(("rlkit", "sb3"), pair)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
        return tmp_path / name

    a = results("a.csv", {0: (10, 8), 1: (20, 19)})
    b = results("b.csv", {1: (20, 19), 2: (30, 27), 3: (40, 41)})  # seed 1 again, ending alike
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(a), str(b), "--combine"])
    assert module.main() == 0
    out = capsys.readouterr().out
    # seeds 0-3 once each: IQM of 4 = mean of the middle 2, (20 + 30) / 2 - (19 + 27) / 2 = +2
    assert "IQM difference +2.0" in out and "4 seeds" in out and "rlkit 25.0 (4 runs), SB3 23.0 (4 runs)" in out
    c = results("c.csv", {1: (21, 19)})  # seed 1 ending elsewhere: another code or protocol
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(a), str(c), "--combine"])
    assert module.main() == 2
    assert "rlkit seed 1 ends at 20.0" in capsys.readouterr().err


def test_compare_finals_compares_the_sides_it_is_given(tmp_path, capsys, monkeypatch):
    """--sides A B: A - B over their seeds (e.g. a sweep's config label against our bench side); a missing side
    is named, not a crash."""
    module = _bench_script("compare_finals")
    path = tmp_path / "results.csv"
    rows = ["side,seed,step,train_wall_s,eval,train_steps_per_s,peak_rss_mb"]
    for seed, (ours, theirs, other) in enumerate([(10, 8, 5), (20, 19, 14), (30, 27, 26), (40, 41, 31)]):
        rows += [f"rlkit,{seed},200,2.0,{ours},1,1", f"sb3,{seed},200,2.0,{theirs},1,1",
                 f"ppo,{seed},200,2.0,{other},1,1"]
    path.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--sides", "ppo", "rlkit", "--combine"])
    assert module.main() == 0
    out = capsys.readouterr().out
    # (14 + 26) / 2 - (20 + 30) / 2 = -5
    assert "Final eval, ppo - rlkit: IQM difference -5.0" in out
    assert "a run of ppo ends above a run of rlkit" in out and "ppo 20.0 (4 runs), rlkit 25.0 (4 runs)" in out
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--sides", "a2c", "rlkit"])
    assert module.main() == 0
    assert "no a2c and rlkit columns (sides: ppo, rlkit, sb3)" in capsys.readouterr().out
    # FILE:OLD=NEW: the sweep-like side ppo read as ours (the file's own rlkit side moved out of its way)
    monkeypatch.setattr("sys.argv", ["compare_finals.py", f"{path}:ppo=rlkit,rlkit=old", "--combine"])
    assert module.main() == 0
    assert "rlkit - SB3: IQM difference -3.0" in capsys.readouterr().out  # (14 + 26) / 2 - (19 + 27) / 2
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--seeds", "0..1", "--sides", "ppo", "rlkit"])
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "IQM difference -5.5" in out and "; 2 seeds" in out  # seeds 0-1 only: (5 + 14) / 2 - (10 + 20) / 2
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--seeds", "2"])
    assert module.main() == 2
    assert "give a range A..B" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["compare_finals.py", f"{path}:dqn=rlkit"])
    assert module.main() == 2
    assert "has no side dqn to rename (sides: ppo, rlkit, sb3)" in capsys.readouterr().err


def test_plain_paths_turn_the_numpy_actor_and_the_hand_gradients_off(monkeypatch):
    """bench/plain_paths.py: --acting makes rollouts come from the policy's torch step() (the lockstep's path);
    --grads makes ppo take autograd steps; without a switch it changes nothing."""
    import agents.a2c
    import agents.ppo
    import nets.policy
    from rlkit.overrides import parse_words
    from rlkit.rollout import Collector, RolloutBuffer
    from rlkit.train import build

    for cls, name in ((nets.policy.ActorCritic, "numpy_acting_available"), (agents.ppo.PPO, "hand_grad_loss"),
                      (agents.a2c.A2C, "hand_grad_loss")):
        monkeypatch.setattr(cls, name, getattr(cls, name))  # restored after the test
    spec = resolve_spec(parse_words(["agent=ppo", "env=pendulum", "n_envs=2"]), [])
    module = _bench_script("plain_paths")  # pytest's argv: no switch, nothing changes
    agent, env = build(spec)
    assert agent.policy.numpy_acting_available() and agent.hand_grad  # a small CPU MLP: both shortcuts on
    module.apply(["--acting"])
    assert not agent.policy.numpy_acting_available()
    calls = []
    step = agent.policy.step
    monkeypatch.setattr(agent.policy, "step", lambda *a, **k: calls.append(1) or step(*a, **k))
    buffer = RolloutBuffer(4, 2, env.single_observation_space.shape, np.float32, agent.policy.action_shape,
                           agent.policy.action_dtype)
    Collector(env, agent.policy).collect(buffer, 4)
    assert len(calls) == 4
    env.close()
    module.apply(["--grads"])
    agent, env = build(spec)
    assert not agent.hand_grad
    env.close()


TINY_PPO_PENDULUM = ["agent=ppo", "env=pendulum", "use_sde=false", "n_envs=2", "n_steps=64", "n_epochs=2",
                     "total_steps=640", "threads=1"]  # use_sde=false: a plain Gaussian, one std for every state


def test_update_stats_reads_every_update_on_both_sides():
    """bench/update_stats.py: one value per update on each side (5 updates of 128 steps: ours logs them all, not
    one row per 1000 steps), std read after the update, SB3's entropy_loss turned into the entropy."""
    import math

    module = _bench_script("update_stats")
    ours, agent = module.our_series(TINY_PPO_PENDULUM, seed=0)
    theirs, model = module.sb3_series(TINY_PPO_PENDULUM, seed=0)
    names = ["std", "entropy", "value_loss", "clip_fraction", "policy_loss", "explained_variance"]
    assert list(ours) == list(theirs) == names
    assert all(len(ours[k]) == len(theirs[k]) == 5 for k in names), {k: len(v) for k, v in ours.items()}
    log_std_ours = float(agent.policy.pi_head.log_std.detach().mean())
    log_std_sb3 = float(model.policy.log_std.detach().mean())
    assert ours["std"][-1] == pytest.approx(math.exp(log_std_ours), abs=1e-7)
    assert theirs["std"][-1] == pytest.approx(math.exp(log_std_sb3), abs=1e-7)
    gaussian_entropy = 0.5 * math.log(2 * math.pi * math.e)  # + log std, for one action dimension
    assert ours["entropy"][-1] == pytest.approx(gaussian_entropy + log_std_ours, abs=5e-3)
    assert theirs["entropy"][-1] == pytest.approx(gaussian_entropy + log_std_sb3, abs=5e-3)
    assert all(0 < v for v in ours["value_loss"] + theirs["value_loss"])


def test_update_stats_pairs_stretches_by_seed():
    """stretch_table: per fifth of the updates, each side's mean and the paired difference with its standard error;
    report flags the cells more than 2 standard errors apart."""
    module = _bench_script("update_stats")
    rng = np.random.default_rng(0)
    theirs = {s: {"std": list(rng.normal(size=10))} for s in range(4)}
    shift = {0: 1.0, 1: 1.2, 2: 0.8, 3: 1.0}
    ours = {s: {"std": [v + shift[s] for v in theirs[s]["std"]]} for s in range(4)}
    table = module.stretch_table(ours, theirs)
    assert [r["updates"] for r in table] == [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]
    for r in table:
        assert r["diff"] == pytest.approx(1.0)
        assert r["se"] == pytest.approx(np.std([1.0, 1.2, 0.8, 1.0], ddof=1) / 2)
        lo = r["updates"][0] - 1
        assert r["sb3"] == pytest.approx(np.mean([np.mean(theirs[s]["std"][lo:lo + 2]) for s in range(4)]))
    text = module.report(table, "cmd", [0, 1, 2, 3], 10, {"ours": 1.0, "sb3": 2.0}, ["agent=ppo", "env=pendulum"])
    assert "| std | 1-2 |" in text and "cells with |z| > 2: 5 " in text and "4 seeds each standard error" in text
    table12 = module.stretch_table({s: ours[s % 4] for s in range(12)}, {s: theirs[s % 4] for s in range(12)})
    assert "standard error is itself" not in module.report(table12, "cmd", list(range(12)), 10,
                                                           {"ours": 1.0, "sb3": 2.0}, ["agent=ppo", "env=pendulum"])


def test_update_stats_end_to_end_and_its_mistakes(tmp_path, capsys):
    """The script writes its report, data and plot; an agent SB3 logs other statistics for, or bad seeds, get one
    line and exit code 2."""
    module = _bench_script("update_stats")
    assert module.main([*TINY_PPO_PENDULUM[:-1], "--seeds", "1", "--workers", "0", "--out", str(tmp_path)]) == 0
    stem = tmp_path / "update_stats_ppo_pendulum"
    data = json.loads(stem.with_suffix(".json").read_text())
    assert data["seeds"] == [0] and len(data["ours"]["0"]["std"]) == len(data["sb3"]["0"]["std"]) == 5
    assert stem.with_suffix(".png").stat().st_size > 0
    assert "| value_loss | 1-1 |" in stem.with_suffix(".md").read_text()
    capsys.readouterr()
    assert module.main(["agent=dqn", "env=cartpole", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "agent=dqn: update_stats compares ppo and a2c" in err
    assert module.main(["agent=ppo", "env=pendulum", "--seeds", "3..1", "--out", str(tmp_path)]) == 2
    assert "seeds=" in capsys.readouterr().err


def test_update_stats_reports_several_files_together(tmp_path, capsys):
    """--from pools the seeds of several .json files without running anything; files of another agent or env, or
    not of this script, get one line and exit code 2."""
    module = _bench_script("update_stats")

    def write(name: str, seeds: range, shift: float, words: str = "agent=ppo env=pendulum") -> Path:
        runs = {side: {str(s): {"std": [1.0 + (shift if side == "ours" else 0.0) + 0.01 * s] * 5} for s in seeds}
                for side in ("ours", "sb3")}
        path = tmp_path / name
        path.write_text(json.dumps({"command": f"python bench/update_stats.py {words} --seeds x", **runs}))
        return path

    a, b = write("a.json", range(0, 3), 0.1), write("b.json", range(3, 6), 0.3)
    assert module.main(["--from", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Seeds 0..5 (6)" in out and "| std | 1-1 | 1.225 | 1.025 | +0.2 +- 0.045 |" in out
    assert module.main(["--from", str(a), str(write("c.json", range(6, 8), 0.0, "agent=a2c env=pendulum"))]) == 2
    assert "give files of one agent and env" in capsys.readouterr().err
    assert module.main(["--from", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    one_side = tmp_path / "one_side.json"  # what an interrupted run leaves after its first job
    one_side.write_text(json.dumps({"command": "python bench/update_stats.py agent=ppo env=pendulum",
                                    "ours": {"0": {"std": [1.0]}}, "sb3": {}}))
    assert module.main(["--from", str(one_side)]) == 2
    assert "no seed has runs of both sides" in capsys.readouterr().err


def test_update_stats_keeps_finished_runs_when_interrupted(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the middle of a sweep: the runs that finished are already in the .json, and --from reports them."""
    module = _bench_script("update_stats")
    calls = []

    def job(args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        side, _, seed = args
        return side, seed, {"std": [1.0 + seed + (0.1 if side == "ours" else 0.0)] * 5}, 0.5

    monkeypatch.setattr(module, "_job", job)
    words = ["agent=ppo", "env=pendulum", "--seeds", "0..2", "--workers", "0", "--out", str(tmp_path)]
    assert module.main(words) == 130
    data = tmp_path / "update_stats_ppo_pendulum.json"
    assert "the finished runs are in" in capsys.readouterr().err
    assert module.main(["--from", str(data)]) == 0
    assert "Seeds 0..0 (1)" in capsys.readouterr().out


def test_compare_finals_paired_line_tests_and_quantiles_and_the_score_plot(tmp_path, capsys, monkeypatch):
    """The paired line: mean difference +/- SE over the shared seeds, the paired (not two-sample) t-test and the
    Wilcoxon test, quantile differences; --plot writes the score distributions, a non-image name is exit 2."""
    from scipy import stats as sps

    module = _bench_script("compare_finals")
    ours, theirs = [10.0, 20.0, 30.0, 40.0, 50.0], [8.0, 19.0, 27.0, 41.0, 45.0]  # differences 2, 1, 3, -1, 5
    rows = ["side,seed,step,train_wall_s,eval,train_steps_per_s,peak_rss_mb"]
    rows += [f"{side},{seed},200,2.0,{v},1,1" for seed, pair in enumerate(zip(ours, theirs))
             for side, v in zip(("rlkit", "sb3"), pair)]
    rows += ["rlkit,5,200,2.0,99,1,1"]  # a seed only one side ran: left out of the paired line
    path = tmp_path / "results.csv"
    path.write_text("\n".join(rows) + "\n")
    png = tmp_path / "profile.png"
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--plot", str(png)])
    assert module.main() == 0
    out = capsys.readouterr().out
    # mean of (2, 1, 3, -1, 5) = 2.0; SD sqrt(20 / 4) = 2.24; SE 2.24 / sqrt(5) = 1.0
    assert "paired over 5 seeds, rlkit - SB3: mean difference +2.0 +/- 1.0 (SE; SD of a seed's difference 2.2)" in out
    assert "rlkit above on 4 of 5" in out
    t_p, w_p = sps.ttest_rel(ours, theirs).pvalue, sps.wilcoxon(ours, theirs).pvalue
    assert f"paired t p {t_p:.3f}, Wilcoxon signed-rank p {w_p:.3f}" in out
    assert f"{sps.ttest_ind(ours, theirs).pvalue:.3f}" != f"{t_p:.3f}"  # the test tells paired from unpaired
    from rlkit.stats import difference_ci

    _, lo, hi = difference_ci(ours, theirs, stat=lambda v: float(np.percentile(v, 50)), paired=True)
    assert f"50%: +3.0 [{lo:+,.1f}, {hi:+,.1f}]" in out  # medians 30 and 27; seeds resampled in pairs
    _, lo_u, hi_u = difference_ci(ours, theirs, stat=lambda v: float(np.percentile(v, 50)), paired=False)
    assert (lo, hi) != (lo_u, hi_u)
    assert png.stat().st_size > 10_000 and f"score distributions: {png}" in out
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--plot", str(tmp_path / "profile.txt")])
    assert module.main() == 2
    assert "give an image file name ending in .png" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["compare_finals.py", str(path), "--plot", str(tmp_path / "no" / "p.png")])
    assert module.main() == 2
    assert "no folder" in capsys.readouterr().err


def test_presets_script_trains_each_preset_and_tables_it_beside_the_zoo(tmp_path, capsys):
    """bench/presets.py: one `rlkit train` per (agent, env) preset and seed; the table row carries the runs'
    final evaluations and the zoo's figure; envs without a preset are skipped by name; failed runs are listed."""
    module = _bench_script("presets")
    rc = module.main(["--agents", "ppo", "--envs", "cartpole,mountaincar", "--seeds", "2", "--set", "total_steps=1024",
                      "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs")])
    assert rc == 0
    assert "no preset for agent=ppo env=mountaincar: skipped" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "presets_pg.csv")))
    assert sorted(r["seed"] for r in rows) == ["0", "1"] and all(r["total_steps"] == "1024" for r in rows)
    finals = {int(r["seed"]): float(r["final_eval"]) for r in rows}
    for seed, final in finals.items():  # the run folder's own summary
        (run,) = (tmp_path / "runs").glob(f"ppo-cartpole-*-s{seed}")
        assert json.loads((run / "summary.json").read_text())["final_eval_return_mean"] == final
    report = (tmp_path / "presets_pg.md").read_text()
    mean = (finals[0] + finals[1]) / 2
    assert (f"| ppo | cartpole | 1,024 | {mean:,.1f} [{min(finals.values()):,.1f}, {max(finals.values()):,.1f}] | "
            f"0: {finals[0]:,.1f}, 1: {finals[1]:,.1f} |") in report
    assert report.rstrip().endswith("| 500.0 +/- 0.0, 100k |")
    report = module.table([{"agent": "trpo", "env": "cartpole", "seed": 0, "error": "exit 1: RuntimeError: boom"}],
                          "python bench/presets.py")
    assert "| trpo | cartpole | - | - | 0: failed |" in report
    assert "- trpo cartpole seed 0: exit 1: RuntimeError: boom" in report
    assert module.main(["--agents", "dqn"]) == 2 and "--agents dqn: pick from" in capsys.readouterr().err
    # a bad override is one line before anything runs, not a failed run per preset and seed
    rc = module.main(["--agents", "trpo", "--envs", "cartpole", "--set", "lr=abc", "--name", "bad",
                      "--out", str(tmp_path), "--runs-dir", str(tmp_path / "bad_runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == "error: agent=trpo env=cartpole: lr=abc: lr expects a number, e.g. lr=0.5"
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad_runs").exists()
