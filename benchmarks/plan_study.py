"""The bill of `steplens study` in the study's own setting, before any model exists here: 200 VBVR-Bench cases
(a folder: no next difficulty, no swap pair), 50 steps, CFG 5 (2 forwards a step), two experts (one runs per step),
81 frames (21 latent frames), 40 blocks, priced at 328 s for 40 steps on one H100 (a public figure):
--sec-per-nfe 328 / (40 x 2) = 4.1.

    PYTHONPATH=src python benchmarks/plan_study.py [--cases 200] [--sec-per-nfe 4.1] [--n-seeds 3]
"""

from __future__ import annotations

import argparse

from steplens.experiments.plan import plan_rows, plan_text, study_plan
from steplens.experiments.study import StudyConfig, study_probes
from steplens.probes import get_probe
from steplens.probes.contract import PlanShape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--latent-frames", type=int, default=21)
    ap.add_argument("--blocks", type=int, default=40)
    ap.add_argument("--sec-per-nfe", type=float, default=328 / (40 * 2))
    ap.add_argument("--n-seeds", type=int, default=3)
    a = ap.parse_args()
    shape = PlanShape(a.steps, 2, a.latent_frames, tuple(f"blocks.{i}" for i in range(a.blocks)))
    cfg = StudyConfig(tasks=["vbvr-bench"], count=a.cases, probe_count=a.cases, steps=a.steps, guidance=5.0,
                      n_seeds=a.n_seeds)
    parts = study_plan(cfg, shape, study_probes(), get_probe("behaviours"), {"vbvr-bench": a.cases}, folder=True)
    print(plan_text(plan_rows(parts, a.sec_per_nfe), shape, a.sec_per_nfe, f"study on {a.cases} VBVR-Bench cases"))


if __name__ == "__main__":
    main()
