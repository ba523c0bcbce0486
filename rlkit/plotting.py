"""Learning-curve plots: raw episode return (or per-step reward for bandits) against environment steps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rlkit.errors import UserError

# (column, axis label) pairs, plotted when a run logged them; the first panel present is the headline.
PANELS = [
    ("charts/return", "episode return (raw)"),
    ("charts/reward", "average reward"),
    ("charts/optimal_pct", "% optimal action"),
]


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (empty cells -> nan)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise UserError(f"{run_dir} has no metrics.csv (not a run folder, or it never logged); "
                        "check the path with ls")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise UserError(f"{path} has no rows yet; train longer before plotting")
    head = rows[0]
    cols = {h: np.array([float(r[i]) if i < len(r) and r[i] != "" else np.nan for r in rows[1:]]) for i, h in
            enumerate(head)}
    return cols


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), ignoring nan."""
    if window <= 1:
        return y
    ok = ~np.isnan(y)
    c = np.cumsum(np.where(ok, y, 0.0))
    n = np.cumsum(ok)
    c = np.concatenate([[0.0], c])
    n = np.concatenate([[0], n])
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    cnt = n[idx] - n[lo]
    return np.where(cnt > 0, (c[idx] - c[lo]) / np.maximum(cnt, 1), np.nan)


def _focus(ax, values: np.ndarray, label: str) -> None:
    """Early episodes can be 100x worse than the rest (cliff walking starts near -2000): when they
    squash the curve, clip the y axis at the 5th percentile of the smoothed values and say so."""
    values = values[~np.isnan(values)]
    if len(values) < 20:
        return
    lo, hi = np.percentile(values, [5, 100])
    full = values.max() - values.min()
    if full > 0 and (hi - lo) < 0.5 * full:
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(f"{label}\n(y axis from the 5th percentile)")


def plot_runs(run_dirs: list[Path], out: Path, window: int | None = None) -> Path:
    """One PNG with a panel per metric, a line per run (faint raw values, bold moving average)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(Path(d), read_metrics(d)) for d in run_dirs]
    panels = [(c, label) for c, label in PANELS if any(c in m for _, m in data)]
    if not panels:
        raise UserError(f"none of the runs logged {', '.join(c for c, _ in PANELS)}; nothing to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        curves = []
        for run, m in data:
            if col not in m:
                continue
            x, y = m["step"], m[col]
            w = window or max(1, len(y) // 50)
            curves.append(smooth(y, w))
            line, = ax.plot(x, curves[-1], lw=1.8, label=run.name)
            if w > 1:
                ax.plot(x, y, lw=0.6, alpha=0.25, color=line.get_color())
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        _focus(ax, np.concatenate(curves), label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_title("learning curves" + (" (moving average, raw values faint)" if len(data[0][1]["step"]) > 50
                                               else ""), fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
