"""Probe `plan`: when is a run's plan fixed, and how many plans do seeds hold early? Two hypotheses measured.

"Temporal Backtracking Search" (arXiv 2606.13861, TBS) says the plan is committed at the first denoising step (S1,
S5 and S40 draw the same plan) and that failures appear early in a video, so search should go along time; the study
steplens reproduces ("Demystifying Video Reasoning", arXiv 2603.16870) says several candidates are held early and one
late. Per family and model, on N seeds of every sample (`n_seeds`; seed j of a sample is its seed + j * SEED_STRIDE):

- *the plan at step k*: the answer x0_hat's final frame draws at step k. Where the task lists two or more candidate
  answers (`steplens.tasks.candidates`), the strongest one when it is held (strength >= `steplens.cos.HOLD`, the
  strength `steplens.cos.candidate_strengths` measures), else "none" (no answer drawn yet). Elsewhere (one answer:
  a plain maze) the plan is the set of pixels x0_hat draws differently from the first frame (snapped to the task's
  palette where it has one, else changed by more than CHANGE_THRESHOLD), and two plans are the same when their
  intersection over union is >= PLAN_IOU (two empty sets: the same, "none");
- *plan agreement at step k*: the share of runs (sample x seed) whose plan at step k equals the final plan (that of
  the output video's last frame), with its Wilson 95% interval, at k = 0, 1, 2, 4, 8, 10, 16, ... and the last step;
- *plan diversity at step k*: distinct plans drawn ("none" not counted) among the N seeds of one sample, their mean
  over samples and the share of samples with two or more (what step-axis search can choose among);
- *time of first error*: for a failed run (the scorer's verdict on the output), the first frame t at which the video
  cut there, video[:t + 1], fails the checker (`steplens.tasks.partial_checks`: frames before the last by the task's
  `check_partial` hook, the last by its `check`); its distribution over t / (T - 1). A family without a
  `check_partial` hook cannot judge single frames: its time of first error is "undetermined", said so.

Each row also keeps σ at every measured step, so that a few-step student and its teacher (`--model
tiny-reasoner-4step` against `tiny-reasoner`) are compared at matched σ (`at_matched_sigma`).

Two claims, judged per family (the rules below, as code and text): "the plan is fixed at the first step" (TBS) and
"several candidates early, one late" (the study).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import cos
from ..experiments.evaluate import score_videos
from ..experiments.grid import seeds_of
from ..experiments.stats import wilson
from ..hooks import Hooks
from ..io.video import to_rgb, to_uint8
from ..regions import CHANGE_THRESHOLD, change, snap
from ..reports.page import Report
from ..reports.plots import save
from ..tape import forwards
from ..tasks import candidates, palette, partial_checks
from .base import ProbeBase, ProbeSettings, cost_text
from .contract import DOES_NOT_HOLD, HOLDS, NOT_TESTED, UNDETERMINED, Branch, Claim, PlanShape, ProbeRun, StudyPart

TBS = "Temporal Backtracking Search, arXiv 2606.13861"
SEED_STRIDE = 1_000_003  # seed j of a sample: the sample's seed + j * SEED_STRIDE
MAX_SEEDS = 64
PLAN_IOU = 0.9  # two pixel-set plans are the same plan when their IoU reaches this
AGREE, FLOOR = 0.9, 0.8  # "fixed": agreement >= AGREE with its Wilson lower bound >= FLOOR
SEVERAL = 0.5  # "several early": the share of samples whose seeds draw >= 2 plans at step 0 above this
MIN_RUNS, MIN_SAMPLES = 20, 10  # fewer runs (or samples, for diversity): undetermined
EARLY = 0.2  # the first fifth of a video (TBS: 72-78% of failures appear there)


def default_ks(steps: int) -> list[int]:
    """0, 1, 2, 4, 8, ... and 10 below `steps`, and the last step."""
    ks = {0, steps - 1} | {2 ** i for i in range(12) if 2 ** i < steps} | ({10} if 10 < steps else set())
    return sorted(ks)


def check_options(steps: int | None, n_seeds=4, ks=None, teacher: str | None = None) -> dict:
    """The probe's own options, checked before any model loads (ValueError naming the value and what is allowed).
    `teacher`: a model run beside this one on the same samples and seeds, at its own sampling, measured at the steps
    nearest in σ to this model's (a few-step student's teacher)."""
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or not 1 <= n_seeds <= MAX_SEEDS:
        raise ValueError(f"plan probe: --n-seeds {n_seeds!r}; allowed: an integer from 1 to {MAX_SEEDS} (seeds per "
                         f"sample; plan diversity needs 2 or more)")
    if ks is not None:
        ks = [int(k) for k in ks]
        bad = [k for k in ks if k < 0 or (steps is not None and k >= steps)]
        if not ks or bad or len(set(ks)) != len(ks):
            where = f"0..{steps - 1} (this run has {steps} steps)" if steps is not None else "steps >= 0"
            raise ValueError(f"plan probe: steps to measure {ks}; allowed: distinct {where}")
        ks = sorted(ks)
    elif steps is not None:
        ks = default_ks(steps)
    if teacher is not None:
        from ..models.load import SHIPPED, identity_of

        if not isinstance(teacher, str) or (teacher not in SHIPPED and "weights_sha256" not in identity_of(teacher)):
            raise ValueError(f"plan probe: --teacher {teacher!r} is not a model steplens can load here; allowed: "
                             f"{', '.join(SHIPPED)} or a .safetensors weights file (an embedded model)")
    return {"n_seeds": int(n_seeds), "ks": ks, **({"teacher": teacher} if teacher is not None else {})}


# -- plans -------------------------------------------------------------------------------------------------------

def _mask(frame: np.ndarray, first: np.ndarray, pal) -> np.ndarray:
    if pal is not None:
        return snap(frame, pal) != snap(first, pal)
    return change(frame, first) > CHANGE_THRESHOLD


def plan_of(frame: np.ndarray, sample, listed, pal):
    """The plan a frame (H, W, 3, 0..255, native size) draws: a candidate's index or None (with two or more
    candidates listed), else the (H, W) bool mask of drawn pixels."""
    first = sample.first_frame
    if listed is not None and len(listed) >= 2:
        st = cos.candidate_strengths(np.clip(frame, 0, 255), first, [c.frame for c in listed])
        top = int(np.argmax(st))
        return top if st[top] >= cos.HOLD else None
    return _mask(np.clip(frame, 0, 255), first, pal)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def same_plan(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return iou(a, b) >= PLAN_IOU
    return a == b


def distinct_plans(plans: list) -> int:
    """Distinct drawn plans among seeds ("none", an empty mask, not counted); masks grouped greedily by IoU."""
    drawn = [p for p in plans if (p.any() if isinstance(p, np.ndarray) else p is not None)]
    groups: list = []
    for p in drawn:
        if not any(same_plan(p, g) for g in groups):
            groups.append(p)
    return len(groups)


def _drawn(p) -> bool:
    return bool(p.any()) if isinstance(p, np.ndarray) else p is not None


def first_error(checks: list[bool] | None):
    """The first frame the checker rejects; None when none does; "undetermined" when frames cannot be judged."""
    if checks is None:
        return UNDETERMINED
    return next((t for t, ok in enumerate(checks) if not ok), None)


# -- the batch ---------------------------------------------------------------------------------------------------

def plan_rows(model, batch, settings: ProbeSettings, n_seeds: int, ks: list[int]) -> list[dict]:
    """One row per sample: its N seeds sampled, x0_hat decoded at the steps `ks`, plans, agreement, diversity and
    the time of first error of each failed seed."""
    scorers = settings.scorers()
    listed = [candidates(s) for s in batch]
    pals = [palette(s) for s in batch]
    per = [{"plans": [], "finals": [], "scores": [], "first_error": []} for _ in batch]
    sigmas: list[float] = []
    frames = 0
    sampling = settings.sampling_for(model)
    for j in range(n_seeds):
        sig: list[float] = []
        hooks = Hooks(model, sampling.steps).record("x0", steps=ks, branch="cond")
        seeds = [s + j * SEED_STRIDE for s in seeds_of(batch)]
        with hooks:
            lat = model.generate(batch, seeds, settings.frames, sampling, hooks=hooks,
                                 callback=lambda st: sig.append(round(float(st.sigma), 6)))
        sigmas = [sig[k] for k in ks]
        videos = [to_uint8(v) for v in model.decode(lat)]
        frames = len(videos[0])
        scored = score_videos(batch, videos, scorers)
        x0 = {k: model.decode(hooks.get("x0", k)) for k in ks}  # (B, C, T, H, W) each
        for b, s in enumerate(batch):
            at = [plan_of(to_rgb(x0[k][b].movedim(1, 0))[-1], s, listed[b], pals[b]) for k in ks]
            final = plan_of(videos[b][-1].astype(np.float32), s, listed[b], pals[b])
            per[b]["plans"].append(at)
            per[b]["finals"].append(final)
            per[b]["scores"].append(scored[b])
            per[b]["first_error"].append(None if scored[b]["success"] else first_error(partial_checks(videos[b], s)))
    rows = []
    for b, s in enumerate(batch):
        p = per[b]
        kind = "candidates" if listed[b] is not None and len(listed[b]) >= 2 else "pixels"
        judged = partial_checks(s.first_frame[None], s) is not None
        rows.append({
            "task": s.task, "success": p["scores"][0]["success"], "score": p["scores"][0]["score"],
            "successes": [x["success"] for x in p["scores"]], "plan_kind": kind, "ks": list(ks), "sigmas": sigmas,
            "agree": [[same_plan(a, f) for a in at] for at, f in zip(p["plans"], p["finals"])],
            "drawn": [[_drawn(a) for a in at] for at in p["plans"]],
            "distinct": [distinct_plans([at[i] for at in p["plans"]]) for i in range(len(ks))],
            "distinct_final": distinct_plans(p["finals"]),
            "first_error": [None if e == UNDETERMINED else e for e in p["first_error"]],
            "judges_frames": judged, "frames": frames})
    return rows


# -- the summary -------------------------------------------------------------------------------------------------

def _interval(k: int, n: int) -> tuple[float | None, float | None, float | None]:
    if not n:
        return None, None, None
    lo, hi = wilson(k, n)
    return k / n, lo, hi


def family_table(rows: list[dict]) -> list[dict]:
    """One row per measured step k of one family's rows: agreement (runs), drawn share, diversity (samples)."""
    out = []
    ks = rows[0]["ks"]
    for i, k in enumerate(ks):
        agree = [a[i] for r in rows for a in r["agree"]]
        drawn = [d[i] for r in rows for d in r["drawn"]]
        several = [r["distinct"][i] >= 2 for r in rows] if len(rows[0]["agree"]) >= 2 else []
        rate, lo, hi = _interval(sum(agree), len(agree))
        srate, slo, shi = _interval(sum(several), len(several))
        out.append({"family": rows[0]["task"], "k": k, "sigma": rows[0]["sigmas"][i], "runs": len(agree),
                    "agreement": rate, "agree_low": lo, "agree_high": hi,
                    "drawn": sum(drawn) / len(drawn) if drawn else None,
                    "diversity": float(np.mean([r["distinct"][i] for r in rows])), "samples": len(rows),
                    "several": srate, "several_low": slo, "several_high": shi})
    return out


def first_error_summary(rows: list[dict]) -> dict:
    """The time of first error of one family's failed runs: per frame counts and their fraction of the video."""
    failed = [(r, j) for r in rows for j, ok in enumerate(r["successes"]) if not ok]
    if not rows[0]["judges_frames"]:
        return {"failed": len(failed), "state": UNDETERMINED,
                "why": f"{rows[0]['task']} cannot judge single frames (its task has no check_partial hook)"}
    frames = rows[0]["frames"]
    at = [r["first_error"][j] for r, j in failed if r["first_error"][j] is not None]
    fractions = [t / max(frames - 1, 1) for t in at]
    early, lo, hi = _interval(sum(f <= EARLY for f in fractions), len(fractions))
    return {"failed": len(failed), "state": "measured", "rejected": len(at), "not_rejected": len(failed) - len(at),
            "frames": frames, "histogram": [at.count(t) for t in range(frames)],
            "median_fraction": float(np.median(fractions)) if fractions else None,
            "mean_fraction": float(np.mean(fractions)) if fractions else None,
            "early_share": early, "early_low": lo, "early_high": hi}


def _at(table: list[dict], family: str, k) -> dict | None:
    rows = [r for r in table if r.get("family") == family and "k" in r]
    if k == "last":
        return max(rows, key=lambda r: r["k"]) if rows else None
    return next((r for r in rows if r["k"] == k), None)


def fixed_verdict(table: list[dict], family: str) -> tuple[object, str]:
    """TBS, "the plan is fixed at the first step": (state, numbers)."""
    rows = [r for r in (_at(table, family, 0), _at(table, family, 1)) if r is not None]
    text = "; ".join(f"agreement at step {r['k']} {r['agreement']:.3f} [{r['agree_low']:.3f}, {r['agree_high']:.3f}] "
                     f"over {r['runs']} runs" for r in rows if r["agreement"] is not None)
    if not rows or rows[0]["runs"] < MIN_RUNS:
        return UNDETERMINED, f"fewer than {MIN_RUNS} runs" + (f" ({text})" if text else "")
    if any(r["agreement"] >= AGREE and r["agree_low"] >= FLOOR for r in rows):
        return HOLDS, text
    if all(r["agree_high"] < AGREE for r in rows):
        return DOES_NOT_HOLD, text
    return UNDETERMINED, f"the interval straddles the rule ({text})"


def several_verdict(table: list[dict], family: str) -> tuple[object, str]:
    """The study, "several candidates early, one late": (state, numbers)."""
    first, last = _at(table, family, 0), _at(table, family, "last")
    if first is None or first["several"] is None:
        return UNDETERMINED, "plan diversity needs 2 or more seeds per sample (--n-seeds)"
    text = (f"samples whose seeds draw >= 2 plans at step 0: {first['several']:.3f} [{first['several_low']:.3f}, "
            f"{first['several_high']:.3f}] of {first['samples']} (mean distinct {first['diversity']:.2f}); agreement "
            f"at step 0 {first['agreement']:.3f}, at step {last['k']} {last['agreement']:.3f} "
            f"[{last['agree_low']:.3f}, {last['agree_high']:.3f}]")
    if first["samples"] < MIN_SAMPLES or last["runs"] < MIN_RUNS:
        return UNDETERMINED, f"fewer than {MIN_SAMPLES} samples or {MIN_RUNS} runs ({text})"
    if first["several_high"] < SEVERAL or last["agree_high"] < FLOOR:
        return DOES_NOT_HOLD, text
    if first["several_low"] > SEVERAL and last["agree_low"] >= FLOOR and last["agreement"] > first["agreement"]:
        return HOLDS, text
    return UNDETERMINED, f"an interval straddles the rule ({text})"


VERDICTS = {"plan-first-step": fixed_verdict, "plan-several-early": several_verdict}


def _families(table: list) -> list[str]:
    return sorted({r["family"] for r in table if "k" in r})


def _verdicts(cid: str, table: list) -> dict[str, tuple]:
    return {f: VERDICTS[cid](table, f) for f in _families(table)}


def _rule(cid: str):
    """Over the families measured: does not hold where any family's verdict does not, holds where every one does;
    the rest (some undetermined, none against) is undetermined (`_needs` says why)."""
    def rule(h, table):
        states = [s for s, _ in _verdicts(cid, table).values()]
        if not states:
            return NOT_TESTED
        return DOES_NOT_HOLD if DOES_NOT_HOLD in states else HOLDS
    return rule


def _needs(cid: str):
    def needs(h, table):
        v = _verdicts(cid, table)
        if any(s is DOES_NOT_HOLD for s, _ in v.values()):
            return None
        why = [f"{f}: {t}" for f, (s, t) in v.items() if s == UNDETERMINED]
        return "; ".join(why) or None
    return needs


def _evidence(cid: str):
    return lambda h, table: "; ".join(f"{f}: {state_text(s)}, {t}" for f, (s, t) in _verdicts(cid, table).items())


def state_text(state) -> str:
    return "undetermined" if state == UNDETERMINED else ("holds" if state else "does not hold")


def at_matched_sigma(student: list[dict], teacher: list[dict]) -> list[dict]:
    """Each row of a student's table beside the teacher's row of the same family nearest in σ (ties: the noisier):
    agreement and diversity of both at matched noise level (two results.json tables of this probe)."""
    out = []
    for r in student:
        if "k" not in r:
            continue
        cands = [t for t in teacher if t.get("family") == r["family"] and "k" in t]
        if not cands:
            continue
        t = min(cands, key=lambda t: (abs(t["sigma"] - r["sigma"]), -t["sigma"]))
        out.append({"family": r["family"], "sigma": r["sigma"], "student_k": r["k"], "teacher_k": t["k"],
                    "teacher_sigma": t["sigma"], "student_agreement": r["agreement"],
                    "teacher_agreement": t["agreement"], "student_diversity": r["diversity"],
                    "teacher_diversity": t["diversity"]})
    return out


class PlanProbe(ProbeBase):
    name = "plan"
    description = ("when the plan is fixed: plan agreement with the final plan and plan diversity across seeds at "
                   "step k, and the time of first error of failed videos")
    claims = (
        Claim("plan-first-step", "the plan is fixed at the first step", _rule("plan-first-step"),
              f"per family, agreement with the final plan at step 0 or 1 >= {AGREE} with its Wilson 95% lower bound "
              f">= {FLOOR} (holds); both upper bounds < {AGREE} (does not hold)", _evidence("plan-first-step"),
              _needs("plan-first-step"), f">= {MIN_RUNS} runs per family and an interval on one side of the rule",
              "ours", f"{TBS} (S1, S5 and S40 draw the same plan; no test stated); ours: agreement of the plan x0_hat "
                      f"draws at step 0 (their S1) or step 1 with the final plan"),
        Claim("plan-several-early", "several plans across seeds early, one late", _rule("plan-several-early"),
              f"per family, the share of samples whose N seeds draw >= 2 distinct plans at step 0 has its Wilson 95% "
              f"lower bound > {SEVERAL}, and agreement at the last step has its lower bound >= {FLOOR} and exceeds "
              f"agreement at step 0 (holds); that share's upper bound < {SEVERAL} or the last step's agreement upper "
              f"bound < {FLOOR} (does not hold)", _evidence("plan-several-early"), _needs("plan-several-early"),
              f">= 2 seeds per sample, >= {MIN_SAMPLES} samples and {MIN_RUNS} runs per family, intervals on one "
              f"side of the rule", "ours",
              "Demystifying Video Reasoning, arXiv 2603.16870 (Chain-of-Steps: several candidates early, one "
              "late; no test stated); ours: distinct plans among seeds at step 0, agreement rising to the end"))
    study = StudyPart(count="probe_count", order=70, options=lambda cfg: {"n_seeds": max(2, int(cfg.n_seeds))},
                      summary=lambda res: res["headline"].get("families"))

    def options(self, model, s: ProbeSettings, n_seeds=4, ks=None, teacher=None) -> dict:
        return check_options(s.steps, n_seeds, ks, teacher)

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        o = check_options(s.steps, **{k: options[k] for k in ("n_seeds", "ks", "teacher") if k in options})
        # the teacher runs at its own steps, unknown without loading it: priced at this model's (a lower bound)
        return {"plan": Branch(0, runs=o["n_seeds"]), **({"teacher": Branch(0, runs=o["n_seeds"])}
                                                         if o.get("teacher") else {})}

    def prepare(self, r: ProbeRun) -> None:
        """With a teacher: load it, its own sampling, and its steps nearest in σ to this model's measured steps."""
        if not r.options.get("teacher"):
            return
        from ..experiments.grid import own_sampling
        from ..presets import align_by_sigma, step_sigmas_of
        from ..models.load import load_model

        teacher = load_model(r.options["teacher"])
        mine, theirs = step_sigmas_of(r.model), step_sigmas_of(teacher)
        if mine is None or theirs is None:
            raise ValueError("plan probe: --teacher needs both models' σ grids; a scheduler that keeps its own grid "
                             "cannot be matched by σ")
        near = sorted(set(align_by_sigma([mine[k] for k in r.options["ks"]], theirs)))
        r.state["teacher"] = (teacher, own_sampling(r.settings).for_model(teacher), near)

    def conditions(self, r: ProbeRun) -> dict:
        return {"plan": None, **({"teacher": None} if r.options.get("teacher") else {})}

    def group(self, r: ProbeRun, condition: str):
        return "plan"

    def batch(self, r: ProbeRun):
        def rows(model, batch, settings, ks):  # each model's forwards counted on its own rows (a teacher too)
            with forwards(model) as counter:
                got = plan_rows(model, batch, settings, r.options["n_seeds"], ks)
            per = counter.nfe // max(1, len(got))
            return [{**x, "nfe": per, "nfe_without_reuse": per} for x in got]

        def run(conds, batch):
            got = {}
            if "plan" in conds:
                got["plan"] = rows(r.model, batch, r.settings, r.options["ks"])
            if "teacher" in conds:
                teacher, settings, near = r.state["teacher"]
                got["teacher"] = rows(teacher, batch, settings, near)
            return got
        return run

    def summary(self, r: ProbeRun, by: dict) -> dict:
        res = summarize_plan(by["plan"], r.options["n_seeds"])
        if "teacher" in by:
            t = summarize_plan(by["teacher"], r.options["n_seeds"])
            res["headline"]["teacher"] = {"model": r.options["teacher"], "families": t["headline"]["families"],
                                          "table": t["table"]}
            res["headline"]["matched_sigma"] = at_matched_sigma(res["table"], t["table"])
        return res

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        plot(r.out, res["table"], res["headline"])

    def headline_text(self, h: dict, table: list) -> str:
        parts = []
        for f, v in (h.get("families") or {}).items():
            a = v.get("agreement", {})
            parts.append(f"{f}: agreement k=0 {a.get('0')}, k=1 {a.get('1')}; diversity k=0 "
                         f"{v.get('diversity', {}).get('0')}")
        return "; ".join(parts)

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        rep.section("Plan: when is the plan fixed?",
                    "Agreement: the share of runs whose plan at step k (the answer x0_hat draws) equals the final "
                    "plan (Wilson 95% interval). Diversity: distinct plans among the seeds of one sample. Time of "
                    "first error: the first frame of a failed video the checker rejects. " + cost_text(res.get("cost")))
        rep.image(f"{rel}/plan.png", "plan agreement and diversity against step; time of first error")
        rep.table([r for r in res["table"] if "k" in r],
                  ["family", "k", "sigma", "runs", "agreement", "agree_low", "agree_high", "drawn", "diversity",
                   "several"])
        fe = [{"family": f, **{k: v for k, v in x["first_error"].items() if k != "histogram"}}
              for f, x in res["headline"]["families"].items()]
        rep.table(fe, sorted({k for r in fe for k in r}, key=lambda k: (k != "family", k)))


def summarize_plan(rows: list[dict], n_seeds: int) -> dict:
    table, fams = [], {}
    for f in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == f]
        t = family_table(mine)
        table += t
        runs = [ok for r in mine for ok in r["successes"]]
        rate, lo, hi = _interval(sum(runs), len(runs))
        fams[f] = {"runs": len(runs), "solve_rate": rate, "solve_low": lo, "solve_high": hi,
                   "plan_kind": sorted({r["plan_kind"] for r in mine}),
                   "agreement": {str(x["k"]): round(x["agreement"], 3) for x in t},
                   "diversity": {str(x["k"]): round(x["diversity"], 3) for x in t},
                   "diversity_final": float(np.mean([r["distinct_final"] for r in mine])),
                   "first_error": first_error_summary(mine)}
    for f in fams:
        fams[f]["verdicts"] = {cid: state_text(fn(table, f)[0]) for cid, fn in VERDICTS.items()}
    return {"headline": {"n_seeds": n_seeds, "families": fams}, "table": table}


PROBE = PlanProbe()
run, report_section = PROBE.run, PROBE.report_section


def plot(out: Path, table: list[dict], headline: dict) -> None:
    import matplotlib.pyplot as plt

    fams = _families(table)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for f in fams:
        rows = sorted((r for r in table if r.get("family") == f and "k" in r), key=lambda r: r["k"])
        k = [r["k"] for r in rows]
        axes[0].plot(k, [r["agreement"] for r in rows], "o-", label=f)
        axes[0].fill_between(k, [r["agree_low"] for r in rows], [r["agree_high"] for r in rows], alpha=0.15)
        axes[1].plot(k, [r["diversity"] for r in rows], "s-", label=f)
        fe = headline["families"][f]["first_error"]
        if fe.get("histogram"):
            n = len(fe["histogram"])
            axes[2].plot(np.arange(n) / max(n - 1, 1), fe["histogram"], "^-", label=f)
    axes[0].set(xlabel="step k", ylabel="plan agreement with the final plan", ylim=(-0.02, 1.02))
    axes[1].set(xlabel="step k", ylabel="distinct plans among seeds")
    axes[2].set(xlabel="first rejected frame / (T - 1)", ylabel="failed runs")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, Path(out) / "plan.png")
