"""Tracing the chain of steps: x0_hat at every denoising step, decoded and scored (steplens.reports.traces writes a
trace's files)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

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
    x0: torch.Tensor | None  # (S, C, T, H, W): decoded x0_hat of every step, pixels in [-1, 1] (None: in x0_file)
    output: torch.Tensor  # (C, T, H, W): the decoded output video
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    final_score: dict = field(default_factory=dict)
    experts: list | None = None  # the expert that ran each step (two-expert models)
    candidates: list | None = None  # the task's listed answers ({label, right}), in metrics' strength order
    steps: list[int] | None = None  # the steps x0, sigmas, experts and metrics hold, row by row (None: every step)
    frames: np.ndarray | None = None  # (S, T, H, W, 3) uint8: x0's videos as images
    x0_file: Path | None = None  # where x0 was streamed (safetensors: x0, output, sigmas) instead of held in memory

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


def model_dtype(model) -> torch.dtype:
    """The dtype the model's denoisers compute in: that of most of their floating-point weights (a bfloat16 Wan keeps
    a few norms in float32)."""
    count: dict[torch.dtype, int] = {}
    for module in model.modules().values():
        for p in module.parameters():
            if p.is_floating_point():
                count[p.dtype] = count.get(p.dtype, 0) + p.numel()
    return max(count, key=count.get) if count else torch.float32


@torch.no_grad()
def trace(model, samples: list[Sample], seeds: list[int], sampling=None, frames: int | None = None,
          scorers: Scorers | None = None, decode_steps=None, x0_files: list[Path] | None = None) -> list[Trace]:
    """Sample a batch with `sampling` (steplens.presets.Sampling; None: the model's own) and keep x0_hat of every
    step (or of `decode_steps` alone: only those are kept, decoded and scored, and the summary's steps are among
    them); score each step's x0_hat (see steplens.cos).

    x0_hat's latents are kept in the model's dtype (`model_dtype`: a pipeline computes them in float32) and decoded
    one step at a time, each step's latent and decoded video let go once scored. `x0_files` (one path per sample):
    the decoded x0_hat is streamed there step by step (safetensors: x0, output, sigmas; Trace.x0 is None, x0_file
    says where), so that memory holds one decoded step in float, not all of them (the kept steps stay as uint8
    images, `Trace.frames`, a quarter of that each, for the grid and the viewer); else Trace.x0 holds them."""
    from .context import current
    from .presets import sampled

    sampling = sampled(model, sampling)
    scorers = scorers or Scorers()
    if x0_files is not None and len(x0_files) != len(samples):
        raise ValueError(f"x0_files: {len(x0_files)} paths for {len(samples)} samples; give one per sample")
    n = sampling.steps  # the run's count, to resolve steps from the end before it runs
    want = check_decode_steps(decode_steps, n)
    dtype = model_dtype(model)
    recorded, sig, experts = {}, [], []

    def keep(info):
        if want is None or info.i in want:  # only what is decoded is kept (a 480p A14B x0_hat: ~100 MB)
            recorded[info.i] = info.x0.detach().to(dtype, copy=True)
        sig.append(info.sigma)
        ctx = current()
        experts.append(info.expert or (ctx.expert if ctx is not None else None))

    out_latent = model.generate(samples, seeds, frames, sampling, callback=keep)
    if want is not None and len(sig) != n:
        raise RuntimeError(f"{getattr(model, 'name', 'the model')} ran {len(sig)} steps, not the {n} its sampling "
                           f"says: decode steps {decode_steps} were resolved against {n}")
    rows = sorted(recorded)
    if want is not None:
        sig, experts = [sig[k] for k in rows], [experts[k] for k in rows]
    out = model.decode(out_latent)
    del out_latent
    scorer = [scorers.for_sample(s) for s in samples]
    listed = [candidates(s) for s in samples]
    regions = [answer_region(s) for s in samples]
    metrics = [[] for _ in samples]
    images: list[np.ndarray | None] = [None] * len(samples)
    x0 = None
    with ExitStack() as files:
        streams = []
        for r, k in enumerate(rows):
            px = model.decode(recorded.pop(k))  # (B, C, T, H, W); the latent goes here
            if r == 0:
                shape = (len(rows), *px.shape[1:])
                if x0_files is None:
                    x0 = torch.empty((px.shape[0], *shape), dtype=px.dtype, device=px.device)
                else:
                    from .io.tensors import StreamedSafetensors

                    for b, path in enumerate(x0_files):  # the file's order: output, sigmas, x0
                        f = files.enter_context(StreamedSafetensors(path, {"output": out[b].shape,
                                                                           "sigmas": (len(sig),), "x0": shape}))
                        f.write("output", out[b].float())
                        f.write("sigmas", torch.tensor(sig))
                        streams.append(f)
            for b, s in enumerate(samples):
                video = to_uint8(px[b])  # (T, H, W, 3)
                if images[b] is None:
                    images[b] = np.empty((len(rows), *video.shape), np.uint8)
                images[b][r] = video
                metrics[b] += cos.step_metrics(to_rgb(px[b].movedim(1, 0))[None], s, scorer[b], regions[b],
                                               candidates=listed[b])
                if streams:
                    streams[b].write("x0", px[b][None].float())
                else:
                    x0[b, r] = px[b]
            del px
    traces = []
    for b, s in enumerate(samples):
        rows_metrics = [{"step": k, **m} for k, m in zip(rows, metrics[b])]
        summary = cos.summarize(rows_metrics)
        if want is not None:  # the summary's steps are rows of the decoded steps: named by their step
            summary = {k: (rows[v] if k in STEP_KEYS and v is not None else v) for k, v in summary.items()}
        final = scorer[b].score(to_uint8(out[b]), s)
        traces.append(Trace(sample=s, seed=int(seeds[b]), sigmas=sig, x0=None if x0 is None else x0[b],
                            output=out[b], metrics=rows_metrics, summary=summary, final_score={**final.to_dict(), "scorer": scorer[b].name},
                            experts=experts if any(experts) else None,
                            candidates=[{"label": c.label, "right": c.right} for c in listed[b]] if listed[b] else None,
                            steps=None if want is None else rows, frames=images[b],
                            x0_file=None if x0_files is None else Path(x0_files[b])))
    return traces
