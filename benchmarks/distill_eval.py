"""The 4-step student beside its teacher at 20 steps and the teacher at 4 steps (no distillation), on the same
held-out samples and noises, per family: solve rate (Wilson 95%), mean score, and the student's paired difference
against each (normal interval on the discordant pairs).

    OMP_NUM_THREADS=1 python benchmarks/distill_eval.py --count 300 --out runs/distill-eval \\
        [--base-from benchmarks/results/study-tiny-reasoner-heldout] [--md FILE]

The teacher at 4 steps samples at flow_sigmas(4, 3) = 1, 0.9, 0.75, 0.5: the student's own σ list, so the two are
compared at matched σ. With --base-from, the teacher at 20 steps is read from a study folder's solve part on the same
samples and noises, not run again. Resumes per (model, family) from OUT/<name>/<family>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cells import FAMILIES, cached, emit, from_study, points, rate, solve

from steplens.models.load import load_model

RUNS = {"student@4": ("tiny-reasoner-4step", None), "teacher@20": ("tiny-reasoner", 20),
        "teacher@4": ("tiny-reasoner", 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("runs/distill-eval"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--base-from", type=Path, default=None,
                    help="a study folder of the teacher on the same samples: teacher@20 read from its solve parts")
    ap.add_argument("--md", type=Path, default=None, help="also write the table to this file")
    a = ap.parse_args()
    fams = a.families.split(",")
    res: dict = {}
    if a.base_from:
        res.update({("teacher@20", f): from_study(a.base_from, f, a.count) for f in fams})
    for name, (spec, steps) in RUNS.items():
        if all((name, f) in res for f in fams):
            continue
        model = load_model(spec)
        for f in fams:
            res[name, f] = cached(a.out / name / f"{f}.json", a.count, f"{name} {f}",
                                  lambda: solve(model, f, a.count, steps=steps))
    lines = [f"{a.count} held-out samples per cell (the test part, seeds 0-{a.count - 1}, default sizes); solve rate "
             f"[Wilson 95%] (mean score)", "",
             "| family | student @4 | teacher @20 | teacher @4 | student − teacher@20 | student − teacher@4 |",
             "|---|---|---|---|---|---|"]
    for f in fams:
        cells = [rate(res[name, f], score=True) for name in RUNS]
        diffs = [points(res["student@4", f], res[other, f]) for other in ("teacher@20", "teacher@4")]
        lines.append(f"| {f} | " + " | ".join(cells + diffs) + " |")
    text = "\n".join(lines) + "\n"
    print()
    emit(text, a.md)


if __name__ == "__main__":
    main()
