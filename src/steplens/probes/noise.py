"""Probe `noise`: noise at one step (all frames) vs noise at one frame (every step), and partial mixes.

The study: replacing the latent by noise at one step wrecks the answer, while a frame replaced by noise
at every step is repaired by the others. Here: the solve rate under each condition beside the clean run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..experiment import open_store, rows_of, run_grid
from ..hooks import Hooks
from ..plots import save
from ..report import Report
from .base import ProbeSettings, condition_runner, load_samples, seeds_of, summary_rows, write_results


def fresh_noise(like: torch.Tensor, seeds: list[int], salt: int) -> torch.Tensor:
    """Noise shaped like `like` (B, ...), deterministic per (sample seed, salt)."""
    gens = [torch.Generator().manual_seed(int(s) * 1_000_003 + salt) for s in seeds]
    return torch.stack([torch.randn(like.shape[1:], generator=g) for g in gens]).to(like)


def check_indices(what: str, chosen, n: int) -> list[int]:
    """Validate a step or frame selection against 0..n-1."""
    chosen = list(range(n)) if chosen is None else list(chosen)
    if not chosen:
        raise ValueError(f"empty {what} selection")
    bad = [i for i in chosen if not 0 <= i < n]
    if bad:
        raise ValueError(f"{what} index {bad[0]} out of range: {what}s are 0..{n - 1}")
    return chosen


def conditions(model, s: ProbeSettings, n_frames: int, mix_strengths=(0.25, 0.5), mix_every: int = 4, steps=None,
               frames=None) -> dict:
    """name -> hooks factory (None for the clean run)."""
    conds: dict = {"clean": None}
    for k in check_indices("step", steps, s.steps):
        conds[f"step {k}"] = lambda smp, sd, k=k: Hooks(model, s.steps).edit(
            "latent", steps=[k], fn=lambda x, ctx: fresh_noise(x, sd, 1 + ctx.step))
    for f in check_indices("frame", frames, n_frames):
        def frame_noise(x, ctx, sd=None, f=f):
            x = x.clone()
            x[:, :, f] = fresh_noise(x[:, :, f], sd, 1000 + 100 * f + ctx.step)
            return x
        conds[f"frame {f}"] = lambda smp, sd, fn=frame_noise: Hooks(model, s.steps).edit(
            "latent", fn=lambda x, ctx: fn(x, ctx, sd))
    for a in mix_strengths:
        for k in range(0, s.steps, mix_every):
            conds[f"mix {a} step {k}"] = lambda smp, sd, a=a, k=k: Hooks(model, s.steps).edit(
                "latent", steps=[k], fn=lambda x, ctx: math.sqrt(1 - a) * x + math.sqrt(a) * fresh_noise(x, sd, 7 + k))
    return conds


def run(model, out: Path, s: ProbeSettings, mix_strengths=(0.25, 0.5), mix_every: int = 4, steps=None, frames=None,
        progress=True) -> dict:
    if mix_every < 1:
        raise ValueError(f"mix_every must be >= 1, got {mix_every}")
    samples = load_samples(model, s)
    n_frames = min(x.frames for x in samples)  # latent frames every sample has
    conds = conditions(model, s, n_frames, mix_strengths, mix_every, steps, frames)
    steps, frames = check_indices("step", steps, s.steps), check_indices("frame", frames, n_frames)
    config = {**s.describe(), "mix_strengths": list(mix_strengths), "mix_every": mix_every, "steps": steps,
              "frames": frames, "model": model.name}
    store = open_store(out, "noise", config)
    make = lambda c, batch: conds[c](batch, seeds_of(batch)) if conds[c] is not None else None  # noqa: E731
    run_grid(store, list(conds), samples, s.batch, condition_runner(model, s, make), desc="probe noise",
             progress=progress)
    table = summary_rows({c: rows_of(store, c, samples) for c in conds})
    by = {r["condition"]: r for r in table}
    clean = by["clean"]["solve_rate"]
    step_rates = [by[f"step {k}"]["solve_rate"] for k in steps]
    frame_rates = [by[f"frame {f}"]["solve_rate"] for f in frames]
    headline = {
        "clean": clean, "clean_mean_score": by["clean"]["mean_score"],
        "step_noise_mean": float(np.mean(step_rates)), "step_noise_min": float(np.min(step_rates)),
        "worst_step": steps[int(np.argmin(step_rates))],
        "frame_noise_mean": float(np.mean(frame_rates)), "frame_noise_min": float(np.min(frame_rates)),
        "drop_step_noise": clean - float(np.mean(step_rates)), "drop_frame_noise": clean - float(np.mean(frame_rates)),
        "step_noise_mean_score": float(np.mean([by[f"step {k}"]["mean_score"] for k in steps])),
    }
    write_results(out, "noise", s, config, table, headline, samples=len(samples))
    plot(out, s, by, mix_strengths, mix_every, steps, frames)
    return {"headline": headline, "table": table}


def plot(out: Path, s: ProbeSettings, by: dict, mix_strengths, mix_every, steps, frames) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 1]})
    ks = np.array(steps)
    for ax, xs, names, label in ((axes[0], ks, [f"step {k}" for k in ks], "noise at step k (all frames)"),
                                 (axes[1], np.array(frames), [f"frame {f}" for f in frames],
                                  "noise at frame f (every step)")):
        y = np.array([by[n]["solve_rate"] for n in names])
        lo = np.array([by[n]["ci_low"] for n in names])
        hi = np.array([by[n]["ci_high"] for n in names])
        ax.plot(xs, y, "o-", ms=3, label=label)
        ax.fill_between(xs, lo, hi, alpha=0.2)
        ax.axhline(by["clean"]["solve_rate"], color="k", ls="--", lw=1, label="clean")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step" if ax is axes[0] else "latent frame")
    for a in mix_strengths:
        mk = list(range(0, s.steps, mix_every))
        axes[0].plot(mk, [by[f"mix {a} step {k}"]["solve_rate"] for k in mk], "s:", ms=3, label=f"mix a={a} at step k")
    axes[0].set_ylabel("solve rate")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    save(fig, Path(out) / "noise.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    h = res["headline"]
    rep.section("Noise: one step vs one frame",
                f"Clean solve rate {h['clean']:.3f}. Noise at one step (all frames): mean {h['step_noise_mean']:.3f}, "
                f"worst at step {h['worst_step']} ({h['step_noise_min']:.3f}). Noise at one frame (every step): "
                f"mean {h['frame_noise_mean']:.3f}, worst {h['frame_noise_min']:.3f}.")
    rep.image(f"{rel}/noise.png", "solve rate per condition (95% intervals)")
    rep.table(res["table"], ["condition", "n", "solved", "solve_rate", "ci_low", "ci_high", "mean_score"])
