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
    steps: list[int] | None = None  # the steps x0, sigmas, experts and metrics hold, row by row (None: every step)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "task": self.sample.task, "idx": self.sample.idx, "sample": self.sample.name,
                "meta": self.sample.meta, "seed": self.seed, "experts": self.experts,
                "steps": self.steps if self.steps is not None else list(range(len(self.sigmas))),
                "sigmas": self.sigmas, "per_step": self.metrics, "summary": self.summary,
                "final_score": self.final_score, "candidates": self.candidates}


STEP_KEYS = ("commitment_step", "winner_step", "right_step")  # summary fields that name a step (a row of metrics)


def check_decode_steps(decode_steps, n: int | None = None, option: str = "decode_steps") -> list[int] | None:
    """The steps to decode, sorted; negative ones count from the end (-1: the last), as trace_pipeline's do, once the
    run's n steps are known. Refused by name: repeated, or outside a run of n steps."""
    if decode_steps is None:
        return None
    steps = [int(k) for k in decode_steps]
    if not steps:
        raise ValueError(f"{option}: no steps given; give step indices, e.g. 0,10,-1 (or leave it out: every step)")
    if n is not None:
        bad = [k for k in steps if not -n <= k < n]
        if bad:
            raise ValueError(f"{option}: step {bad[0]} out of range; this run has steps 0..{n - 1} (-{n}..-1 from "
                             f"the end)")
        steps = [k % n for k in steps]
    dup = sorted({k for k in steps if steps.count(k) > 1})
    if dup:
        raise ValueError(f"{option}: repeated step {dup[0]}")
    return sorted(steps)


@torch.no_grad()
def trace(model, samples: list[Sample], seeds: list[int], steps: int | None = None, shift: float | None = None,
          guidance: float | None = None, frames: int | None = None, scorers: Scorers | None = None,
          decode_steps=None) -> list[Trace]:
    """Sample a batch and keep x0_hat of every step (or of `decode_steps` alone: only those are kept, decoded and
    scored, and the summary's steps are among them); score each step's x0_hat (see steplens.cos). steps, shift,
    guidance: None is the model's own (its sampling_defaults)."""
    from .context import current

    scorers = scorers or Scorers()
    want = check_decode_steps(decode_steps, steps)
    recorded, rows, sig, experts = [], [], [], []

    late = want is not None and min(want) < 0  # counted from an end not known yet: kept, chosen after the run

    def keep(info):
        if want is None or late or info.i in want:  # only what is decoded is kept (a 480p A14B x0_hat: ~100 MB)
            recorded.append(info.x0.detach().clone())
            rows.append(info.i)
        sig.append(info.sigma)
        ctx = current()
        experts.append(info.expert or (ctx.expert if ctx is not None else None))

    out_latent = model.generate(samples, seeds, frames, steps=steps, shift=shift, guidance=guidance, callback=keep)
    if want is not None:
        want = check_decode_steps(want, len(sig))
        recorded = [r for r, k in zip(recorded, rows) if k in want]
        rows = [k for k in rows if k in want]
        sig, experts = [sig[k] for k in rows], [experts[k] for k in rows]
    x0 = torch.stack([model.decode(r) for r in recorded], dim=1)  # (B, S, C, T, H, W)
    out = model.decode(out_latent)
    traces = []
    for b, s in enumerate(samples):
        scorer = scorers.for_sample(s)
        videos = np.stack([to_rgb(x0[b, k].movedim(1, 0)) for k in range(x0.shape[1])])  # (S, T, H, W, 3)
        listed = candidates(s)
        metrics = cos.step_metrics(videos, s, scorer, answer_region(s), candidates=listed)
        metrics = [{"step": k, **m} for k, m in zip(rows, metrics)]
        summary = cos.summarize(metrics)
        if want is not None:  # the summary's steps are rows of the decoded steps: named by their step
            summary = {k: (rows[v] if k in STEP_KEYS and v is not None else v) for k, v in summary.items()}
        final = scorer.score(to_uint8(out[b]), s)
        traces.append(Trace(sample=s, seed=int(seeds[b]), sigmas=sig, x0=x0[b], output=out[b], metrics=metrics,
                            summary=summary, final_score=final.to_dict(),
                            experts=experts if any(experts) else None,
                            candidates=[{"label": c.label, "right": c.right} for c in listed] if listed else None,
                            steps=None if want is None else rows))
    return traces
