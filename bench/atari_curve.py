"""Learning curve of one Atari training run: raw game score vs frames (PNG) and a Markdown summary.

    python bench/atari_curve.py runs/dqn-pong-<time>-s0 --name dqn_pong_curve [--mark "CleanRL DQN 10M: 20.25"]
        [--label bf16 --compare runs/<other run> --compare-label fp32]

Reads the run's metrics.csv (one row per finished game: raw score = `charts/return`, steps/s) and
config.yaml; frames = agent steps x 4 (frame skip). Writes bench/results/<name>.png and .md with the
run's length, throughput, the last 100 games' mean score and the command that made the run. With
--compare, a second run is drawn on the same axes and both runs' 100-game means are tabled at equal steps.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlkit.plotting import read_metrics, smooth  # noqa: E402

FRAME_SKIP = 4


def games_only(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows that record a finished game (agents such as ppo also log update rows with no return)."""
    keep = ~np.isnan(m["charts/return"])
    return {k: v[keep] for k, v in m.items()}


def summarize(m: dict[str, np.ndarray], learning_starts: int = 0) -> dict[str, float]:
    """Figures of a run: steps, frames, games, hours, steps/s (whole run and once learning started),
    last-100 mean score and best 100-game mean."""
    steps, ret, wall = m["step"], m["charts/return"], m["wall_s"]
    after = np.flatnonzero(steps >= learning_starts)
    if len(after) >= 2:
        i, j = after[0], after[-1]
        sps_learning = float((steps[j] - steps[i]) / max(wall[j] - wall[i], 1e-9))
    else:
        sps_learning = float("nan")
    last = ret[-100:]
    best100 = float(np.nanmax(smooth(ret, 100)[99:])) if len(ret) >= 100 else float("nan")
    return {
        "steps": float(steps[-1]), "frames": float(steps[-1] * FRAME_SKIP), "games": float(len(ret)),
        "hours": float(wall[-1] / 3600), "steps_per_s": float(steps[-1] / wall[-1]),
        "steps_per_s_learning": sps_learning,
        "last100_mean": float(np.nanmean(last)), "last100_std": float(np.nanstd(last)),
        "best100_mean": best100, "first_score": float(ret[0]),
    }


def mean_at(m: dict[str, np.ndarray], step: float, n: int = 100) -> float | None:
    """Mean raw score of the last n games finished by `step` (None if the run had not got there)."""
    if len(m["step"]) == 0 or m["step"][-1] < step:
        return None
    ret = m["charts/return"][m["step"] <= step][-n:]
    return float(ret.mean()) if len(ret) else None


def plot(m: dict[str, np.ndarray], out: Path, title: str, marks: list[tuple[str, float]], label: str = "",
         other: tuple[dict[str, np.ndarray], str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = m["step"] * FRAME_SKIP
    ret = m["charts/return"]
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.plot(frames, ret, lw=0.6, alpha=0.3, color="tab:blue")
    ax.plot(frames, smooth(ret, 50), lw=1.8, color="tab:blue",
            label=f"{label + ': ' if label else ''}raw score (moving average of 50 games)")
    if other is not None:
        om, olabel = other
        ax.plot(om["step"] * FRAME_SKIP, smooth(om["charts/return"], 50), lw=1.4, color="tab:grey",
                label=f"{olabel}: raw score (moving average of 50 games)")
    for label, y in marks:
        ax.axhline(y, ls="--", lw=0.8, color="grey")
        ax.text(frames[-1], y, f"{label} ", va="bottom", ha="right", fontsize=7, color="grey")
    ax.set_xlabel("frames (agent steps x 4)")
    ax.set_ylabel("game score (raw, full game)")
    ax.set_ylim(-22, 22)
    ax.grid(alpha=0.3)
    if "charts/epsilon" in m:
        ax2 = ax.twinx()
        ax2.plot(frames, m["charts/epsilon"], lw=1, color="tab:orange", alpha=0.7, label="epsilon")
        ax2.set_ylabel("epsilon", color="tab:orange")
        ax2.set_ylim(0, 1.05)
    ax.legend(loc="center left", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--name", required=True, help="output name under bench/results/")
    p.add_argument("--mark", action="append", default=[], help="'label: score' reference lines")
    p.add_argument("--machine", default=f"{platform.machine()}, {platform.system()}", help="where the run ran")
    p.add_argument("--notes", default="", help="a sentence added to the Markdown")
    p.add_argument("--label", default="", help="legend label of the run")
    p.add_argument("--compare", type=Path, default=None, help="a second run drawn on the same axes")
    p.add_argument("--compare-label", default="other run", help="legend label of --compare")
    args = p.parse_args()
    m = games_only(read_metrics(args.run))
    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    s = summarize(m, int(cfg.get("config", cfg).get("learning_starts", 0) or 0))
    marks = [(t.rsplit(":", 1)[0], float(t.rsplit(":", 1)[1])) for t in args.mark]
    title = f"{cfg.get('agent')} on {cfg.get('env')}: {s['frames'] / 1e6:.2f}M frames, {s['hours']:.1f} h"
    out = ROOT / "bench" / "results"
    other = None if args.compare is None else (games_only(read_metrics(args.compare)), args.compare_label)
    plot(m, out / f"{args.name}.png", title, marks, args.label, other)
    lines = [
        f"# {title}",
        "",
        f"Run: `{args.run.name}` on {args.machine}. {args.notes}".rstrip(),
        f"Command: `{cfg.get('command', '?')}` (commit {cfg.get('git_commit', '?')}).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| agent steps (frames) | {s['steps']:,.0f} ({s['frames']:,.0f}) |",
        f"| games played | {s['games']:,.0f} |",
        f"| wall time | {s['hours']:.2f} h |",
        f"| mean agent steps/s over the run | {s['steps_per_s']:,.1f} |",
        f"| agent steps/s once learning started | {s['steps_per_s_learning']:,.1f} |",
        f"| raw score, last 100 games | {s['last100_mean']:.2f} +/- {s['last100_std']:.2f} |",
        f"| best 100-game mean | {s['best100_mean']:.2f} |",
        "",
        "Scores are raw game scores of full games (no clipping, no life-loss cut) from the training "
        "episodes, with the exploration of that moment (epsilon on the right axis).",
        f"Curve: `{args.name}.png`.",
    ]
    if other is not None:
        om, olabel = other
        lines += ["", f"100-game mean raw score at equal agent steps, {args.label or 'this run'} vs {olabel} "
                  f"(`{args.compare.name}`):", "",
                  f"| agent steps | {args.label or 'this run'} | {olabel} |", "|---|---|---|"]
        for step in np.arange(250_000, max(m["step"][-1], om["step"][-1]) + 1, 250_000):
            a, b = mean_at(m, step), mean_at(om, step)
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            lines.append(f"| {step:,.0f} | {fmt(a)} | {fmt(b)} |")
    if marks:
        lines.append("")  # a paragraph, not a row of the table above
        lines.append("Reference marks at 10M steps: " + "; ".join(f"{label} {y}" for label, y in marks) + ".")
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
