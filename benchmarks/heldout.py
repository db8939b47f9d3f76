"""Held out by content, measured (issue 32): per family, the input space at each difficulty, the overlap of training
and test draws, and a model's solve rate on unseen (`test`) against seen (`train`) inputs with the gap.

    # the input spaces and the overlap (no model): distinct inputs among --draws seeds, Chao1 estimate, and how many
    # of --train-draws training draws (the trainer's seeds) share an input with --test-draws test draws
    .venv/bin/python benchmarks/heldout.py spaces --draws 3000 --train-draws 5000 --test-draws 1000
    # seen vs unseen: the solve rate on --count test inputs and --count train inputs, Wilson intervals, the gap
    .venv/bin/python benchmarks/heldout.py gap --model tiny-reasoner --families maze,symmetry-open --count 300

Prints Markdown tables; --json FILE also writes them.
"""

from __future__ import annotations

import argparse
import json
import time

from steplens.presets import resolve
from steplens.experiments.evaluate import solve_rate
from steplens.experiments.stats import wilson
from steplens.tasks import draw, get_task, has_generator, task_names
from steplens.tasks.splits import input_space
from steplens.training.data import TRAIN_SEED_BASE


def families(arg: str | None) -> list[str]:
    if arg:
        return arg.split(",")
    return [n for n in task_names() if has_generator(get_task(n))]


def spaces(a) -> list[dict]:
    out = []
    for name in families(a.families):
        task = get_task(name)
        lo, hi = task.sizes
        for size in range(lo, hi + 1):
            try:
                task.sample(0, size)
            except ValueError:
                continue  # a size the task does not take (symmetry: even only)
            t0 = time.time()
            sp = input_space(task, size, draws=a.draws)
            train = {draw(task, TRAIN_SEED_BASE + s, "train", size).meta["content_id"] for s in range(a.train_draws)}
            test = {draw(task, s, "test", size).meta["content_id"] for s in range(a.test_draws)}
            row = {"family": name, "size": size, "draws": a.draws, "distinct": sp["distinct"], "chao1": sp["chao1"],
                   "train_distinct": len(train), "test_distinct": len(test), "shared": len(train & test),
                   "seconds": round(time.time() - t0, 1)}
            print(row, flush=True)
            out.append(row)
    return out


def gap(a) -> list[dict]:
    from steplens.models.load import load_model

    model = load_model(a.model)
    out = []
    for name in families(a.families):
        task = get_task(name)
        size = task.default_size if a.size is None else a.size
        row = {"model": a.model, "family": name, "size": size, "count": a.count}
        for part in a.parts.split(","):
            res = solve_rate(model, name, range(a.count), size, a.frames, sampling=resolve(model, steps=a.steps), progress=False, part=part)
            lo, hi = wilson(res["solved"], res["n"])
            row[part] = (res["solve_rate"], lo, hi)
        if "train" in row and "test" in row:
            row["gap"] = row["train"][0] - row["test"][0]
        print(row, flush=True)
        out.append(row)
    return out


def pct(x) -> str:
    v, lo, hi = x
    return f"{100 * v:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["spaces", "gap"])
    ap.add_argument("--families", default=None)
    ap.add_argument("--draws", type=int, default=3000)
    ap.add_argument("--train-draws", type=int, default=5000)
    ap.add_argument("--test-draws", type=int, default=1000)
    ap.add_argument("--model", default="tiny-reasoner")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--parts", default="test,train", help="gap: the parts measured (train alone where the test part's "
                    "figure comes from a study folder on the same samples)")
    a = ap.parse_args()
    rows = spaces(a) if a.what == "spaces" else gap(a)
    if a.json:  # written first: the measurements are kept whatever the printing does
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.what == "spaces":
        print("\n| family | size | distinct of draws | Chao1 estimate | training inputs | test inputs | shared |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            est = "all draws distinct" if r["distinct"] == r["draws"] else f"{r['chao1']:,}"
            print(f"| {r['family']} | {r['size']} | {r['distinct']:,} of {r['draws']:,} | {est} | "
                  f"{r['train_distinct']:,} | {r['test_distinct']:,} | {r['shared']} |")
    else:
        print(f"\n| model | family | size | unseen (test) | seen (train) | gap (points) |")
        print("|---|---|---:|---|---|---:|")
        for r in rows:
            cells = [pct(r[p]) if p in r else "–" for p in ("test", "train")]
            gap = f"{100 * r['gap']:+.1f}" if "gap" in r else "–"
            print(f"| {r['model']} | {r['family']} | {r['size']} | {cells[0]} | {cells[1]} | {gap} |")


if __name__ == "__main__":
    main()
