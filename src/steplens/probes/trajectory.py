"""Per-run chain-of-steps metrics from recorded x0_hat: the shared piece of `sweep` and `behaviours`."""

from __future__ import annotations

import numpy as np

from .. import cos
from ..hooks import Hooks
from ..video import to_rgb


def record_x0(model, steps: int) -> Hooks:
    return Hooks(model, steps).record("x0", branch="cond")


def per_run_metrics(model, samples, hooks: Hooks) -> list[list[dict]]:
    """For each sample, the per-step metrics of x0_hat's last frame."""
    steps = sorted({k[1] for k in hooks.records if k[0] == "x0"})
    finals = []
    for k in steps:
        px = model.decode(hooks.get("x0", k))[:, :, -1]  # (B, C, H, W)
        finals.append(to_rgb(px))
    finals = np.stack(finals, 1)  # (B, S, H, W, 3)
    return [cos.step_metrics(finals[b], s.first_frame, prompt=s.prompt) for b, s in enumerate(samples)]


def cos_extra(model):
    """An `extra` for run_condition: CoS summary and behaviours of each run (needs record_x0 hooks)."""
    def extra(samples, latents, hooks):
        rows = []
        for m in per_run_metrics(model, samples, hooks):
            rows.append({**cos.summarize(m), **cos.behaviours(m),
                         "candidate_mass": [x["candidate_mass"] for x in m],
                         "off_branches": [x["off_branches"] for x in m]})
        return rows
    return extra
