"""The rlkit command line end to end: train, eval, plot, list, resume, help, and user mistakes."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlkit.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parent.parent


def _metrics(run, drop=("wall_s", "charts/sps")):
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def test_train_writes_a_complete_run_folder(cli):
    rc, run, out = cli.train("agent=q_learning", "env=frozenlake", "total_steps=5000", "tensorboard=true")
    assert rc == 0, out
    assert run.parent == cli.runs and run.name.startswith("q_learning-frozenlake-") and run.name.endswith("-s0")
    for name in ("config.yaml", "metrics.csv", "summary.json", "checkpoints/latest.json"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    for key in ("agent", "env", "seed", "total_steps", "wall_s", "final_eval_return_mean"):
        assert key in summary
    assert summary["total_steps"] >= 5000 and summary["threads"] == 1
    head = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert head[:3] == ["step", "episode", "wall_s"] and "charts/return" in head and "charts/sps" in head
    assert "losses/td_error_abs" in head
    config = (run / "config.yaml").read_text()
    assert "git_commit:" in config and "q_learning.yaml:frozenlake" in config


def test_eval_reproduces_the_final_greedy_return(cli):
    rc, run, out = cli.train("agent=q_learning", "env=cliffwalking", "total_episodes=200")
    assert rc == 0, out
    summary = json.loads((run / "summary.json").read_text())
    rc, out, err = cli("eval", str(run))
    assert rc == 0, err
    ev = json.loads((run / "eval.json").read_text())
    assert ev["return_mean"] == summary["final_eval_return_mean"]
    for key in ("episodes", "return_mean", "return_std", "length_mean"):
        assert key in ev
    assert "return (raw):" in out and "wrote" in out
    rc, out, err = cli("eval", str(run), "episodes=3", "deterministic=false", "seed=5")
    assert rc == 0 and json.loads((run / "eval.json").read_text())["episodes"] == 3


def test_same_seed_same_metrics(cli):
    runs = []
    for _ in range(2):
        rc, run, out = cli.train("agent=sarsa", "env=cliffwalking", "total_episodes=60", "seed=7")
        assert rc == 0, out
        runs.append(run)
    assert runs[0] != runs[1]  # never overwrites: the second gets its own folder
    assert _metrics(runs[0]) == _metrics(runs[1])
    rc, run, out = cli.train("agent=sarsa", "env=cliffwalking", "total_episodes=60", "seed=8")
    assert _metrics(run) != _metrics(runs[0])


def test_plot_writes_png(cli):
    runs = []
    for agent in ("sarsa", "q_learning"):
        rc, run, out = cli.train(f"agent={agent}", "env=cliffwalking", "total_episodes=100")
        runs.append(str(run))
    rc, out, err = cli("plot", runs[0])
    png = Path(runs[0]) / "curves.png"
    assert rc == 0 and png.stat().st_size > 5000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, err = cli("plot", *runs, "out=both.png", "window=5")
    assert rc == 0 and Path("both.png").stat().st_size > 5000


def test_list_and_help(cli):
    rc, out, err = cli("list")
    assert rc == 0
    for name in ("eps_greedy", "ucb", "gradient_bandit", "q_learning", "sarsa", "expected_sarsa",
                 "rooms", "bandit", "cartpole", "frozenlake", "cliffwalking", "taxi", "mlp"):
        assert f"  {name} " in out, name
    rc, out, err = cli("list", "sarsa")
    assert rc == 0 and "gamma" in out and "discount factor" in out and "env=cliffwalking" in out
    for cmd in ([], ["train"], ["eval"], ["plot"], ["resume"], ["list"]):
        rc, out, err = cli(*cmd, "--help")
        assert rc == 0 and "usage: rlkit" in out, cmd
    rc, out, err = cli("train", "agent=q_learning", "--help")
    assert rc == 0 and "epsilon.start" in out


def test_resume_extends_a_finished_run(cli):
    rc, run, out = cli.train("agent=q_learning", "env=cliffwalking", "total_steps=2000")
    steps = json.loads((run / "summary.json").read_text())["total_steps"]
    rc, out, err = cli("resume", str(run))
    assert rc == 0 and "already finished" in out
    rc, out, err = cli("resume", str(run), "total_steps=4000", "progress=false", "tensorboard=false")
    assert rc == 0, err
    assert json.loads((run / "summary.json").read_text())["total_steps"] >= 4000 > steps
    rows = _metrics(run)
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows)


def test_sigint_saves_and_resume_matches_an_uninterrupted_run(cli, tmp_path):
    """Ctrl-C writes a checkpoint and exits 130; resume ends with the same Q-table and curve as a straight run."""
    words = ["agent=q_learning", "env=taxi", "total_steps=60000", "seed=3", "checkpoint_every=5000"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rlkit", "train", *words, f"runs.dir={tmp_path / 'a'}",
                             "progress=false", "tensorboard=false"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        found = list((tmp_path / "a").glob("*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "checkpoint saved" in out
    run = found[0].parent
    step, _ = Checkpointer(run / "checkpoints", 1).load()
    assert 0 < step < 60000
    assert json.loads((run / "summary.json").read_text())["interrupted"] is True

    rc, out, err = cli("resume", str(run))
    assert rc == 0, err
    rc, straight, out = cli.train(*words)
    assert rc == 0
    q_resumed = np.asarray(Checkpointer(run / "checkpoints", 1).load()[1]["agent"]["q"])
    q_straight = np.asarray(Checkpointer(straight / "checkpoints", 1).load()[1]["agent"]["q"])
    assert np.array_equal(q_resumed, q_straight)
    assert _metrics(run) == _metrics(straight)


# -- user mistakes: one line, exit 2, no traceback, no run folder ----------------------------------

BAD_TRAIN = [
    (["agent=dqnn", "env=rooms"], "unknown agent 'dqnn'"),
    (["agent=sarsaa", "env=rooms"], "did you mean 'sarsa'"),
    (["agent=q_learning", "env=roms"], "did you mean 'rooms'"),
    (["agent=q_learning", "env=rooms", "gama=0.9"],
     "unknown key 'gama' for agent q_learning (did you mean 'gamma'?); valid keys:"),
    (["agent=q_learning", "env=rooms", "lr==3"], "malformed override 'lr==3'"),
    (["agent=q_learning", "env=rooms", "gamma=abc"], "gamma=abc: gamma expects a number"),
    (["agent=q_learning", "env=rooms", "gamma=1.5"], "gamma=1.5 is out of range"),
    (["agent=q_learning", "env=cartpole"], "needs a discrete observation space"),
    (["agent=q_learning", "env=nosuchmod:Env"], "does not import"),
    (["agent=q_learning", "env=rooms", "env.colour=red"], "rejected its arguments"),
    (["agent=q_learning"], "missing env="),
    (["env=rooms"], "missing agent="),
    (["agent=eps_greedy", "env=rooms"], "no batch-native version"),
]


@pytest.mark.parametrize("words, fragment", BAD_TRAIN)
def test_bad_train_input(cli, words, fragment):
    rc, run, out = cli.train(*words)
    assert rc == 2
    lines = [line for line in out.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("rlkit: error: ") and fragment in lines[0], out
    assert not cli.runs.exists() or not any(cli.runs.iterdir())


def test_bad_eval_and_resume_input(cli, tmp_path):
    rc, out, err = cli("eval", str(tmp_path / "runs" / "nope"))
    assert rc == 2 and "no run folder" in err and len(err.strip().splitlines()) == 1
    rc, run, out = cli.train("agent=q_learning", "env=rooms", "total_steps=500")
    rc, out, err = cli("eval", str(run), "episodez=3")
    assert rc == 2 and "did you mean 'episodes'" in err
    rc, out, err = cli("eval", str(run), "checkpoint=123")
    assert rc == 2 and "no checkpoint at step 123" in err
    rc, out, err = cli("resume", str(run), "gamma=0.5")
    assert rc == 2 and "resume can change only" in err
    rc, out, err = cli("bogus")
    assert rc == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "pickle"])
def test_damaged_checkpoint_is_a_clear_error(cli, damage):
    rc, run, out = cli.train("agent=q_learning", "env=rooms", "total_steps=500")
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    path = run / "checkpoints" / latest["file"]
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:  # a pickle that would run code: refused by weights_only even with a matching hash
        import hashlib
        import pickle

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned",))

        evil = pickle.dumps(Evil())
        path.write_bytes(evil)
        latest["sha256"] = hashlib.sha256(evil).hexdigest()
        (run / "checkpoints" / "latest.json").write_text(json.dumps(latest))
    for cmd in (["eval", str(run)], ["resume", str(run), "total_steps=1000"]):
        rc, out, err = cli(*cmd)
        assert rc == 2, (cmd, err)
        assert len(err.strip().splitlines()) == 1 and "checkpoint" in err and "Traceback" not in err


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_checkpoint_of_another_net_is_a_clear_error(cli, agent):
    """A run's checkpoints replaced by those of a run with another net: eval and resume name the first mismatch."""
    common = [f"agent={agent}", "env=cartpole", "total_steps=256", "eval_episodes=1"]
    extra = ["n_steps=64", "n_envs=2"] if agent == "ppo" else ["learning_starts=100"]
    rc, run, out = cli.train(*common, *extra)
    assert rc == 0, out
    rc, other, out = cli.train(*common, *extra, "net.hidden=[32]", "seed=1")
    assert rc == 0, out
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(other / "checkpoints", run / "checkpoints")
    for cmd in (["eval", str(run)], ["resume", str(run), "total_steps=512"]):
        rc, out, err = cli(*cmd)
        assert rc == 2, (cmd, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "checkpoint weights do not fit" in err and "Missing key(s)" in err and "net or env changed" in err


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rlkit", "train", "agent=q_learning", "env=rooms", "gamma=1.5",
                           f"runs.dir={tmp_path}"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "rlkit: error: gamma=1.5 is out of range: gamma must be in [0, 1]"
    assert proc.stdout == "" and not any(tmp_path.iterdir())


def test_metrics_rows_reach_the_disk_by_each_checkpoint(tmp_path, monkeypatch):
    """metrics.csv is flushed at most once a second while rows arrive, and always when a checkpoint takes the
    logger's state_dict (and at close): a run killed after a checkpoint has every row up to it on disk."""
    from rlkit import logger as logger_mod

    monkeypatch.setattr(logger_mod, "FLUSH_EVERY_S", 3600.0)  # no timed flush within the test
    logger = logger_mod.Logger(tmp_path, 100, tensorboard=False, progress=False)
    for step in range(1, 4):
        logger.episode(step, 1.0, 1)
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 1  # the header (written whole); rows buffered
    logger.state_dict()
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4  # header + 3 rows
    logger.episode(4, 1.0, 1)
    logger.close()
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 5
