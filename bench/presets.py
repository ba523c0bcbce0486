"""What each policy-gradient preset reaches: every (agent, env) preset trained as `rlkit train` runs it, on a few
seeds, its final greedy evaluation next to rl-baselines3-zoo's published figure for the same algorithm and env.

    .venv/bin/python bench/presets.py                         # reinforce a2c ppo trpo es x 4 envs, seeds 0-2
    .venv/bin/python bench/presets.py --agents ppo --envs acrobot --seeds 5 --workers 2 --name presets_ppo

Each run is `rlkit train agent=A env=E seed=S threads=1 progress=false tensorboard=false` (plus any --set
key=value), one process per run, --workers at a time. The figure per run is summary.json's final evaluation:
the mean raw return of 10 greedy episodes after the whole budget. The zoo column is DLR-RM/rl-baselines3-zoo's
benchmark.md: ONE run per entry, its deterministic policy over ~150k evaluation steps, at the zoo's own budget
(shown; ours may differ, and where our preset is not the zoo's, the preset's source line says so). It is a
reference for the scale of the score, not a paired comparison: `rlkit bench` is that, for ppo, a2c and trpo.

Writes bench/results/<name>.csv (one row per run, appended as runs finish) and <name>.md (one row per preset).
Ctrl-C stops the runs (each saves its checkpoint), writes the table for the runs that finished, exits 130.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlkit.benchreport import machine  # noqa: E402
from rlkit.errors import UserError  # noqa: E402
from rlkit.overrides import parse_words  # noqa: E402
from rlkit.runs import find_preset, git_commit, resolve_spec  # noqa: E402

AGENTS = ("reinforce", "a2c", "ppo", "trpo", "es")
ENVS = ("cartpole", "acrobot", "pendulum", "lunarlander")
FIELDS = ("agent", "env", "seed", "total_steps", "final_eval", "wall_s", "episodes", "error")

# DLR-RM/rl-baselines3-zoo benchmark.md (one run each; deterministic policy): (mean, std, training steps)
ZOO = {
    ("a2c", "cartpole"): (500.0, 0.0, "500k"), ("a2c", "acrobot"): (-83.4, 17.2, "500k"),
    ("a2c", "pendulum"): (-163.0, 103.2, "1M, gSDE"), ("a2c", "lunarlander"): (155.8, 80.4, "200k"),
    ("ppo", "cartpole"): (500.0, 0.0, "100k"), ("ppo", "acrobot"): (-73.5, 18.2, "1M"),
    ("ppo", "pendulum"): (-172.2, 104.2, "100k, gSDE"), ("ppo", "lunarlander"): (242.1, 31.8, "1M"),
    ("trpo", "cartpole"): (500.0, 0.0, "100k"), ("trpo", "acrobot"): (-83.1, 18.6, "100k"),
    ("trpo", "pendulum"): (-174.6, 127.6, "100k, gSDE"), ("trpo", "lunarlander"): (133.2, 112.2, "200k"),
}


def run_one(agent: str, env: str, seed: int, runs_dir: Path, sets: list[str]) -> dict[str, object]:
    """One `rlkit train` process; its summary.json's final evaluation, or the error it ended with."""
    cmd = [sys.executable, "-m", "rlkit", "train", f"agent={agent}", f"env={env}", f"seed={seed}", "threads=1",
           "progress=false", "tensorboard=false", f"runs.dir={runs_dir}", *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    row: dict[str, object] = {"agent": agent, "env": env, "seed": seed}
    lines = proc.stdout.strip().splitlines()
    summary = Path(lines[-1]) / "summary.json" if lines else None
    if proc.returncode != 0 or summary is None or not summary.is_file():
        err = proc.stderr.strip().splitlines()
        return {**row, "error": f"exit {proc.returncode}: {err[-1] if err else 'no output'}"}
    s = json.loads(summary.read_text())
    return {**row, "total_steps": s["total_steps"], "final_eval": s["final_eval_return_mean"],
            "wall_s": s["wall_s"], "episodes": s["episodes"], "error": ""}


def table(rows: list[dict[str, object]], command: str, note: str = "") -> str:
    """The markdown report: one row per (agent, env) preset, the zoo's figure beside it."""
    out = ["# Policy-gradient presets: final greedy evaluation after each preset's budget", "",
           f"Command: `{command}`", "",
           f"- Machine: {machine()}",
           f"- Code: rlkit {git_commit()}; torch.set_num_threads(1) in every run" + (f"; **{note}**" if note else ""),
           "- Final eval: mean raw return of 10 greedy episodes after the whole budget (summary.json), per seed; "
           "mean over seeds with [min, max]",
           "- Zoo: DLR-RM/rl-baselines3-zoo benchmark.md, one run per entry, deterministic policy, at the zoo's "
           "budget: the scale of a good score, not a paired comparison (`rlkit bench` is that)", "",
           "| agent | env | env steps trained (median) | final eval, mean [min, max] | per seed | training s (median) "
           "| zoo (SB3), budget |",
           "|---|---|--:|--:|---|--:|---|"]
    keys = sorted({(str(r["agent"]), str(r["env"])) for r in rows},
                  key=lambda k: (AGENTS.index(k[0]) if k[0] in AGENTS else 99, ENVS.index(k[1]) if k[1] in ENVS
                                 else 99, k))
    for agent, env in keys:
        mine = sorted((r for r in rows if r["agent"] == agent and r["env"] == env), key=lambda r: int(r["seed"]))
        ok = [r for r in mine if not r["error"]]
        finals = np.array([float(r["final_eval"]) for r in ok])
        per_seed = ", ".join(f"{int(r['seed'])}: {float(r['final_eval']):,.1f}" if not r["error"] else
                             f"{int(r['seed'])}: failed" for r in mine)
        zoo = ZOO.get((agent, env))
        cells = [agent, env, f"{np.median([int(r['total_steps']) for r in ok]):,.0f}" if ok else "-",
                 f"{finals.mean():,.1f} [{finals.min():,.1f}, {finals.max():,.1f}]" if ok else "-", per_seed,
                 f"{np.median([float(r['wall_s']) for r in ok]):,.0f}" if ok else "-",
                 f"{zoo[0]:,.1f} +/- {zoo[1]:,.1f}, {zoo[2]}" if zoo else "no zoo entry"]
        out.append("| " + " | ".join(cells) + " |")
    failed = [r for r in rows if r["error"]]
    if failed:
        out += ["", "Failed runs:", *(f"- {r['agent']} {r['env']} seed {r['seed']}: {r['error']}" for r in failed)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", default=",".join(AGENTS), help="comma-separated (default: %(default)s)")
    p.add_argument("--envs", default=",".join(ENVS), help="comma-separated preset env names (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="runs at a time (default: %(default)s)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    p.add_argument("--name", default="presets_pg", help="output stem (default: %(default)s)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output folder (default: bench/results)")
    p.add_argument("--runs-dir", default=None, help="where the run folders go (default: runs/presets-<time>)")
    args = p.parse_args(argv)
    agents, env_names = args.agents.split(","), args.envs.split(",")
    unknown = [a for a in agents if a not in AGENTS]
    if unknown or args.seeds < 1 or args.workers < 1:
        what = f"--agents {unknown[0]}: pick from {', '.join(AGENTS)}" if unknown else \
            "--seeds and --workers take a count of 1 or more"
        print(f"error: {what}", file=sys.stderr)
        return 2
    if not Path(args.out).is_dir():
        print(f"error: --out {args.out}: no such folder", file=sys.stderr)
        return 2
    jobs = [(a, e) for a in agents for e in env_names if find_preset(a, e) is not None]
    for a, e in ((a, e) for a in agents for e in env_names if find_preset(a, e) is None):
        print(f"no preset for agent={a} env={e}: skipped", flush=True)
    if not jobs:
        print("error: none of those agents has a preset for those envs (rlkit list <agent> shows them)",
              file=sys.stderr)
        return 2
    for a, e in jobs:  # a bad --set word is one line now, not a failed run per preset and seed later
        words = [f"agent={a}", f"env={e}", *args.set]
        try:
            resolve_spec(parse_words(words), words)
        except UserError as err:
            print(f"error: agent={a} env={e}: {err}", file=sys.stderr)
            return 2
    jobs.sort(key=lambda j: -int(find_preset(*j).values.get("total_steps", 0)))  # the longest first: even finish
    runs_dir = Path(args.runs_dir or ROOT / "runs" / time.strftime("presets-%Y%m%d-%H%M%S"))
    csv_path, md_path = Path(args.out) / f"{args.name}.csv", Path(args.out) / f"{args.name}.md"
    command = "python bench/presets.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with open(csv_path, "w", newline="") as f:
        csv.DictWriter(f, FIELDS).writeheader()
    rows: list[dict[str, object]] = []
    total = len(jobs) * args.seeds
    note = ""
    pool = ThreadPoolExecutor(max_workers=args.workers)
    futures = [pool.submit(run_one, a, e, s, runs_dir, args.set) for a, e in jobs for s in range(args.seeds)]
    try:
        for fut in as_completed(futures):
            row = fut.result()
            rows.append(row)
            with open(csv_path, "a", newline="") as f:
                csv.DictWriter(f, FIELDS).writerow(row)
            what = row["error"] or f"final eval {float(row['final_eval']):,.1f} in {float(row['wall_s']):,.0f} s"
            print(f"[{len(rows)}/{total}] {row['agent']} {row['env']} seed {row['seed']}: {what}", flush=True)
    except KeyboardInterrupt:  # the runs got the signal too: each saves a checkpoint and exits
        for fut in futures:
            fut.cancel()
        note = f"interrupted (Ctrl-C) after {len(rows)} of {total} runs"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    rows = [r for r in rows if not str(r["error"]).startswith("exit 130")]  # stopped by the interrupt, not failed
    md_path.write_text(table(rows, command, note))
    print(f"wrote {md_path} and {csv_path}", flush=True)
    if note:
        print(f"presets: {note}; {md_path.name} covers those", file=sys.stderr)
        return 130
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
