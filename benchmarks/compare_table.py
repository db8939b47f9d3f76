"""Markdown tables for the README from one or more `steplens compare` output folders of one task family
(e.g. the main methods at N = 2, 3, 4, 8 and the ensemble variants at N = 3), joined by sample index.

    .venv/bin/python benchmarks/compare_table.py runs/compare-maze-main runs/compare-maze-variants
    .venv/bin/python benchmarks/compare_table.py runs/compare-maze6 runs/compare-maze6-half@half

Works on partial results (only the samples every listed method has finished are compared). Rows that two
folders both hold (the single seed, the ensemble at N = 3) must agree: same samples, same noises.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from steplens.probes.compare import ENSEMBLES, METHODS, condition, method_table, versus


def load_rows(dirs: list[str]) -> list[dict]:
    """Rows of every folder; FOLDER@LABEL renames that folder's ensembles "ensemble…@LABEL" (another setting).

    Reads both store schemas: (condition "METHOD N=n", sample) and, from folders written before it, (method, n,
    idx), whose samples are named "<task>/<idx:05d>" as generated samples are now."""
    seen: dict[tuple, bool] = {}
    for arg in dirs:
        d, _, label = arg.partition("@")
        task = json.loads((Path(d) / "results.json").read_text()).get("settings", {}).get("task", "maze") \
            if (Path(d) / "results.json").exists() else "maze"
        for line in (Path(d) / "store" / "rows.jsonl").read_text().splitlines():
            r = json.loads(line)
            if "condition" in r:
                m, n = r["condition"].rsplit(" N=", 1)
                n, sample = int(n), r["sample"]
            else:
                m, n, sample = r["method"], r["n"], f"{task}/{r['idx']:05d}"
            if label and m in ENSEMBLES:
                m += f"@{label}"
            key = (m, n, sample)
            if seen.setdefault(key, r["success"]) != r["success"]:
                raise SystemExit(f"{d}: {key} disagrees with another folder: not the same samples and noises")
    return [{"condition": condition(m, n), "method": m, "n": n, "sample": i, "success": ok}
            for (m, n, i), ok in seen.items()]


def pts(d: float, lo: float, hi: float) -> str:
    """A paired difference and its 95% interval, in points (hundredths of solve rate)."""
    return f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="compare output folders, FOLDER@LABEL to rename its ensembles")
    args = ap.parse_args()
    rows = load_rows(args.dirs)
    jobs = sorted({(r["method"], r["n"]) for r in rows}, key=lambda j: (METHODS.index(j[0].split("@")[0]), j[0], j[1]))
    # only samples that every (method, N) has finished
    done = set.intersection(*({r["sample"] for r in rows if (r["method"], r["n"]) == j} for j in jobs))
    rows = [r for r in rows if r["sample"] in done]
    ns = sorted({n for _, n in jobs if n > 1})
    table = {(t["method"], t["n_seeds"]): t for t in method_table(rows, jobs)}
    single = table["single", 1]
    print(f"{len(done)} samples; one seed: {single['solve_rate']:.3f} "
          f"({single['ci_low']:.3f}-{single['ci_high']:.3f})\n")
    print("solve rate (difference to one seed in points [paired bootstrap 95%])\n")
    print("| method | " + " | ".join(f"N = {n}" for n in ns) + " |")
    print("|---|" + "---|" * len(ns))
    for m in dict.fromkeys(m for m, n in jobs if m != "single"):
        cells = []
        for n in ns:
            t = table.get((m, n))
            cells.append("–" if t is None else f"{t['solve_rate']:.3f} "
                         f"({pts(t['delta_vs_single'], t['delta_ci_low'], t['delta_ci_high'])})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\nensemble minus vote / consensus best-of-N at the same N, in points [95%]\n")
    print("| ensemble | N | vs vote | vs best-consensus |\n|---|---|---|---|")
    for m, n in jobs:
        if m.split("@")[0] in ENSEMBLES:
            cells = [(lambda v: pts(v["delta"], v["delta_ci_low"], v["delta_ci_high"]))(versus(rows, (m, n), (b, n)))
                     if (b, n) in table else "–" for b in ("vote", "best-consensus")]
            print(f"| {m} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
