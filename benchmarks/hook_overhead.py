"""Cost of tracing: recording x0_hat at every step plus the per-token energy of 4 blocks, over untraced
sampling, on the embedded model. Interleaved repetitions in one run; prints the median ratio (target <= 1.03).

    .venv/bin/python benchmarks/hook_overhead.py [--model tiny-maze] [--reps 15] [--batch 16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from steplens.presets import resolve
from steplens.hooks import Hooks
from steplens.models.load import load_model
from steplens.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-maze")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    model = load_model(a.model)
    samples = [get_task("maze").sample(i, 5, 4) for i in range(a.batch)]
    seeds = list(range(a.batch))
    blocks = model.block_names[:: max(1, len(model.block_names) // 4)][:4]

    def plain():
        model.generate(samples, seeds, sampling=resolve(model, steps=a.steps))

    def traced():
        h = Hooks(model, a.steps).record("x0").record(blocks, reduce="energy")
        with h:
            model.generate(samples, seeds, sampling=resolve(model, steps=a.steps), hooks=h)

    plain(), traced()  # warm up
    ratios, tp, tt = [], [], []
    for _ in range(a.reps):
        t0 = time.perf_counter(); plain(); t1 = time.perf_counter(); traced(); t2 = time.perf_counter()
        tp.append(t1 - t0), tt.append(t2 - t1), ratios.append((t2 - t1) / (t1 - t0))
    print(f"torch threads {torch.get_num_threads()}, batch {a.batch}, {a.steps} steps, blocks {blocks}")
    print(f"untraced {statistics.median(tp):.3f} s, traced {statistics.median(tt):.3f} s per batch (medians)")
    print(f"traced / untraced: median {statistics.median(ratios):.4f} (min {min(ratios):.4f}, max {max(ratios):.4f})"
          f"  target <= 1.03")


if __name__ == "__main__":
    main()
