"""Does our PPO/A2C train like SB3's? The statistics both log after every update, compared over seeds.

    python bench/update_stats.py [agent=ppo env=pendulum key=value ...] --seeds 300..319 [--workers 2]
    python bench/update_stats.py --from bench/results/update_stats_ppo_pendulum.json other.json  (seeds pooled)

Each seed trains our side and SB3's as `rlkit bench` trains them (the same spec and env seeds, SB3's whole-rollout
budget on both sides) and records after every update: the policy's std (Box actions), its entropy, the value
loss, the clip fraction (ppo), the policy loss and the critic's explained variance on the rollout. These move
smoothly from update to update and differ far less between seeds than final returns do, so a systematic
difference in how the two learn (exploration shrinking faster, a critic fitting worse) shows in a few seeds here
where the returns need hundreds. Written to bench/results/update_stats_<agent>_<env>.{md,png,json}: per fifth of
the updates, each statistic's mean on both sides and the paired difference over seeds with its standard error.
Not compared: approx_kl (SB3 logs the mean of the last epoch's minibatches, ours that of every epoch's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENTS = ("ppo", "a2c")
# statistic -> (our logged key, SB3's logged key, the factor that turns SB3's into ours); "std" is read off both
# policies after each update (our a2c does not log it)
STATS: dict[str, tuple[str, dict[str, str], float]] = {
    "std": ("", {}, 1.0),
    "entropy": ("losses/entropy", {"ppo": "train/entropy_loss", "a2c": "train/entropy_loss"}, -1.0),
    "value_loss": ("losses/value", {"ppo": "train/value_loss", "a2c": "train/value_loss"}, 1.0),
    "clip_fraction": ("losses/clip_fraction", {"ppo": "train/clip_fraction"}, 1.0),
    "policy_loss": ("losses/policy", {"ppo": "train/policy_gradient_loss", "a2c": "train/policy_loss"}, 1.0),
    "explained_variance": ("charts/explained_variance", {"ppo": "train/explained_variance",
                                                         "a2c": "train/explained_variance"}, 1.0),
}
STRETCHES = 5


def stat_names(agent: str, box_actions: bool) -> list[str]:
    """The statistics both sides log for this agent (std only for Box actions)."""
    return [k for k, (_, theirs, _) in STATS.items() if (k == "std" and box_actions) or agent in theirs]


def our_series(words: list[str], seed: int) -> tuple[dict[str, list[float]], Any]:
    """(statistic -> one value per update, the trained agent) of our side of `rlkit bench <words>` for `seed`."""
    import agents.onpolicy as onpolicy
    from rlkit.bench import RecordingLogger, sb3_on_policy_total
    from rlkit.checkpoint import Checkpointer
    from rlkit.lockstep import bench_spec
    from rlkit.train import build

    spec = bench_spec(words, seed)
    agent, env = build(spec)
    name = spec.agent
    box = agent.policy.action_dtype == np.float32
    names = stat_names(name, box)
    total = sb3_on_policy_total(spec.config)
    agent.rollout_end = total
    stds: list[float] = []
    update = agent.update

    def update_and_read_std() -> dict[str, float]:
        out = update()
        if box:
            stds.append(float(agent.policy.pi_head.log_std.detach().exp().mean()))
        return out

    agent.update = update_and_read_std
    log_every, onpolicy.LOG_EVERY = onpolicy.LOG_EVERY, 0  # every update's statistics, not one row per 1000 steps
    try:
        with tempfile.TemporaryDirectory() as tmp:
            logger = RecordingLogger(Path(tmp), total)
            agent.learn(env, total, logger, Checkpointer(Path(tmp) / "ck", every=10**12))
            logger.close()
    finally:
        onpolicy.LOG_EVERY = log_every
    rows = [r for r in logger.rows if STATS["value_loss"][0] in r]
    series = {k: stds if k == "std" else [float(r[STATS[k][0]]) for r in rows] for k in names}
    return series, agent


def sb3_series(words: list[str], seed: int) -> tuple[dict[str, list[float]], Any]:
    """(statistic -> one value per update, the trained model) of SB3's side of `rlkit bench <words>` for `seed`.
    Read from its logger right after each train() (SB3 writes them out only after the next rollout)."""
    import torch
    from stable_baselines3.common.logger import configure

    from rlkit.bench import build_sb3
    from rlkit.lockstep import bench_spec

    spec = bench_spec(words, seed)
    torch.set_num_threads(spec.config.threads)
    model, _, setup = build_sb3(spec)
    box = hasattr(model.policy, "log_std")
    names = stat_names(spec.agent, box)
    series: dict[str, list[float]] = {k: [] for k in names}
    train = model.train

    def train_and_read() -> None:
        train()
        logged = model.logger.name_to_value
        for k in names:
            if k == "std":
                series[k].append(float(model.policy.log_std.detach().exp().mean()))
            else:
                _, theirs, factor = STATS[k]
                series[k].append(factor * float(logged[theirs[spec.agent]]))

    model.train = train_and_read
    with tempfile.TemporaryDirectory() as tmp:
        model.set_logger(configure(tmp, []))
        model.learn(setup.total_timesteps)
    return series, model


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _job(args: tuple[str, list[str], int]) -> tuple[str, int, dict[str, list[float]], float]:
    side, words, seed = args
    t0 = time.perf_counter()
    series = (our_series if side == "ours" else sb3_series)(words, seed)[0]
    return side, seed, series, time.perf_counter() - t0


def stretch_table(ours: dict[int, dict[str, list[float]]], theirs: dict[int, dict[str, list[float]]],
                  stretches: int = STRETCHES) -> list[dict[str, Any]]:
    """Per statistic and stretch of updates (the run cut in `stretches` equal parts): both sides' means over seeds
    and the paired difference ours - SB3 (mean over seeds of each seed's stretch means) with its standard error."""
    seeds = sorted(set(ours) & set(theirs))
    rows = []
    for name in ours[seeds[0]]:
        n = min(min(len(ours[s][name]), len(theirs[s][name])) for s in seeds)
        edges = np.linspace(0, n, stretches + 1).round().astype(int)
        for lo, hi in zip(edges[:-1], edges[1:]):
            a = np.array([np.mean(ours[s][name][lo:hi]) for s in seeds])
            b = np.array([np.mean(theirs[s][name][lo:hi]) for s in seeds])
            d = a - b
            se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
            rows.append({"stat": name, "updates": (int(lo) + 1, int(hi)), "ours": float(a.mean()),
                         "sb3": float(b.mean()), "diff": float(d.mean()), "se": se})
    return rows


def report(table: list[dict[str, Any]], command: str, seeds: list[int], updates: int,
           seconds: dict[str, float] | None, words: list[str]) -> str:
    """The markdown report of a stretch_table."""
    agent = next(w.split("=", 1)[1] for w in words if w.startswith("agent="))
    env = next(w.split("=", 1)[1] for w in words if w.startswith("env="))
    lines = [f"# Training statistics after every update: {agent} on {env}, ours and SB3", "",
             f"Command: `{command}` (torch threads 1 per run)", "",
             f"Seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), {updates} updates a run, each side trained as "
             "`rlkit bench` trains it (same spec and env seeds, whole rollouts). "
             + (f"Mean seconds a run: ours {seconds['ours']:.1f}, SB3 {seconds['sb3']:.1f}. " if seconds else "")
             + "Each cell: the mean over seeds of each seed's mean "
             "over that stretch of updates; difference = ours - SB3 paired by seed, +- its standard error over "
             "seeds; z = difference / standard error. entropy is SB3's -entropy_loss; approx_kl is left out (SB3 "
             "logs the last epoch's mean, ours every epoch's).", "",
             "| statistic | updates | ours | SB3 | difference | z |", "|---|---|---|---|---|---|"]
    for r in table:
        z = r["diff"] / r["se"] if r["se"] and np.isfinite(r["se"]) else float("nan")
        lines.append(f"| {r['stat']} | {r['updates'][0]}-{r['updates'][1]} | {r['ours']:.4g} | {r['sb3']:.4g} | "
                     f"{r['diff']:+.3g} +- {r['se']:.2g} | {z:+.1f} |")
    zs = [abs(r["diff"] / r["se"]) for r in table if r["se"] and np.isfinite(r["se"])]
    if zs:
        lines += ["", f"Largest |z| over the {len(zs)} cells: {max(zs):.1f}; cells with |z| > 2: "
                  f"{sum(z > 2 for z in zs)} (about {0.05 * len(zs):.1f} expected by chance if both learn alike)."]
        if len(seeds) < 10:
            lines.append(f"With {len(seeds)} seeds each standard error is itself a rough estimate: |z| of 3-5 "
                         "happens by chance; use 10 or more seeds before reading a difference into a cell.")
    return "\n".join(lines) + "\n"


def plot(ours: dict[int, dict[str, list[float]]], theirs: dict[int, dict[str, list[float]]], path: Path,
         title: str) -> None:
    """Each statistic's mean over seeds per update, both sides, +- one standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(set(ours) & set(theirs))
    names = list(ours[seeds[0]])
    cols = 3
    fig, axes = plt.subplots((len(names) + cols - 1) // cols, cols, figsize=(12, 3.2 * ((len(names) + 2) // cols)),
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        for side, runs, color in (("ours", ours, "C0"), ("SB3", theirs, "C1")):
            n = min(len(runs[s][name]) for s in seeds)
            x = np.array([runs[s][name][:n] for s in seeds])
            m, se = x.mean(0), x.std(0, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 else np.zeros(n)
            ax.plot(range(1, n + 1), m, color=color, label=side)
            ax.fill_between(range(1, n + 1), m - se, m + se, color=color, alpha=0.25)
        ax.set_title(name)
        ax.set_xlabel("update")
        if name == "value_loss":
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_from(paths: list[Path], argv: list[str]) -> int:
    """Print the report of the runs in several of this script's .json files together (e.g. a replication's seeds
    with the first run's); they must be of one agent and env."""
    results: dict[str, dict[int, dict[str, list[float]]]] = {"ours": {}, "sb3": {}}
    words: list[str] | None = None
    for path in paths:
        try:
            data = json.loads(path.read_text())
            these = [w for w in data["command"].split() if w.startswith(("agent=", "env="))]
            runs = {side: {int(k): v for k, v in data[side].items()} for side in results}
        except (OSError, ValueError, KeyError, AttributeError) as e:
            print(f"error: {path}: not an update_stats .json ({type(e).__name__}: {e}); give files this script "
                  "wrote, e.g. bench/results/update_stats_ppo_pendulum.json", file=sys.stderr)
            return 2
        if words is not None and sorted(these) != sorted(words):
            print(f"error: {path} holds {' '.join(these)}, the first file {' '.join(words)}: give files of one agent "
                  "and env", file=sys.stderr)
            return 2
        words = these
        for side in results:
            results[side].update(runs[side])
    seeds = sorted(set(results["ours"]) & set(results["sb3"]))
    if not seeds:
        print(f"error: no seed has runs of both sides in {', '.join(map(str, paths))}: wait for a run to finish "
              "both sides of a seed", file=sys.stderr)
        return 2
    updates = len(next(iter(results["ours"][seeds[0]].values())))
    command = "python bench/update_stats.py " + " ".join(argv)
    print(report(stretch_table(results["ours"], results["sb3"]), command, seeds, updates, None, words), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    from rlkit.bench import parse_seeds
    from rlkit.errors import UserError
    from rlkit.lockstep import bench_spec

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("words", nargs="*", default=["agent=ppo", "env=pendulum"])
    p.add_argument("--seeds", default="300..319", metavar="A..B|N")
    p.add_argument("--workers", type=int, default=1, help="runs at once in spawned processes (0: in this one)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--from", dest="sources", nargs="+", type=Path, metavar="JSON",
                   help="no runs: print the report of the series in these files (their seeds together)")
    args = p.parse_args(argv)
    if args.sources:
        return report_from(args.sources, argv if argv is not None else sys.argv[1:])
    words = [*args.words, "threads=1"]
    try:
        seeds = parse_seeds(int(args.seeds) if args.seeds.isdigit() else args.seeds)
        if args.workers < 0:
            raise UserError(f"--workers {args.workers}: give 0 (in this process) or more")
        spec = bench_spec(words, seeds[0])
        if spec.agent not in AGENTS:
            raise UserError(f"agent={spec.agent}: update_stats compares {' and '.join(AGENTS)} with SB3 "
                            "(the statistics both log); e.g. agent=ppo")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from rlkit.checkpoint import atomic_write_text

    command = "python bench/update_stats.py " + " ".join([*args.words, f"--seeds {args.seeds}"]
                                                        + ([f"--workers {args.workers}"] if args.workers != 1 else []))
    jobs = [(side, words, s) for s in seeds for side in ("ours", "sb3")]
    results: dict[str, dict[int, dict[str, list[float]]]] = {"ours": {}, "sb3": {}}
    seconds: dict[str, list[float]] = {"ours": [], "sb3": []}
    stem = f"update_stats_{spec.agent}_{spec.env}"
    args.out.mkdir(parents=True, exist_ok=True)
    data_path = args.out / f"{stem}.json"
    # the workers ignore Ctrl-C: the parent takes it, keeps what finished and ends them (no traceback per worker)
    pool = mp.get_context("spawn").Pool(args.workers, _ignore_sigint) if args.workers else None
    done = pool.imap_unordered(_job, jobs) if pool else map(_job, jobs)
    try:
        for i, (side, seed, series, took) in enumerate(done, 1):
            results[side][seed] = series
            seconds[side].append(took)
            # after every run: an interrupted sweep keeps what finished (report it with --from)
            atomic_write_text(data_path, json.dumps({"command": command, "seeds": seeds, **results}), durable=False)
            print(f"[{i}/{len(jobs)}] {side} seed {seed}: {len(next(iter(series.values())))} updates in "
                  f"{took:.0f} s", flush=True)
    except KeyboardInterrupt:
        if pool:
            pool.terminate()
        print(f"interrupted: the finished runs are in {data_path} (python bench/update_stats.py --from {data_path})",
              file=sys.stderr)
        return 130
    if pool:
        pool.close()
        pool.join()
    table = stretch_table(results["ours"], results["sb3"])
    updates = len(next(iter(results["ours"][seeds[0]].values())))
    text = report(table, command, seeds, updates, {k: float(np.mean(v)) for k, v in seconds.items()}, words)
    (args.out / f"{stem}.md").write_text(text)
    plot(results["ours"], results["sb3"], args.out / f"{stem}.png",
         f"{spec.agent} {spec.env}: statistics after each update, mean +- SE over {len(seeds)} seeds")
    print(text)
    print(f"wrote {args.out / stem}.md, .json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
