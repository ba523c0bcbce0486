"""Checkpoints: the whole training state as tensors and plain data, written atomically, verified on load.

Layout in `<run>/checkpoints/`: `step_<N>.pt` files (torch.save of a dict; numpy arrays become tensors)
and `latest.json` naming the newest file with its SHA-256. A file is written to a temp name, fsynced
and renamed; `latest.json` is replaced the same way afterwards, so a crash at any point leaves the
previous checkpoint intact. Loading uses `torch.load(weights_only=True)`: no pickled objects.

With `eval_every`, training also keeps the policy that scored best in the periodic evaluations:
`best_step_<N>.pt` (what the agent needs to act, for `rlkit eval checkpoint=best`, not for resuming)
and `best.json` (its file, step, SHA-256 and score), written the same atomic way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.errors import UserError

FORMAT = 1


def to_tensors(obj: Any) -> Any:
    """numpy arrays -> torch tensors (recursively), so the state is loadable with weights_only=True."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_tensors(v) for v in obj]
    return obj


def load_weights(modules: dict[str, torch.nn.Module], state: dict[str, Any], what: str) -> None:
    """Each module's weights from state[name]; weights of another shape are a UserError (one line, naming the
    likely cause) rather than torch's multi-line RuntimeError."""
    try:
        for name, module in modules.items():
            module.load_state_dict(state[name])
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()]
        first = next((line for line in lines[1:] if line), lines[0])  # torch's line 0 only names the class
        raise UserError(f"checkpoint weights do not fit this {what} ({first.rstrip('.')}); "
                        "was the run's net or env changed?") from None


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` via a temp file in the same folder + fsync + rename: readers see the old file or
    the new one, never a part. durable=False skips the fsync (~1 ms): still whole after a process crash, but
    an OS crash may leave the old version (for files appended to without fsync anyway, e.g. metrics.csv)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), durable)


class Checkpointer:
    """Saves and finds checkpoints of one run, and turns SIGINT/SIGTERM into a clean stop request."""

    def __init__(self, folder: Path, every: int, keep: int = 3):
        self.folder = Path(folder)
        self.every = every
        self.keep = keep
        self.last_saved_step: int | None = None
        self.stop_signal: int | None = None
        self._old_handlers: dict[int, Any] = {}
        # name -> callable returning extra state saved beside the agent's (logger counters, global RNGs)
        self.extras: dict[str, Callable[[], Any]] = {}
        # called as periodic(step) from due() once `periodic_every` more steps have passed (train.py: evaluation)
        self.periodic: Callable[[int], None] | None = None
        self.periodic_every = 0
        self._next_periodic = 0

    def set_periodic(self, every: int, fn: Callable[[int], None], after_step: int = 0) -> None:
        """Call fn(step) from due() at the first call on or after each multiple of `every` beyond `after_step`.

        Every agent asks due() between its steps or episodes, so a periodic job (the evaluation of
        `eval_every`) runs at a consistent point of any agent's loop without code in the agent."""
        self.periodic, self.periodic_every = fn, int(every)
        self._next_periodic = (int(after_step) // self.periodic_every + 1) * self.periodic_every

    # -- saving -----------------------------------------------------------------------------------
    def due(self, step: int) -> bool:
        """True when `every` steps have passed since the last save (or a stop was requested).

        Runs the periodic job first when one is due (see set_periodic)."""
        if self.periodic is not None and step >= self._next_periodic and not self.stop_requested:
            self._next_periodic = (int(step) // self.periodic_every + 1) * self.periodic_every
            self.periodic(int(step))
        if self.stop_requested:
            return True
        last = self.last_saved_step or 0
        return step - last >= self.every

    def save(self, step: int, agent_state: dict[str, Any]) -> Path:
        """Write the agent's state (plus `extras`) as step_<step>.pt, point latest.json at it, keep the newest few."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"agent": agent_state, **{k: fn() for k, fn in self.extras.items()}}
        buf = io.BytesIO()
        torch.save({"format": FORMAT, "step": int(step), "state": to_tensors(state)}, buf)
        data = buf.getvalue()
        name = f"step_{int(step):012d}.pt"
        atomic_write_bytes(self.folder / name, data)
        digest = hashlib.sha256(data).hexdigest()
        hashes = self._hashes()
        hashes[name] = digest
        kept = sorted(hashes)[-self.keep :]
        latest = {"file": name, "step": int(step), "sha256": digest, "bytes": len(data),
                  "all": {n: hashes[n] for n in kept}}
        atomic_write_text(self.folder / "latest.json", json.dumps(latest, indent=1) + "\n")
        self.last_saved_step = int(step)
        for old in self.folder.glob("step_*.pt"):
            if old.name not in kept:
                old.unlink()
        return self.folder / name

    def save_best(self, step: int, agent_state: dict[str, Any], score: dict[str, Any]) -> Path:
        """Write best_step_<step>.pt (the agent's state only) and best.json with its score; drop the older best."""
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({"format": FORMAT, "step": int(step), "state": to_tensors({"agent": agent_state})}, buf)
        data = buf.getvalue()
        name = f"best_step_{int(step):012d}.pt"
        atomic_write_bytes(self.folder / name, data)
        record = {"file": name, "step": int(step), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                  **score}
        atomic_write_text(self.folder / "best.json", json.dumps(record, indent=1) + "\n")
        for old in self.folder.glob("best_step_*.pt"):
            if old.name != name:
                old.unlink()
        return self.folder / name

    def best(self) -> dict[str, Any] | None:
        """The best.json record (None when the run kept no best checkpoint)."""
        try:
            return json.loads((self.folder / "best.json").read_text())
        except OSError:
            return None
        except json.JSONDecodeError as e:
            raise UserError(f"{self.folder / 'best.json'} is corrupt ({e}); delete it, or use checkpoint=last") \
                from None

    def _hashes(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.folder / "latest.json").read_text()).get("all", {}))
        except (OSError, json.JSONDecodeError, AttributeError):
            return {}

    # -- loading ----------------------------------------------------------------------------------
    def latest(self) -> dict[str, Any]:
        """The latest.json record; UserError if the run has no checkpoint."""
        pointer = self.folder / "latest.json"
        if not pointer.exists():
            raise UserError(f"no checkpoint in {self.folder}: the run never saved one; train it again")
        try:
            return json.loads(pointer.read_text())
        except (json.JSONDecodeError, OSError) as e:
            raise UserError(f"{pointer} is corrupt ({e}); restore it, or delete the run's checkpoints") from None

    def load(self, which: str | int = "last") -> tuple[int, dict[str, Any]]:
        """(step, state) of the latest checkpoint, the best one, or the one of step `which`, verified
        against its SHA-256. A best checkpoint holds only the agent's state (enough to act)."""
        if which == "last":
            rec = self.latest()
            path, digest = self.folder / rec["file"], rec.get("sha256")
        elif which == "best":
            rec = self.best()
            if rec is None:
                raise UserError(f"no best checkpoint in {self.folder}: the run was trained without eval_every "
                                "(train with eval_every=N to keep one); use checkpoint=last or checkpoint=<step>")
            path, digest = self.folder / rec["file"], rec.get("sha256")
        else:
            path = self.folder / f"step_{int(which):012d}.pt"
            digest = self._hashes().get(path.name)
            best = self.best() if not path.exists() else None
            if best is not None and best.get("step") == int(which):
                path, digest = self.folder / best["file"], best.get("sha256")
            elif not path.exists():
                have = ", ".join(str(int(p.stem[5:])) for p in sorted(self.folder.glob("step_*.pt")))
                if best is not None:
                    have += f"{', ' if have else ''}{best['step']} (best)"
                raise UserError(f"no checkpoint at step {which} in {self.folder}; saved steps: {have or 'none'}")
        return load_file(path, digest)

    # -- signals ----------------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self.stop_signal is not None

    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM asks the loop to checkpoint and stop; a second SIGINT aborts at once."""

        def handler(signum, frame):
            if self.stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()


def load_file(path: Path, sha256: str | None = None) -> tuple[int, dict[str, Any]]:
    """Load one checkpoint file with weights_only=True; truncation, tampering or foreign files are UserErrors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read checkpoint {path}: {e.strerror}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(
            f"checkpoint {path} does not match the SHA-256 in latest.json (truncated or modified); "
            "restore it, or delete it and latest.json to start from an older one"
        )
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; the error below says it all
            warnings.simplefilter("ignore")
            blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path} is corrupt or not an rlkit checkpoint ({first[:160]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state" not in blob:
        raise UserError(f"checkpoint {path} is not an rlkit checkpoint of format {FORMAT}")
    return int(blob["step"]), blob["state"]
