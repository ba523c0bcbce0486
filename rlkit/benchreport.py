"""The report of `rlkit bench` / `rlkit sweep`: report.md (summary table, machine, versions, threads,
protocol, hyperparameter mapping, failures) and curves.png (mean eval vs env steps and vs wall time).

Figures per column (a side, or a sweep config), over the runs that finished:
success rate (runs whose evaluation reached the threshold at some point), median and IQR of the
time to the first such evaluation in env steps and in training seconds (successful runs only), IQM of
the final evaluation with a 95% percentile-bootstrap CI over seeds (rlkit.stats), median training
steps/s (after `measure_after`) and median peak resident memory of the run's process. A bench against
SB3 adds the final evaluations' IQM difference (ours - SB3) with a bootstrap CI and the probability of
improvement (Agarwal et al. 2021), so a gap the seeds cannot resolve reads as such.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlkit import stats

FIGURES = ("runs", "success", "steps_to", "wall_to", "final", "sps", "memory")


def _on_policy(agent: str) -> bool:
    """Whether `agent` learns in rollouts (then evaluation points fall on its updates, see rlkit.bench._run_sb3)."""
    import agents
    from agents.onpolicy import OnPolicyAgent

    return issubclass(agents.get(agent), OnPolicyAgent)


def _whole_rollouts(plan: Any) -> str:
    """Why the budget is not total_steps where the plan rounded it up to SB3's whole rollouts (rlkit.bench)."""
    from rlkit.runs import resolve_spec

    j0 = plan.jobs[0]
    cfg = resolve_spec(dict(j0.values), []).config
    if j0.total_steps == cfg.total_steps:
        return ""
    return (f" on both sides (total_steps={cfg.total_steps:,} rounded up to whole rollouts of {cfg.n_envs} x "
            f"{cfg.n_steps}, as SB3 finishes its last rollout; lr and clip schedules run over {cfg.total_steps:,} "
            "on both sides)")


def reached_fn(plan: Any) -> Callable[[float], bool] | None:
    """What counts as reaching the goal: within tolerance of the reference figure, or eval >= threshold."""
    if plan.reference:
        from rlkit.bench import REFERENCES

        ref = REFERENCES[plan.reference]
        return lambda v: bool(np.isfinite(v) and abs(v - ref.value) <= ref.tolerance)
    if plan.threshold is not None:
        t = float(plan.threshold)
        return lambda v: bool(np.isfinite(v) and v >= t)
    return None


def summarize(runs: list[Any], reached: Callable[[float], bool] | None) -> dict[str, Any]:
    """The figures of one column from its runs (finished and failed)."""
    ok = [r for r in runs if r.ok]
    out: dict[str, Any] = {"finished": len(ok), "failed": len(runs) - len(ok)}
    if reached is not None:
        hits = [r.first_reaching(reached) for r in ok]
        out["success"] = sum(s is not None for s, _ in hits)
        out["steps_to"] = stats.median_iqr([s for s, _ in hits if s is not None])
        out["wall_to"] = stats.median_iqr([w for _, w in hits if w is not None])
    finals = [r.eval_mean[-1] for r in ok if r.eval_mean and np.isfinite(r.eval_mean[-1])]
    out["final_values"] = finals
    out["final_by_seed"] = {r.seed: r.eval_mean[-1] for r in ok if r.eval_mean and np.isfinite(r.eval_mean[-1])}
    out["final"] = (stats.iqm(finals), *stats.bootstrap_ci(finals)) if finals else None
    out["sps"] = float(np.median([r.train_steps_per_s for r in ok])) if ok else None
    out["memory"] = float(np.median([r.peak_rss_mb for r in ok])) if ok else None
    return out


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}"


def _cells(s: dict[str, Any], final_digits: int) -> dict[str, str]:
    def med(t: tuple[float, float, float] | None, d: int) -> str:
        return "-" if t is None else f"{t[0]:,.{d}f} [{t[1]:,.{d}f}, {t[2]:,.{d}f}]"

    return {
        "runs": f"{s['finished']}" + (f" (+{s['failed']} failed)" if s["failed"] else ""),
        "success": f"{s['success']}/{s['finished']}" if "success" in s else "-",
        "steps_to": med(s.get("steps_to"), 0),
        "wall_to": med(s.get("wall_to"), 1),
        "final": "-" if s["final"] is None else
        f"{s['final'][0]:,.{final_digits}f} [{s['final'][1]:,.{final_digits}f}, {s['final'][2]:,.{final_digits}f}]",
        "sps": _num(s["sps"], 0),
        "memory": _num(s["memory"], 0),
    }


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> str:
    def val(s: dict[str, Any]) -> float | None:
        v = s.get(key)
        if isinstance(v, tuple):
            v = v[0]
        if key == "success":
            return v / s["finished"] if v is not None and s["finished"] else None
        return v

    x, y = val(a), val(b)
    if x is None or y is None or y == 0 or not np.isfinite(x) or not np.isfinite(y):
        return "-"
    if x <= 0 or y <= 0:  # returns of 35 and -4 (quotient -8), or -228 and -198 (1.15: ours is the worse): a
        return "- (not both positive)"  # quotient of sizes only means something for positive ones; see the difference
    return f"{x / y:.2f}"


def table(plan: Any, summaries: dict[str, dict[str, Any]]) -> str:
    """The Markdown summary table: figures as rows for a bench (with ratio ours/theirs), configs as rows for a sweep."""
    from rlkit.bench import REFERENCES

    ref = REFERENCES[plan.reference] if plan.reference else None
    digits = 3 if ref is not None and abs(ref.value) < 10 else 1
    goal = (f"within {ref.tolerance:g} of {ref.value:g}" if ref else
            f"eval >= {plan.threshold:g}" if plan.threshold is not None else None)
    names = {
        "runs": "runs finished",
        "success": f"success ({goal} at some evaluation)" if goal else "success",
        "steps_to": "env steps to success, median [IQR]",
        "wall_to": "training seconds to success, median [IQR]",
        "final": (f"final {ref.metric}" if ref else "final eval return (raw)") + ", IQM [95% bootstrap CI]",
        "sps": "training steps/s (median)",
        "memory": "peak resident memory MB (median)",
    }
    rows = [f for f in FIGURES if goal or f not in ("success", "steps_to", "wall_to")]
    cells = {label: _cells(s, digits) for label, s in summaries.items()}
    if plan.kind == "bench":
        ours = summaries[plan.labels[0]]
        if ref is not None:
            other_name = "reference"
            other = {f: "-" for f in FIGURES}
            other["final"] = f"{ref.value:g}"
            ratios = {f: "-" for f in FIGURES}
            ratios["final"] = _ratio(ours, {"final": ref.value, "finished": 1}, "final")
        else:
            other_name = "SB3"
            other = cells["sb3"]
            ratios = {f: _ratio(ours, summaries["sb3"], f) for f in FIGURES}
        head = f"| figure | rlkit | {other_name} | ratio rlkit/{other_name} |\n|---|---|---|---|\n"
        return head + "\n".join(f"| {names[f]} | {cells[plan.labels[0]][f]} | {other[f]} | {ratios[f]} |"
                                for f in rows)
    head = "| config | " + " | ".join(names[f] for f in rows) + " |\n" + "|---" * (len(rows) + 1) + "|\n"
    return head + "\n".join(f"| {label} | " + " | ".join(cells[label][f] for f in rows) + " |" for label in cells)


# --------------------------------------------------------------------------------------------------
# Machine, versions, threads


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{platform.node()}: {cpu}, {usable} usable CPU(s) of {os.cpu_count()}{mem}{load}; {platform.platform()}"


def versions(with_sb3: bool, extra: dict[str, Any]) -> str:
    import gymnasium
    import torch

    from rlkit.runs import git_commit

    parts = [f"rlkit {git_commit() or '?'}", f"Python {platform.python_version()}", f"torch {torch.__version__}",
             f"numpy {np.__version__}", f"gymnasium {gymnasium.__version__}"]
    if with_sb3:
        import stable_baselines3

        parts.append(f"stable-baselines3 {stable_baselines3.__version__}")
        try:
            import sb3_contrib

            parts.append(f"sb3-contrib {sb3_contrib.__version__}")
        except ImportError:
            pass
    if "ray" in extra:
        parts.append(f"ray {extra['ray']}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# Curves


def _mean_ci(vals: np.ndarray, rng: np.random.Generator, reps: int = 1000) -> tuple[float, float, float]:
    if vals.size == 1:
        return float(vals[0]), float(vals[0]), float(vals[0])
    means = vals[rng.integers(vals.size, size=(reps, vals.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(vals.mean()), float(lo), float(hi)


def curve(runs: list[Any]) -> dict[str, np.ndarray]:
    """Per evaluation index across seeds: median env steps, mean training seconds, mean eval and its 95% CI."""
    ok = [r for r in runs if r.ok and r.eval_mean]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(max((len(r.eval_mean) for r in ok), default=0)):
        have = [r for r in ok if len(r.eval_mean) > i and np.isfinite(r.eval_mean[i])]
        if not have:
            continue
        m, lo, hi = _mean_ci(np.array([r.eval_mean[i] for r in have]), rng)
        rows.append((np.median([r.steps[i] for r in have]), np.mean([r.train_wall_s[i] for r in have]), m, lo, hi))
    a = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return {"steps": a[:, 0], "wall": a[:, 1], "mean": a[:, 2], "lo": a[:, 3], "hi": a[:, 4]}


def plot(plan: Any, runs: list[Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlkit.bench import REFERENCES

    ref = REFERENCES[plan.reference] if plan.reference else None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(plan.labels):
        c = curve([r for r in runs if r.label == label])
        if not len(c["mean"]):
            continue
        n = sum(r.ok for r in runs if r.label == label)
        for ax, x in zip(axes, (c["steps"], c["wall"])):
            ax.plot(x, c["mean"], color=colors[i % len(colors)], lw=1.8, label=f"{label} (mean of {n} seeds)")
            ax.fill_between(x, c["lo"], c["hi"], color=colors[i % len(colors)], alpha=0.2, lw=0)
    ylabel = ref.metric if ref else "eval return (raw, greedy)"
    for ax, xl in zip(axes, ("env steps", "training wall seconds (evaluation excluded; mean over seeds)")):
        if ref is not None:
            ax.axhline(ref.value, color="black", ls="--", lw=1, label=f"reference {ref.value:g}")
        elif plan.threshold is not None:
            ax.axhline(plan.threshold, color="grey", ls="--", lw=0.8, label=f"threshold {plan.threshold:g}")
        ax.set_xlabel(xl)
        ax.set_ylabel(ylabel if len(ylabel) < 40 else ylabel[:37] + "...", fontsize=9)
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # runs without evaluations (speed-only benches) draw no curves
        axes[0].legend(fontsize=8)
    fig.suptitle(f"{plan.command}\nshaded: 95% bootstrap CI of the mean over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# report.md


def comparison(summaries: dict[str, dict[str, Any]], sides: tuple[str, str] = ("rlkit", "sb3")) -> list[str]:
    """Report lines on the final evaluations of two sides (ours and SB3's unless `sides` names others): the IQM
    difference with a bootstrap CI and the probability of improvement, so a small gap is not read as a result
    when the seeds cannot resolve it."""
    by_ours, by_theirs = summaries[sides[0]]["final_by_seed"], summaries[sides[1]]["final_by_seed"]
    if not by_ours or not by_theirs:
        return []
    a, b = ("SB3" if side == "sb3" else side for side in sides)
    # Seeds both sides ran share their env and evaluation episodes, so they are compared in pairs; a seed only one
    # side has (a failed or interrupted run) is left out and named rather than turning the whole line unpaired.
    seeds = sorted(set(by_ours) & set(by_theirs))
    paired = len(seeds) >= 2
    if paired:
        ours, theirs = [by_ours[s] for s in seeds], [by_theirs[s] for s in seeds]
        alone = [f"{side} {', '.join(map(str, sorted(set(mine) - set(other))))}"
                 for side, mine, other in ((a, by_ours, by_theirs), (b, by_theirs, by_ours)) if set(mine) - set(other)]
        how = (f"seeds resampled in pairs: both sides of a seed share its env and evaluation seeds; {len(seeds)} seeds"
               + (f"; seeds only one side ran, left out: {'; '.join(alone)}" if alone else ""))
    else:
        ours, theirs = list(by_ours.values()), list(by_theirs.values())
        how = f"each side resampled over its own {len(ours)} / {len(theirs)} seeds (fewer than 2 seeds in common)"
    d, lo, hi = stats.difference_ci(ours, theirs, paired=paired)
    verdict = ("the CI contains 0: these seeds do not tell the two apart" if lo <= 0 <= hi else
               f"the CI excludes 0: {a} is {'ahead' if lo > 0 else 'behind'} at these seeds")
    whose = "of ours ends above a run of SB3's" if sides == ("rlkit", "sb3") else f"of {a} ends above a run of {b}"
    return [f"Final eval, {a} - {b}: IQM difference {d:+,.1f}, 95% bootstrap CI [{lo:+,.1f}, {hi:+,.1f}] "
            f"({how}; {verdict}); probability that a run {whose}: "
            f"{stats.probability_of_improvement(ours, theirs):.2f}.", ""]


def write(plan: Any, runs: list[Any], extra: dict[str, Any]) -> str:
    """Write report.md and curves.png into plan.out; return the summary table."""
    from rlkit.bench import GREEDY_EVAL, REFERENCES

    reached = reached_fn(plan)
    summaries = {label: summarize([r for r in runs if r.label == label], reached) for label in plan.labels}
    tab = table(plan, summaries)
    plot(plan, runs, plan.out / "curves.png")
    j0 = plan.jobs[0]
    threads = sorted({r.extra.get("torch_threads") for r in runs if r.ok and r.extra.get("torch_threads")})
    backend = plan.opts["backend"]
    if backend == "local" and plan.opts["workers"] == 0:
        how = "in the calling process, one run after another (workers=0: peak memory is not per run)"
    elif backend == "local":
        from rlkit.bench import cpu_slots

        slots = cpu_slots(plan.opts["workers"])
        pin = ("each pinned to CPUs " + ", ".join(str(s) for s in slots)) if slots[0] is not None else \
            "not pinned (fewer CPUs than workers)"
        how = (f"local processes, {plan.opts['workers']} at a time, {pin}; a fresh process per run"
               + (", sides alternating" if plan.opts["workers"] == 1 and plan.kind == "bench" else ""))
    else:
        how = (f"Ray tasks (a fresh worker process per task, {plan.opts.get('ray.retries', 1)} retry on worker "
               f"death; cluster {extra.get('ray_resources', {})})")
    hosts = sorted({r.extra.get("host") for r in runs if r.ok and r.extra.get("host")})
    lines = [
        f"# {plan.kind}: {plan.agent} on {plan.env}" + (" vs Stable-Baselines3" if plan.sb3 else "")
        + (" vs reference figures" if plan.reference else ""),
        "",
        f"Command: `{plan.command}`",
        "",
        tab,
        "",
        *(comparison(summaries) if plan.sb3 is not None else []),
        "## Setting",
        f"- Machine: {machine()}" + (f"; runs on {', '.join(hosts)}" if hosts and hosts != [platform.node()] else ""),
        f"- Versions: {versions(plan.sb3 is not None, extra)}",
        f"- Threads: torch.set_num_threads({', '.join(map(str, threads)) or '?'}) in every run, both sides; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; flushed denormals on both sides"
        + ("; rlkit side only: glibc malloc keeps freed blocks for reuse (rlkit.device.keep_freed_memory, "
           "part of `rlkit train`), SB3 side with malloc defaults" if any(r.extra.get("malloc_keep_freed")
                                                                       for r in runs) else ""),
        f"- Execution: {how}; {len(runs)} runs in {extra.get('elapsed_s', 0):,.0f} s"
        + (f"; **{extra['interrupted']}**: the figures cover the runs that finished"
           if extra.get("interrupted") else ""),
        f"- Protocol: {j0.total_steps:,} env steps per run{_whole_rollouts(plan)}; every {j0.eval_every:,} steps "
        + (f"`{REFERENCES[plan.reference].measure}` is measured ({REFERENCES[plan.reference].metric})"
           + (f"; episode i of seed s: env seed 10000 + {j0.eval_episodes} s + i"
              if REFERENCES[plan.reference].measure == GREEDY_EVAL else "")
           if plan.reference else
           f"{j0.eval_episodes} greedy episodes on a separate eval env (episode i of seed s: env seed "
           f"10000 + {j0.eval_episodes} s + i, the same for both sides), raw returns, "
           "one evaluation function for both sides"
           + ("; on-policy, so on both sides after the update of the rollout that reaches the step, the last "
              "one on the model training ends with" if plan.sb3 is not None and _on_policy(plan.agent) else ""))
        + f"; training time excludes evaluation; steps/s counted after step {j0.measure_after:,}.",
        f"- Seeds: {plan.opts['seeds']}" + (f"; swept: {', '.join(plan.opts['swept'])}" if plan.opts["swept"] else ""),
    ]
    if plan.reference:
        ref = REFERENCES[plan.reference]
        lines.append(f"- Reference: {ref.value:g} ({ref.source}); success = within {ref.tolerance:g} of it; "
                     f"hyperparameters: the {plan.agent} preset for {plan.env}.")
    if plan.sb3 is not None:
        s = plan.sb3
        lines += ["", "## Hyperparameter mapping (rlkit/sb3map.py)",
                  f"SB3 side: `{s.algo}` with `{s.policy}`, {s.n_envs} env(s) in a "
                  f"{'SubprocVecEnv' if s.async_envs else 'DummyVecEnv'}"
                  + (f", VecNormalize({s.vec_normalize})" if s.vec_normalize else "") + ".",
                  "",
                  "Translated: " + ", ".join(f"`{k}` -> `{t}`" for k, t in s.mapped if t != "harness") + ".",
                  "Set by the bench for both sides: " + ", ".join(f"`{k}`" for k, t in s.mapped if t == "harness")
                  + ".", "",
                  "Our keys with no SB3 counterpart (value used on our side):", "",
                  "| key | ours | note |", "|---|---|---|"]
        lines += [f"| `{k}` | {v!r} | {why} |" for k, v, why in s.unmapped]
        if plan.aligned:
            lines += ["", "Held at SB3's behaviour for this comparison (the command line did not set them): "
                      + ", ".join(f"`{k}={v}`" for k, v in plan.aligned.items()) + "."]
        lines += ["", f"Model kwargs: `{s.kwargs}`"]
    failed = [r for r in runs if not r.ok]
    if failed:
        lines += ["", "## Failed runs", "", "| column | seed | error |", "|---|---|---|"]
        for r in failed:
            last = (r.error or "").strip().splitlines()
            lines.append(f"| {r.label} | {r.seed} | {(last[-1] if last else '?').replace('|', '/')} |")
    per_seed = ["", "## Final value per run", "", "| column | seed | final | steps/s | peak MB |",
                "|---|---|---|---|---|"]
    per_seed += [f"| {r.label} | {r.seed} | {_num(r.eval_mean[-1] if r.eval_mean else None, 3)} | "
                 f"{_num(r.train_steps_per_s, 0)} | {_num(r.peak_rss_mb, 0)} |" for r in runs if r.ok]
    lines += per_seed
    lines += ["", "Files: `results.csv` (one row per column x seed x evaluation), `runs.jsonl` (every run, failures "
              "included), `curves.png`."]
    (plan.out / "report.md").write_text("\n".join(lines) + "\n")
    return tab
