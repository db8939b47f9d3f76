"""Solve rate of a model on held-out mazes, at the default size and the sizes around it, and the
per-step mean candidate mass of x0_hat's last frame (the chain of steps as numbers).

    .venv/bin/python benchmarks/solve_rate.py [--model tiny-maze] [--count 500] [--out runs/bench]

Held out by content: the test part's inputs (steplens.tasks.splits; training draws the train part). Prints a
table and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from steplens.presets import resolve
from steplens.experiments.evaluate import wilson
from steplens.io.files import atomic_write_json
from steplens.models.load import load_model
from steplens.reports.plots import plot_mean_curves
from steplens.tasks import get_task
from steplens.tasks.splits import draw_many
from steplens.trace import trace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-maze")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--sizes", default="4,5,6")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--shift", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--out", default="runs/bench")
    a = ap.parse_args()
    model, task = load_model(a.model), get_task("maze")
    frames = a.frames or task.default_frames
    results = {"model": a.model, "count": a.count, "steps": a.steps, "shift": a.shift, "frames": frames, "sizes": {}}
    for n in [int(s) for s in a.sizes.split(",")]:
        t0, ok, shortest, per_step = time.time(), 0, 0, []
        for lo in tqdm(range(0, a.count, a.batch), desc=f"{n}x{n}"):
            seeds = list(range(lo, min(lo + a.batch, a.count)))
            samples = draw_many(task, seeds, "test", size=n, frames=frames)
            for tr in trace(model, samples, seeds, sampling=resolve(model, steps=a.steps, shift=a.shift)):
                ok += tr.final_score["success"]
                shortest += tr.final_score["shortest"]
                per_step.append([m["candidate_mass"] for m in tr.metrics])
        mass = np.array(per_step, float)
        lo_ci, hi_ci = wilson(ok, a.count)
        results["sizes"][n] = {"solve_rate": ok / a.count, "ci95": [lo_ci, hi_ci], "shortest_rate": shortest / a.count,
                               "mean_candidate_mass_per_step": mass.mean(0).tolist(),
                               "seconds": round(time.time() - t0, 1)}
        r = results["sizes"][n]
        print(f"{n}x{n}: solve rate {r['solve_rate']:.3f} (95% CI {lo_ci:.3f}-{hi_ci:.3f}); candidate mass "
              f"step 0 {mass[:, 0].mean():.2f} -> final {mass[:, -1].mean():.2f}; {r['seconds']} s", flush=True)
    out = Path(a.out)
    atomic_write_json(out / "results.json", results)
    plot_mean_curves({f"{n}x{n}": np.array(r["mean_candidate_mass_per_step"]) for n, r in results["sizes"].items()},
                     out / "candidate_mass.png", "denoising step", "mean candidate mass (pixels)",
                     f"{a.model}, {a.count} held-out mazes per size")
    print(json.dumps({n: round(r["solve_rate"], 3) for n, r in results["sizes"].items()}))


if __name__ == "__main__":
    main()
