"""Aggregate statistics for benchmark reports: IQM and seeded percentile-bootstrap confidence intervals.

The interquartile mean (IQM) is the mean of the middle 50% of the scores (trim 25% at each end), the
robust aggregate Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice") recommend
for few-seed results; rliable's `aggregate_iqm` is scipy's `trim_mean(x, 0.25)`, as here. rliable itself
is not used: its `arch` dependency fails to import with pandas 3.x (arch < 8) or rejects rliable's
call (arch 8). Confidence intervals are percentile bootstraps over seeds with a fixed RNG seed, so a
report is reproducible from its CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def iqm(x: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean after cutting floor(n/4) values at each end (scipy's trim_mean(x, 0.25))."""
    a = np.sort(np.asarray(x, dtype=np.float64).ravel())
    if a.size == 0:
        return float("nan")
    cut = int(0.25 * a.size)
    return float(a[cut:a.size - cut].mean())


def bootstrap_ci(x: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float] = iqm, reps: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat` over the values of x (resampled with replacement, `reps` times)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(a.size, size=(reps, a.size))
    return _percentile_interval(np.array([stat(a[i]) for i in idx]), confidence)


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap samples (the percentile method)."""
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def difference_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                  stat: Callable[[np.ndarray], float] = iqm, reps: int = 2000, confidence: float = 0.95,
                  seed: int = 0, paired: bool = False) -> tuple[float, float, float]:
    """(stat(a) - stat(b), CI low, CI high) by percentile bootstrap. `paired`: a[i] and b[i] share seed i (the
    same env and evaluation seeds), so seeds are resampled jointly and what the seeds share cancels out;
    otherwise each side is resampled over its own values. A CI that contains 0: these seeds cannot tell them apart."""
    x, y = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan"), float("nan")
    if paired and x.size != y.size:
        raise ValueError(f"paired samples need equal lengths, not {x.size} and {y.size}")
    rng = np.random.default_rng(seed)
    ix = rng.integers(x.size, size=(reps, x.size))
    iy = ix if paired else rng.integers(y.size, size=(reps, y.size))
    diffs = np.array([stat(x[i]) - stat(y[j]) for i, j in zip(ix, iy, strict=True)])
    return (stat(x) - stat(y), *_percentile_interval(diffs, confidence))


def probability_of_improvement(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for a run X of `a` and a run Y of `b` (Agarwal et al. 2021): 0.5 is a tie."""
    x, y = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    if x.size == 0 or y.size == 0:
        return float("nan")
    return float(((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])).mean())


def median_iqr(x: Sequence[float] | np.ndarray) -> tuple[float, float, float] | None:
    """(median, 25th percentile, 75th percentile), or None for no values."""
    a = np.asarray([v for v in x if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    q25, med, q75 = np.quantile(a, [0.25, 0.5, 0.75])
    return float(med), float(q25), float(q75)
