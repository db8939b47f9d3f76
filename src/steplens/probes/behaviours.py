"""Probe `behaviours`: the study's emergent behaviours, counted per run from the x0_hat trajectory.

self-correction: x0_hat's answer wrong at some step after the path first appears, right at the end
(and the reverse: right at some step, wrong at the end); commitment step; perception before action:
the step from which walls/start/goal of x0_hat are right vs the first step with a right path;
multi-path exploration: disjoint off-solution candidate branches in x0_hat per step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..plots import save
from ..report import Report
from ..store import ResultsStore
from .base import ProbeSettings, held_out, rate, run_condition, write_results
from .trajectory import cos_extra, record_x0


def run(model, out: Path, s: ProbeSettings, progress=True) -> dict:
    s = s.resolved()
    store = ResultsStore(Path(out) / "store", ("condition", "idx"), {"probe": "behaviours", **s.model_dump(),
                                                                      "model": model.name})
    samples, seeds = held_out(s)
    with tqdm(total=s.count, disable=not progress, desc="probe behaviours") as bar:
        bar.update(sum(store.has(condition="clean", idx=i) for i in seeds))
        run_condition(model, s, store, "clean", lambda smp, sd: record_x0(model, s.steps), samples, seeds,
                      extra=cos_extra(model), bar=bar)
    rows = store.select(condition="clean")
    n = len(rows)
    both = [r for r in rows if r["static_right_step"] is not None and r["path_right_step"] is not None]
    branches = np.array([r["off_branches"] for r in rows], float)
    commit = [r["commitment_step"] for r in rows if r["commitment_step"] is not None]
    headline = {
        "runs": n, "solve_rate": rate(rows)["rate"],
        "self_corrections": sum(r["self_correction"] for r in rows),
        "reverse_corrections": sum(r["reverse_correction"] for r in rows),
        "mean_commitment_step": float(np.mean(commit)) if commit else None,
        "perception_before_action": sum(r["static_right_step"] < r["path_right_step"] for r in both),
        "perception_with_action": sum(r["static_right_step"] == r["path_right_step"] for r in both),
        "runs_with_both_steps": len(both),
        "runs_exploring_multiple_branches": int(sum(r["max_off_branches"] >= 2 for r in rows)),
        "mean_off_branches_per_step": branches.mean(0).round(3).tolist(),
    }
    table = [{"behaviour": k, "count_or_value": v} for k, v in headline.items() if k != "mean_off_branches_per_step"]
    write_results(out, "behaviours", s, {"model": model.name}, table, headline)
    plot(out, rows, branches, s.steps)
    return {"headline": headline, "table": table}


def plot(out: Path, rows, branches, steps) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    commit = [r["commitment_step"] for r in rows if r["commitment_step"] is not None]
    axes[0].hist(commit, bins=np.arange(steps + 1) - 0.5, color="tab:blue")
    axes[0].set_xlabel("commitment step (solved runs)")
    axes[0].set_ylabel("runs")
    axes[1].plot(branches.mean(0), "o-", ms=3, label="off-solution branches")
    axes[1].plot(np.mean([r["candidate_mass"] for r in rows], 0), "s--", ms=3, label="candidate mass")
    axes[1].set_xlabel("denoising step")
    axes[1].legend(fontsize=7)
    save(fig, Path(out) / "behaviours.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    h = res["headline"]
    rep.section("Behaviours along the chain of steps",
                f"{h['self_corrections']} self-corrections and {h['reverse_corrections']} reverse corrections in "
                f"{h['runs']} runs; walls/start/goal right before the path in {h['perception_before_action']} of "
                f"{h['runs_with_both_steps']} runs; {h['runs_exploring_multiple_branches']} runs hold >= 2 "
                f"off-solution branches at some step.")
    rep.image(f"{rel}/behaviours.png", "commitment steps; mean branches and candidate mass per step")
    rep.table(res["table"])
