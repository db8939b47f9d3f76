"""The plan tables of docs/results from `steplens probe plan` folders (issue 35): per model and family, plan
agreement with the final plan at step k, distinct plans among the seeds of a sample, the time of first error and
the two claims' verdicts; and, from folders made with --teacher, the student beside its teacher at matched σ.

    python benchmarks/plan_table.py runs/plan2/tiny-reasoner-*            # one model, per family
    python benchmarks/plan_table.py --matched runs/plan2/*-vs-teacher-*   # student and teacher at matched σ
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _first_error(fe: dict) -> str:
    if fe.get("state") != "measured":
        return f"– ({fe.get('state', 'not measured')})"
    return f"{fe['median_fraction']:.2f} of the video ({fe['rejected']} failed runs)"


def _verdict(cid: str, table: list[dict], family: str) -> str:
    """The claim's verdict, and for "undetermined" why (the probe's own rule: steplens.probes.plan.VERDICTS)."""
    from steplens.probes.plan import VERDICTS, state_text

    state, text = VERDICTS[cid](table, family)
    verdict = state_text(state)
    return verdict if verdict != "undetermined" else f"undetermined: {text.split(' (')[0]}"


def _row(label: str, fam: dict, ks: list[str], table: list[dict], family: str) -> str:
    agree = " | ".join(f"{fam['agreement'][k]:.3f}" if k in fam["agreement"] else "–" for k in ks)
    div = " | ".join(f"{fam['diversity'][k]:.2f}" if k in fam["diversity"] else "–" for k in ks[:1] + ks[2:3])
    return (f"| {label} | {fam['solve_rate']:.3f} | {agree} | {div} | {_first_error(fam['first_error'])} | "
            f"{_verdict('plan-first-step', table, family)} | {_verdict('plan-several-early', table, family)} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--matched", action="store_true", help="student and teacher at matched σ (--teacher folders)")
    a = ap.parse_args()
    if a.matched:
        print("| model / family | solve | agreement σ=1 | σ=.9 | σ=.75 | σ=.5 | plans σ=1 | plans σ=.75 | first error "
              "(median) | plan fixed at the first step | several early, one late |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        print("| model / family | solve | agreement k=0 | k=1 | k=2 | k=4 | k=10 | plans k=0 | plans k=2 | first error "
              "(median) | plan fixed at the first step | several early, one late |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for folder in a.folders:
        r = json.loads((folder / "results.json").read_text())
        model, h = r["config"]["model"], r["headline"]
        for family, fam in h["families"].items():
            if a.matched:
                teacher = h["teacher"]
                tfam = teacher["families"][family]
                print(_row(f"{teacher['model']} (teacher), {family}", tfam, list(tfam["agreement"])[:4],
                           teacher["table"], family))
                print(_row(f"{model}, {family}", fam, list(fam["agreement"])[:4], r["table"], family))
            else:
                print(_row(f"{model}, {family}", fam, ["0", "1", "2", "4", "10"], r["table"], family))


if __name__ == "__main__":
    main()
