"""Probe `behaviours`: the study's emergent behaviours, counted per run from the x0_hat trajectory.

self-correction: x0_hat's answer wrong at some step after the answer first appears (a change inside the
answer region), right at the end (and the reverse: right at some step, wrong at the end); commitment step;
perception before action: the step from which nothing outside the answer region changes (the scene is right)
vs the first step with a right answer; multi-path exploration: disjoint off-target candidate branches in
x0_hat per step (steplens.cos); where the task lists its right (and tempting wrong) answers (`candidates`):
how many x0_hat holds at step 0 and at most (superposition), the step from which one alone is drawn, and the
step from which a right one is drawn with no wrong one held (two-goal mazes: the named goal, perception before
action; reappear: the object in the colour and shape it had before it was hidden, working memory).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ..experiment import open_store, rows_of, run_grid
from ..plots import save
from ..report import Report
from ..stats import summarize
from .base import ProbeSettings, condition_runner, load_samples, write_results
from .trajectory import cos_extra, record_x0


def run(model, out: Path, s: ProbeSettings, progress=True) -> dict:
    samples = load_samples(model, s)
    store = open_store(out, "behaviours", {**s.describe(), "model": model.name})
    runner = condition_runner(model, s, lambda c, b: record_x0(model, s.steps), extra=cos_extra(model, s.scorers()))
    run_grid(store, ["clean"], samples, s.batch, runner, desc="probe behaviours", progress=progress)
    rows = rows_of(store, "clean", samples)
    n = len(rows)
    both = [r for r in rows if r["static_right_step"] is not None and r["answer_right_step"] is not None]
    branches = np.array([r["off_branches"] for r in rows], float)
    commit = [r["commitment_step"] for r in rows if r["commitment_step"] is not None]
    headline = {
        "runs": n, "solve_rate": summarize(rows)["solve_rate"], "mean_score": summarize(rows)["mean_score"],
        "self_corrections": sum(r["self_correction"] for r in rows),
        "reverse_corrections": sum(r["reverse_correction"] for r in rows),
        "mean_commitment_step": float(np.mean(commit)) if commit else None,
        "perception_before_action": sum(r["static_right_step"] < r["answer_right_step"] for r in both),
        "perception_with_action": sum(r["static_right_step"] == r["answer_right_step"] for r in both),
        "runs_with_both_steps": len(both),
        "runs_exploring_multiple_branches": int(sum(r["max_off_branches"] >= 2 for r in rows)),
        "mean_off_branches_per_step": branches.mean(0).round(3).tolist(),
        **candidate_headline(rows),
    }
    table = [{"behaviour": k, "count_or_value": v} for k, v in headline.items() if k != "mean_off_branches_per_step"]
    write_results(out, "behaviours", s, {"model": model.name}, table, headline, samples=n)
    plot(out, rows, branches, s.steps)
    return {"headline": headline, "table": table}


def candidate_headline(rows) -> dict:
    """Superposition / multi-path exploration / working memory, where the task lists its answers (cos)."""
    rows = [r for r in rows if r.get("candidates")]
    if not rows:
        return {}
    won = [r["winner_step"] for r in rows if r["winner_step"] is not None]
    out = {
        "runs_with_listed_answers": len(rows),
        "mean_listed_answers": float(np.mean([r["candidates"] for r in rows])),
        "mean_early_candidates": float(np.mean([r["early_candidates"] for r in rows])),
        "runs_holding_several_early": int(sum(r["early_candidates"] >= 2 for r in rows)),
        "runs_holding_several_at_some_step": int(sum(r["max_candidates"] >= 2 for r in rows)),
        "mean_winner_step": float(np.mean(won)) if won else None,
    }
    right = [r for r in rows if "right_step" in r]
    if right:
        steps = [r["right_step"] for r in right if r["right_step"] is not None]
        out.update(mean_early_right=float(np.mean([r["early_right"] for r in right])),
                   runs_right_answer_wins=len(steps), mean_right_step=float(np.mean(steps)) if steps else None)
    return out


def plot(out: Path, rows, branches, steps) -> None:
    import matplotlib.pyplot as plt

    strengths = [r for r in rows if r.get("right_strength")]
    fig, axes = plt.subplots(1, 3 if strengths else 2, figsize=(13.5 if strengths else 9, 3.2))
    commit = [r["commitment_step"] for r in rows if r["commitment_step"] is not None]
    axes[0].hist(commit, bins=np.arange(steps + 1) - 0.5, color="tab:blue")
    axes[0].set_xlabel("commitment step (solved runs)")
    axes[0].set_ylabel("runs")
    axes[1].plot(branches.mean(0), "o-", ms=3, label="off-target branches")
    axes[1].plot(np.mean([r["candidate_mass"] for r in rows], 0), "s--", ms=3, label="candidate mass")
    axes[1].set_xlabel("denoising step")
    axes[1].legend(fontsize=7)
    if strengths:  # the candidates' curves: the right answer against the strongest wrong one, per step
        axes[2].plot(np.mean([r["right_strength"] for r in strengths], 0), "o-", ms=3, color="tab:green",
                     label="strongest right answer")
        wrong = [r["wrong_strength"] for r in strengths if r["wrong_strength"][0] is not None]
        if wrong:
            axes[2].plot(np.mean(wrong, 0), "s--", ms=3, color="tab:red", label="strongest wrong answer")
        axes[2].axhline(0.25, color="grey", lw=0.8, ls=":", label="held (0.25)")
        axes[2].set_ylim(0, 1.02)
        axes[2].set_xlabel("denoising step")
        axes[2].set_ylabel("drawn in x0_hat (0-1)")
        axes[2].legend(fontsize=7)
    save(fig, Path(out) / "behaviours.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    h = res["headline"]
    rep.section("Behaviours along the chain of steps",
                f"{h['self_corrections']} self-corrections and {h['reverse_corrections']} reverse corrections in "
                f"{h['runs']} runs; the scene right before the answer in {h['perception_before_action']} of "
                f"{h['runs_with_both_steps']} runs; {h['runs_exploring_multiple_branches']} runs hold >= 2 "
                f"off-target branches at some step.")
    rep.image(f"{rel}/behaviours.png", "commitment steps; mean branches and candidate mass per step")
    rep.table(res["table"])
