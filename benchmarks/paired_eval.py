"""Two models on the same held-out samples: each one's solve rate (Wilson 95%), the samples only one of them
solves, and the paired difference with its 95% interval. Each argument is `steplens eval --out` folders, one per
model, comma-separated per model when a sample was scored in pieces (e.g. seeds 0-499 and 500-2,499):

    steplens eval --model tiny-reasoner --task maze --size 5 --count 500 --out runs/paired/r-0
    steplens eval --model tiny-maze     --task maze --size 5 --count 500 --out runs/paired/m-0
    steplens eval --model tiny-reasoner --task maze --size 5 --count 2000 --seed 500 --out runs/paired/r-500
    steplens eval --model tiny-maze     --task maze --size 5 --count 2000 --seed 500 --out runs/paired/m-500
    .venv/bin/python benchmarks/paired_eval.py runs/paired/r-0,runs/paired/r-500 runs/paired/m-0,runs/paired/m-500

The interval on the difference is the normal one for paired proportions (it uses only the discordant samples).
Both runs must hold the same samples: any sample only one of them has is refused.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from steplens.experiments.stats import wilson


def outcomes(folders: str) -> tuple[str, dict[str, bool]]:
    model, rows = None, {}
    for d in folders.split(","):
        f = Path(d) / "results.json"
        if not f.is_file():
            raise SystemExit(f"{d}: no results.json; give `steplens eval --out` folders")
        res = json.loads(f.read_text())
        if "per_sample" not in res:
            raise SystemExit(f"{f}: no per-sample outcomes; is this a `steplens eval` result?")
        name = res.get("model") or res.get("config", {}).get("model") or d
        model = model or name
        for r in res["per_sample"]:
            if r["sample"] in rows:
                raise SystemExit(f"{d}: sample {r['sample']} already read from an earlier folder of this model")
            rows[r["sample"]] = bool(r["success"])
    return model, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="eval folders of model A, comma-separated")
    ap.add_argument("b", help="eval folders of model B, comma-separated")
    args = ap.parse_args()
    (ma, a), (mb, b) = outcomes(args.a), outcomes(args.b)
    if a.keys() != b.keys():
        odd = sorted(a.keys() ^ b.keys())
        raise SystemExit(f"the two runs hold different samples ({len(odd)} in one only, e.g. {odd[0]})")
    n = len(a)
    print(f"{n} samples, the same for both")
    for name, rows in ((ma, a), (mb, b)):
        k = sum(rows.values())
        lo, hi = wilson(k, n)
        print(f"  {name}: {k}/{n} = {k / n:.4f} [{lo:.4f}, {hi:.4f}]")
    only_a = sum(a[s] and not b[s] for s in a)
    only_b = sum(b[s] and not a[s] for s in a)
    d = (only_a - only_b) / n
    se = math.sqrt(only_a + only_b - (only_a - only_b) ** 2 / n) / n
    print(f"  solved only by {ma}: {only_a}; only by {mb}: {only_b}")
    print(f"  {ma} - {mb}: {100 * d:+.2f} points [{100 * (d - 1.96 * se):+.2f}, {100 * (d + 1.96 * se):+.2f}]")


if __name__ == "__main__":
    main()
