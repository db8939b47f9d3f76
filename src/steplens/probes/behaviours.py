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

from ..experiments.stats import summarize
from ..reports.page import Report
from ..reports.plots import save
from .base import ProbeBase, condition_runner, cost_text, write_results
from .contract import MIN_RIGHT_RUNS, MIN_RUNS, STUDY, Branch, Claim, PlanShape, ProbeRun, right_runs_needed, solved_of
from .trajectory import cos_extra, record_x0


class Behaviours(ProbeBase):
    name = "behaviours"
    description = "self-correction, commitment, perception before action and multi-path exploration, counted per run"
    claims = (
        Claim("behaviours-early-candidates", "several candidates early, one late",
              lambda h, t: h["mean_off_branches_per_step"][0] > h["mean_off_branches_per_step"][-1],
              "fewer at the end",
              lambda h, t: f"off-target branches {h['mean_off_branches_per_step'][0]:.3f} at step 0 → "
                           f"{h['mean_off_branches_per_step'][-1]:.3f} at the end; "
                           f"{h.get('runs_holding_several_early', 0)} of {h.get('runs_with_listed_answers', 0)} runs "
                           f"with listed answers hold >= 2 at step 0",
              lambda h, t: _candidates_needed(h),
              f"a task that lists its answers, in >= {MIN_RUNS} runs, and off-target branches at step 0 (candidates "
              f"to narrow down)", "ours",
              f"{STUDY} (multi-path exploration, superposition: qualitative there); ours: off-target branches of "
              f"x0_hat's answer frame (steplens.cos) at step 0 against the last step"),
        Claim("behaviours-self-correction", "self-correction happens", lambda h, t: h["self_corrections"] > 0,
              "at least one run",
              lambda h, t: f"{h['self_corrections']} of {h['runs']} runs self-correct ({solved_of(h)} end right)",
              lambda h, t: right_runs_needed(h),
              f">= {MIN_RIGHT_RUNS} runs that end right (a self-correction is a run that ends right)", "ours",
              f"{STUDY} (self-correction: qualitative there); ours: x0_hat's answer wrong after it first appears, "
              f"right at the end, in at least one run"))

    def plan(self, s, shape: PlanShape, options: dict) -> dict[str, Branch]:
        return {"clean": Branch(0)}

    def conditions(self, r: ProbeRun) -> dict:
        return {"clean": None}

    def batch(self, r: ProbeRun):
        return condition_runner(r.model, r.settings, lambda c, b: record_x0(r.model, r.settings.steps),
                                extra=cos_extra(r.model, r.settings.scorers()))

    def summary(self, r: ProbeRun, by: dict) -> dict:
        rows = by["clean"]
        n = len(rows)
        both = [x for x in rows if x["static_right_step"] is not None and x["answer_right_step"] is not None]
        commit = [x["commitment_step"] for x in rows if x["commitment_step"] is not None]
        headline = {
            "runs": n, "solve_rate": summarize(rows)["solve_rate"], "mean_score": summarize(rows)["mean_score"],
            "self_corrections": sum(x["self_correction"] for x in rows),
            "reverse_corrections": sum(x["reverse_correction"] for x in rows),
            "mean_commitment_step": float(np.mean(commit)) if commit else None,
            "perception_before_action": sum(x["static_right_step"] < x["answer_right_step"] for x in both),
            "perception_with_action": sum(x["static_right_step"] == x["answer_right_step"] for x in both),
            "runs_with_both_steps": len(both),
            "runs_exploring_multiple_branches": int(sum(x["max_off_branches"] >= 2 for x in rows)),
            "mean_off_branches_per_step": _branches(rows).mean(0).round(3).tolist(),
            **candidate_headline(rows),
        }
        table = [{"behaviour": k, "count_or_value": _shown(v)} for k, v in headline.items()
                 if k != "mean_off_branches_per_step"]
        return {"headline": headline, "table": table}

    def write(self, r: ProbeRun, res: dict) -> None:  # results.json records the model only (the store: all)
        write_results(r.out, self.name, r.settings, {"model": r.model.name}, res["table"], res["headline"],
                      samples=len(r.samples), cost=res.get("cost"), scored_by=r.settings.scorers().used(r.samples))

    def finish(self, r: ProbeRun, res: dict, by: dict) -> None:
        plot(r.out, by["clean"], _branches(by["clean"]), r.settings.steps)

    def headline_text(self, h: dict, table: list) -> str:
        return (f"{h['runs']} runs, solve rate {h['solve_rate']:.3f}, commitment step "
                f"{_shown(h['mean_commitment_step'])}")

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        rep.section("Behaviours along the chain of steps",
                    f"{h['self_corrections']} self-corrections and {h['reverse_corrections']} reverse corrections in "
                    f"{h['runs']} runs; the scene right before the answer in {h['perception_before_action']} of "
                    f"{h['runs_with_both_steps']} runs; {h['runs_exploring_multiple_branches']} runs hold >= 2 "
                    f"off-target branches at some step." + " " + cost_text(res.get("cost")))
        rep.image(f"{rel}/behaviours.png", "commitment steps; mean branches and candidate mass per step")
        rep.table(res["table"])


def _candidates_needed(h: dict) -> str | None:
    """Why "several candidates early, one late" cannot be judged on this result, or None: candidates are counted on a
    task that lists its answers, over enough runs, with off-target branches at step 0 to narrow down."""
    listed = h.get("runs_with_listed_answers") or 0
    if not listed:
        return "the task lists no answers: candidates held cannot be counted"
    if listed < MIN_RUNS:
        return f"{listed} runs with listed answers (the rule needs >= {MIN_RUNS})"
    if not h["mean_off_branches_per_step"][0] > 0:
        return "no off-target branch at step 0: no candidates to narrow down"
    return None


def _shown(v):
    """A value as a table shows it: "–" where nothing was measured (never a raw None)."""
    return "–" if v is None else v


def _branches(rows) -> np.ndarray:
    return np.array([r["off_branches"] for r in rows], float)


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


PROBE = Behaviours()
run, report_section = PROBE.run, PROBE.report_section
