"""The 4-step student beside its teacher at 20 steps and the teacher at 4 steps (no distillation), on the same
held-out samples and noises, per family: solve rate (Wilson 95%), mean score, and the student's paired difference
against each (normal interval on the discordant pairs).

    OMP_NUM_THREADS=2 python benchmarks/distill_eval.py --count 500 --out runs/distill-eval

The teacher at 4 steps samples at flow_sigmas(4, 3) = 1, 0.9, 0.75, 0.5: the student's own σ list, so the two are
compared at matched σ. Resumes per (model, family) from OUT/<name>/<family>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from steplens.presets import resolve
from steplens.experiments.evaluate import generate_and_score
from steplens.experiments.grid import ExperimentSettings, batches, load_samples
from steplens.experiments.stats import wilson
from steplens.models.load import load_model

FAMILIES = ("maze", "maze-two-goals", "maze-loops", "tictactoe", "reappear", "symmetry", "symmetry-open")
RUNS = {"student@4": ("tiny-reasoner-4step", None), "teacher@20": ("tiny-reasoner", 20),
        "teacher@4": ("tiny-reasoner", 4)}


def paired(a: list[bool], b: list[bool]) -> tuple[float, float, float]:
    n = len(a)
    d = (sum(a) - sum(b)) / n
    b10 = sum(x and not y for x, y in zip(a, b)) / n
    b01 = sum(y and not x for x, y in zip(a, b)) / n
    se = math.sqrt(max(b10 + b01 - (b10 - b01) ** 2, 0.0) / n)
    return d, d - 1.96 * se, d + 1.96 * se


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("runs/distill-eval"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    a = ap.parse_args()
    fams = a.families.split(",")
    res: dict = {}
    for name, (spec, steps) in RUNS.items():
        model = load_model(spec)
        for f in fams:
            path = a.out / name / f"{f}.json"
            if path.is_file() and json.loads(path.read_text())["count"] == a.count:
                res[name, f] = json.loads(path.read_text())
                continue
            t0 = time.time()
            samples = load_samples(model, ExperimentSettings(task=f, count=a.count))
            rows = []
            for chunk in batches(samples, 50):
                rows += generate_and_score(model, chunk, ExperimentSettings(task=f).scorers(), sampling=resolve(model, steps=steps))[1]
            res[name, f] = {"count": a.count, "success": [r["success"] for r in rows],
                            "score": [r["score"] for r in rows], "seconds": round(time.time() - t0, 1)}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res[name, f]))
            print(f"{name} {f}: {sum(res[name, f]['success'])}/{a.count} ({res[name, f]['seconds']} s)", flush=True)
    print(f"\n{a.count} held-out samples per cell (the test part, seeds 0-{a.count - 1}, default sizes); solve rate [Wilson 95%] "
          f"(mean score)\n")
    print("| family | student @4 | teacher @20 | teacher @4 | student − teacher@20 | student − teacher@4 |")
    print("|---|---|---|---|---|---|")
    for f in fams:
        cells = []
        for name in RUNS:
            s = res[name, f]["success"]
            lo, hi = wilson(sum(s), len(s))
            cells.append(f"{sum(s) / len(s):.3f} [{lo:.3f}, {hi:.3f}] ({sum(res[name, f]['score']) / len(s):.3f})")
        diffs = []
        for other in ("teacher@20", "teacher@4"):
            d, lo, hi = paired(res["student@4", f]["success"], res[other, f]["success"])
            diffs.append(f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        print(f"| {f} | " + " | ".join(cells + diffs) + " |")


if __name__ == "__main__":
    main()
