"""Probe `energy`: per-token activation energy of every block, as maps and as a task/background ratio.

Energy = L2 norm of a token's hidden state over channels (the study's "activation energy"). Per block
and latent frame, maps at chosen steps (the study's layer grid); PCA maps of a few blocks; and per block
the ratio of mean energy on task tokens (cells of the solution path, start and goal) to the other
tokens of the output frames — where perception, reasoning and consolidation show as numbers. Task tokens
are those covering the sample's answer region (steplens.tasks.answer_region: for a maze, the path to the goal
the prompt names, with start and goal; for any task, where the ground truth changes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..experiments.stats import summarize
from ..hooks import Hooks
from ..io.files import atomic_write_json
from ..reports.page import Report
from ..reports.plots import save
from ..tasks import answer_region
from .base import ProbeBase, ProbeSettings, cost_text, generate, score_outputs
from .contract import STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart


def default_steps(n: int) -> list[int]:
    return sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1})


def task_mask(sample) -> torch.Tensor:
    """(H, W) bool: the pixels the sample's answer changes (its task's answer region)."""
    return torch.from_numpy(np.asarray(answer_region(sample), bool))


def grid_mask(model, mask_px: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(h, w) bool: the tokens of the call's grid that cover any of the native pixel mask. The model's own
    `token_mask` where it lands on the grid; else (a call size that is no integer upscale of the native frame:
    --height/--width, a first frame off the pipeline's multiple) the mask stretched onto the grid as the first frame
    was (adaptive max pooling), never a shape that does not fit."""
    m = model.token_mask(mask_px)
    if tuple(m.shape) == tuple(grid):
        return m
    return torch.nn.functional.adaptive_max_pool2d(mask_px.float()[None, None], tuple(grid))[0, 0] > 0


class Energy(ProbeBase):
    name = "energy"
    description = "per-token activation energy of every block: maps, PCA, and the task/background ratio per block"
    claims = (Claim("energy-middle-blocks", "middle blocks carry the decisive semantics",
                    lambda h, t: all(0.25 * len(t) <= _index(b, t) < 0.75 * len(t) for _, b, _ in _bests(h)),
                    "a block of the middle half" + " (each expert's own on two-expert models)",
                    lambda h, t: "; ".join(f"{ex + ': ' if ex else ''}highest task/background energy in {b} of "
                                           f"{len(t)} ({r:.3f})" for ex, b, r in _bests(h)),
                    lambda h, t: "; ".join(f"{ex + ': ' if ex else ''}best task/background ratio {r:.3f} is not "
                                           f"above 1: no block carries more energy on the task's tokens"
                                           for ex, b, r in _bests(h) if not r > 1) or None,
                    "a task/background energy ratio above 1 (each expert's own on two-expert models)", "ours",
                    f"{STUDY} (its summaries: middle blocks carry reasoning and the prompt-named foreground; its "
                    f"token tool records block outputs' token norms, layers 0 10 20 30 39); ours: the ratio of mean "
                    f"energy on the answer's tokens to the rest, the best block in the middle half"),)
    study = StudyPart(count="probe_count", order=40)

    def options(self, model, s: ProbeSettings, steps: list[int] | None = None,
                pca_blocks: list[str] | None = None) -> dict:
        if model is None and s.steps is None:  # before the model loads, its own steps unknown: checked once loaded
            return {"steps": steps, "pca_blocks": pca_blocks}
        steps = steps or default_steps(s.steps)
        bad = [k for k in steps if not 0 <= k < s.steps]
        if bad:
            raise ValueError(f"step index {bad[0]} out of range: steps are 0..{s.steps - 1}")
        if model is not None:
            blocks = list(model.block_names)
            pca_blocks = pca_blocks or [blocks[0], blocks[len(blocks) // 2], blocks[-1]]
        return {"steps": steps, "pca_blocks": pca_blocks}

    def prepare(self, r: ProbeRun) -> None:
        # fails early, naming a sample without a known answer region
        r.state["masks_px"] = {x.name: task_mask(x) for x in r.samples}

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        return {"energy": Branch(0)}

    def conditions(self, r: ProbeRun) -> dict:
        return {"energy": None}

    def batch(self, r: ProbeRun):
        model, s, steps, masks_px = r.model, r.settings, r.options["steps"], r.state["masks_px"]
        blocks = list(model.block_names)
        scorers = s.scorers()
        branches = _branches(s)

        def run_batch(conds, batch):
            # both CFG branches when CFG is on; the maps and the main table are the cond branch (the study's first
            # pass)
            hooks = Hooks(model, s.steps).record(blocks, steps=steps, reduce="energy",
                                                 branch=None if len(branches) > 1 else "cond")
            lat = generate(model, s, batch, hooks)
            grid = model.token_grid(lat.shape)
            masks = torch.stack([grid_mask(model, masks_px[x.name], grid[1:]) for x in batch])  # (B, h, w)
            ran = experts_by_step(hooks, blocks[0], steps)
            rows = [{**x, "ratios": {}, "maps": {}, "by": {}, "experts": [ran[k] for k in steps]}
                    for x in score_outputs(model, batch, lat, scorers)]
            for b in blocks:
                for k in steps:
                    for br in branches:
                        e = hooks.get(b, k, br).reshape(len(batch), *grid)
                        out_frames = e[:, 1:] if grid[0] > 1 else e
                        for n, row in enumerate(rows):
                            m = masks[n][None].expand_as(out_frames[n])
                            ratio = (out_frames[n][m].mean() / out_frames[n][~m].mean()).item()
                            row["by"].setdefault(f"{br}|{ran[k] or '-'}|{b}", []).append(ratio)
                            if br == "cond":
                                row["ratios"].setdefault(b, []).append(ratio)
                                row["maps"][f"{b}@{k}"] = e[n].tolist()
            return {"energy": rows}
        return run_batch

    def summary(self, r: ProbeRun, by: dict) -> dict:
        rows, steps, blocks = by["energy"], r.options["steps"], list(r.model.block_names)
        ran = rows[0].get("experts") or [None] * len(steps)
        groups = sorted({g.rsplit("|", 1)[0] for x in rows for g in x.get("by", {})})
        table = []
        for b in blocks:
            row = {"block": b, "task_background_ratio": float(np.mean([np.mean(x["ratios"][b]) for x in rows]))}
            for g in groups if len(groups) > 1 else []:  # per CFG branch and expert, where there is more than one
                vals = [np.mean(x["by"][f"{g}|{b}"]) for x in rows if f"{g}|{b}" in x.get("by", {})]
                br, ex = g.split("|")
                row[f"ratio {br}" + ("" if ex == "-" else f" {ex}")] = float(np.mean(vals))
            table.append(row)
        best = max(table, key=lambda x: x["task_background_ratio"])
        headline = {"solve_rate": summarize(rows)["solve_rate"], "mean_score": summarize(rows)["mean_score"],
                    "best_block": best["block"], "best_ratio": best["task_background_ratio"], "steps": steps,
                    "ratios": {x["block"]: round(x["task_background_ratio"], 3) for x in table},
                    "maps_averaged_over": len(_same_shape(rows, blocks[0], steps[0])), "branch": "cond",
                    "branches": _branches(r.settings), "experts": {str(k): e for k, e in zip(steps, ran)}}
        for key in [k for k in table[0] if k.startswith("ratio ")]:
            top = max(table, key=lambda x: x[key])
            headline.setdefault("best_block_by", {})[key[len("ratio "):]] = top["block"]
        experts = sorted({g.split("|")[1] for g in groups if g.startswith("cond|") and g.split("|")[1] != "-"})
        if len(experts) > 1:  # two networks: a headline each, never a step-weighted mean of both
            headline["by_expert"] = {}
            for ex in experts:
                top = max(table, key=lambda x: x[f"ratio cond {ex}"])
                headline["by_expert"][ex] = {"best_block": top["block"], "best_ratio": top[f"ratio cond {ex}"],
                                             "ratios": {x["block"]: round(x[f"ratio cond {ex}"], 3) for x in table}}
            headline.update(best_block=None, best_ratio=None)
        return {"headline": headline, "table": table}

    def finish(self, r: ProbeRun, res: dict, by: dict) -> None:
        """The mean maps, PCA maps of the first sample's full hidden states (one more run of one sample), plots."""
        model, s, out, steps, pca_blocks = r.model, r.settings, r.out, r.options["steps"], r.options["pca_blocks"]
        rows, blocks = by["energy"], list(model.block_names)
        same = _same_shape(rows, blocks[0], steps[0])
        mean_energy = {(b, k): torch.tensor([x["maps"][f"{b}@{k}"] for x in same]).mean(0) for b in blocks
                       for k in steps}
        ran = rows[0].get("experts") or [None] * len(steps)
        per_step = {b: [float(np.mean([x["ratios"][b][j] for x in rows])) for j in range(len(steps))] for b in blocks}
        pca = Hooks(model, s.steps).record(pca_blocks, steps=[steps[0]], branch="cond")
        lat = generate(model, s, r.samples[:1], pca)
        grid = model.token_grid(lat.shape)
        pca_state = {b: pca.get(b, steps[0])[0].reshape(*grid, -1) for b in pca_blocks}
        atomic_write_json(out / "energy_maps.json", {f"{b}@{k}": v.tolist() for (b, k), v in mean_energy.items()})
        plot_grid(out, mean_energy, blocks, steps, dict(zip(steps, ran)))
        plot_pca(out, pca_state)
        plot_ratio(out, res["table"])
        plot_steps(out, per_step, blocks, steps, ran)

    def headline_text(self, h: dict, table: list) -> str:
        return "; ".join(f"{ex + ': ' if ex else ''}best block {b} ({r:.3f})" for ex, b, r in _bests(h))

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        rep.section("Block energy: perception, reasoning, consolidation",
                    "Highest task/background energy ratio" + (" (each expert on its own)" if h.get("by_expert")
                                                              else "") + ": " + self.headline_text(h, res["table"])
                    + ". " + cost_text(res.get("cost")))
        rep.image(f"{rel}/energy_ratio.png", "task / background token energy per block")
        if (Path(out) / "energy_steps.png").exists():
            experts = {e for e in h.get("experts", {}).values() if e}
            rep.text("The same ratio per recorded step (cond branch)" + (
                f"; the dashed line marks the switch between the experts ({', '.join(sorted(experts))}), two "
                f"different networks whose blocks are reported apart in the table" if len(experts) > 1 else "") + ".")
            rep.image(f"{rel}/energy_steps.png", "energy ratio per block and step")
        from ..reports.viewer import CSS, JS, image_stepper

        rep.text("Token energy per block (rows) and latent frame (columns), mean over samples: move the slider (or "
                 "the arrow keys) over the recorded steps.")
        rep.raw(image_stepper([f"{rel}/energy_step{k}.png" for k in h["steps"]],
                              [f"step {k}: blocks × frames" for k in h["steps"]], "energy grid per step"),
                css=CSS, js=JS)
        rep.image(f"{rel}/pca.png", "PCA maps", width=300)
        rep.table(res["table"])


def _branches(s: ProbeSettings) -> list[str]:
    return ["cond", "uncond"] if s.guidance > 1 else ["cond"]


def _same_shape(rows: list[dict], block: str, step: int) -> list[dict]:
    """The rows whose maps have the first row's shape (samples of one size: the maps averaged)."""
    key = f"{block}@{step}"
    return [x for x in rows if np.shape(x["maps"][key]) == np.shape(rows[0]["maps"][key])]


def _bests(h: dict) -> list[tuple[str, str, float]]:
    """(expert, best block, its ratio): one per expert on a two-expert model (never pooled), else one with no name."""
    if h.get("by_expert"):
        return [(ex, v["best_block"], v["best_ratio"]) for ex, v in h["by_expert"].items()]
    return [("", h["best_block"], h["best_ratio"])]


def _index(block: str, table: list) -> int:
    return [r["block"] for r in table].index(block)


def experts_by_step(hooks, block: str, steps: list[int]) -> dict[int, str | None]:
    """Which expert ran at each recorded step (None on a one-expert model), from the records' keys."""
    seen = {k: e for (p, k, br, e) in hooks.records if p == block and br == "cond"}
    return {k: seen.get(k) for k in steps}


def plot_steps(out: Path, per_step: dict, blocks, steps, experts) -> None:
    """Task/background ratio (cond branch) per block (rows) and recorded step (columns); a dashed line and the
    experts' names mark where a two-expert model switches."""
    import matplotlib.pyplot as plt

    m = np.array([per_step[b] for b in blocks])
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(steps), 0.8 + 0.22 * len(blocks)))
    im = ax.imshow(m, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(steps)), [str(k) for k in steps])
    ax.set_yticks(range(len(blocks)), [b.split(".")[-1] for b in blocks], fontsize=6)
    ax.set_xlabel("step")
    ax.set_ylabel("block")
    for j in range(1, len(steps)):
        if experts[j] != experts[j - 1]:
            ax.axvline(j - 0.5, color="w", ls="--", lw=1.5)
            ax.text(j - 0.45, -0.7, f"→ {experts[j]}", fontsize=7, va="bottom")
    if experts and experts[0] is not None:
        ax.text(-0.45, -0.7, experts[0], fontsize=7, va="bottom")
    fig.colorbar(im, ax=ax, label="task / background energy")
    ax.set_title("energy ratio per block and step (cond branch)", fontsize=8, pad=14)
    save(fig, Path(out) / "energy_steps.png")


def plot_grid(out: Path, mean_energy, blocks, steps, experts: dict | None = None) -> None:
    import matplotlib.pyplot as plt

    for k in steps:
        t = mean_energy[(blocks[0], k)].shape[0]
        fig, axes = plt.subplots(len(blocks), t, figsize=(1.1 * t + 0.6, 1.1 * len(blocks)), squeeze=False)
        for i, b in enumerate(blocks):
            e = mean_energy[(b, k)]
            for f in range(t):
                ax = axes[i][f]
                ax.imshow(e[f].numpy(), cmap="magma", vmin=float(e.min()), vmax=float(e.max()))
                ax.set_xticks([]), ax.set_yticks([])
                if f == 0:
                    ax.set_ylabel(b, fontsize=7)
                if i == 0:
                    ax.set_title(f"frame {f}", fontsize=7)
        who = f", {experts[k]}" if experts and experts.get(k) else ""
        fig.suptitle(f"token energy, step {k}{who} (cond branch; mean over samples; colour scale per block)",
                     fontsize=8)
        save(fig, Path(out) / f"energy_step{k}.png")


def pca_rgb(h: torch.Tensor) -> np.ndarray:
    """(T, h, w, D) -> (T, h, w, 3) in 0..1: the first 3 principal components of the tokens, exact and deterministic
    (the eigenvectors of the smaller of the token Gram and the feature covariance matrix, in float64; each
    component's sign fixed so that its largest projection is positive): the same hidden states give the same picture
    in every run and on every process (a randomized PCA did not)."""
    x = h.reshape(-1, h.shape[-1]).double()
    x = x - x.mean(0)
    q = min(3, *x.shape)
    if x.shape[0] <= x.shape[1]:  # fewer tokens than features: the Gram matrix's eigenvectors are the projections
        w, u = torch.linalg.eigh(x @ x.T)
        p = u[:, -q:].flip(1) * w[-q:].flip(0).clamp(min=0).sqrt()
    else:
        _, v = torch.linalg.eigh(x.T @ x)
        p = x @ v[:, -q:].flip(1)
    p = p * torch.where(p.gather(0, p.abs().argmax(0, keepdim=True)) < 0, -1.0, 1.0)
    if q < 3:
        p = torch.cat([p, p.new_zeros(p.shape[0], 3 - q)], 1)
    p = (p - p.min(0).values) / (p.max(0).values - p.min(0).values + 1e-8)
    return p.reshape(*h.shape[:3], 3).float().numpy()


def plot_pca(out: Path, state: dict) -> None:
    import matplotlib.pyplot as plt

    if not state:
        return
    names = list(state)
    t = next(iter(state.values())).shape[0]
    fig, axes = plt.subplots(len(names), t, figsize=(1.1 * t + 0.6, 1.1 * len(names)), squeeze=False)
    for i, b in enumerate(names):
        rgb = pca_rgb(state[b])
        for f in range(t):
            axes[i][f].imshow(rgb[f])
            axes[i][f].set_xticks([]), axes[i][f].set_yticks([])
            if f == 0:
                axes[i][f].set_ylabel(b, fontsize=7)
    fig.suptitle("PCA of hidden states (first sample, first recorded step)", fontsize=8)
    save(fig, Path(out) / "pca.png")


def plot_ratio(out: Path, table) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(table)), [r["task_background_ratio"] for r in table])
    ax.axhline(1.0, color="k", lw=1, ls="--")
    ax.set_xticks(range(len(table)), [r["block"].split(".")[-1] for r in table])
    ax.set_xlabel("block")
    ax.set_ylabel("task / background energy")
    save(fig, Path(out) / "energy_ratio.png")


PROBE = Energy()
run, report_section = PROBE.run, PROBE.report_section
