"""Tracing the chain of steps: x0_hat at every denoising step, decoded, scored and written out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import cos
from .io.files import atomic_path, atomic_write_json, write_gif
from .tasks import Sample, Scorers, answer_region, candidates
from .io.video import to_rgb, to_uint8, upscale


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
        scorer = scorers.for_task(s.task)
        videos = np.stack([to_rgb(x0[b, k].movedim(1, 0)) for k in range(x0.shape[1])])  # (S, T, H, W, 3)
        listed = candidates(s)
        metrics = cos.step_metrics(videos, s, scorer, answer_region(s), candidates=listed)
        final = scorer.score(to_uint8(out[b]), s)
        traces.append(Trace(sample=s, seed=int(seeds[b]), sigmas=sig, x0=x0[b], output=out[b], metrics=metrics,
                            summary=cos.summarize(metrics), final_score=final.to_dict(),
                            experts=experts if any(experts) else None,
                            candidates=[{"label": c.label, "right": c.right} for c in listed] if listed else None))
    return traces


def write_trace(tr: Trace, out: Path, scale: int = 8) -> dict:
    """Write x0.safetensors, grid.png (labelled, chosen steps), the viewer's sprites (steps.png, highlight.png),
    final_x0.gif, output.gif, cos.png and metrics.json into `out`."""
    from safetensors.torch import save_file

    from .reports.plots import plot_cos, plot_step_grid
    from .reports.viewer import write_sprites

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "x0.safetensors") as tmp:
        save_file({"x0": tr.x0.float().contiguous().cpu(), "output": tr.output.float().contiguous().cpu(),
                   "sigmas": torch.tensor(tr.sigmas)}, str(tmp))
    plot_step_grid(np.stack([to_uint8(x) for x in tr.x0]), tr.sigmas, out / "grid.png", experts=tr.experts,
                   title=f"{tr.sample.name}: x0_hat at chosen steps (rows) and frames (columns)")
    geometry = write_sprites(tr.x0, tr.sample.first_frame, out)
    write_gif(out / "final_x0.gif", upscale(to_uint8(tr.x0[:, :, -1].movedim(0, 1)), scale), fps=4)
    write_gif(out / "output.gif", upscale(to_uint8(tr.output), scale), fps=2)
    plot_cos(tr.metrics, out / "cos.png", title=f"{tr.sample.task} #{tr.sample.idx} seed {tr.seed}",
             candidates=tr.candidates)
    atomic_write_json(out / "metrics.json", {**tr.to_dict(), "viewer": geometry})
    return {"dir": str(out), "grid": "grid.png", "gif": "final_x0.gif", "cos": "cos.png", "viewer": geometry}
