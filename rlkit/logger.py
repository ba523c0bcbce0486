"""Run logging: metrics.csv (one row per episode or log block), TensorBoard events, and a progress display.

Metric names are grouped and stable: `charts/return` (the raw episode score, before any reward
clipping or normalization), `charts/length`, `charts/sps`, `charts/epsilon`, `losses/...`, `eval/...`.
The CSV uses the same names as TensorBoard tags, after `step`, `episode` and `wall_s`.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from rlkit.checkpoint import atomic_write_text

FIXED = ["step", "episode", "wall_s"]
FLUSH_EVERY_S = 1.0
"""seconds between flushes of metrics.csv; also flushed at every checkpoint (state_dict) and at close"""


class Logger:
    """Appends metric rows to metrics.csv and TensorBoard; drives the progress bar."""

    def __init__(self, run_dir: Path, total_steps: int, tensorboard: bool = True, progress: bool = True,
                 desc: str = "train"):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.csv"
        self.total_steps = total_steps
        self.columns: list[str] = list(FIXED)
        self._known = set(self.columns)
        self.wall_offset = 0.0
        self.t0 = time.perf_counter()
        self.episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=20)
        self._sps_mark = (0, self.t0)
        self.sps = 0.0
        self._tb_enabled = tensorboard
        self._tb = None
        self._progress = _Progress(total_steps, desc, enabled=progress)
        self._file: Any = None
        self._csv: Any = None  # a csv.writer on _file
        self._flushed = self.t0

    # -- resume -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counters a checkpoint keeps (taking one also puts every row logged so far on disk)."""
        self.flush()
        return {"wall_s": self.elapsed(), "episodes": self.episodes, "recent_returns": list(self.recent_returns)}

    def resume(self, step: int, state: dict[str, Any]) -> None:
        """Continue after a checkpoint at `step`: drop CSV rows logged after it, restore counters."""
        self.wall_offset = float(state["wall_s"])
        self.t0 = time.perf_counter()
        self.episodes = int(state["episodes"])
        self.recent_returns.extend(float(x) for x in state["recent_returns"])
        self._sps_mark = (step, self.t0)
        if self.path.exists():
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                self.columns = rows[0]
                self._known = set(self.columns)
                keep = [r for r in rows[1:] if r and int(float(r[0])) <= step]
                atomic_write_text(self.path, _csv_text([self.columns, *keep]), durable=False)
        self._tb_purge = step

    # -- logging ----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t0

    def exclude_time(self, seconds: float) -> None:
        """Leave `seconds` (a periodic evaluation) out of wall_s and steps/s: they measure training."""
        self.wall_offset -= seconds
        step, t = self._sps_mark
        self._sps_mark = (step, t + seconds)

    def episode(self, step: int, ret: float, length: int, **extra: float) -> None:
        """Log one finished episode: raw return, length, steps/s and any extra metrics."""
        self.episodes += 1
        self.recent_returns.append(float(ret))
        self.log(step, {"charts/return": ret, "charts/length": length, **extra})

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append one row (step, episode, wall_s, metrics...) and the same scalars to TensorBoard."""
        now = time.perf_counter()
        last_step, last_t = self._sps_mark
        if now - last_t > 0.5 or self.sps == 0.0:
            self.sps = (step - last_step) / max(now - last_t, 1e-9)
            self._sps_mark = (step, now)
        metrics = {**metrics, "charts/sps": round(self.sps, 1)}
        row = {"step": step, "episode": self.episodes, "wall_s": round(self.elapsed(), 3), **metrics}
        new = [k for k in row if k not in self._known]
        if new:
            self._extend_columns(new)
        if self._file is None:
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            self._file = open(self.path, "a", newline="")
            self._csv = csv.writer(self._file, lineterminator="\n")
            if fresh:
                self._csv.writerow(self.columns)
        self._csv.writerow([_fmt(row.get(c, "")) for c in self.columns])
        if now - self._flushed >= FLUSH_EVERY_S:  # not every row: a row costs ~3 us alone, a flush ~1.3 us more
            self.flush()
        tb = self._writer()
        if tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float) and math.isfinite(v):
                    tb.add_scalar(k, v, step)
        self.progress(step)

    def progress(self, step: int) -> None:
        if not self._progress.enabled:
            return
        recent = sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else None
        self._progress.update(step, self.sps, recent)

    def flush(self) -> None:
        """Put the rows logged so far on disk (they are flushed every FLUSH_EVERY_S seconds anyway)."""
        if self._file is not None:
            self._file.flush()
        self._flushed = time.perf_counter()

    def close(self) -> None:
        self._progress.close()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    # -- internals --------------------------------------------------------------------------------
    def _extend_columns(self, new: list[str]) -> None:
        """A metric appeared that the header lacks: rewrite the file with the wider header."""
        if self._file is not None:
            self._file.close()
            self._file = None
        rows: list[list[str]] = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))[1:]
        self.columns += new
        self._known.update(new)
        rows = [r + [""] * (len(self.columns) - len(r)) for r in rows]
        atomic_write_text(self.path, _csv_text([self.columns, *rows]), durable=False)

    def _writer(self):
        if not self._tb_enabled:
            return None
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=getattr(self, "_tb_purge", None))
        return self._tb


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


class _Progress:
    """A rich progress bar on a terminal; elsewhere (CI, pipes) a plain line at every 10% of the steps."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total = total
        self.desc = desc
        self.live = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.live
        self._next_plain = 0.1
        self._bar = None
        self.enabled = self.live or self.plain
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[sps]} steps/s"), TextColumn("return {task.fields[ret]}"),
                TimeRemainingColumn(), transient=False,
                console=__import__("rich.console", fromlist=["Console"]).Console(stderr=True),
            )
            self._task = self._bar.add_task(desc, total=total, sps="-", ret="-")
            self._bar.start()

    def update(self, step: int, sps: float, recent: float | None) -> None:
        ret = "-" if recent is None else f"{recent:.2f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=min(step, self.total), sps=f"{sps:,.0f}", ret=ret)
        elif self.plain and step >= self._next_plain * self.total:
            print(f"{self.desc}: step {step}/{self.total} ({100 * step / self.total:.0f}%), "
                  f"{sps:,.0f} steps/s, recent return {ret}", file=sys.stderr, flush=True)
            while self._next_plain * self.total <= step:
                self._next_plain += 0.1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
