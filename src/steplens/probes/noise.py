"""Probe `noise`: noise at one step (all frames) vs the same noise on one frame, and partial mixes.

The study (arXiv 2603.16870, abstract): noise at one denoising stage drops VBVR-Wan2.2 from 0.685 to below 0.3,
while perturbing frames hurts less. How the noise was applied is not public. Here:

- ``step k``: the latent x_s replaced by fresh noise at step k, on all frames;
- ``frame f step k`` (the default frame protocol, "one-step"): the same fresh noise at step k on latent frame f
  only, at a few steps and frames chosen so that the probe runs no more conditions than one per latent frame; the
  claim compares the drop from noise on one frame with the drop from noise on all frames at the same steps;
- ``frame f`` (``frame_noise="every-step"``, steplens' earlier protocol): latent frame f replaced by noise at every
  step (the answer frame then stays pure noise: "repaired" fails by construction there);
- ``mix a step k``: x_s mixed with a share a of fresh noise at step k.

Every condition but ``frame f`` follows the clean run until its step: it branches there (prefix reuse).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..hooks import Hooks
from ..reports.page import Report
from ..reports.plots import save
from .base import ProbeBase, ProbeSettings, condition_runner, cost_text, seeds_of, summary_rows
from .contract import (NOT_TESTED, STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart, difference_needed,
                       rate_excludes_floor)

FRAME_PROTOCOLS = ("one-step", "every-step")
MAX_FRAME_STEPS = 4


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


def default_frames(n_frames: int) -> list[int]:
    """The frames the one-step protocol perturbs: the first generated frame, the middle one and the last (the
    answer), latent frame 0 (the given first frame) left out where there are others."""
    return sorted({1, n_frames // 2, n_frames - 1} & set(range(1, n_frames))) or [0]


def default_frame_steps(steps: int, n_frames: int, n_chosen: int) -> list[int]:
    """The steps of the one-step frame protocol: m evenly spaced steps (the middles of m equal parts of the chain),
    m = min(4, frames // chosen frames), so that frames x steps conditions are no more than the latent frames (the
    every-step protocol's count): the default probe runs no more trajectories than before."""
    m = max(1, min(MAX_FRAME_STEPS, n_frames // max(1, n_chosen)))
    return sorted({min(steps - 1, int((2 * i + 1) * steps / (2 * m))) for i in range(m)})


def resolve(o: dict, steps: int, n_frames: int) -> dict:
    """The options with every selection filled in and checked (for `steps` sampling steps, `n_frames` latent
    frames): steps, frames, frame_steps."""
    o = dict(o)
    o["steps"] = check_indices("step", o.get("steps"), steps)
    one = o.get("frame_noise", "one-step") == "one-step"
    frames = o.get("frames")
    o["frames"] = check_indices("frame", default_frames(n_frames) if frames is None and one else frames, n_frames)
    if one:
        fs = o.get("frame_steps")
        o["frame_steps"] = check_indices("step", default_frame_steps(steps, n_frames, len(o["frames"]))
                                         if fs is None else fs, steps)
    else:
        o["frame_steps"] = None
    return o


def noise_plan(steps: int, o: dict) -> dict[str, Branch]:
    """{condition: Branch}: each condition's name and branch step, for resolved options `o`."""
    plan: dict[str, Branch] = {"clean": Branch(0)}
    wanted = list(o["steps"]) + [k for k in (o["frame_steps"] or []) if k not in o["steps"]]
    plan.update({f"step {k}": Branch(k) for k in wanted})
    if o.get("frame_noise", "one-step") == "one-step":
        plan.update({f"frame {f} step {k}": Branch(k) for k in o["frame_steps"] for f in o["frames"]})
    else:
        plan.update({f"frame {f}": Branch(0) for f in o["frames"]})  # noise from step 0 on: nothing shared
    for a in o["mix_strengths"]:
        plan.update({f"mix {a} step {k}": Branch(k) for k in range(0, steps, o["mix_every"])})
    return plan


def _hooks(model, s: ProbeSettings, name: str, o: dict):
    """name -> hooks factory fn(samples, seeds) (None for the clean run)."""
    parts = name.split()
    if name == "clean":
        return None
    if parts[0] == "step":
        k = int(parts[1])
        return lambda smp, sd: Hooks(model, s.steps).edit(
            "latent", steps=[k], fn=lambda x, ctx: fresh_noise(x, sd, 1 + ctx.step))
    if parts[0] == "frame" and len(parts) == 4:  # frame f step k: step k's noise, on frame f only
        f, k = int(parts[1]), int(parts[3])

        def one_frame(x, ctx, sd, f=f):
            x = x.clone()
            x[:, :, f] = fresh_noise(x, sd, 1 + ctx.step)[:, :, f]
            return x
        return lambda smp, sd: Hooks(model, s.steps).edit("latent", steps=[k], fn=lambda x, ctx: one_frame(x, ctx, sd))
    if parts[0] == "frame":
        f = int(parts[1])

        def frame_noise(x, ctx, sd=None, f=f):
            x = x.clone()
            x[:, :, f] = fresh_noise(x[:, :, f], sd, 1000 + 100 * f + ctx.step)
            return x
        return lambda smp, sd: Hooks(model, s.steps).edit("latent", fn=lambda x, ctx: frame_noise(x, ctx, sd))
    a, k = float(parts[1]), int(parts[3])
    return lambda smp, sd: Hooks(model, s.steps).edit(
        "latent", steps=[k], fn=lambda x, ctx: math.sqrt(1 - a) * x + math.sqrt(a) * fresh_noise(x, sd, 7 + k))


CLEAN_NEEDED = "a clean solve rate whose 95% interval excludes 0 (nothing solved clean: nothing to wreck or repair)"


def _clean_needed(table: list) -> str | None:
    return rate_excludes_floor(next((x for x in table if x["condition"] == "clean"), None))


STEP_SOURCE = (f"{STUDY}, abstract: noise at one denoising stage drops VBVR-Wan2.2 from 0.685 to below 0.3. How the "
               f"noise was applied is not public (no public text found); ours: the whole latent x_s "
               f"replaced by fresh noise at one step; the threshold (half the clean rate) is ours")
FRAME_SOURCE = (f"{STUDY}, abstract: perturbing frames hurts less than noise at one stage. Ours: the same fresh noise "
                f"at the same step on one latent frame against all frames (the study's frame protocol is not public)")
EVERY_STEP_SOURCE = ("steplens' earlier protocol (one latent frame replaced by noise at every step), not the study's: "
                     "no public text describes it")


def _frame_steps_needed(h: dict, table: list) -> str | None:
    why = _clean_needed(table)
    if why:
        return why
    if (h.get("drop_step_noise_at_frame_steps") or 0) <= 0:
        return (f"noise on all frames at steps {h.get('frame_steps')} does not lower the solve rate (drop "
                f"{h.get('drop_step_noise_at_frame_steps') or 0:.3f}): nothing for one frame to hurt less than")
    return difference_needed(h.get("frame_minus_step_at_frame_steps"), "one frame - all frames (solve rate)")


def _paired_text(d: dict | None) -> str:
    return f"; paired {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] on {d['n']} samples" if d else ""


def frame_minus_step(rows: dict, frame_names: list[str], step_names: list[str]) -> dict | None:
    """Per sample, its mean success over the one-frame conditions minus over the all-frames ones (the same steps),
    averaged with a paired bootstrap 95% interval: {mean, ci_low, ci_high, n} (None: no sample ran both)."""
    from ..experiments.stats import paired_bootstrap

    per: dict[str, tuple[list, list]] = {}
    for i, names in enumerate((frame_names, step_names)):
        for c in names:
            for x in rows[c]:
                per.setdefault(x["sample"], ([], []))[i].append(float(x["success"]))
    pairs = [(float(np.mean(a)), float(np.mean(b))) for a, b in per.values() if a and b]
    if not pairs:
        return None
    d, lo, hi = paired_bootstrap(*zip(*pairs))
    return {"mean": d, "ci_low": lo, "ci_high": hi, "n": len(pairs)}


class Noise(ProbeBase):
    name = "noise"
    description = "noise at one step (all frames) vs the same noise on one frame, and partial mixes"
    claims = (
        Claim("noise-step-wrecks", "noise at one step wrecks the answer",
              lambda h, t: h["step_noise_min"] <= 0.5 * h["clean"], "≤ half",
              lambda h, t: f"worst step {h['worst_step']}: {h['step_noise_min']:.3f} vs clean {h['clean']:.3f}",
              lambda h, t: _clean_needed(t), CLEAN_NEEDED, "ours", STEP_SOURCE),
        Claim("noise-frame-repaired", "noise at one frame (every step) is repaired",
              lambda h, t: NOT_TESTED if h.get("frame_protocol") == "one-step" else
              h["frame_noise_mean"] >= 0.9 * h["clean"], "≥ 90% of it",
              lambda h, t: f"mean over frames {h['frame_noise_mean']:.3f} vs clean {h['clean']:.3f}",
              lambda h, t: _clean_needed(t), CLEAN_NEEDED, "ours", EVERY_STEP_SOURCE),
        Claim("noise-frame-hurts-less", "noise on one frame hurts less than on all frames (same step)",
              lambda h, t: NOT_TESTED if h.get("frame_protocol") != "one-step" else
              h["frame_minus_step_at_frame_steps"]["ci_low"] > 0,
              "one frame - all frames (solve rate, same steps and samples), paired 95% interval: above 0 holds, "
              "below 0 does not",
              lambda h, t: f"drop {h['drop_frame_noise']:.3f} (one frame, mean over frames {h['frames']} x steps "
                           f"{h['frame_steps']}) vs {h['drop_step_noise_at_frame_steps']:.3f} (all frames, same "
                           f"steps); clean {h['clean']:.3f}" + _paired_text(h.get("frame_minus_step_at_frame_steps")),
              _frame_steps_needed, CLEAN_NEEDED + "; noise on all frames at those steps lowering the solve rate; a "
                                                  "paired interval (one frame - all frames) that excludes 0",
              "ours", FRAME_SOURCE))
    study = StudyPart(count="probe_count", order=20)

    def options(self, model, s: ProbeSettings, mix_strengths=(0.25, 0.5), mix_every: int = 4, steps=None,
                frames=None, frame_noise: str = "one-step", frame_steps=None) -> dict:
        return check_options(mix_strengths, mix_every, steps, frames, frame_noise, frame_steps)

    def prepare(self, r: ProbeRun) -> None:
        n_frames = min(x.frames for x in r.samples)  # latent frames every sample has
        r.options.update(resolve(r.options, r.settings.steps, n_frames))

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        o = {**check_options(**{k: v for k, v in options.items() if k in OPTIONS}), "frame_steps": options.get(
            "frame_steps")}
        return noise_plan(shape.steps, resolve(o, shape.steps, shape.frames))

    def conditions(self, r: ProbeRun) -> dict:
        return {c: _hooks(r.model, r.settings, c, r.options) for c in noise_plan(r.settings.steps, r.options)}

    def group(self, r: ProbeRun, condition: str):
        return 0  # the clean run's prefix is shared by every condition of a batch

    def batch(self, r: ProbeRun):
        conds, plan = r.conditions, noise_plan(r.settings.steps, r.options)
        make = lambda c, batch: conds[c](batch, seeds_of(batch)) if conds[c] is not None else None  # noqa: E731
        return condition_runner(r.model, r.settings, make, branch_of=lambda c: plan[c].at, clean="clean")

    def summary(self, r: ProbeRun, rows: dict) -> dict:
        o = r.options
        steps, frames = o["steps"], o["frames"]
        table = summary_rows(rows)
        by = {x["condition"]: x for x in table}
        clean = by["clean"]["solve_rate"]
        step_rates = [by[f"step {k}"]["solve_rate"] for k in steps]
        one = o.get("frame_noise", "one-step") == "one-step"
        frame_names = [f"frame {f} step {k}" for k in o["frame_steps"] for f in frames] if one else \
            [f"frame {f}" for f in frames]
        frame_rates = [by[c]["solve_rate"] for c in frame_names]
        headline = {
            "clean": clean, "clean_mean_score": by["clean"]["mean_score"],
            "step_noise_mean": float(np.mean(step_rates)), "step_noise_min": float(np.min(step_rates)),
            "worst_step": steps[int(np.argmin(step_rates))],
            "frame_noise_mean": float(np.mean(frame_rates)), "frame_noise_min": float(np.min(frame_rates)),
            "drop_step_noise": clean - float(np.mean(step_rates)),
            "drop_frame_noise": clean - float(np.mean(frame_rates)),
            "step_noise_mean_score": float(np.mean([by[f"step {k}"]["mean_score"] for k in steps])),
            "frame_protocol": o.get("frame_noise", "one-step"), "frames": list(frames),
        }
        if one:
            at = [by[f"step {k}"] for k in o["frame_steps"]]
            headline.update(frame_steps=list(o["frame_steps"]),
                            step_noise_mean_at_frame_steps=float(np.mean([x["solve_rate"] for x in at])),
                            drop_step_noise_at_frame_steps=clean - float(np.mean([x["solve_rate"] for x in at])),
                            frame_noise_mean_score=float(np.mean([by[c]["mean_score"] for c in frame_names])),
                            step_noise_mean_score_at_frame_steps=float(np.mean([x["mean_score"] for x in at])),
                            frame_minus_step_at_frame_steps=frame_minus_step(
                                rows, frame_names, [f"step {k}" for k in o["frame_steps"]]))
        return {"headline": headline, "table": table}

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        o = r.options
        plot(r.out, r.settings, {x["condition"]: x for x in res["table"]}, o["mix_strengths"], o["mix_every"],
             o["steps"], o["frames"], o.get("frame_steps"))

    def headline_text(self, h: dict, table: list) -> str:
        return f"clean {h['clean']:.3f}; step noise mean {h['step_noise_mean']:.3f}, frame noise mean " \
               f"{h['frame_noise_mean']:.3f}"

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        if h.get("frame_protocol") == "one-step":
            frame = (f"The same noise on one latent frame (frames {h['frames']}) at steps {h['frame_steps']}: mean "
                     f"{h['frame_noise_mean']:.3f} (drop {h['drop_frame_noise']:.3f}) against "
                     f"{h['step_noise_mean_at_frame_steps']:.3f} on all frames at those steps (drop "
                     f"{h['drop_step_noise_at_frame_steps']:.3f}).")
        else:
            frame = (f"Noise at one frame (every step): mean {h['frame_noise_mean']:.3f}, worst "
                     f"{h['frame_noise_min']:.3f}.")
        rep.section("Noise: one step vs one frame",
                    f"Clean solve rate {h['clean']:.3f}. Noise at one step (all frames): mean "
                    f"{h['step_noise_mean']:.3f}, worst at step {h['worst_step']} ({h['step_noise_min']:.3f}). "
                    + frame + " " + cost_text(res.get("cost")))
        rep.image(f"{rel}/noise.png", "solve rate per condition (95% intervals)")
        rep.table(res["table"], ["condition", "n", "solved", "solve_rate", "ci_low", "ci_high", "mean_score"])


OPTIONS = ("mix_strengths", "mix_every", "steps", "frames", "frame_noise", "frame_steps")


def check_options(mix_strengths=(0.25, 0.5), mix_every: int = 4, steps=None, frames=None,
                  frame_noise: str = "one-step", frame_steps=None) -> dict:
    """The noise probe's options checked (before any sample is made) and their defaults filled."""
    if mix_every < 1:
        raise ValueError(f"mix_every must be >= 1, got {mix_every}")
    if frame_noise not in FRAME_PROTOCOLS:
        raise ValueError(f"frame_noise {frame_noise!r}; allowed: {', '.join(FRAME_PROTOCOLS)}")
    if frame_steps is not None and frame_noise != "one-step":
        raise ValueError(f"frame_steps {list(frame_steps)} applies to frame_noise='one-step', not {frame_noise!r} "
                         f"(noise on the frame at every step)")
    return {"mix_strengths": list(mix_strengths), "mix_every": mix_every, "steps": steps, "frames": frames,
            "frame_noise": frame_noise, "frame_steps": None if frame_steps is None else list(frame_steps)}


PROBE = Noise()
run, report_section = PROBE.run, PROBE.report_section


def plot(out: Path, s: ProbeSettings, by: dict, mix_strengths, mix_every, steps, frames, frame_steps=None) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 1]})
    ks = np.array(steps)
    one = frame_steps is not None
    right = [(np.array(frames), [f"frame {f} step {k}" for f in frames], f"noise on frame f at step {k}")
             for k in frame_steps] if one else [(np.array(frames), [f"frame {f}" for f in frames],
                                                  "noise at frame f (every step)")]
    for ax, xs, names, label in ((axes[0], ks, [f"step {k}" for k in ks], "noise at step k (all frames)"),
                                 *((axes[1], *r) for r in right)):
        y = np.array([by[n]["solve_rate"] for n in names])
        lo = np.array([by[n]["ci_low"] for n in names])
        hi = np.array([by[n]["ci_high"] for n in names])
        ax.plot(xs, y, "o-", ms=3, label=label)
        ax.fill_between(xs, lo, hi, alpha=0.2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step" if ax is axes[0] else "latent frame")
    for ax in axes:
        ax.axhline(by["clean"]["solve_rate"], color="k", ls="--", lw=1, label="clean")
    for a in mix_strengths:
        mk = list(range(0, s.steps, mix_every))
        axes[0].plot(mk, [by[f"mix {a} step {k}"]["solve_rate"] for k in mk], "s:", ms=3, label=f"mix a={a} at step k")
    axes[0].set_ylabel("solve rate")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=6)
    save(fig, Path(out) / "noise.png")
