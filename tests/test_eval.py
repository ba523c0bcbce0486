"""rlkit eval and rlkit compare: checkpoints (best, last, a step), periodic evaluation during training,
videos, Stable-Baselines3 zips under the same protocol, learning-curve comparison, and user mistakes."""

import contextlib
import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.checkpoint import Checkpointer
from rlkit.cli import main
from rlkit.evaluation import RECORD_KEYS

# a tiny DQN on CartPole: evaluations at steps 200, 400, 600 and the final one at 800
DQN_WORDS = ["agent=dqn", "env=cartpole", "total_steps=800", "learning_starts=100", "train_freq=4",
             "gradient_steps=1", "target_update_interval=100", "buffer_size=2000", "net.hidden=[16]",
             "eval_episodes=3", "checkpoint_every=400", "seed=3", "progress=false", "tensorboard=false"]


def _quiet(*words: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(words))
    return rc, out.getvalue(), err.getvalue()


def _train(runs: Path, *words: str) -> Path:
    rc, out, err = _quiet("train", *words, f"runs.dir={runs}")
    assert rc == 0, out + err
    return Path(out.strip().splitlines()[-1])


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run / "metrics.csv")))


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("runs"), *DQN_WORDS, "eval_every=200")


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory) -> Path:
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=50, buffer_size=1000, policy_kwargs={"net_arch": [16]},
                seed=0, device="cpu")
    model.learn(300)
    path = tmp_path_factory.mktemp("sb3") / "dqn_cartpole.zip"
    model.save(path)
    return path


def test_run_and_sb3_zip_give_the_same_record_and_report(dqn_run, sb3_zip, cli):
    rc, run_out, err = cli("eval", str(dqn_run), "episodes=3")
    assert rc == 0, err
    rc, zip_out, err = cli("eval", str(sb3_zip), "algo=dqn", "env=cartpole", "episodes=3")
    assert rc == 0, err
    ours = json.loads((dqn_run / "eval.json").read_text())
    theirs = json.loads((sb3_zip.parent / "dqn_cartpole-eval" / "eval.json").read_text())
    assert list(ours) == list(theirs) == list(RECORD_KEYS)
    assert (ours["library"], ours["agent"], ours["checkpoint"], ours["checkpoint_step"]) == \
        ("rlkit", "dqn", "last", 800)
    assert (theirs["library"], theirs["agent"], theirs["checkpoint"], theirs["checkpoint_step"]) == \
        ("stable-baselines3", "dqn", "zip", 300)
    for ev in (ours, theirs):
        assert ev["env"] == "cartpole" and ev["episodes"] == 3 and ev["seed"] == 10_000 + (3 if ev is ours else 0)
        assert ev["return_mean"] == pytest.approx(np.mean(ev["returns"]))
        assert ev["length_max"] == max(ev["lengths"]) and ev["returns"] == ev["lengths"]  # CartPole pays 1 per step
    # the printed report has the same lines, numbers aside
    shape = [re.sub(r"[\d.]+", "#", line) for line in run_out.splitlines()[1:-1]]
    assert shape == [re.sub(r"[\d.]+", "#", line) for line in zip_out.splitlines()[1:-1]]
    assert shape[0].startswith("return (raw): # +/- #  min #  max #") and shape[1].startswith("episode length:")

    # the zip's returns are the ones SB3's own predict gives on CartPole with the same seeds
    from stable_baselines3 import DQN

    model, env, returns = DQN.load(sb3_zip, device="cpu"), gym.make("CartPole-v1"), []
    for i in range(3):
        obs, _ = env.reset(seed=10_000 + i)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(int(model.predict(obs, deterministic=True)[0]))
            ret, done = ret + r, term or trunc
        returns.append(ret)
    assert theirs["returns"] == returns


def test_eval_every_logs_evaluations_and_keeps_the_best(dqn_run, cli):
    rows = [r for r in _rows(dqn_run) if r["eval/return_mean"]]
    steps = [int(r["step"]) for r in rows]
    assert steps == [200, 400, 600, 800]  # every 200 steps, the final evaluation included
    scores = [float(r["eval/return_mean"]) for r in rows]
    best = json.loads((dqn_run / "checkpoints" / "best.json").read_text())
    assert best["step"] == steps[int(np.argmax(scores))] and best["return_mean"] == pytest.approx(max(scores), 1e-5)
    assert [p.name for p in (dqn_run / "checkpoints").glob("best_step_*.pt")] == [best["file"]]
    assert "replay" not in Checkpointer(dqn_run / "checkpoints", 1).load("best")[1]["agent"]  # weights, not memory
    summary = json.loads((dqn_run / "summary.json").read_text())
    assert summary["best_eval"] == {"step": best["step"], "return_mean": best["return_mean"]}

    # checkpoint=best plays the same episodes as the evaluation that chose it
    rc, out, err = cli("eval", str(dqn_run), "checkpoint=best")
    ev = json.loads((dqn_run / "eval.json").read_text())
    assert rc == 0 and ev["checkpoint"] == "best" and ev["checkpoint_step"] == best["step"]
    assert ev["return_mean"] == pytest.approx(best["return_mean"]) and "best checkpoint, at step" in out
    # checkpoint=last replays the final evaluation; checkpoint=<step> loads that step's file
    rc, out, err = cli("eval", str(dqn_run), "checkpoint=last")
    ev = json.loads((dqn_run / "eval.json").read_text())
    assert ev["checkpoint_step"] == 800 and ev["return_mean"] == pytest.approx(scores[-1], 1e-5)
    rc, out, err = cli("eval", str(dqn_run), "checkpoint=400", "episodes=1")
    assert rc == 0 and json.loads((dqn_run / "eval.json").read_text())["checkpoint_step"] == 400
    assert "checkpoint at step 400" in out


def test_eval_every_does_not_change_training(dqn_run, tmp_path):
    """Evaluation restores every RNG it touches: the same run without eval_every learns the same."""
    plain = _train(tmp_path / "runs", *DQN_WORDS)
    keep = ("step", "episode", "charts/return", "charts/length", "charts/epsilon", "losses/td_loss")
    with_eval = [{k: r[k] for k in keep} for r in _rows(dqn_run) if r["charts/return"]]
    without = [{k: r[k] for k in keep} for r in _rows(plain)]
    assert with_eval == without and len(without) > 20
    a = Checkpointer(dqn_run / "checkpoints", 1).load()[1]["agent"]["q_net"]
    b = Checkpointer(plain / "checkpoints", 1).load()[1]["agent"]["q_net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (plain / "checkpoints" / "best.json").exists()


def test_videos_gif_and_mp4_decode(dqn_run, sb3_zip, cli, tmp_path):
    import imageio.v2 as iio

    rc, out, err = cli("eval", str(dqn_run), "episodes=2", "video=gif", "video_episodes=2", "out=gif")
    assert rc == 0, err
    ev = json.loads(Path("gif/eval.json").read_text())
    assert [Path(v["path"]).name for v in ev["videos"]] == ["dqn-last-step800-seed10003.gif",
                                                             "dqn-last-step800-seed10004.gif"]
    for v, length in zip(ev["videos"], ev["lengths"]):
        frames = iio.mimread(v["path"])
        assert v["frames"] == length + 1 and 0 < len(frames) <= length + 1  # GIFs merge repeated frames
        assert frames[0].shape == (400, 600, 3) and frames[0].std() > 0 and v["fps"] == 50
    # an SB3 model's video, mp4: every step is a frame
    rc, out, err = cli("eval", str(sb3_zip), "algo=dqn", "env=cartpole", "episodes=1", "video=mp4", "out=mp4")
    assert rc == 0, err
    ev = json.loads(Path("mp4/eval.json").read_text())
    (v,) = ev["videos"]
    assert Path(v["path"]).stat().st_size > 0 and len(iio.mimread(v["path"])) == ev["lengths"][0] + 1
    # an env with only text frames (ANSI): drawn as images; Atari-like skip is covered by frames_per_second
    rooms = _train(tmp_path / "runs", "agent=q_learning", "env=rooms", "total_steps=300", "progress=false",
                   "tensorboard=false")
    rc, out, err = cli("eval", str(rooms), "episodes=1", "video=mp4")
    assert rc == 0, err
    (v,) = json.loads((rooms / "eval.json").read_text())["videos"]
    frames = iio.mimread(v["path"])
    assert v["fps"] == 4 and len(frames) == v["frames"] > 0 and frames[0].shape[1] > 500 and frames[0].std() > 0


def test_atari_video_rate_accounts_for_frame_skip():
    import envs
    from rlkit.video import frames_per_second

    env = envs.make(envs.resolve("pong"), training=False)
    assert frames_per_second(env) == 15.0  # 60 Hz / frame skip 4: the video plays in real time
    env = envs.make(envs.resolve("pong", {"frame_skip": 2}), training=False)
    assert frames_per_second(env) == 30.0


def test_ansi_text_keeps_colours():
    from rlkit.video import _PALETTE, parse_ansi, text_frames

    lines = parse_ansi("S\x1b[41mF\x1b[0mF\nHG\n")
    assert ["".join(c for c, _, _ in line) for line in lines] == ["SFF", "HG"]
    assert lines[0][1][2] == _PALETTE[1] and lines[0][0][2] != _PALETTE[1]  # the agent's red cell
    a, b = text_frames(["ab", "abc\nd"])
    assert a.shape == b.shape  # one size for the whole episode, so a video can hold it


def test_compare_aggregates_seeds(cli):
    runs = {}
    for agent, seeds in (("sarsa", (0, 1)), ("q_learning", (0,))):
        for s in seeds:
            rc, run, out = cli.train(f"agent={agent}", "env=cliffwalking", "total_episodes=60", f"seed={s}")
            assert rc == 0, out
            runs.setdefault(agent, []).append(run)
    all_runs = [str(r) for rs in runs.values() for r in rs]
    rc, out, err = cli("compare", *all_runs, "out=cmp.png", "band=ci", "x=wall")
    assert rc == 0, err
    png = Path("cmp.png")
    assert png.stat().st_size > 5000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert re.search(r"sarsa cliffwalking\s+2\s", table["sarsa cliffwalking"])
    assert re.search(r"q_learning cliffwalking\s+1\s", table["q_learning cliffwalking"])
    finals = []
    for run in runs["sarsa"]:  # the table's final value: the mean over seeds of each seed's last 10% of episodes
        ret = [float(r["charts/return"]) for r in _rows(run)]
        finals.append(np.mean(ret[-max(1, len(ret) // 10):]))
    assert f"{np.mean(finals):.3f}" in table["sarsa cliffwalking"]
    rc, out, err = cli("compare", *all_runs[:2], "band=minmax")
    assert rc == 0 and list(cli.runs.glob("compare-*.png"))


# -- user mistakes: one line, exit 2 ----------------------------------------------------------------

def test_bad_eval_input(dqn_run, sb3_zip, cli, tmp_path, monkeypatch):
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    shutil.copy(dqn_run / "config.yaml", empty / "config.yaml")
    zip_ = str(sb3_zip)
    cases = [
        ([zip_, "algo=dqn", "env=acrobot"], "does not fit env=acrobot: observation space: the model's has shape (4,)"),
        ([zip_, "env=cartpole"], "say which algorithm saved it with algo=NAME"),
        ([zip_, "algo=dqn"], "say which env to evaluate it on with env=NAME"),
        ([zip_, "algo=ppo", "env=cartpole"], "(the zip holds a stable_baselines3.dqn.policies.DQNPolicy); is algo="),
        ([zip_, "algo=ppoo", "env=cartpole"], "unknown algo 'ppoo' (did you mean 'ppo'?)"),
        ([str(tmp_path / "nope.zip"), "algo=dqn", "env=cartpole"], "no such file"),
        ([str(empty)], "no checkpoint in"),
        ([str(empty), "checkpoint=best"], "no best checkpoint"),
        ([str(dqn_run), "checkpoint=123"], "no checkpoint at step 123"),
        ([str(dqn_run), "checkpoint=first"], "use checkpoint=last, checkpoint=best or checkpoint=<step>"),
        ([str(dqn_run), "algo=ppo"], "algo= is for Stable-Baselines3 .zip files"),
        ([str(dqn_run), "video=avi"], "video=avi: use video=gif or video=mp4"),
        ([str(dqn_run), "video_episodes=2"], "needs video=gif or video=mp4"),
    ]
    for words, fragment in cases:
        rc, out, err = cli("eval", *words)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("rlkit: error: "), (words, err)
        assert fragment in lines[0], (words, lines[0])
    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # as if sb3-contrib were not installed
    rc, out, err = cli("eval", zip_, "algo=trpo", "env=cartpole")
    assert rc == 2 and "sb3-contrib, which is not installed: pip install sb3-contrib" in err
    rc, out, err = cli("compare", str(dqn_run), "band=wide")
    assert rc == 2 and "band=wide: use band=minmax or band=ci" in err
    rc, out, err = cli("compare", str(dqn_run), str(empty))
    assert rc == 2 and "no metrics.csv" in err and len(err.strip().splitlines()) == 1
