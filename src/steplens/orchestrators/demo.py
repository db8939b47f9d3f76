"""The demo: held-out samples solved, scored and traced, in one self-contained HTML report with a step viewer.

One family (`--task maze`): half the samples at the task's default difficulty and half one notch harder (`size + 1`:
on tiny-maze, 6x6 mazes are where x0_hat explores and more steps pay). Several families (the default on a model
trained on several, e.g. tiny-reasoner): `count` samples of each (default 1) at its default difficulty. Samples are
chosen to show the phenomenon, never trivial ones: each the first held-out sample whose answer changes at least as
many pixels as the median of the first 64 at that size.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import cos
from ..io.files import atomic_write_json
from ..reports.page import Report
from ..reports.plots import plot_mean_curves
from ..reports.traces import write_trace
from ..reports.viewer import CSS, JS, trace_viewer
from ..tasks import DEFAULT_TASK, answer_region, draw_many, generator_task, next_size, parse_tasks
from ..trace import trace

POOL = 64


def pick(task, size: int, count: int, seed: int) -> list:
    """The first `count` held-out samples of this size whose answer region is at least the pool's median."""
    pool = draw_many(task, range(seed, seed + POOL), "test", size)
    area = np.array([answer_region(s).sum() for s in pool])
    keep = [s for s, a in zip(pool, area) if a >= np.median(area)]
    for s in keep[:count]:
        s.meta = {**s.meta, "size": size}  # the difficulty it was generated at
    return keep[:count]


def demo_tasks(model, task: str | None) -> list[str]:
    """The families to show: `task` (a name, a comma-separated list, or `all`); by default the tasks the embedded
    model was trained on (its weights say), else the default task."""
    if task is not None:
        return parse_tasks(task, "--task")
    return list(dict.fromkeys(generator_task(n).name for n in model.trained_tasks or [DEFAULT_TASK]))


def _rel(s) -> str:
    """A sample's trace folder in the demo's output."""
    return f"traces/{s.task}-{s.meta['size']}-{s.idx:05d}"


def run_demo(model, out: Path, count: int | None = None, size: int | None = None, seed: int = 0,
             sampling=None, frames: int | None = None, task_name: str | None = None, search: bool = True) -> Path:
    """The demo of `model` into `out` (report.html, summary.json, traces/), sampled with `sampling`
    (steplens.presets.Sampling; None: the model's own). `search`: add the panel of one hard sample, one seed beside
    early-beam search (steplens.orchestrators.demo_search), when one seed leaves a traced sample unsolved."""
    from ..presets import sampled

    t0 = time.time()
    sampling = sampled(model, sampling)
    steps, shift = sampling.steps, sampling.shift
    out = Path(out)
    names = demo_tasks(model, task_name)
    if len(names) == 1:
        task = generator_task(names[0])
        count = count or 6
        size = size or task.default_size
        edge = next_size(task, size) or size
        sizes = [size, edge]
        samples = pick(task, size, (count + 1) // 2, seed) + (pick(task, edge, count // 2, seed) if count > 1 else [])
        why = (f"half at the default difficulty (size {size}) and half one notch harder (size {edge}, where the model "
               f"needs its steps)")
    else:
        if size is not None:
            raise ValueError(f"--size {size} applies to one task; with several ({', '.join(names)}) each is shown at "
                             f"its own default difficulty: drop --size or pick one --task")
        count = count or 1
        sizes = {n: generator_task(n).default_size for n in names}
        samples = [x for n in names for x in pick(generator_task(n), sizes[n], count, seed)]
        why = f"{count} of each family at its default difficulty"
    traces = []
    for key in dict.fromkeys((s.task, s.first_frame.shape) for s in samples):  # one batch per family and size
        group = [s for s in samples if (s.task, s.first_frame.shape) == key]
        traces += trace(model, group, [s.seed for s in group], sampling, frames=frames, x0_files=[out / _rel(s) / "x0.safetensors" for s in group])
    rows, views = [], []
    for tr in traces:
        s = tr.sample
        rel = _rel(s)
        written = write_trace(tr, out / rel)
        m, b = tr.metrics, cos.behaviours(tr.metrics)
        rows.append({"task": s.task, "sample": s.name, "seed": s.seed, "size": s.meta["size"],
                     "answer pixels": int(answer_region(s).sum()), "solved": tr.final_score["success"],
                     "score": tr.final_score["score"], "commitment step": tr.summary["commitment_step"],
                     "scene right step": b["static_right_step"], "answer right step": b["answer_right_step"],
                     "answers held step 0": b.get("early_candidates"), "one answer wins step": b.get("winner_step"),
                     "changed px step 0": m[0]["candidate_mass"], "off-target px step 0": m[0]["off_target"],
                     "changed px final": m[-1]["candidate_mass"], "trace": rel})
        views.append((tr, rel, written["viewer"]))
    families = list(dict.fromkeys(tr.sample.task for tr in traces))
    curves = {f: {k: np.array([[x[k] for x in tr.metrics] for tr in traces if tr.sample.task == f], float).mean(0)
                  for k in ("candidate_mass", "off_target", "score")} for f in families}
    if len(families) == 1:
        c = curves[families[0]]
        plot_mean_curves({"changed pixels (candidate mass)": c["candidate_mass"], "off-target pixels": c["off_target"]},
                         out / "mean_candidates.png", "denoising step", "pixels of x0_hat's last frame changed",
                         f"mean over {len(traces)} samples")
        plot_mean_curves({"score of x0_hat": c["score"]}, out / "mean_score.png", "denoising step", "task score",
                         f"mean over {len(traces)} samples", ylim=(0, 1.02))
    else:  # one curve per family; changed pixels as a fraction of the family's final count (families differ in size)
        plot_mean_curves({f: c["candidate_mass"] / max(c["candidate_mass"][-1], 1) for f, c in curves.items()},
                         out / "mean_candidates.png", "denoising step", "changed pixels / final changed pixels",
                         "x0_hat's last frame, per family")
        plot_mean_curves({f: c["score"] for f, c in curves.items()}, out / "mean_score.png", "denoising step",
                         "task score of x0_hat", "per family", ylim=(0, 1.02))
    solved = sum(r["solved"] for r in rows)
    panel = None
    if search:
        from .demo_search import search_panel

        panel = search_panel(model, out, traces, {tr.sample.name: html for tr, _, html in viewers(views)}, sampling,
                             frames)
    summary = {"format": 1, "kind": "demo", "model": model.name, "task": names[0] if len(names) == 1 else names,
               "sizes": sizes, "count": len(rows), "steps": steps, "shift": shift,
               "scored_by": {tr.sample.task: tr.final_score.get("scorer") for tr in traces}, "solved": solved,
               "solve_rate": solved / len(rows),
               "mean_curves": {f: {k: v.tolist() for k, v in c.items()} for f, c in curves.items()}
               if len(families) > 1 else {k: v.tolist() for k, v in curves[families[0]].items()},
               "rows": rows, **({"search_panel": {k: v for k, v in panel.items() if k != "html"}} if panel else {}),
               "seconds": round(time.time() - t0, 2)}
    atomic_write_json(out / "summary.json", summary)

    what = names[0] if len(names) == 1 else f"{len(names)} task families"
    rep = Report(f"steplens demo: {model.name} on {what}")
    rep.text(f"Solved {solved} of {len(rows)} held-out samples with {steps} Euler steps, shift {shift}. Each viewer "
             f"shows x0_hat = x_s − σ·v, the model's guess of the finished video, at one denoising step: drag the "
             f"slider (or focus a viewer and use the arrow keys) to watch candidate answers appear and get pruned; "
             f"'highlight' marks what changed since the previous step (magenta) and what still differs from the "
             f"final answer (cyan). The curves mark the current step; where a task lists its possible answers "
             f"(several winning moves, several shortest paths, the other goal, the object in another colour) they "
             f"also show how strongly x0_hat draws each, and the line above them says which it holds.")
    rep.text(f"Why these samples: {why}, each the first held-out sample (seeds from {seed}) whose answer changes at "
             f"least the median number of pixels of the first {POOL} at its size, so none is trivial. The full table "
             f"is below and in summary.json.")
    rep.link("summary.json", "summary.json: every number of this report")
    rep.section("Summary").table(rows, [c for c in rows[0] if c != "trace"])
    rep.section("Chain of steps, averaged", "Changed pixels: pixels of x0_hat's last frame that differ from the first "
                "frame; off-target: those outside the answer region. Several candidates early, one late.")
    rep.image("mean_candidates.png", "mean changed pixels per step").image("mean_score.png", "mean score per step")
    for tr, rel, html in viewers(views):
        s = tr.sample
        rep.section(f"{s.name} (size {s.meta['size']}): {'solved' if tr.final_score['success'] else 'not solved'}, "
                    f"commitment step {tr.summary['commitment_step']}")
        rep.raw(html, css=CSS, js=JS)
        rep.image(f"{rel}/grid.png", "x0_hat at steps 0, 1, 2, 5, 10 and the last (rows, with σ) × frames", width=300)
        rep.image(f"{rel}/cos.png", "per-step curves: score, changed pixels and the listed answers", width=300)
        rep.image(f"{rel}/output.gif", "generated video", width=160)
    if panel:
        from .demo_search import add_to_report

        add_to_report(rep, panel)
    rep.write(out / "report.html")
    return out / "report.html"


def viewers(views):
    """(trace, rel, geometry) -> (trace, rel, the viewer's HTML), as the report shows it."""
    return [(tr, rel, trace_viewer(rel, g, tr.sigmas, tr.metrics, tr.experts, tr.sample.name, tr.candidates))
            for tr, rel, g in views]
