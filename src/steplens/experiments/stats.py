"""The statistics of every table: solve rate, mean score, Wilson interval, paired bootstrap. One schema:

    {"n", "solved", "solve_rate", "ci_low", "ci_high", "mean_score"}

Values are JSON-safe: an undefined number (no rows, no scores) is None, never NaN.
"""

from __future__ import annotations

import math

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n ((0, 1) for n = 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def summarize(rows: list[dict], success: str = "success", score: str = "score") -> dict:
    """Solve rate with its Wilson 95% interval and the mean score of rows ({success: bool, score: float})."""
    n = len(rows)
    k = sum(bool(r[success]) for r in rows)
    lo, hi = wilson(k, n)
    scores = [float(r[score]) for r in rows if r.get(score) is not None]
    return {"n": n, "solved": k, "solve_rate": k / n if n else None, "ci_low": lo, "ci_high": hi,
            "mean_score": float(np.mean(scores)) if scores else None}


def paired_bootstrap(a, b, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over paired samples with a 95% bootstrap interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 0:
        raise ValueError("a paired difference needs at least one pair")
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (reps, len(d)))].mean(1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def mean_or_none(vals) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None
