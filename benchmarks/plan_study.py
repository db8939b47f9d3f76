"""The bill of `steplens study` in the study's own setting, before any model exists here: 200 VBVR-Bench cases
(a folder: no next difficulty), 50 steps, CFG 5 (2 forwards a step), two experts (one runs per step), 81 frames
(21 latent frames), 40 blocks, priced at 328 s for 40 steps on one H100 (a public figure):
--sec-per-nfe 328 / (40 x 2) = 4.1. The cases are stand-ins drawn into a scratch folder (maze samples in the
VBVR-Bench layout, without metadata: each sample's frames are read from its video, as a real folder's are), and
the plan is `steplens study --plan`'s own (steplens.orchestrators.study_plan), on them.

    PYTHONPATH=src python benchmarks/plan_study.py [--cases 200] [--sec-per-nfe 4.1] [--n-seeds 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from steplens.orchestrators.plan import Planner, plan_rows, plan_text
from steplens.orchestrators.study import folder_study_config, study_probes
from steplens.orchestrators.study_plan import study_plan
from steplens.probes import get_probe
from steplens.probes.contract import PlanShape
from steplens.tasks import get_task, write_sample


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--latent-frames", type=int, default=21)
    ap.add_argument("--blocks", type=int, default=40)
    ap.add_argument("--sec-per-nfe", type=float, default=328 / (40 * 2))
    ap.add_argument("--n-seeds", type=int, default=3)
    a = ap.parse_args()
    blocks = tuple(f"blocks.{i}" for i in range(a.blocks))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "vbvr-bench"
        for i in range(a.cases):
            write_sample(root, get_task("maze").sample(i, 3, 3, idx=i), scale=2, metadata=False,
                         rel=f"In-Domain_50/O-39_maze_data-generator/{i:05d}")
        cfg, folders = folder_study_config(root, None, None, None, count=a.cases, probe_count=a.cases,
                                           n_seeds=a.n_seeds)
        cfg = cfg.model_copy(update={"steps": a.steps, "guidance": 5.0})
        wan = Planner(a.steps, None, 5.0, blocks, lambda n: a.latent_frames)  # 81 frames: 21 latent frames
        parts = study_plan(cfg, wan, get_probe("behaviours"), study_probes(), folders)
    shape = PlanShape(a.steps, 2, a.latent_frames, blocks)
    print(plan_text(plan_rows(parts, a.sec_per_nfe), shape, a.sec_per_nfe, f"study on {a.cases} VBVR-Bench cases"))


if __name__ == "__main__":
    main()
