"""Summaries of per-slice metrics: mean ± SD (as in the paper's tables), the Wilcoxon signed-rank test, and
a case-level bootstrap interval for benchmark summaries over a few cases."""

from __future__ import annotations

import math
from typing import Callable, Iterable, Optional, Sequence

import numpy as np


def finite(values: Iterable[Optional[float]]) -> np.ndarray:
    """The finite values as float64 (NaN / None mark slices where a metric is undefined)."""
    arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def summarize(values: Iterable[Optional[float]]) -> dict:
    """{"mean", "sd", "n"} over the finite values; SD is the sample SD (ddof=1), None below 2 values."""
    arr = finite(values)
    if arr.size == 0:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else None, "n": int(arr.size)}


def wilcoxon(after: Iterable[Optional[float]], before: Iterable[Optional[float]]) -> dict:
    """Two-sided Wilcoxon signed-rank test of paired per-slice values, pairs with a NaN dropped.

    Returns {"statistic", "p", "n", "median_difference"}; statistic and p are None when it cannot run
    (fewer than 2 pairs, or every difference is zero).
    """
    from scipy.stats import wilcoxon as scipy_wilcoxon

    a = np.array([math.nan if v is None else v for v in after], dtype=np.float64)
    b = np.array([math.nan if v is None else v for v in before], dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    result = {"statistic": None, "p": None, "n": int(diff.size), "median_difference": float(np.median(diff)) if diff.size else None}
    if diff.size < 2 or not np.any(diff != 0):
        return result
    test = scipy_wilcoxon(a[keep], b[keep], alternative="two-sided")
    result.update(statistic=float(test.statistic), p=float(test.pvalue))
    return result


def case_bootstrap_interval(rows: Sequence[dict], statistic: Callable[[list], float], n_resamples: int = 2000,
                            level: float = 0.95, seed: int = 0) -> Optional[tuple[float, float]]:
    """Percentile interval of statistic(rows) when whole cases are resampled with replacement.

    rows: per-slice dicts with a "case" key. Slices of one case share its anatomy, contrast and noise, so
    they are not independent: the case is the unit that is drawn. Resamples whose statistic is not finite
    are left out; None when no resample gives a finite value. One case gives a zero-width interval, which
    says that the data cannot tell how far the number would move on other cases.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    by_case: dict = {}
    for row in rows:
        by_case.setdefault(row["case"], []).append(row)
    groups = list(by_case.values())
    if not groups:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        pick = rng.integers(len(groups), size=len(groups))
        value = statistic([row for i in pick for row in groups[i]])
        if value is not None and math.isfinite(value):
            values.append(value)
    if not values:
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def format_mean_sd(summary: dict, digits: int = 2, scale: float = 1.0) -> str:
    """'4.97 ± 2.42' (the paper's style); '–' when there is no value, no '±' for a single value."""
    if summary.get("mean") is None:
        return "–"
    text = f"{summary['mean'] * scale:.{digits}f}"
    return text if summary.get("sd") is None else f"{text} ± {summary['sd'] * scale:.{digits}f}"


def format_p(p: Optional[float]) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
