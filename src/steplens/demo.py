"""The demo: a handful of held-out mazes solved, scored and traced, gathered in one HTML report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .io import atomic_write_json
from .plots import plot_mean_curves
from .report import Report
from .tasks import generator_task
from .trace import trace, write_trace


def run_demo(model, out: Path, count: int = 6, size: int | None = None, seed: int = 0, steps: int = 20,
             shift: float = 3.0, frames: int | None = None, task_name: str = "maze") -> Path:
    t0 = time.time()
    out = Path(out)
    task = generator_task(task_name)
    size = size or task.default_size
    samples = [task.sample(seed + i, size, frames, idx=i) for i in range(count)]
    traces = trace(model, samples, [seed + i for i in range(count)], steps=steps, shift=shift, frames=frames)
    rows = []
    for tr in traces:
        d = out / "traces" / f"{tr.sample.idx:05d}"
        write_trace(tr, d)
        m = tr.metrics
        rows.append({"maze": tr.sample.idx, "seed": tr.sample.meta["seed"], "size": f"{size}x{size}",
                     "path length": tr.sample.meta.get("shortest_path_length"), "solved": tr.final_score["success"],
                     "shortest": tr.final_score["shortest"], "score": tr.final_score["score"],
                     "commitment step": tr.summary["commitment_step"],
                     "candidates step 0": m[0]["candidate_mass"], "candidates final": m[-1]["candidate_mass"]})
    curves = {k: np.array([[m[k] for m in tr.metrics] for tr in traces], float).mean(0)
              for k in ("candidate_mass", "off_target", "score")}
    plot_mean_curves({"candidate mass": curves["candidate_mass"], "off-target pixels": curves["off_target"]},
                     out / "mean_candidates.png", "denoising step", "pixels of x0_hat's last frame changed from frame 0",
                     f"mean over {count} mazes")
    plot_mean_curves({"score of x0_hat": curves["score"]}, out / "mean_score.png", "denoising step",
                     "task score", f"mean over {count} mazes")
    solved = sum(r["solved"] for r in rows)
    summary = {"model": model.name, "task": task_name, "size": size, "count": count, "steps": steps,
               "shift": shift, "solved": solved, "solve_rate": solved / count,
               "mean_curves": {k: v.tolist() for k, v in curves.items()}, "rows": rows,
               "seconds": round(time.time() - t0, 2)}
    atomic_write_json(out / "summary.json", summary)

    rep = Report(f"steplens demo: {model.name} on {count} {size}x{size} mazes")
    rep.text(f"Solved {solved} of {count} held-out mazes (seeds {seed}..{seed + count - 1}) with {steps} Euler "
             f"steps, shift {shift}. Each row of a grid is one denoising step (top: first), each column one "
             f"frame of x0_hat = x_s - sigma * v; the animation is the last frame's x0_hat across steps.")
    rep.section("Summary").table(rows)
    rep.section("Chain of steps, averaged", "Candidate mass: pixels of x0_hat's last frame changed from the first "
                "frame. Off-target: those outside the answer region. Several candidate paths early, one late.")
    rep.image("mean_candidates.png", "mean candidate mass per step").image("mean_score.png", "mean score per step")
    for tr, r in zip(traces, rows):
        d = f"traces/{tr.sample.idx:05d}"
        rep.section(f"Maze {r['maze']} — {'solved' if r['solved'] else 'not solved'}, "
                    f"commitment step {r['commitment step']}")
        rep.image(f"{d}/grid.png", "x0_hat: steps (rows) x frames (columns)", width=260)
        rep.image(f"{d}/final_x0.gif", "last frame of x0_hat across steps", width=180)
        rep.image(f"{d}/output.gif", "generated video", width=180)
        rep.image(f"{d}/cos.png", "score and candidate mass per step", width=380)
    rep.write(out / "report.html")
    return out / "report.html"
