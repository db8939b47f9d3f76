"""Probe `noise`: noise at one step (all frames) vs noise at one frame (every step), and partial mixes.

The study: replacing the latent by noise at one step wrecks the answer, while a frame replaced by noise
at every step is repaired by the others. Here: the solve rate under each condition beside the clean run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..hooks import Hooks
from ..reports.page import Report
from ..reports.plots import save
from .base import ProbeBase, ProbeSettings, condition_runner, seeds_of, summary_rows
from .contract import Claim, ProbeRun, StudyPart, rate_excludes_floor


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


def _conditions(model, s: ProbeSettings, steps: list[int], frames: list[int], mix_strengths, mix_every: int) -> dict:
    """name -> hooks factory (None for the clean run)."""
    conds: dict = {"clean": None}
    for k in steps:
        conds[f"step {k}"] = lambda smp, sd, k=k: Hooks(model, s.steps).edit(
            "latent", steps=[k], fn=lambda x, ctx: fresh_noise(x, sd, 1 + ctx.step))
    for f in frames:
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


CLEAN_NEEDED = "a clean solve rate whose 95% interval excludes 0 (nothing solved clean: nothing to wreck or repair)"


def _clean_needed(table: list) -> str | None:
    return rate_excludes_floor(next((x for x in table if x["condition"] == "clean"), None))


class Noise(ProbeBase):
    name = "noise"
    description = "noise at one step (all frames) vs noise at one frame (every step), and partial mixes"
    claims = (
        Claim("noise-step-wrecks", "noise at one step wrecks the answer",
              lambda h, t: h["step_noise_min"] <= 0.5 * h["clean"], "≤ half",
              lambda h, t: f"worst step {h['worst_step']}: {h['step_noise_min']:.3f} vs clean {h['clean']:.3f}",
              lambda h, t: _clean_needed(t), CLEAN_NEEDED),
        Claim("noise-frame-repaired", "noise at one frame is repaired",
              lambda h, t: h["frame_noise_mean"] >= 0.9 * h["clean"], "≥ 90% of it",
              lambda h, t: f"mean over frames {h['frame_noise_mean']:.3f} vs clean {h['clean']:.3f}",
              lambda h, t: _clean_needed(t), CLEAN_NEEDED))
    study = StudyPart(count="probe_count", order=20)

    def options(self, model, s: ProbeSettings, mix_strengths=(0.25, 0.5), mix_every: int = 4, steps=None,
                frames=None) -> dict:
        if mix_every < 1:
            raise ValueError(f"mix_every must be >= 1, got {mix_every}")
        return {"mix_strengths": list(mix_strengths), "mix_every": mix_every, "steps": steps, "frames": frames}

    def prepare(self, r: ProbeRun) -> None:
        n_frames = min(x.frames for x in r.samples)  # latent frames every sample has
        r.options["steps"] = check_indices("step", r.options["steps"], r.settings.steps)
        r.options["frames"] = check_indices("frame", r.options["frames"], n_frames)

    def conditions(self, r: ProbeRun) -> dict:
        o = r.options
        return _conditions(r.model, r.settings, o["steps"], o["frames"], o["mix_strengths"], o["mix_every"])

    def batch(self, r: ProbeRun):
        conds = r.conditions
        make = lambda c, batch: conds[c](batch, seeds_of(batch)) if conds[c] is not None else None  # noqa: E731
        return condition_runner(r.model, r.settings, make)

    def summary(self, r: ProbeRun, rows: dict) -> dict:
        steps, frames = r.options["steps"], r.options["frames"]
        table = summary_rows(rows)
        by = {x["condition"]: x for x in table}
        clean = by["clean"]["solve_rate"]
        step_rates = [by[f"step {k}"]["solve_rate"] for k in steps]
        frame_rates = [by[f"frame {f}"]["solve_rate"] for f in frames]
        headline = {
            "clean": clean, "clean_mean_score": by["clean"]["mean_score"],
            "step_noise_mean": float(np.mean(step_rates)), "step_noise_min": float(np.min(step_rates)),
            "worst_step": steps[int(np.argmin(step_rates))],
            "frame_noise_mean": float(np.mean(frame_rates)), "frame_noise_min": float(np.min(frame_rates)),
            "drop_step_noise": clean - float(np.mean(step_rates)),
            "drop_frame_noise": clean - float(np.mean(frame_rates)),
            "step_noise_mean_score": float(np.mean([by[f"step {k}"]["mean_score"] for k in steps])),
        }
        return {"headline": headline, "table": table}

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        o = r.options
        plot(r.out, r.settings, {x["condition"]: x for x in res["table"]}, o["mix_strengths"], o["mix_every"],
             o["steps"], o["frames"])

    def headline_text(self, h: dict, table: list) -> str:
        return f"clean {h['clean']:.3f}; step noise mean {h['step_noise_mean']:.3f}, frame noise mean " \
               f"{h['frame_noise_mean']:.3f}"

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        rep.section("Noise: one step vs one frame",
                    f"Clean solve rate {h['clean']:.3f}. Noise at one step (all frames): mean "
                    f"{h['step_noise_mean']:.3f}, worst at step {h['worst_step']} ({h['step_noise_min']:.3f}). Noise "
                    f"at one frame (every step): mean {h['frame_noise_mean']:.3f}, worst {h['frame_noise_min']:.3f}.")
        rep.image(f"{rel}/noise.png", "solve rate per condition (95% intervals)")
        rep.table(res["table"], ["condition", "n", "solved", "solve_rate", "ci_low", "ci_high", "mean_score"])


PROBE = Noise()
run, report_section = PROBE.run, PROBE.report_section


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

