"""Checkpoints: atomic files, SHA-256 in latest.json, weights_only loading, the newest few kept."""

import json

import numpy as np
import pytest
import torch

from rlkit.checkpoint import Checkpointer, atomic_write_text
from rlkit.errors import UserError


def test_save_load_roundtrip_and_keep(tmp_path):
    ck = Checkpointer(tmp_path / "ck", every=10, keep=2)
    rng = np.random.default_rng(1)
    for step in (10, 20, 30):
        ck.save(step, {"q": np.full((2, 3), step, np.float64), "rng": rng.bit_generator.state, "n": step})
    assert sorted(p.name for p in (tmp_path / "ck").glob("step_*.pt")) == [
        "step_000000000020.pt", "step_000000000030.pt"]
    step, state = ck.load()
    assert step == 30 and isinstance(state["agent"]["q"], torch.Tensor)
    assert np.asarray(state["agent"]["q"]).sum() == 180 and state["agent"]["n"] == 30
    assert state["agent"]["rng"]["state"]["state"] == rng.bit_generator.state["state"]["state"]
    assert ck.load(20)[0] == 20
    assert set(json.loads((tmp_path / "ck" / "latest.json").read_text())["all"]) == {
        "step_000000000020.pt", "step_000000000030.pt"}
    assert not list((tmp_path / "ck").glob("*.tmp"))


def test_due_and_missing(tmp_path):
    ck = Checkpointer(tmp_path / "ck", every=100)
    assert not ck.due(50) and ck.due(100)
    ck.stop_signal = 2
    assert ck.due(1)
    with pytest.raises(UserError, match="no checkpoint"):
        ck.load()


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_atomic_write_fsyncs_unless_told_not_to(tmp_path, monkeypatch):
    """Checkpoints are fsynced before the rename; metrics.csv's header rewrites (durable=False) are not."""
    import os

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr("os.fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    atomic_write_text(tmp_path / "a.txt", "a")
    atomic_write_text(tmp_path / "b.txt", "b", durable=False)
    assert len(synced) == 1 and (tmp_path / "b.txt").read_text() == "b"
    from rlkit.logger import Logger

    logger = Logger(tmp_path / "run", 10, tensorboard=False, progress=False)
    (tmp_path / "run").mkdir()
    logger.episode(1, 1.0, 1)  # new columns: the header is rewritten
    logger.close()
    assert len(synced) == 1 and (tmp_path / "run" / "metrics.csv").read_text().startswith("step,")
