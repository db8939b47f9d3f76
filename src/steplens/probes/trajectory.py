"""Per-run chain-of-steps metrics from recorded x0_hat: the shared piece of `sweep` and `behaviours`."""

from __future__ import annotations

import numpy as np

from .. import cos
from ..hooks import Hooks
from ..io.video import to_rgb
from ..tasks import Scorers, answer_region, candidates


def record_x0(model, steps: int) -> Hooks:
    return Hooks(model, steps).record("x0", branch="cond")


def per_run_metrics(model, samples, hooks: Hooks, scorers: Scorers) -> list[list[dict]]:
    """For each sample, the per-step metrics of its x0_hat (steplens.cos.step_metrics)."""
    steps = sorted({k[1] for k in hooks.records if k[0] == "x0"})
    videos = []
    for k in steps:
        px = model.decode(hooks.get("x0", k))  # (B, C, T, H, W)
        videos.append(np.stack([to_rgb(p.movedim(1, 0)) for p in px]))  # (B, T, H, W, 3)
    videos = np.stack(videos, 1)  # (B, S, T, H, W, 3)
    return [cos.step_metrics(videos[b], s, scorers.for_sample(s), answer_region(s), candidates=candidates(s))
            for b, s in enumerate(samples)]


def cos_extra(model, scorers: Scorers):
    """An `extra` for a condition runner: CoS summary and behaviours of each run (needs record_x0 hooks)."""
    def extra(samples, latents, hooks):
        rows = []
        for m in per_run_metrics(model, samples, hooks, scorers):
            rows.append({**cos.summarize(m), **cos.behaviours(m),
                         "candidate_mass": [x["candidate_mass"] for x in m],
                         "off_target": [x["off_target"] for x in m],
                         "off_branches": [x["off_branches"] for x in m],
                         "step_score": [x["score"] for x in m],
                         **({"right_strength": [x["right_strength"] for x in m],
                             "wrong_strength": [x["wrong_strength"] for x in m]} if "right_strength" in m[0] else {})})
        return rows
    return extra
