"""The ensemble's cost: wall time of the N-seed ensemble over plain batched N-seed sampling (target <= 1.05),
and the per-sample throughput of one batched N-seed run over N sequential single-seed runs.
Interleaved repetitions in one run; medians.

    .venv/bin/python benchmarks/ensemble_overhead.py [--model tiny-maze] [--n 3] [--reps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from steplens.presets import resolve
from steplens.methods.ensemble import EnsembleConfig, generate_ensemble, member_seeds
from steplens.models.load import load_model
from steplens.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-maze")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    model = load_model(a.model)
    samples = [get_task("maze").sample(i, 5, 4) for i in range(a.samples)]
    seeds = list(range(a.samples))
    rep = [s for s in samples for _ in range(a.n)]

    def plain():
        model.generate(rep, member_seeds(seeds, a.n), sampling=resolve(model, steps=a.steps))

    def ensemble():
        generate_ensemble(model, samples, seeds, EnsembleConfig(n_seeds=a.n), sampling=resolve(model, steps=a.steps))

    def sequential():
        for k in range(a.n):
            model.generate(samples, [s + k for s in seeds], sampling=resolve(model, steps=a.steps))

    plain(), ensemble()
    r_ens, r_seq = [], []
    for _ in range(a.reps):
        t0 = time.perf_counter(); plain(); t1 = time.perf_counter(); ensemble(); t2 = time.perf_counter()
        sequential(); t3 = time.perf_counter()
        r_ens.append((t2 - t1) / (t1 - t0)), r_seq.append((t3 - t2) / (t1 - t0))
    print(f"torch threads {torch.get_num_threads()}, {a.samples} samples x N={a.n}, {a.steps} steps")
    print(f"ensemble / plain batched N-seed: median {statistics.median(r_ens):.4f}  target <= 1.05")
    print(f"throughput, batched N-seed over {a.n} sequential single-seed runs: median "
          f"{statistics.median(r_seq):.3f}x")


if __name__ == "__main__":
    main()
