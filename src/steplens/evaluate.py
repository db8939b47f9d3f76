"""Solve rates with confidence intervals."""

from __future__ import annotations

import math

import numpy as np

from .tasks import get_task
from .video import to_uint8


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def solve_rate(model, task_name: str, seeds, n: int, frames: int, steps: int, shift: float,
               batch: int = 50, guidance: float = 1.0, progress: bool = True) -> dict:
    """Generate and score the task items of `seeds` (noise seed = item seed)."""
    from tqdm import tqdm

    task = get_task(task_name)
    seeds = list(seeds)
    scores = []
    for lo in tqdm(range(0, len(seeds), batch), disable=not progress, desc=f"eval {task_name} {n}x{n}"):
        chunk = seeds[lo: lo + batch]
        samples = [task.sample(s, n, frames) for s in chunk]
        vids = model.decode(model.generate(samples, chunk, frames, steps=steps, shift=shift, guidance=guidance))
        scores += [task.score(to_uint8(v[:, -1]), s.first_frame, s.prompt) for s, v in zip(samples, vids)]
    ok = sum(s.success for s in scores)
    lo_ci, hi_ci = wilson(ok, len(scores))
    return {"solve_rate": ok / max(len(scores), 1), "ci95": [lo_ci, hi_ci], "n": len(scores),
            "mean_score": float(np.mean([s.score for s in scores])) if scores else 0.0, "scores": scores}
