"""The demo: held-out samples solved, scored and traced, in one self-contained HTML report with a step viewer.

Samples are chosen to show the phenomenon, never trivial ones: half at the task's default difficulty and half
one notch harder (`size + 1`: on tiny-maze, 6x6 mazes are where x0_hat explores and more steps pay), each the
first held-out sample whose answer changes at least as many pixels as the median of the first 64 at that size.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .io import atomic_write_json
from .plots import plot_mean_curves
from .report import Report
from .tasks import answer_region, generator_task
from .trace import trace, write_trace
from .viewer import CSS, JS, trace_viewer

POOL = 64


def pick(task, size: int, count: int, seed: int) -> list:
    """The first `count` held-out samples of this size whose answer region is at least the pool's median."""
    pool = [task.sample(seed + i, size, None, idx=seed + i) for i in range(POOL)]
    area = np.array([answer_region(s).sum() for s in pool])
    keep = [s for s, a in zip(pool, area) if a >= np.median(area)]
    for s in keep[:count]:
        s.meta = {**s.meta, "size": size}  # the difficulty it was generated at
    return keep[:count]


def next_size(task, size: int) -> int:
    """The next difficulty up that the task takes (some knobs skip values, e.g. even sizes only), else `size`."""
    for k in range(size + 1, task.sizes[1] + 1):
        try:
            task.sample(0, k)
            return k
        except ValueError:
            continue
    return size


def run_demo(model, out: Path, count: int = 6, size: int | None = None, seed: int = 0, steps: int = 20,
             shift: float = 3.0, frames: int | None = None, task_name: str = "maze") -> Path:
    t0 = time.time()
    out = Path(out)
    task = generator_task(task_name)
    size = size or task.default_size
    edge = next_size(task, size)
    samples = pick(task, size, (count + 1) // 2, seed) + (pick(task, edge, count // 2, seed) if count > 1 else [])
    traces = []
    for shape in dict.fromkeys(s.first_frame.shape for s in samples):  # one batch per frame size
        group = [s for s in samples if s.first_frame.shape == shape]
        traces += trace(model, group, [s.seed for s in group], steps=steps, shift=shift, frames=frames)
    rows, views = [], []
    for tr in traces:
        s = tr.sample
        rel = f"traces/{s.task}-{s.meta['size']}-{s.idx:05d}"
        written = write_trace(tr, out / rel)
        m = tr.metrics
        rows.append({"sample": s.name, "seed": s.seed, "size": s.meta["size"],
                     "answer pixels": int(answer_region(s).sum()), "solved": tr.final_score["success"],
                     "score": tr.final_score["score"], "commitment step": tr.summary["commitment_step"],
                     "changed px step 0": m[0]["candidate_mass"], "off-target px step 0": m[0]["off_target"],
                     "changed px final": m[-1]["candidate_mass"], "trace": rel})
        views.append((tr, rel, written["viewer"]))
    curves = {k: np.array([[x[k] for x in tr.metrics] for tr in traces], float).mean(0)
              for k in ("candidate_mass", "off_target", "score")}
    plot_mean_curves({"changed pixels (candidate mass)": curves["candidate_mass"],
                      "off-target pixels": curves["off_target"]},
                     out / "mean_candidates.png", "denoising step", "pixels of x0_hat's last frame changed",
                     f"mean over {len(traces)} samples")
    plot_mean_curves({"score of x0_hat": curves["score"]}, out / "mean_score.png", "denoising step",
                     "task score", f"mean over {len(traces)} samples", ylim=(0, 1.02))
    solved = sum(r["solved"] for r in rows)
    summary = {"format": 1, "kind": "demo", "model": model.name, "task": task_name, "sizes": [size, edge],
               "count": len(rows), "steps": steps, "shift": shift, "solved": solved, "solve_rate": solved / len(rows),
               "mean_curves": {k: v.tolist() for k, v in curves.items()}, "rows": rows,
               "seconds": round(time.time() - t0, 2)}
    atomic_write_json(out / "summary.json", summary)

    rep = Report(f"steplens demo: {model.name} on {task_name}")
    rep.text(f"Solved {solved} of {len(rows)} held-out samples with {steps} Euler steps, shift {shift}. Each viewer "
             f"shows x0_hat = x_s − σ·v, the model's guess of the finished video, at one denoising step: drag the "
             f"slider (or focus a viewer and use the arrow keys) to watch candidate answers appear and get pruned; "
             f"'highlight' marks what changed since the previous step (magenta) and what still differs from the "
             f"final answer (cyan). The curves mark the current step.")
    rep.text(f"Why these samples: half at the default difficulty (size {size}) and half one notch harder (size "
             f"{edge}, where the model needs its steps), each the first held-out sample (seeds from {seed}) whose "
             f"answer changes at least the median number of pixels of the first {POOL} at its size, so none is "
             f"trivial. The full table is below and in summary.json.")
    rep.link("summary.json", "summary.json: every number of this report")
    rep.section("Summary").table(rows, [c for c in rows[0] if c != "trace"])
    rep.section("Chain of steps, averaged", "Changed pixels: pixels of x0_hat's last frame that differ from the first "
                "frame; off-target: those outside the answer region. Several candidates early, one late.")
    rep.image("mean_candidates.png", "mean changed pixels per step").image("mean_score.png", "mean score per step")
    for tr, rel, geometry in views:
        s = tr.sample
        rep.section(f"{s.name} (size {s.meta['size']}): {'solved' if tr.final_score['success'] else 'not solved'}, "
                    f"commitment step {tr.summary['commitment_step']}")
        rep.raw(trace_viewer(rel, geometry, tr.sigmas, tr.metrics, tr.experts, s.name), css=CSS, js=JS)
        rep.image(f"{rel}/grid.png", "x0_hat at steps 0, 1, 2, 5, 10 and the last (rows, with σ) × frames", width=300)
        rep.image(f"{rel}/output.gif", "generated video", width=160)
    rep.write(out / "report.html")
    return out / "report.html"
