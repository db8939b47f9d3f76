"""Verifiers side by side at the cost of one: `compare --beside-verifiers` against one compare per verifier.

Runs best-of-n with the first verifier and the others beside it in one compare, and one compare per verifier alone,
on the same samples and seeds; prints each way's NFE (the stored rows' sums) and their ratio (target: the number of
verifiers: each separate compare repeats the one seed and the particles), and whether every verifier's picks are
the same both ways (they must be: best-of-n's particles do not depend on its verifier).

    OMP_NUM_THREADS=1 python benchmarks/beside_nfe.py [--model tiny-reasoner] [--task maze-loops] [--count 20] \\
        [--budgets 2,4] [--verifiers checker,task,consensus]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import steplens
from steplens.experiments.grid import ExperimentSettings
from steplens.methods.search import SearchConfig
from steplens.models.load import load_model
from steplens.probes.compare import compare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny-reasoner")
    ap.add_argument("--task", default="maze-loops")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--budgets", default="2,4")
    ap.add_argument("--verifiers", default="checker,task,consensus")
    a = ap.parse_args()
    model = load_model(a.model)
    budgets = [int(b) for b in a.budgets.split(",")]
    first, *others = a.verifiers.split(",")
    s = ExperimentSettings(task=a.task, count=a.count)
    with tempfile.TemporaryDirectory() as tmp:
        def run(out, verifier, beside=()):
            compare(model, Path(tmp) / out, s, methods=["single"], budgets=budgets, search_methods=["best-of-n"],
                    search=SearchConfig(verifier=verifier), beside=beside, progress=False)
            return steplens.results(Path(tmp) / out)

        together = run("together", first, others)
        alone = {v: run(v, v) for v in (first, *others)}
        nfe_together = float(together["nfe"].sum())
        nfe_alone = sum(float(df["nfe"].sum()) for df in alone.values())
        same = True
        for v, df in alone.items():
            for b in budgets:
                mine = df[df["condition"] == f"best-of-n B={b}"].sort_values("seed")
                name = f"best-of-n B={b}" if v == first else f"best-of-n [{v}] B={b}"
                theirs = together[together["condition"] == name].sort_values("seed")
                agree = list(mine["picked"]) == list(theirs["picked"]) and list(mine["success"]) == list(
                    theirs["success"])
                same &= agree
                print(f"{v:>10} B={b}: solve rate {mine['success'].mean():.3f} alone, {theirs['success'].mean():.3f} "
                      f"beside; picks {'identical' if agree else 'DIFFER'}")
    print(f"NFE: one compare with {len(others)} verifier(s) beside {nfe_together:.0f}, one compare per verifier "
          f"{nfe_alone:.0f}: ratio {nfe_alone / nfe_together:.2f} (verifiers: {len(others) + 1}); picks "
          f"{'identical' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
