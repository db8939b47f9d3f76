"""Tracing the chain of steps: x0_hat at every denoising step, decoded and scored (steplens.reports.traces writes a
trace's files)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import cos
from .io.video import to_rgb, to_uint8
from .tasks import Sample, Scorers, answer_region, candidates

FORMAT = 1  # of metrics.json; `steplens report` refuses a newer one


@dataclass
class Trace:
    sample: Sample
    seed: int
    sigmas: list[float]
    x0: torch.Tensor  # (S, C, T, H, W): decoded x0_hat of every step, pixels in [-1, 1]
    output: torch.Tensor  # (C, T, H, W): the decoded output video
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    final_score: dict = field(default_factory=dict)
    experts: list | None = None  # the expert that ran each step (two-expert models)
    candidates: list | None = None  # the task's listed answers ({label, right}), in metrics' strength order

    def to_dict(self) -> dict:
        return {"format": FORMAT, "task": self.sample.task, "idx": self.sample.idx, "sample": self.sample.name,
                "meta": self.sample.meta, "seed": self.seed, "experts": self.experts,
                "sigmas": self.sigmas, "per_step": self.metrics, "summary": self.summary,
                "final_score": self.final_score, "candidates": self.candidates}


@torch.no_grad()
def trace(model, samples: list[Sample], seeds: list[int], steps: int | None = None, shift: float | None = None,
          guidance: float | None = None, frames: int | None = None, scorers: Scorers | None = None) -> list[Trace]:
    """Sample a batch and keep x0_hat of every step; score each step's x0_hat (see steplens.cos). steps, shift,
    guidance: None is the model's own (its sampling_defaults)."""
    from .context import current

    scorers = scorers or Scorers()
    recorded, sig, experts = [], [], []

    def keep(info):
        recorded.append(info.x0.detach().clone())
        sig.append(info.sigma)
        ctx = current()
        experts.append(info.expert or (ctx.expert if ctx is not None else None))

    out_latent = model.generate(samples, seeds, frames, steps=steps, shift=shift, guidance=guidance, callback=keep)
    x0 = torch.stack([model.decode(r) for r in recorded], dim=1)  # (B, S, C, T, H, W)
    out = model.decode(out_latent)
    traces = []
    for b, s in enumerate(samples):
        scorer = scorers.for_sample(s)
        videos = np.stack([to_rgb(x0[b, k].movedim(1, 0)) for k in range(x0.shape[1])])  # (S, T, H, W, 3)
        listed = candidates(s)
        metrics = cos.step_metrics(videos, s, scorer, answer_region(s), candidates=listed)
        final = scorer.score(to_uint8(out[b]), s)
        traces.append(Trace(sample=s, seed=int(seeds[b]), sigmas=sig, x0=x0[b], output=out[b], metrics=metrics,
                            summary=cos.summarize(metrics), final_score=final.to_dict(),
                            experts=experts if any(experts) else None,
                            candidates=[{"label": c.label, "right": c.right} for c in listed] if listed else None))
    return traces
