"""Probe `sweep`: solve rate and chain-of-steps metrics against the number of frames and of sampling steps.

The study: fewer frames hurt little; few-step sampling collapses the exploration phase (the candidate
mass of early x0_hat). Each condition records x0_hat at every step and counts candidates.
"""

from __future__ import annotations

from pathlib import Path

from ..experiments.stats import mean_or_none as _mean
from ..reports.page import Report
from ..reports.plots import save
from .base import ProbeBase, ProbeSettings, condition_runner, cost_text, summary_rows
from .contract import NOT_TESTED, STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart, rate_excludes_floor
from .trajectory import cos_extra, record_x0

FRAMES = (2, 3, 4, 5, 6)
STEPS = (1, 2, 3, 5, 10, 20, 40)
MARGIN = 0.05  # a drop in solve rate this small (or smaller) is "little": few-step sampling does not hurt


class Sweep(ProbeBase):
    name = "sweep"
    description = "solve rate and chain-of-steps metrics against the number of frames and of sampling steps"
    claims = (Claim("sweep-frames", "fewer frames hurt little", lambda h, t: _frames_rule(t), "within 0.1",
                    lambda h, t: "solve rates {:.3f}–{:.3f} over frame counts".format(*_frame_range(t)),
                    lambda h, t: _best_needed(_kind(t, "frames"), "best solve rate over frame counts"),
                    "a solve rate at some frame count whose 95% interval excludes 0", "ours",
                    f"{STUDY} (its summaries: fewer frames, a minor effect); which frame counts were tried is not "
                    f"public; ours: solve rates within 0.1 over the frame counts swept"),
              Claim("sweep-steps", "few-step sampling hurts (steps matter)", lambda h, t: _steps_rule(t),
                    f"fewest - most steps, paired 95% interval: below 0 holds; above -{MARGIN} (a drop shown under "
                    f"{MARGIN}) does not", lambda h, t: _steps_evidence(t), lambda h, t: _steps_needed(t),
                    "a solve rate at the most steps whose 95% interval excludes 0, and a paired interval (fewest - "
                    "most steps) below 0 or above the margin", "ours",
                    f"{STUDY} (its summaries: aggressive step compression can collapse the exploration phase; "
                    f"which distilled model is unconfirmed); ours: the fewest steps lower by more than 0.05"))
    study = StudyPart(count="sweep_count", order=10,
                      summary=lambda res: {r["condition"]: {"solve_rate": r["solve_rate"], "ci_low": r["ci_low"],
                                                            "ci_high": r["ci_high"], "n": r["n"]}
                                           for r in res["table"]})

    def options(self, model, s: ProbeSettings, frames=FRAMES, steps=STEPS) -> dict:
        frames, steps = list(frames), list(steps)
        bad = [v for v in frames if v < 2] + [v for v in steps if v < 1]
        if bad or not frames or not steps:
            raise ValueError(f"sweep frames must be >= 2 and steps >= 1 (and neither empty); got frames {frames}, "
                             f"steps {steps}")
        return {"frames": frames, "steps": steps}

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        o = self.options(None, s, **{k: options[k] for k in ("frames", "steps") if k in options})
        return {**{f"frames {t}": Branch(0) for t in o["frames"]}, **{f"steps {k}": Branch(0, steps=k)
                                                                      for k in o["steps"]}}

    def conditions(self, r: ProbeRun) -> dict:
        base_frames = r.settings.frames or r.samples[0].frames
        conds = {f"frames {t}": {"frames": t, "steps": r.settings.steps} for t in r.options["frames"]}
        conds.update({f"steps {k}": {"frames": base_frames, "steps": k} for k in r.options["steps"]})
        return conds

    def batch(self, r: ProbeRun):
        model, conds = r.model, r.conditions
        return condition_runner(model, r.settings, lambda c, b: record_x0(model, conds[c]["steps"]),
                                extra=cos_extra(model, r.settings.scorers()), steps_of=lambda c: conds[c]["steps"],
                                frames_of=lambda c: conds[c]["frames"])

    def summary(self, r: ProbeRun, by: dict) -> dict:
        def col(field, only_solved=False):
            return lambda c: _mean([x[field] for x in by[c] if x["success"] or not only_solved])

        table = summary_rows(by, commitment_step=col("commitment_step", True),
                             candidates_step0=lambda c: _mean([x["candidate_mass"][0] for x in by[c]]),
                             max_off_branches=col("max_off_branches"))
        for x in table:
            x.update(r.conditions[x["condition"]])
        paired_to_most_steps(table, by)
        headline = {x["condition"]: round(x["solve_rate"], 3) for x in table}
        return {"headline": headline, "table": table}

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        plot(r.out, res["table"])

    def headline_text(self, h: dict, table: list) -> str:
        return ", ".join(f"{k}: {v}" for k, v in list(h.items())[:6])

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        rep.section("Sweep: frames and sampling steps",
                    "Solve rate, mean commitment step (solved runs) and candidate mass of x0_hat at step 0. "
                    + cost_text(res.get("cost")))
        rep.image(f"{rel}/sweep.png", "solve rate and early candidate mass vs frames and steps")
        rep.table(res["table"], ["condition", "n", "solve_rate", "ci_low", "ci_high", "commitment_step",
                                 "candidates_step0", "max_off_branches"])


def _kind(table: list, kind: str) -> list[dict]:
    return [r for r in table if r["condition"].startswith(kind)]


def _best_needed(rows: list[dict], what: str) -> str | None:
    return rate_excludes_floor(max(rows, key=lambda r: r["ci_low"] or 0.0) if rows else None, what)


def _frame_range(table: list) -> tuple[float, float]:
    rates = [r["solve_rate"] for r in _kind(table, "frames")]
    return min(rates), max(rates)


def _frames_rule(table: list) -> bool | None:
    if not _kind(table, "frames"):
        return NOT_TESTED
    lo, hi = _frame_range(table)
    return hi - lo <= 0.1


def _steps(table: list) -> list[dict]:
    return sorted(_kind(table, "steps"), key=lambda r: r["steps"])


def paired_to_most_steps(table: list, by: dict) -> None:
    """Each row gets the paired difference of success to the most-steps condition on the same samples (mean and
    bootstrap 95% interval; None where it is not a steps condition or nothing pairs): every row the same columns."""
    from ..experiments.stats import paired_bootstrap

    keys = ("delta_vs_most_steps", "delta_ci_low", "delta_ci_high", "pairs")
    for x in table:
        x.update(dict.fromkeys(keys))
    steps = _steps(table)
    if len(steps) < 2:
        return
    most = {r["sample"]: float(r["success"]) for r in by[steps[-1]["condition"]]}
    for x in steps[:-1]:
        pairs = [(float(r["success"]), most[r["sample"]]) for r in by[x["condition"]] if r["sample"] in most]
        if pairs:
            x.update(zip(keys, (*paired_bootstrap(*zip(*pairs)), len(pairs))))


def _steps_rule(table: list) -> bool | None:
    steps = _steps(table)
    return steps[0]["delta_ci_high"] < 0 if len(steps) > 1 else NOT_TESTED


def _steps_needed(table: list) -> str | None:
    """None when the fewest steps' paired difference to the most is determined (below 0, or above -MARGIN)."""
    steps = _steps(table)
    why = rate_excludes_floor(steps[-1] if steps else None, "solve rate at the most steps")
    if why:
        return why
    x = steps[0]
    if x.get("delta_ci_low") is None:
        return "no paired difference (fewest - most steps) recorded"
    if x["delta_ci_high"] < 0 or x["delta_ci_low"] > -MARGIN:
        return None
    return (f"fewest - most steps {x['delta_vs_most_steps']:+.3f} [{x['delta_ci_low']:+.3f}, "
            f"{x['delta_ci_high']:+.3f}] on {x['pairs']} samples: the interval holds 0 and drops over {MARGIN}, so "
            f"neither a loss nor a small one is shown")


def _steps_evidence(table: list) -> str:
    one, most = _steps(table)[0], _steps(table)[-1]
    d = (f"; paired {one['delta_vs_most_steps']:+.3f} [{one['delta_ci_low']:+.3f}, {one['delta_ci_high']:+.3f}]"
         if one.get("delta_ci_low") is not None else "")
    return f"{one['steps']} step(s) {one['solve_rate']:.3f} vs {most['steps']} {most['solve_rate']:.3f}{d}"


PROBE = Sweep()
run, report_section = PROBE.run, PROBE.report_section


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

