"""Probe `propagation`: how far a perturbation at step k travels down the chain of steps.

Noise replaces x_s at step k; at every later step s, the CKA dissimilarity (1 - linear CKA, tokens as
examples) between the perturbed and the clean run, for x0_hat and for chosen blocks' hidden states.
The study: sensitivity peaks in the middle steps. Output: a k x s heat map per point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..experiments.stats import summarize
from ..hooks import Hooks
from ..reports.page import Report
from ..reports.plots import save
from ..tape import ForwardTape, forwards, reuse_enabled
from .base import ProbeBase, ProbeSettings, cost_text, generate, nfe_row, score_outputs, seeds_of
from .contract import STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart
from .noise import check_indices, fresh_noise


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA per batch element between x and y of shape (B, L, D): tokens are the examples."""
    x = x.double() - x.double().mean(1, keepdim=True)
    y = y.double() - y.double().mean(1, keepdim=True)
    xy = (y.transpose(1, 2) @ x).square().sum((1, 2))
    xx = (x.transpose(1, 2) @ x).square().sum((1, 2)).sqrt()
    yy = (y.transpose(1, 2) @ y).square().sum((1, 2)).sqrt()
    return (xy / (xx * yy).clamp_min(1e-30)).float()


def _tokens(t: torch.Tensor) -> torch.Tensor:
    """A latent (B, C, T, H, W) as tokens (B, T*H*W, C); hidden states (B, L, D) stay as they are."""
    return t.flatten(2).transpose(1, 2) if t.dim() == 5 else t


class Propagation(ProbeBase):
    name = "propagation"
    description = "how far noise injected at step k travels down the chain of steps (1 - linear CKA per later step)"
    claims = (Claim("propagation-middle-steps", "a perturbation propagates most from the middle steps",
                    lambda h, t: 0.25 * h["steps"] <= h["peak_inject_step"] <= 0.75 * h["steps"], "in the middle half",
                    lambda h, t: f"peak at step {h['peak_inject_step']} of {h['steps']}",
                    lambda h, t: None if (h.get("peak_final_x0_dissimilarity") or 0) > 0 else
                    "no injection moved the final x0_hat (1 - CKA = 0 everywhere)",
                    "an injection that moves the final x0_hat (1 - CKA above 0)", "ours",
                    f"{STUDY} (its summaries: sensitivity in the middle steps); the CKA protocol and a peak around "
                    f"steps 20-30 of 50 are not confirmed by any public text; ours: fresh noise "
                    f"replacing x_s at step k, 1 - linear CKA of x0_hat at the last step, the middle half"),)
    study = StudyPart(count="probe_count", order=30)

    def options(self, model, s: ProbeSettings, blocks: list[str] | None = None,
                inject: list[int] | None = None) -> dict:
        if model is None:  # before the model loads: its blocks (and its own steps, if not given) unknown
            return {"blocks": blocks, "inject": inject if s.steps is None else check_indices("step", inject, s.steps)}
        names = list(model.block_names)
        blocks = blocks or [names[0], names[len(names) // 2], names[-1]]
        return {"blocks": blocks, "inject": check_indices("step", inject, s.steps)}

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        inject = check_indices("step", options.get("inject"), shape.steps)
        # the clean run each batch records (CKA's reference; its outputs replayed by every injection): no row
        return {"clean (recorded)": Branch(0, stored=False), **{f"inject {k}": Branch(k) for k in inject}}

    def conditions(self, r: ProbeRun) -> dict:
        return {f"inject {k}": k for k in r.options["inject"]}

    def group(self, r: ProbeRun, condition: str):
        return 0  # one clean recording per batch, shared by every injection

    def batch(self, r: ProbeRun):
        model, s = r.model, r.settings
        points = ["x0", *r.options["blocks"]]
        scorers = s.scorers()

        def recording(first: int = 0):
            return Hooks(model, s.steps).record(points, steps=range(first, s.steps), branch="cond")

        def run_batch(conds, batch):
            seeds, n = seeds_of(batch), len(batch)
            reuse = reuse_enabled()
            clean, tape = recording(), ForwardTape(batch=n) if reuse else None
            with forwards(model, record=tape) as counted:
                generate(model, s, batch, clean)
            shared = counted.nfe // n  # the clean recording: stored on the first injection of the batch
            got = {}
            for c in conds:
                k = r.conditions[c]
                at = k if reuse else 0  # records from the branch step on; before it, the run is the clean run
                h = recording(at).edit("latent", steps=[k], fn=lambda x, ctx, sd=seeds: fresh_noise(x, sd,
                                                                                                  1 + ctx.step))
                with forwards(model, replay=tape if at else None, upto=at) as counter:
                    lat = generate(model, s, batch, h)

                def got_at(p, st, h=h, at=at):
                    return (clean if st < at else h).get(p, st)
                dis = {p: torch.stack([1 - linear_cka(_tokens(clean.get(p, st)), _tokens(got_at(p, st)))
                                       for st in range(s.steps)], 1) for p in points}  # (B, S)
                ok = score_outputs(model, batch, lat, scorers)
                cost = nfe_row(counter, n, shared)
                shared = 0
                got[c] = [{**ok[b], **{p: dis[p][b].tolist() for p in points}, **cost} for b in range(n)]
            return got
        return run_batch

    def summary(self, r: ProbeRun, by: dict) -> dict:
        blocks, inject, steps = r.options["blocks"], r.options["inject"], r.settings.steps
        points = ["x0", *blocks]
        heat = {p: np.full((len(inject), steps), np.nan) for p in points}
        for i, k in enumerate(inject):
            for p in points:
                heat[p][i] = np.mean([x[p] for x in by[f"inject {k}"]], 0)
        # downstream effect of an injection at k: x0_hat dissimilarity at the last step
        final = heat["x0"][:, -1]
        table = [{"inject_step": k, "final_x0_dissimilarity": float(final[i]),
                  "mean_downstream_x0": float(np.nanmean(heat["x0"][i, k + 1:])) if k + 1 < steps else None,
                  "solve_rate": summarize(by[f"inject {k}"])["solve_rate"],
                  **{f"final_{b}": float(heat[b][i, -1]) for b in blocks}} for i, k in enumerate(inject)]
        headline = {"peak_inject_step": int(inject[int(np.nanargmax(final))]),
                    "peak_final_x0_dissimilarity": float(np.nanmax(final)), "steps": steps}
        return {"headline": headline, "table": table, "heat": {p: v.tolist() for p, v in heat.items()}}

    def finish(self, r: ProbeRun, res: dict, by: dict) -> None:
        plot(r.out, {p: np.array(v) for p, v in res["heat"].items()}, r.options["inject"], r.settings.steps)

    def headline_text(self, h: dict, table: list) -> str:
        return f"peak at step {h['peak_inject_step']} ({h['peak_final_x0_dissimilarity']:.3f})"

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        rep.section("Propagation of a perturbation along the steps",
                    f"An injection at step {h['peak_inject_step']} of {h['steps']} moves the final x0_hat the most "
                    f"(1 - CKA = {h['peak_final_x0_dissimilarity']:.3f}). {cost_text(res.get('cost'))}")
        rep.image(f"{rel}/propagation.png", "CKA dissimilarity, injection step x measured step")
        rep.table(res["table"])


PROBE = Propagation()
run, report_section = PROBE.run, PROBE.report_section


def plot(out: Path, heat: dict, inject, steps) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(heat), figsize=(3.2 * len(heat), 3), squeeze=False)
    for ax, (p, h) in zip(axes[0], heat.items()):
        im = ax.imshow(h, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=max(1e-6, float(np.nanmax(h))),
                       extent=(-0.5, steps - 0.5, -0.5, len(inject) - 0.5))
        ax.set_yticks(range(len(inject)), [str(k) for k in inject], fontsize=6)
        ax.set_title(p, fontsize=8)
        ax.set_xlabel("measured at step s")
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[0][0].set_ylabel("noise injected at step k")
    fig.suptitle("1 - linear CKA between perturbed and clean runs", fontsize=8)
    save(fig, Path(out) / "propagation.png")

