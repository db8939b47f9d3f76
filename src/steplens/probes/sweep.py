"""Probe `sweep`: solve rate and chain-of-steps metrics against the number of frames and of sampling steps.

The study: fewer frames hurt little; few-step sampling collapses the exploration phase (the candidate
mass of early x0_hat). Each condition records x0_hat at every step and counts candidates.
"""

from __future__ import annotations

from pathlib import Path

from ..experiment import open_store, rows_of, run_grid
from ..plots import save
from ..report import Report
from ..stats import mean_or_none as _mean
from .base import ProbeSettings, condition_runner, load_samples, summary_rows, write_results
from .trajectory import cos_extra, record_x0

FRAMES = (2, 3, 4, 5, 6)
STEPS = (1, 2, 3, 5, 10, 20, 40)


def run(model, out: Path, s: ProbeSettings, frames=FRAMES, steps=STEPS, progress=True) -> dict:
    frames, steps = list(frames), list(steps)
    bad = [v for v in frames if v < 2] + [v for v in steps if v < 1]
    if bad or not frames or not steps:
        raise ValueError(f"sweep frames must be >= 2 and steps >= 1 (and neither empty); got frames {frames}, "
                         f"steps {steps}")
    samples = load_samples(model, s)
    base_frames = s.frames or samples[0].frames
    conds = {f"frames {t}": {"frames": t, "steps": s.steps} for t in frames}
    conds.update({f"steps {k}": {"frames": base_frames, "steps": k} for k in steps})
    config = {**s.describe(), "frames": frames, "steps": steps, "model": model.name}
    store = open_store(out, "sweep", config)
    runner = condition_runner(model, s, lambda c, b: record_x0(model, conds[c]["steps"]), extra=cos_extra(model, s.scorers()),
                              steps_of=lambda c: conds[c]["steps"], frames_of=lambda c: conds[c]["frames"])
    run_grid(store, list(conds), samples, s.batch, runner, desc="probe sweep", progress=progress)
    by = {c: rows_of(store, c, samples) for c in conds}

    def col(field, only_solved=False):
        return lambda c: _mean([r[field] for r in by[c] if r["success"] or not only_solved])

    table = summary_rows(by, commitment_step=col("commitment_step", True),
                         candidates_step0=lambda c: _mean([r["candidate_mass"][0] for r in by[c]]),
                         max_off_branches=col("max_off_branches"))
    for r in table:
        r.update(conds[r["condition"]])
    headline = {r["condition"]: round(r["solve_rate"], 3) for r in table}
    write_results(out, "sweep", s, config, table, headline, samples=len(samples))
    plot(out, table)
    return {"headline": headline, "table": table}


def plot(out: Path, table: list[dict]) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, kind in zip(axes, ("frames", "steps")):
        rows = [r for r in table if r["condition"].startswith(kind)]
        x = [r[kind] for r in rows]
        ax.plot(x, [r["solve_rate"] for r in rows], "o-", label="solve rate")
        ax.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows], alpha=0.2)
        ax.set_xlabel(f"number of {kind}")
        ax.set_ylim(-0.02, 1.02)
        ax2 = ax.twinx()
        ax2.plot(x, [r["candidates_step0"] for r in rows], "s--", color="tab:orange", label="candidates at step 0")
        ax2.set_ylabel("candidate mass, step 0", color="tab:orange")
        if kind == "steps":
            ax.set_xscale("log")
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("solve rate")
    save(fig, Path(out) / "sweep.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    rep.section("Sweep: frames and sampling steps",
                "Solve rate, mean commitment step (solved runs) and candidate mass of x0_hat at step 0.")
    rep.image(f"{rel}/sweep.png", "solve rate and early candidate mass vs frames and steps")
    rep.table(res["table"], ["condition", "n", "solve_rate", "ci_low", "ci_high", "commitment_step",
                             "candidates_step0", "max_off_branches"])
