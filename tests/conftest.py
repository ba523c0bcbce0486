"""Shared fixtures: run the CLI in-process against a temporary runs folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlkit.cli import main

QUIET = ["progress=false", "tensorboard=false"]


class CLI:
    """Calls `rlkit` in-process; train runs go to a temp folder, quietly, unless the test says otherwise."""

    def __init__(self, runs: Path, capsys):
        self.runs = runs
        self.capsys = capsys

    def __call__(self, *words: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(list(words))
        out = self.capsys.readouterr()
        return rc, out.out, out.err

    def train(self, *words: str, quiet: bool = True) -> tuple[int, Path | None, str]:
        given = {w.split("=", 1)[0] for w in words}
        quiet_words = [q for q in QUIET if q.split("=", 1)[0] not in given] if quiet else []
        rc, out, err = self("train", *words, f"runs.dir={self.runs}", *quiet_words)
        last = out.strip().splitlines()[-1] if out.strip() else ""
        return rc, (Path(last) if rc == 0 else None), out + err


@pytest.fixture
def cli(tmp_path, capsys) -> CLI:
    return CLI(tmp_path / "runs", capsys)


@pytest.fixture(autouse=True)
def _one_thread_and_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
