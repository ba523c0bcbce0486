"""Learning-curve plots: raw episode return (or per-step reward for bandits) against environment steps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

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
            ok = ~np.isnan(m[col])  # rows of other kinds (eval rows) have no value here
            x, y = m["step"][ok], m[col][ok]
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


# --------------------------------------------------------------------------------------------------
# rlkit compare: seeds of one configuration aggregated

# config keys that do not make two runs different experiments (seeds, budgets, bookkeeping)
NOT_HYPERPARAMETERS = {"seed", "threads", "progress", "tensorboard", "checkpoint_every", "eval_episodes",
                       "eval_every", "total_steps", "total_episodes", "device", "async_envs", "save_replay"}
GRID = 200  # points of the common x grid each seed's curve is interpolated onto


def run_identity(run_dir: Path) -> tuple[str, str, dict[str, Any]]:
    """(agent, env, flat hyperparameters incl. env kwargs) of a run, read from its config.yaml."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise UserError(f"{run_dir} has no config.yaml, so it is not an rlkit run folder")
    try:
        data = yaml.safe_load(path.read_text())
        agent, env = str(data["agent"]), str(data["env"])
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise UserError(f"{path} is corrupt ({type(e).__name__}); it cannot name the run's agent and env") from None
    from rlkit.runs import _flat

    flat = {k: v for k, v in _flat(data.get("config") or {}).items() if k.split(".")[0] not in NOT_HYPERPARAMETERS}
    flat.update({f"env.{k}": v for k, v in (data.get("env_kwargs") or {}).items()})
    return agent, env, flat


def group_runs(run_dirs: list[Path]) -> list[tuple[str, list[Path]]]:
    """Runs grouped by (agent, env, hyperparameters), in order of first appearance, each with a label
    naming the agent, the env and the hyperparameters that set it apart from the other groups."""
    ids = [run_identity(d) for d in run_dirs]
    groups: dict[str, list[int]] = {}
    for i, (agent, env, flat) in enumerate(ids):
        groups.setdefault(repr((agent, env, sorted((k, repr(v)) for k, v in flat.items()))), []).append(i)
    out = []
    for members in groups.values():
        agent, env, flat = ids[members[0]]
        rivals = [ids[m[0]][2] for m in groups.values() if m is not members and ids[m[0]][:2] == (agent, env)]
        differ = sorted(k for k in flat if any(r.get(k) != flat[k] for r in rivals))
        label = " ".join([agent, env, *(f"{k}={_short(flat[k])}" for k in differ)])
        out.append((label, [run_dirs[i] for i in members]))
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)


def pick_metric(data: list[dict[str, np.ndarray]], metric: str | None, runs: list[Path]) -> str:
    """The column to compare: the one asked for (every run must have it), else the first headline panel all have."""
    if metric is not None:
        lacking = [r.name for r, m in zip(runs, data) if metric not in m or np.isnan(m[metric]).all()]
        if lacking:
            have = sorted(set.intersection(*(set(m) for m in data)) - {"step", "episode", "wall_s"})
            from rlkit.errors import did_you_mean

            raise UserError(f"metric={metric}: not logged by {', '.join(lacking)}{did_you_mean(metric, have)}; "
                            f"columns all runs have: {', '.join(have)}")
        return metric
    for col, _ in PANELS:
        if all(col in m and not np.isnan(m[col]).all() for m in data):
            return col
    raise UserError(f"the runs share none of {', '.join(c for c, _ in PANELS)}; pick a column with metric=NAME")


def band_of(curves: np.ndarray, band: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) across seeds (rows) at each x: min-max, or a 95% bootstrap CI of the mean."""
    if band == "minmax":
        return np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
    n = len(curves)
    idx = rng.integers(n, size=(2000, n))
    means = np.nanmean(curves[idx], axis=1)  # (resamples, points)
    return np.nanpercentile(means, 2.5, axis=0), np.nanpercentile(means, 97.5, axis=0)


def compare_runs(run_dirs: list[Path], out: Path, band: str = "minmax", x: str = "steps", metric: str | None = None,
                 window: int | None = None) -> tuple[Path, str]:
    """One PNG: a mean line and a shaded band per group of seeds; returns (path, a text table of final values).

    Each seed is smoothed (moving average over `window` rows), interpolated onto a grid over the x range
    all seeds of its group cover, then averaged. The final value of a seed is the mean of its last 10% of
    rows (raw, not smoothed)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [read_metrics(d) for d in run_dirs]
    metric = pick_metric(data, metric, run_dirs)
    by_run = dict(zip(run_dirs, data))
    xcol = "step" if x == "steps" else "wall_s"
    rng = np.random.default_rng(0)  # the bootstrap is seeded: the same runs give the same picture
    fig, ax = plt.subplots(figsize=(8, 4.8))
    rows, means_all = [], []
    for label, runs in group_runs(run_dirs):
        xs, ys, finals, last_steps, last_walls = [], [], [], [], []
        for r in runs:
            m = by_run[r]
            ok = ~np.isnan(m[metric])
            xr, yr = m[xcol][ok], m[metric][ok]
            w = window or max(1, len(yr) // 50)
            xs.append(xr)
            ys.append(smooth(yr, w))
            finals.append(float(np.mean(yr[-max(1, len(yr) // 10):])))
            last_steps.append(float(m["step"][-1]))
            last_walls.append(float(m["wall_s"][-1]))
        lo, hi = max(xr[0] for xr in xs), min(xr[-1] for xr in xs)
        if hi <= lo:  # seeds cover no common range (e.g. one very short run): use the union
            lo, hi = min(xr[0] for xr in xs), max(xr[-1] for xr in xs)
        grid = np.linspace(lo, hi, GRID)
        curves = np.array([np.where((grid >= xr[0]) & (grid <= xr[-1]), np.interp(grid, xr, yr), np.nan)
                           for xr, yr in zip(xs, ys)])
        with warnings.catch_warnings():  # all-nan columns (outside a seed's range) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(curves, axis=0)
            line, = ax.plot(grid, mean, lw=1.8, label=f"{label} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
            if len(runs) > 1:
                b_lo, b_hi = band_of(curves, band, rng)
                ax.fill_between(grid, b_lo, b_hi, color=line.get_color(), alpha=0.2, lw=0)
            f = np.array(finals)
            f_lo, f_hi = band_of(f[:, None], band, rng) if len(f) > 1 else (f, f)
        means_all.append(mean)
        rows.append((label, len(runs), float(np.median(last_steps)), float(np.median(last_walls)), float(f.mean()),
                     float(np.ravel(f_lo)[0]), float(np.ravel(f_hi)[0])))
    ylabel = {**dict(PANELS), "eval/return_mean": "eval return (raw, greedy policy)"}.get(metric, metric)
    ax.set_xlabel("environment steps" if x == "steps" else "training wall seconds (periodic evaluation excluded)")
    ax.set_ylabel(ylabel)
    _focus(ax, np.concatenate(means_all), ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    what = "min-max over seeds" if band == "minmax" else "95% bootstrap CI of the mean over seeds"
    ax.set_title(f"{metric}: mean over seeds, band = {what}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out, _table(rows, metric, band)


def _table(rows: list[tuple], metric: str, band: str) -> str:
    band_name = "min-max" if band == "minmax" else "95% CI"
    head = ("run group", "seeds", "env steps", "wall s", f"final {metric}", band_name)
    body = [(label, str(n), f"{steps:,.0f}", f"{wall:,.1f}", f"{mean:.3f}", f"[{lo:.3f}, {hi:.3f}]")
            for label, n, steps, wall, mean, lo, hi in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n(final = mean of each seed's last 10% of {metric} rows; steps and wall: medians)"
