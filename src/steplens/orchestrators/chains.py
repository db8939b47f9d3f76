"""Two chains of steps compared at matched noise level: a few-step student and its teacher (or any two models).

A teacher and a student share no step index; they share σ, the noise level x_s sits at. For every sample (the same
samples and seeds for both, each model at its own sampling: the student's σ list, the teacher's steps) the x0_hat
of every step is decoded and measured (steplens.cos): the answers it holds (`candidates_held`, where the task lists
its answers), the pixels it proposes to change (`candidate_mass`), whether it is already right; then per run the σ
at which the answer commits (the σ of the commitment step), the answers held early (the most held at any step with
σ >= EARLY_SIGMA), self-corrections, the final solve and score.

`compare_chains(student, teacher, out, settings)` runs both into one resumable folder (a results store keyed by
(model role, sample); a larger --count grows it), writes results.json, chains.csv and chains.png (both chains on one
σ axis), and judges the claim of "Demystifying Video Reasoning" (arXiv 2603.16870) that aggressive step
compression collapses the exploration phase: on this family the student holds fewer answers early AND commits at a
higher σ than the teacher, each a paired difference whose bootstrap 95% interval excludes 0 (our rule: the study
states the finding, not a test). `align_by_sigma` pairs each student step with the teacher step nearest in σ
(the step viewer's side-by-side).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import cos
from ..contract import identity
from ..hooks import Hooks
from ..io.video import to_rgb, to_uint8
from ..presets import align_by_sigma, own, resolve, sampling_of, step_sigmas_of
from ..tape import forwards
from ..tasks import Sample, answer_region, candidates
from ..experiments.dist import is_writer
from ..experiments.evaluate import score_videos
from ..experiments.grid import ExperimentSettings, own_sampling, load_samples, open_store, rows_of, run_grid, seeds_of, write_results
from ..experiments.stats import summarize

EARLY_SIGMA = 0.9  # "early": the steps whose x_s is at least this noisy
ROLES = ("teacher", "student")
MIN_RUNS = 10  # fewer runs with a measure than this in either model: the claim is undetermined
RULE = ("student - teacher, paired 95% intervals: answers held early below 0 and commitment σ above 0 holds; either "
        "on the other side of 0 does not; an interval holding 0 is undetermined")
LOSS_RULE = ("solve-rate change (student - teacher) on families with several right answers minus on those with one: "
             "95% interval below 0 holds, above 0 does not, holding 0 undetermined")


def chain_rows(model, batch: list[Sample], scorers) -> list[dict]:
    """One row per sample: the final answer scored, and the x0_hat chain measured per step against σ."""
    samp = resolve(model)  # each model at its own sampling
    sigmas: list[float] = []
    hooks = Hooks(model, samp.steps).record("x0", branch="cond")
    with hooks, forwards(model) as counter:
        lat = model.generate(batch, seeds_of(batch), sampling=samp, hooks=hooks,
                             callback=lambda st: sigmas.append(round(float(st.sigma), 6)))  # float32 σ: 0.9 not 0.8999999
    rows = score_videos(batch, [to_uint8(v) for v in model.decode(lat)], scorers)
    steps = sorted({k[1] for k in hooks.records if k[0] == "x0"})
    videos = np.stack([np.stack([to_rgb(p.movedim(1, 0)) for p in model.decode(hooks.get("x0", k))]) for k in steps], 1)
    for b, (s, row) in enumerate(zip(batch, rows)):
        cands = candidates(s)
        m = cos.step_metrics(videos[b], s, scorers.for_sample(s), answer_region(s), candidates=cands)
        ok = [x["success"] for x in m]
        commit = cos.commitment_step(ok)
        held = [x["candidates_held"] for x in m] if cands else None
        row.update(nfe=counter.nfe // len(batch), nfe_without_reuse=counter.without_reuse // len(batch),
                   sigmas=sigmas, step_success=ok, mass=[x["candidate_mass"] for x in m], held=held,
                   commit_sigma=sigmas[commit] if commit is not None else None,
                   right_answers=sum(c.right for c in cands) if cands else None,
                   self_correction=cos.behaviours(m)["self_correction"])
    return rows


def _paired(a: list, b: list, seed: int = 0, n_boot: int = 2000) -> dict | None:
    """Mean of a - b over the pairs where both are measured, with a bootstrap 95% interval."""
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None], float)
    if len(d) == 0:
        return None
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    return {"n": int(len(d)), "mean": float(d.mean()), "ci_low": float(np.quantile(boots, 0.025)),
            "ci_high": float(np.quantile(boots, 0.975))}


def early_pairs(student: dict, teacher: dict) -> tuple[float | None, float | None, float, float]:
    """One sample's early chain at matched σ: the answers each model holds and the candidate mass, averaged over
    the student's steps at σ >= EARLY_SIGMA and the teacher's steps nearest those σ (so that a chain with more
    early steps is not favoured): (student held, teacher held, student mass, teacher mass)."""
    early = [i for i, sg in enumerate(student["sigmas"]) if sg >= EARLY_SIGMA] or [0]
    near = align_by_sigma([student["sigmas"][i] for i in early], teacher["sigmas"])
    held = (float(np.mean([student["held"][i] for i in early])), float(np.mean([teacher["held"][j] for j in near]))) \
        if student.get("held") is not None and teacher.get("held") is not None else (None, None)
    return (*held, float(np.mean([student["mass"][i] for i in early])),
            float(np.mean([teacher["mass"][j] for j in near])))


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def _curve(rows: list[dict], key: str) -> dict | None:
    """The mean of a per-step list across runs, against σ (every run of one model shares its σ list)."""
    got = [r[key] for r in rows if r.get(key) is not None]
    if not got:
        return None
    return {"sigma": rows[0]["sigmas"], "mean": np.mean(np.array(got, float), 0).round(4).tolist()}


def verdict(fam: dict) -> dict:
    """The claim on one family: the student holds fewer answers early and commits at a higher σ (see module doc)."""
    held, commit = fam["early_held_diff"], fam["commit_sigma_diff"]
    if held is None:
        return {"state": "undetermined", "why": "the task lists no candidate answers, so answers held are not counted",
                "rule": RULE}
    if commit is None or commit["n"] < MIN_RUNS:
        n = 0 if commit is None else commit["n"]
        return {"state": "undetermined", "why": f"{n} samples where both models commit to a right answer "
                                                f"(the rule needs >= {MIN_RUNS})", "rule": RULE}
    if held["n"] < MIN_RUNS:
        return {"state": "undetermined", "why": f"{held['n']} samples with answers held counted in both models (the "
                                                f"rule needs >= {MIN_RUNS})", "rule": RULE}
    text = (f"answers held at σ >= {EARLY_SIGMA}: student - teacher {held['mean']:+.2f} [{held['ci_low']:+.2f}, "
            f"{held['ci_high']:+.2f}]; commitment σ: {commit['mean']:+.3f} [{commit['ci_low']:+.3f}, "
            f"{commit['ci_high']:+.3f}], on {commit['n']} samples")
    if held["ci_high"] < 0 and commit["ci_low"] > 0:
        return {"state": "holds", "why": text, "rule": RULE}
    if held["ci_low"] > 0 or commit["ci_high"] < 0:  # an interval on the other side of 0: the evidence is against
        return {"state": "does not hold", "why": text, "rule": RULE}
    return {"state": "undetermined", "why": f"a 95% interval holds 0, so neither difference is determined: {text}",
            "rule": RULE}


def summarize_chains(rows: dict[str, list[dict]]) -> dict:
    """Per family: each model's solve rate, mean score, answers held early, commitment σ, curves against σ; the
    paired student - teacher differences and the claim's verdict."""
    families = sorted({r["task"] for rs in rows.values() for r in rs})
    out = {}
    for f in families:
        by = {role: [r for r in rows[role] if r["task"] == f] for role in ROLES}
        teacher_of = {r["sample"]: r for r in by["teacher"]}
        s = [r for r in by["student"] if r["sample"] in teacher_of]  # the samples both ran, paired
        t = [teacher_of[r["sample"]] for r in s]
        by = {"teacher": t, "student": s}
        early = [early_pairs(a, b) for a, b in zip(s, t)]
        fam = {}
        for k, (role, rs) in enumerate(by.items()):
            fam[role] = {**summarize(rs), "early_held": _mean(e[1 - k] for e in early),
                         "early_mass": _mean(e[3 - k] for e in early),
                         "commit_sigma": _mean(r["commit_sigma"] for r in rs),
                         "committed": sum(r["commit_sigma"] is not None for r in rs),
                         "self_corrections": int(sum(r["self_correction"] for r in rs)),
                         "held_curve": _curve(rs, "held"), "mass_curve": _curve(rs, "mass"),
                         "right_curve": _curve([{**r, "ok": [float(x) for x in r["step_success"]]} for r in rs], "ok")}
        fam["early_held_diff"] = _paired([e[0] for e in early], [e[1] for e in early])
        fam["commit_sigma_diff"] = _paired([r["commit_sigma"] for r in s], [r["commit_sigma"] for r in t])
        fam["solve_diff"] = _paired([float(r["success"]) for r in s], [float(r["success"]) for r in t])
        fam["several_right"] = bool((_mean(r["right_answers"] for r in t) or 0) > 1.5)
        fam["verdict"] = verdict(fam)
        out[f] = fam
    return out


def exploration_loss(families: dict) -> dict:
    """The claim's second half: the student loses most (solve rate, student - teacher) on the families with several
    right answers. The mean paired change over those families minus the mean over families with one right answer,
    with a 95% interval from each family's own (normal, its bootstrap interval's width / 3.92 as the standard
    error): holds when the interval lies below 0. Undetermined without families of both kinds."""
    def group(several: bool) -> dict:
        return {f: v["solve_diff"] for f, v in families.items() if v["several_right"] == several and v["solve_diff"]}

    many, one = group(True), group(False)
    if not many or not one:
        return {"state": "undetermined", "why": "needs families with several right answers and families with one"}

    def mean_se(g: dict) -> tuple[float, float]:
        se = [(d["ci_high"] - d["ci_low"]) / 3.92 for d in g.values()]
        return float(np.mean([d["mean"] for d in g.values()])), float(np.sqrt(np.sum(np.square(se)))) / len(g)

    (a, sa), (b, sb) = mean_se(many), mean_se(one)
    d, se = a - b, float(np.hypot(sa, sb))
    lo, hi = d - 1.96 * se, d + 1.96 * se
    n = sum(v["n"] for g in (many, one) for v in g.values())
    text = (f"mean solve-rate change, student - teacher: {a:+.3f} on families with several right answers "
            f"({', '.join(many)}) vs {b:+.3f} on those with one ({', '.join(one)}); difference {d:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}] on {n} samples")
    state = "holds" if hi < 0 else "does not hold" if lo > 0 else "undetermined"
    if state == "undetermined":
        text = f"the 95% interval holds 0, so the difference is not determined either way: {text}"
    return {"state": state, "difference": d, "ci_low": lo, "ci_high": hi, "why": text, "rule": LOSS_RULE}


UNMATCHED = {"rows": [], "why": "a model's scheduler keeps its own σ grid: steps cannot be matched by σ here"}


def matched_runs(student, teacher) -> list[tuple[str, str, object, str, dict]]:
    """The probe runs of the comparison at matched σ, in order: (probe, role, model, folder under the family's
    chains folder, the probe's options): the noise probe on each model (every student step, the teacher steps
    nearest their σ), then per student step k the energy probe at k and at the teacher step nearest its σ. What
    `noise_at_matched_sigma` and `energy_at_matched_sigma` run, and what `--plan` prices (a folder named twice runs
    once: the second resumes it). [] where a scheduler keeps its own σ grid."""
    s_sig, t_sig = step_sigmas_of(student), step_sigmas_of(teacher)
    if s_sig is None or t_sig is None:
        return []
    near = align_by_sigma(s_sig, t_sig)
    runs = [("noise", role, m, f"noise-{role}", {"steps": steps, "mix_strengths": (), "frame_steps": [steps[0]]})
            for role, m, steps in (("student", student, list(range(len(s_sig)))),
                                   ("teacher", teacher, sorted(set(near))))]
    for k, j in enumerate(near):
        runs += [("energy", role, m, f"energy-{role}/step-{step}", {"steps": [step]})
                 for role, m, step in (("student", student, k), ("teacher", teacher, j))]
    return runs


def noise_at_matched_sigma(student, teacher, out: Path, settings: ExperimentSettings, progress: bool = True) -> dict:
    """The noise probe's "noise at step k" on both models at matched σ: at every student step, and at the teacher
    steps nearest those σ (each model at its own sampling; the noise probe's frame and mix conditions left out);
    under OUT/noise-student and OUT/noise-teacher. Returns {"rows": one per student step, "why": ...}."""
    from ..probes import get_probe

    s_sig, t_sig = step_sigmas_of(student), step_sigmas_of(teacher)
    if s_sig is None or t_sig is None:
        return UNMATCHED
    near = align_by_sigma(s_sig, t_sig)
    noise = get_probe("noise")
    base = own_sampling(settings)
    got = {}
    for _, role, m, where, options in (r for r in matched_runs(student, teacher) if r[0] == "noise"):
        res = noise.run(m, Path(out) / where, base, progress=progress, **options)
        if res is None:  # a launch's other processes
            return {"rows": [], "why": "written by rank 0"}
        got[role] = {x["condition"]: x for x in res["table"]}
    rows = [{"sigma": sg, "student_step": k, "student_solve_rate": got["student"][f"step {k}"]["solve_rate"],
             "teacher_step": j, "teacher_sigma": t_sig[j],
             "teacher_solve_rate": got["teacher"][f"step {j}"]["solve_rate"],
             "student_clean": got["student"]["clean"]["solve_rate"], "teacher_clean": got["teacher"]["clean"]["solve_rate"]}
            for k, (sg, j) in enumerate(zip(s_sig, near))]
    return {"rows": rows, "why": None}


def energy_at_matched_sigma(student, teacher, out: Path, settings: ExperimentSettings, progress: bool = True) -> dict:
    """The energy probe (per block: the answer region's token energy over the background's) at matched σ: at every
    student step, and at the teacher step nearest its σ, one energy run per step (OUT/energy-<role>/step-<k>).
    Returns {"rows": per student step, each model's ratio per block and its top block, "why": ...}."""
    from ..probes import get_probe

    s_sig, t_sig = step_sigmas_of(student), step_sigmas_of(teacher)
    if s_sig is None or t_sig is None:
        return UNMATCHED
    near = align_by_sigma(s_sig, t_sig)
    energy = get_probe("energy")
    base = own_sampling(settings)
    rows = []
    runs = [r for r in matched_runs(student, teacher) if r[0] == "energy"]  # per student step: student, teacher
    for k, (sg, j) in enumerate(zip(s_sig, near)):
        row = {"sigma": sg, "student_step": k, "teacher_step": j, "teacher_sigma": t_sig[j]}
        for _, role, m, where, options in runs[2 * k: 2 * k + 2]:
            res = energy.run(m, Path(out) / where, base, progress=progress, **options)
            if res is None:  # a launch's other processes
                return {"rows": [], "why": "written by rank 0"}
            ratios = res["headline"]["ratios"]
            top = max(ratios, key=lambda b: ratios[b])
            row.update({f"{role}_ratios": ratios, f"{role}_top_block": top, f"{role}_top_ratio": ratios[top]})
        rows.append(row)
    return {"rows": rows, "why": None}


def compare_chains(student, teacher, out: Path, settings: ExperimentSettings, progress: bool = True) -> dict | None:
    """Both models on the same samples and seeds, each at its own sampling, into `out` (resumable; under a launcher
    each process runs its share, and rank 0 writes and returns the summary, the others None)."""
    common = set(student.trained_tasks) & set(teacher.trained_tasks)
    if student.trained_tasks and teacher.trained_tasks and not common:
        raise ValueError(f"the student {student.name!r} ({', '.join(student.trained_tasks)}) and the teacher "
                         f"{teacher.name!r} ({', '.join(teacher.trained_tasks)}) share no trained task")
    samples = load_samples(student, settings)
    scorers = settings.scorers()
    models = {"teacher": teacher, "student": student}
    config = {**settings.describe(), "teacher": {**identity(teacher), "sampling": sampling_of(teacher)},
              "student": {**identity(student), "sampling": sampling_of(student)}}
    for k in ("steps", "shift", "guidance"):  # each model samples at its own
        config.pop(k, None)
    store = open_store(out, "chains", config)

    def run(conds, batch):
        return {c: chain_rows(models[c], batch, scorers) for c in conds}
    run_grid(store, list(ROLES), samples, settings.batch, run, group=lambda c: 0, desc="chains", progress=progress)
    if not is_writer():  # a process of a launch other than rank 0: it ran its share; rank 0 writes
        return None
    rows = {c: rows_of(store, c, samples) for c in ROLES}
    families = summarize_chains(rows)
    headline = {"families": families, "exploration_loss": exploration_loss(families),
                "aligned": align_by_sigma(rows["student"][0]["sigmas"], rows["teacher"][0]["sigmas"])}
    table = [{"family": f, "model": role, "n": v[role]["n"], "solve_rate": v[role]["solve_rate"],
              "ci_low": v[role]["ci_low"], "ci_high": v[role]["ci_high"], "mean_score": v[role]["mean_score"],
              "early_held": v[role]["early_held"], "commit_sigma": v[role]["commit_sigma"],
              "self_corrections": v[role]["self_corrections"], "claim": v["verdict"]["state"]}
             for f, v in families.items() for role in ROLES]
    counted = [r for role in ROLES for r in rows[role] if r.get("nfe") is not None]  # rows of older runs: uncounted
    cost = {"nfe": sum(r["nfe"] for r in counted), "nfe_without_reuse": sum(r["nfe_without_reuse"] for r in counted)}
    write_results(out, "chains", settings, config, table, headline, samples=len(samples), cost=cost,
                  scored_by=scorers.used(samples))
    plot(out, families)
    write_report(out, student, teacher, samples, families, headline["exploration_loss"], scorers)
    return {"headline": headline, "table": table}


def write_report(out: Path, student, teacher, samples: list[Sample], families: dict, loss: dict, scorers) -> Path:
    """report.html: per family the claim's verdict, both models' numbers, the chains on one σ axis, and one sample's
    x0_hat steps, the student's beside the teacher's at the nearest σ (the teacher's viewer follows the student's)."""
    from ..reports.page import Report
    from ..reports.traces import write_trace
    from ..reports.viewer import CSS, JS, paired_viewer, trace_viewer
    from ..trace import trace

    out = Path(out)
    rep = Report(f"steplens chains: {student.name} (student) against {teacher.name} (teacher), at matched σ")
    n_s, n_t = sampling_of(student)["steps"], sampling_of(teacher)["steps"]
    rep.text(f"Each model samples at its own settings ({student.name}: {n_s} steps; {teacher.name}: {n_t} steps) on the "
             f"same samples and seeds. Steps are compared by σ, the noise level of x_s. The claim (arXiv 2603.16870, "
             f"our rule): step compression collapses the exploration phase: the student holds fewer answers at "
             f"σ >= {EARLY_SIGMA} and commits at a higher σ, each paired difference's bootstrap 95% interval "
             f"excluding 0.")
    rep.text(f"Loses most where exploration matters: {loss['state']} ({loss['why']})" +
             (f" (rule: {loss['rule']})." if loss.get("rule") else "."))
    rep.image("chains.png", "answers held, candidate mass and share right against σ (teacher solid, student dashed)")
    rep.link("results.json", "results.json: every number of this report")
    for f, fam in families.items():
        rep.section(f"{f}: {fam['verdict']['state']}", fam["verdict"]["why"] + (
            f" (rule: {fam['verdict']['rule']})" if fam["verdict"].get("rule") else ""))
        rep.table([{"model": role, **{k: fam[role][k] for k in ("n", "solve_rate", "ci_low", "ci_high", "mean_score",
                                                                 "early_held", "commit_sigma", "self_corrections")}}
                   for role in ROLES])
        s = next(x for x in samples if x.task == f)
        views = {}
        for role, m in (("student", student), ("teacher", teacher)):
            tr = trace(m, [s], [int(s.seed)], scorers=scorers,
                       x0_files=[out / "traces" / f / role / "x0.safetensors"])[0]
            geometry = write_trace(tr, out / "traces" / f / role)["viewer"]
            views[role] = (tr, trace_viewer(f"traces/{f}/{role}", geometry, tr.sigmas, tr.metrics, tr.experts,
                                            f"{role}: {s.name}", tr.candidates))
        align = align_by_sigma(views["student"][0].sigmas, views["teacher"][0].sigmas)
        rep.raw(paired_viewer(views["student"][1], views["teacher"][1], align, f"{s.name}: student and teacher"),
                css=CSS, js=JS)
    return rep.write(out / "report.html")


def plot(out: Path, families: dict) -> None:
    """Per family: answers held, candidate mass and the share already right, against σ, both chains on one axis."""
    import matplotlib.pyplot as plt

    from ..reports.plots import save

    fams = list(families)
    fig, axes = plt.subplots(len(fams), 3, figsize=(11, 2.6 * len(fams)), squeeze=False)
    for row, f in zip(axes, fams):
        for role, style in (("teacher", "o-"), ("student", "s--")):
            v = families[f][role]
            for ax, key, label in ((row[0], "held_curve", "answers held"), (row[1], "mass_curve", "candidate mass"),
                                   (row[2], "right_curve", "x0_hat already right")):
                c = v[key]
                if c:
                    ax.plot(c["sigma"], c["mean"], style, ms=3, label=role)
                ax.set_title(f"{f}: {label}", fontsize=8)
                ax.invert_xaxis() if not ax.xaxis_inverted() else None
                ax.axvline(EARLY_SIGMA, color="grey", lw=0.6, ls=":")
        row[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("σ (noise level of x_s)")
    save(fig, Path(out) / "chains.png")
