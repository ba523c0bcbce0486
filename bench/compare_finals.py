"""The final-evaluation comparison `rlkit bench` writes under its table, recomputed from a results CSV.

    python bench/compare_finals.py bench/results/bench_ppo_pendulum_40seeds.csv [...] [--combine]

For each file: rlkit - SB3 IQM difference of the last evaluation of every run, its 95% bootstrap CI
(seeds resampled in pairs over the seeds both sides ran: they share env and evaluation seeds; a seed only
one side has is named and left out)
and the probability that a run of ours ends above one of SB3's. Works for results written before the
report had the line (their evaluation seeds may differ: see each report's protocol).

--combine: one comparison over the runs of all the files together (more seeds than one bench ran), with
each side's IQM; a seed run in more than one file must end at the same value there (the same code and
protocol; training does not depend on eval_every), else the files are refused.

FILE:OLD=NEW reads a file's side OLD as NEW (e.g. a sweep's config label as our side, to combine it with bench
files of other seeds; `bench_x.csv:rlkit=old` keeps a side out of NEW's way).

--seeds A..B keeps only the runs of those seeds (e.g. to pair a 100-seed sweep with the same seeds of a longer one).

--sides A B: compare side A with side B (default: rlkit sb3), e.g. a sweep's config label against our bench
side, as for bench/plain_paths.py's runs:

    python bench/compare_finals.py bench/results/bench_ppo_pendulum_40seeds.csv \
        bench/results/sweep_ppo_pendulum_torch_acting.csv --combine --sides ppo rlkit

Over the seeds both sides ran, a paired line follows: the mean difference with its standard error, on how
many seeds A ends above B, the paired t-test's and the Wilcoxon signed-rank test's p (scipy), and the
difference of the 10/25/50/75/90% quantiles with paired bootstrap CIs (where in the spread of runs a gap
sits: a shift of all runs, or a tail of failed ones).

--plot FILE.png draws each comparison's score distributions (the fraction of runs ending above each score,
Agarwal et al. 2021's performance profile) with pointwise 95% bootstrap bands.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def finals_by_side(path: Path) -> dict[str, dict[int, float]]:
    """{side: {seed: eval at the run's last step}} from a bench results.csv."""
    last: dict[tuple[str, int], tuple[int, float]] = {}
    with open(path) as f:
        reader = csv.DictReader(f)
        if not {"side", "seed", "step", "eval"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: not a bench results.csv")
        for row in reader:
            if not row["seed"]:  # a reference row
                continue
            key, step = (row["side"], int(row["seed"])), int(row["step"])
            if key not in last or step > last[key][0]:
                last[key] = (step, float(row["eval"]))
    out: dict[str, dict[int, float]] = {}
    for (side, seed), (_, value) in last.items():
        out.setdefault(side, {})[seed] = value
    return out


def split_renames(arg: str) -> tuple[Path, dict[str, str]]:
    """"results.csv:ppo=rlkit,x=y" -> (results.csv, {"ppo": "rlkit", "x": "y"}): sides read under other names."""
    path, sep, tail = arg.rpartition(":")
    pairs = [p.split("=", 1) for p in tail.split(",")] if sep else []
    if not sep or not all(len(p) == 2 and all(p) for p in pairs):
        return Path(arg), {}
    return Path(path), {old: new for old, new in pairs}


def combine(files: dict[Path, dict[str, dict[int, float]]]) -> dict[str, dict[int, float]]:
    """The finals of several results files as one set of runs; ValueError if a seed ends differently in two."""
    out: dict[str, dict[int, float]] = {}
    seen: dict[tuple[str, int], Path] = {}
    for path, sides in files.items():
        for side, finals in sides.items():
            for seed, value in finals.items():
                if (side, seed) in seen and out[side][seed] != value:
                    raise ValueError(f"{side} seed {seed} ends at {out[side][seed]} in {seen[side, seed]} but at "
                                     f"{value} in {path}: combine only runs of the same code and protocol")
                seen.setdefault((side, seed), path)
                out.setdefault(side, {})[seed] = value
    return out


QUANTILES = (10, 25, 50, 75, 90)


def paired_lines(a: dict[int, float], b: dict[int, float], names: tuple[str, str]) -> list[str]:
    """The paired comparison of two sides over the seeds both ran: mean difference, tests, quantile differences."""
    from rlkit.stats import difference_ci

    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return []
    x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    d = x - y
    se = d.std(ddof=1) / np.sqrt(len(d))
    line = (f"paired over {len(seeds)} seeds, {names[0]} - {names[1]}: mean difference {d.mean():+,.1f} "
            f"+/- {se:,.1f} (SE; SD of a seed's difference {d.std(ddof=1):,.1f}); {names[0]} above on "
            f"{int((d > 0).sum())} of {len(d)}")
    try:
        from scipy import stats as sps
    except ImportError:
        line += "; paired t and Wilcoxon p need scipy (pip install scipy)"
    else:
        with np.errstate(all="ignore"):
            t_p = sps.ttest_rel(x, y).pvalue if d.std() > 0 else float("nan")
            w_p = sps.wilcoxon(x, y).pvalue if np.any(d != 0) else float("nan")
        line += f"; paired t p {t_p:.3f}, Wilcoxon signed-rank p {w_p:.3f}"
    parts = []
    for q in QUANTILES:
        diff, lo, hi = difference_ci(x, y, stat=lambda v, q=q: float(np.percentile(v, q)), paired=True)
        parts.append(f"{q}%: {diff:+,.1f} [{lo:+,.1f}, {hi:+,.1f}]")
    return [line, "quantiles of the finals, difference (paired bootstrap 95% CI): " + ", ".join(parts)]


def profile_plot(panels: list[tuple[str, dict[str, dict[int, float]], tuple[str, str]]], path: Path,
                 reps: int = 1000) -> None:
    """Per comparison: the fraction of each side's runs ending above a score, with pointwise 95% bootstrap bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (title, sides, names) in zip(axes[0], panels, strict=True):
        values = [np.array(list(sides[n].values()), dtype=np.float64) for n in names]
        grid = np.linspace(min(v.min() for v in values), max(v.max() for v in values), 200)
        for name, v in zip(names, values, strict=True):
            frac = (v[None, :] > grid[:, None]).mean(axis=1)
            boot = np.array([(v[rng.integers(v.size, size=v.size)][None, :] > grid[:, None]).mean(axis=1)
                             for _ in range(reps)])
            lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
            label = "SB3" if name == "sb3" else name
            line, = ax.plot(grid, frac, lw=1.8, label=f"{label} ({v.size} runs)")
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel("final evaluation return (raw)")
        ax.set_ylabel("fraction of runs ending above")
        ax.set_title(title if len(title) < 70 else "..." + title[-67:], fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("score distributions of the final evaluations; shaded: pointwise 95% bootstrap CI", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    from rlkit.benchreport import comparison
    from rlkit.stats import iqm

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="+", help="results.csv files, each optionally FILE:OLD=NEW[,OLD2=NEW2]")
    p.add_argument("--combine", action="store_true", help="one comparison over the runs of all the files")
    p.add_argument("--seeds", metavar="A..B", help="only the runs of seeds A to B (inclusive)")
    p.add_argument("--sides", nargs=2, default=["rlkit", "sb3"], metavar=("A", "B"),
                   help="the two sides to compare, A - B (default: rlkit sb3)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the two sides' score distributions there")
    args = p.parse_args()
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        print(f"error: --plot {args.plot}: give an image file name ending in .png, .pdf or .svg", file=sys.stderr)
        return 2
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        print(f"error: --plot {args.plot}: no folder {Path(args.plot).parent}; create it or name a file in an "
              "existing one", file=sys.stderr)
        return 2
    files: dict[Path, dict[str, dict[int, float]]] = {}
    for arg in args.csv:
        path, renames = split_renames(str(arg))
        try:
            sides = finals_by_side(path)
        except OSError as e:
            print(f"error: cannot read {path} ({e.strerror}); pass a bench results file, e.g. "
                  "bench/results/bench_ppo_pendulum.csv", file=sys.stderr)
            return 2
        except (KeyError, ValueError):
            print(f"error: {path} is not a bench results.csv (it needs side, seed, step and eval columns); "
                  "pass e.g. bench/results/bench_ppo_pendulum.csv", file=sys.stderr)
            return 2
        missing = sorted(set(renames) - set(sides))
        if missing:
            print(f"error: {path} has no side {missing[0]} to rename (sides: {', '.join(sorted(sides))})",
                  file=sys.stderr)
            return 2
        files[Path(str(arg))] = {renames.get(side, side): finals for side, finals in sides.items()}
    if args.combine:
        try:
            files = {Path(" + ".join(str(f) for f in files)): combine(files)}
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.seeds:
        lo, sep, hi = args.seeds.partition("..")
        if not (sep and lo.isdigit() and hi.isdigit() and int(lo) <= int(hi)):
            print(f"error: --seeds {args.seeds}: give a range A..B, e.g. --seeds 0..99", file=sys.stderr)
            return 2
        files = {path: {side: {k: v for k, v in finals.items() if int(lo) <= k <= int(hi)}
                        for side, finals in sides.items()} for path, sides in files.items()}
    a, b = args.sides
    panels = []
    for path, sides in files.items():
        if not {a, b} <= set(sides):
            print(f"{path}: no {a} and {b} columns (sides: {', '.join(sorted(sides)) or 'none'})")
            continue
        lines = comparison({side: {"final_by_seed": sides[side]} for side in (a, b)}, sides=(a, b))
        print(f"{path}: {lines[0] if lines else 'no finished runs'}")
        if args.combine and lines:
            n = {side: len(sides[side]) for side in (a, b)}
            name = {side: "SB3" if side == "sb3" else side for side in (a, b)}
            print(f"final IQM {name[a]} {iqm(list(sides[a].values())):,.1f} ({n[a]} runs), "
                  f"{name[b]} {iqm(list(sides[b].values())):,.1f} ({n[b]} runs)")
        for line in paired_lines(sides[a], sides[b], tuple("SB3" if s == "sb3" else s for s in (a, b))):
            print(line)
        if lines:
            panels.append((f"{len(args.csv)} files combined" if args.combine and len(args.csv) > 1 else str(path),
                           sides, (a, b)))
    if args.plot and panels:
        profile_plot(panels, Path(args.plot))
        print(f"score distributions: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
