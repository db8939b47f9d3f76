"""`steplens study`: every experiment of the study on every task family of a model, in one folder and one report.

Per family F (generated held-out samples, seeds from `seed`), each piece a probe folder of its own that resumes
(or grows with a larger count) where it stopped:

- `F/solve-<size>/`: the behaviours probe at the family's default difficulty (solve rate with its Wilson interval,
  commitment step, candidates held early, perception before action, self-corrections), and `F/solve-<size+1>/`
  one notch harder;
- `F/sweep/`: solve rate at 1, 2, 3, 5, 10, 20 and 40 steps and at fewer frames;
- `F/noise/`, `F/propagation/`, `F/energy/`, and `F/swap/` for families whose prompt chooses the answer;
- `compare/F/`: one seed against vote, consensus best-of-N, the oracle, the study's ensemble and the x0_hat
  ensemble, at N seeds, on the `compare_families` families where one seed is weakest;
- `baseline/<model>/F/solve-<size>/`: another model (e.g. tiny-maze) on the families it was trained on.

The parts besides solve are the registered probes that declare a study part (`steplens.probes.contract.StudyPart`:
its count, order, scope, options, what study.json keeps); a plug-in probe that declares one joins the study.

On a folder of samples (`data`: the VBVR-Bench layout `<split>/<task>/<idx>/` or steplens's `<task>/<idx>/`, with
`split` / task filters) each task folder is a family F: `F/solve/` (its first `count` samples, no next difficulty:
that needs the task's generator, said under "Parts skipped"), the parts that apply to its task (`swap` where its
task has a swap pair and steplens drew the samples), each on the folder's first samples; the tables give per task
folder, per split and overall the mean score beside the solve rate (VBVR-Bench reports mean scores), and the
compared families are those with the lowest mean score. Everything about the folder (filters, files, a scorer for
every sample, frame counts) is checked by `folder_families` before a model is needed.

Then `study.json` (every number), `study.md` (the tables) and `report.html`: a family x claim matrix, each of the
study's claims judged per family by the rule its probe states (as `steplens report` does), and links to every run.
The counts: `count` samples for the solve rates, `sweep_count` for the sweep and `compare_count` for the comparison
(both `count` unless given: the sweep costs about nine solve-rate figures, a method of the comparison N of them),
`probe_count` for the intervention probes (noise, propagation, energy, swap), whose cost is a run per condition.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from ..io.files import atomic_write_json, atomic_write_text
from ..presets import own
from ..probes import get_probe, probes
from ..experiments.provenance import RUNTIME, check_resume, record, stage_provenance
from ..io.manifest import MANIFEST, read_record, seal
from ..probes.base import device_kind, floors_section
from ..probes.contract import UNDETERMINED, state_word
from ..probes.registry import claim_rules
from .report_index import read_run
from ..reports.page import Report
from ..tasks import generator_task, next_size, parse_tasks
from ..experiments.dist import is_writer
from ..experiments.grid import ExperimentSettings
from ..experiments.vbvr_scores import FLOORS
from .plan import study_cost

SOLVE = "solve"  # the study's own part: the behaviours probe at the default difficulty and one notch harder
SOLVE_PROBE = "behaviours"
CHAINS = "chains"  # with --baseline: the model's chain of steps against the baseline's at matched σ (a student, its teacher)


def study_probes() -> list:
    """The probes that are parts of the study (those with a `study` part), in the study's order."""
    return sorted((p for p in probes() if p.study is not None), key=lambda p: p.study.order)


def study_parts() -> list[str]:
    """The study's parts: solve, every probe that takes part, in order, and chains (run with a baseline)."""
    return [SOLVE, *(p.name for p in study_probes()), CHAINS]


class StudyConfig(BaseModel):
    tasks: list[str]
    count: int = 500
    probe_count: int = 100
    sweep_count: int | None = None  # None: count; the sweep's 12 conditions run 181 steps a sample against 20
    compare_count: int | None = None  # None: count; each multi-seed method runs N seeds
    seed: int = 0
    steps: int | None = None  # None: the model's own (its sampling_defaults), filled in by run_study
    shift: float | None = None
    guidance: float | None = None
    sampling: dict | None = None  # a pipeline's resolved preset (steplens.presets.Sampling.describe()), if any
    batch: int = 50
    parts: list[str] = Field(default_factory=study_parts)
    compare_families: int = 2
    n_seeds: int = 3
    # a folder of samples (`--data`): each family is a task folder (its name; `<split>/<folder>` where one folder
    # name sits in several of the chosen splits), its first `count` samples per figure; None: generated families
    data: str | None = None
    split: list[str] | None = None
    scorer: str | None = None  # None: each task's own
    threshold: float | None = None

    @field_validator("count", "probe_count", "sweep_count", "compare_count", "steps", "batch", "n_seeds")
    @classmethod
    def _positive(cls, v, info):
        if v is not None and v < 1:
            raise ValueError(f"--{info.field_name.replace('_', '-')} must be >= 1, got {v}")
        return v

    @field_validator("compare_families")
    @classmethod
    def _non_negative(cls, v):
        if v < 0:
            raise ValueError(f"--compare-families must be >= 0, got {v}")
        return v

    @field_validator("parts")
    @classmethod
    def _parts(cls, v):
        allowed = study_parts()
        bad = [p for p in v if p not in allowed]
        if bad:
            raise ValueError(f"unknown study part {bad[0]!r}; allowed: {', '.join(allowed)}")
        if not v:
            raise ValueError(f"--parts names no part; allowed: {', '.join(allowed)}")
        return v

    @model_validator(mode="after")
    def _counts(self):
        self.sweep_count = self.sweep_count or self.count
        self.compare_count = self.compare_count or self.count
        return self

    @model_validator(mode="after")
    def _weakest_needs_solve(self):
        for p in study_probes():
            if p.study.scope == "weakest" and p.name in self.parts and self.compare_families and \
                    SOLVE not in self.parts:
                raise ValueError(f"--parts {p.name} runs on the families where one seed is weakest, which the solve "
                                 f"part measures: add solve to --parts (or --compare-families 0)")
        return self


def study_tasks(model, tasks: str | None) -> list[str]:
    """`tasks`: names, comma-separated, or `all`; by default those the model was trained on (its weights say)."""
    if tasks is not None:
        return parse_tasks(tasks, "--tasks")
    names = model.trained_tasks
    if not names:
        raise ValueError(f"model {model.name} does not record the tasks it was trained on; name them with --tasks "
                         f"(comma-separated, or all)")
    return list(dict.fromkeys(generator_task(n).name for n in names))


FOLDER = "folder"  # the key of a folder family's solve figure (a generated family's: its size)
NEXT_NEEDS_GENERATOR = ("solve at the next difficulty: needs the task's generator (the samples come from --data, "
                        "whose difficulty is fixed)")


def _where(cfg: StudyConfig, family: str) -> dict:
    """A family's samples: a task folder of cfg.data (filters), or the generated task."""
    if cfg.data is None:
        return {"task": family}
    split, folder = family.split("/", 1) if "/" in family else (None, family)
    return {"data": Path(cfg.data), "split": [split] if split else cfg.split, "tasks": [folder]}


def _settings(cfg: StudyConfig, task: str, count: int, size: int | None = None) -> ExperimentSettings:
    return ExperimentSettings(**_where(cfg, task), size=size, count=count, seed=cfg.seed, steps=cfg.steps,
                              shift=cfg.shift, guidance=cfg.guidance, sampling=cfg.sampling, batch=cfg.batch,
                              scorer=cfg.scorer, threshold=cfg.threshold)


def solve_key(f: dict) -> str:
    """The key of a family's solve figure at its default difficulty (a folder family: "folder")."""
    return FOLDER if f.get("folder") is not None else str(f["size"])


def folder_families(data, split: list[str] | None = None, tasks: list[str] | None = None, count: int | None = None,
                    scorer: str | None = None, threshold: float | None = None) -> dict[str, dict]:
    """{family: {folder, split, task, available, taken_as_is}}: the task folders of a folder of samples after the
    --split / --tasks filters, in order; everything the study needs of them checked without a model (the folder,
    the filters, the samples' files, a scorer for each; the first `count` of each folder read).
    Family name: the task folder's, or `<split>/<folder>` where the folder name sits in several chosen splits."""
    import warnings

    from ..tasks import Scorers, find_task
    from ..tasks.folders import SampleSource, find_samples, task_of

    root = Path(data)
    dirs = find_samples(root, split, tasks)  # a missing folder, no samples, an unknown split or task: named here
    depth = len(dirs[0].relative_to(root).parts)
    by: dict[tuple, int] = {}
    for d in dirs:
        key = (d.relative_to(root).parts[0] if depth == 3 else None, task_of(d, root, depth))
        by[key] = by.get(key, 0) + 1
    folders = [f for _, f in by]
    for f in dict.fromkeys(folders):  # a folder filter also takes a task's name: it must pick one folder
        twin = next((g for g in dict.fromkeys(folders) if g != f and getattr(find_task(g), "name", None) == f), None)
        if twin is not None:
            raise ValueError(f"{root}: task folders {f!r} and {twin!r} are both task {f!r}; a study takes one folder "
                             f"per task: keep one of them")
    scorers = Scorers(scorer, threshold)  # an unknown scorer named before the folder is read
    fams = {}
    for (sp, folder), n in by.items():
        name = folder if folders.count(folder) == 1 else f"{sp}/{folder}"
        src = SampleSource(data=root, split=[sp] if sp else split, tasks=[folder], count=count)
        with warnings.catch_warnings():  # the probes say it once, where the samples run
            warnings.simplefilter("ignore")
            samples = src.load(need_frames=False)
        scorers.check(samples)  # a task without a scorer, or a scorer that cannot score it, named now
        for x in samples:  # the frame count comes from metadata.json or ground_truth.mp4 (read when the model runs)
            if not x.meta.get("frames") and not (Path(x.dir) / "ground_truth.mp4").is_file():
                raise ValueError(f"{x.dir}: no frame count: no metadata.json 'frames' and no ground_truth.mp4 (the "
                                 f"study takes each sample's frame count from them)")
        foreign = next((s.foreign for s in samples if getattr(s, "foreign", None)), None)
        t = find_task(folder)
        fams[name] = {"folder": folder, "split": sp, "task": t.name if t is not None else None, "available": n,
                      "taken_as_is": foreign, "scored_by": ", ".join(dict.fromkeys(scorers.used(samples).values()))}
    return fams


def check_study_before_loading(out: Path, known: dict, baseline: tuple[str, dict] | None = None) -> None:
    """Before the model loads (on every process of a launch, each itself): refuse a study folder whose parts were made
    with another configuration, naming each differing field, as `probe` does (every part's results store,
    `steplens.experiments.grid.check_store_before_loading`). `known`: what is known without the model (its identity
    from its files, the sampling numbers given, scorer, threshold, seed, data); `baseline`: (name, its known identity)
    for the stores under baseline/<name>/. Under chains/ (two models, each at its own sampling) the samples' fields
    alone are compared here; the rest once the models have loaded (the store itself)."""
    from ..io.files import read_config
    from ..experiments.grid import check_store_before_loading
    from ..experiments.provenance import check_data

    out = Path(out)
    if not out.is_dir():
        return
    check_data(out, known.get("data"))  # a sample's file changed since a part was made: named before loading
    shared = {k: known[k] for k in ("scorer", "threshold", "seed", "data") if k in known}
    for path in sorted(out.rglob("store/store_config.json")):
        folder = path.parent.parent
        parts = folder.relative_to(out).parts
        if parts[:1] == (CHAINS,):
            mine = shared
        elif parts[:1] == ("baseline",):
            if baseline is None or parts[1:2] != (baseline[0],):
                continue  # another baseline's folder: not this run's
            mine = {**known, **baseline[1]}
        else:
            mine = known
        check_store_before_loading(folder, read_config(path).get("experiment"), mine)


def _run_probe(probe, model, out: Path, s: ExperimentSettings, progress: bool, **options) -> dict:
    """One probe's run into OUT with its report (written once, by rank 0 under a launcher)."""
    res = probe.run(model, out, s, progress=progress, **options)
    if not is_writer():
        return res
    rep = Report(f"steplens {probe.kind}: {model.name} on {s.task}")
    probe.report_section(rep, out, res)
    floors_section(rep, res)
    rep.write(out / "report.html")
    return res


def _run_part(probe, model, out: Path, cfg: StudyConfig, task: str, progress: bool):
    """A probe's part of the study on one family: its run, and what study.json keeps of it."""
    part = probe.study
    res = _run_probe(probe, model, out, _settings(cfg, task, getattr(cfg, part.count)), progress, **part.options(cfg))
    return part.summary(res) if part.summary is not None else None


def _solve_row(res: dict) -> dict:
    h = res["headline"]
    from ..experiments.stats import wilson

    lo, hi = wilson(round(h["solve_rate"] * h["runs"]), h["runs"])
    return {"n": h["runs"], "solve_rate": h["solve_rate"], "ci_low": lo, "ci_high": hi, "mean_score": h["mean_score"],
            "mean_commitment_step": h["mean_commitment_step"], "mean_early_candidates": h.get("mean_early_candidates"),
            "runs_holding_several_early": h.get("runs_holding_several_early"),
            "mean_winner_step": h.get("mean_winner_step"), "mean_right_step": h.get("mean_right_step"),
            "self_corrections": h["self_corrections"], "perception_before_action": h["perception_before_action"],
            "runs_with_both_steps": h["runs_with_both_steps"],
            **({"floors": {k: v["mean_score"] for k, v in res["floors"]["overall"].items()},
                "floors_mode": res["floors"]["mode"]} if res.get("floors") else {})}


def run_study(model, out: Path, cfg: StudyConfig, baseline=None, train_log=None,
              progress: bool = True, folders: dict[str, dict] | None = None) -> dict | None:
    """The study into OUT: study.json, study.md, report.html and the result; None on the processes of a launch
    other than rank 0 (they run their share of every part; rank 0 writes). On a folder (cfg.data), `folders` is
    `folder_families`' answer (read again if None)."""
    from ..contract import identity
    from ..tasks import Scorers, find_task

    t0 = time.time()
    out = Path(out)
    steps, shift, guidance = own(model, cfg.steps, cfg.shift, cfg.guidance)
    cfg = cfg.model_copy(update={"steps": steps, "shift": shift, "guidance": guidance})
    if cfg.data is not None and folders is None:
        folders = folder_families(cfg.data, cfg.split, [_where(cfg, n)["tasks"][0] for n in cfg.tasks],
                                  scorer=cfg.scorer, threshold=cfg.threshold)
    prov = study_provenance(model, cfg)  # the runtime a resume must share (each part checks its own data too)
    check_resume(out, seal([]), prov, RUNTIME + ("stage",))
    training = None
    if train_log:  # read first: a log without the families' evaluations is refused before any run
        trained = model.trained_tasks
        names = cfg.tasks if cfg.data is None else list(dict.fromkeys(
            folders[n]["task"] for n in cfg.tasks if folders[n]["task"] is not None))
        training = {"logs": [str(p) for p in _paths(train_log)],
                    "rows": training_cost(train_log, names, trained[0] if trained else None)}
    solver = get_probe(SOLVE_PROBE)
    parts = [p for p in study_probes() if p.name in cfg.parts]
    fam: dict[str, dict] = {}
    for name in cfg.tasks:
        if cfg.data is None:
            task = generator_task(name)
            size, edge = task.default_size, next_size(task, task.default_size)
            f = fam[name] = {"size": size, "next_size": edge, "solve": {},
                             "scored_by": Scorers(cfg.scorer, cfg.threshold).for_task(task.name).name}
            solves = [(k, out / name / f"solve-{k}", k) for k in [size] + ([edge] if edge is not None else [])]
        else:  # a task folder: its samples as they are; its task's hooks only where steplens drew them
            f = fam[name] = {**folders[name], "size": None, "next_size": None, "solve": {}}
            task = None if f["taken_as_is"] else find_task(f["folder"])
            solves = [(FOLDER, out / name / "solve", None)]
            if SOLVE in cfg.parts:
                f.setdefault("not_applicable", []).append(NEXT_NEEDS_GENERATOR)
        if SOLVE in cfg.parts:
            for key, where, k in solves:
                res = _run_probe(solver, model, where, _settings(cfg, name, cfg.count, k), progress)
                f["solve"][str(key)] = _solve_row(res)
        for p in (p for p in parts if p.study.scope == "family"):
            why = p.study.not_applicable(task)
            if why:
                f.setdefault("not_applicable", []).append(why + (f" (samples taken as they are: {f['taken_as_is']})"
                                                                 if f.get("taken_as_is") else ""))
                continue
            kept = _run_part(p, model, out / name / p.name, cfg, name, progress)
            if kept is not None:
                f[p.name] = kept
    weakest = []
    on_weakest = [p for p in parts if p.study.scope == "weakest"]
    if on_weakest and cfg.compare_families:
        # the weakest families: by solve rate (generated), by mean score (a folder's: VBVR-Bench reports scores)
        measure = "solve_rate" if cfg.data is None else "mean_score"
        rated = [(f["solve"][solve_key(f)][measure] or 0.0, n) for n, f in fam.items() if solve_key(f) in f["solve"]]
        weakest = [n for _, n in sorted(rated)[: cfg.compare_families]]
        for name in weakest:
            for p in on_weakest:
                kept = _run_part(p, model, out / p.name / name, cfg, name, progress)
                if kept is not None:
                    fam[name][p.name] = kept
    base = {}
    if baseline is not None and SOLVE in cfg.parts:
        trained = baseline.trained_tasks
        for name in cfg.tasks:
            f = fam[name]
            if (f.get("task") if cfg.data is not None else name) not in trained:
                continue
            k = solve_key(f)
            where = out / "baseline" / baseline.name / name / ("solve" if k == FOLDER else f"solve-{k}")
            res = _run_probe(solver, baseline, where, _settings(cfg, name, cfg.count, f["size"]), progress)
            base[name] = {k: _solve_row(res)}
    chains = _run_chains(model, baseline, out, cfg, fam, progress) if baseline is not None and CHAINS in cfg.parts \
        else None
    if not is_writer():  # under a launcher every process ran its share of each part; rank 0 writes the study
        return None
    claims = judge(out, fam)
    cost = study_cost(out)  # the NFE every part's results.json counted (steplens.orchestrators.plan)
    result = {"format": 1, "kind": "study", "model": model.name, "identity": identity(model),
              "config": cfg.model_dump(), "families": fam, "compared": weakest,
              "baseline": {"model": baseline.name, "families": base} if baseline else None, "chains": chains,
              "claims": claims, "training": training, "cost": cost, "seconds": round(time.time() - t0, 1)}
    atomic_write_json(out / "study.json", result)
    man = parts_manifest(out)
    record(out, man, {**prov, "data_manifest_sha256": man["sha256"]})
    atomic_write_text(out / "study.md", markdown(result))
    write_report(out, result)
    return result


def study_provenance(model, cfg: "StudyConfig") -> dict:
    """The study folder's provenance: the model, the study's configuration (sampling, data, parts), versions, device."""
    from ..contract import identity

    return stage_provenance("study", seal([]), device_kind(model), family=model.backend, identity=identity(model),
                            config=cfg.model_dump(mode="json"))


def parts_manifest(out: Path) -> dict:
    """The study's manifest: every sample its parts read (each part's manifest.json), once each."""
    rows = {}
    for path in sorted(Path(out).rglob(MANIFEST)):
        if path.parent != Path(out):
            for r in (read_record(path.parent, MANIFEST) or {}).get("samples", []):
                rows.setdefault(r["sample"], r)
    return seal(list(rows.values()))


def _run_chains(model, baseline, out: Path, cfg: StudyConfig, fam: dict, progress: bool) -> dict:
    """The model (a few-step student) against the baseline (its teacher) at matched σ, per family both were trained
    on (steplens.orchestrators.chains), each at its own sampling; the claim that step compression collapses the
    exploration phase judged per family and across them."""
    from .chains import compare_chains, energy_at_matched_sigma, exploration_loss, noise_at_matched_sigma, own_sampling

    both = set(model.trained_tasks) & set(baseline.trained_tasks)
    got, noise, energy = {}, {}, {}
    for name, f in fam.items():
        task = f.get("task") if cfg.data is not None else name
        if model.trained_tasks and baseline.trained_tasks and task not in both:
            continue
        s = own_sampling(_settings(cfg, name, cfg.count, f["size"]))
        res = compare_chains(model, baseline, out / CHAINS / name, s, progress=progress)
        few = s.model_copy(update={"count": cfg.probe_count})
        matched = noise_at_matched_sigma(model, baseline, out / CHAINS / name, few, progress=progress)
        blocks = energy_at_matched_sigma(model, baseline, out / CHAINS / name, few, progress=progress)
        if res is not None:  # None on a launch's other processes
            got.update(res["headline"]["families"])
            noise[name], energy[name] = matched, blocks
    keep = ("n", "solve_rate", "ci_low", "ci_high", "mean_score", "early_held", "commit_sigma", "self_corrections")
    return {"teacher": baseline.name, "families": {f: {**{r: {k: v[r][k] for k in keep} for r in ("teacher", "student")},
                                                       "verdict": v["verdict"]} for f, v in got.items()},
            "exploration_loss": exploration_loss(got) if got else None, "noise_at_matched_sigma": noise,
            "energy_at_matched_sigma": energy}


def judge(out: Path, families: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """{claim: {family: {holds (None: undetermined), state, why, evidence, run}}} from every probe result under
    OUT/<family>/ and, for the parts run on the weakest families, OUT/<part>/<family>/, judged by the probes' stated rules (steplens.orchestrators.report_index; the solve runs
    at the default difficulty only)."""
    claims: dict[str, dict[str, dict]] = {}
    weakest = [p.name for p in study_probes() if p.study.scope == "weakest"]
    for name, f in families.items():
        for root in (out / name, *(out / w / name for w in weakest)):
            for p in sorted(root.rglob("results.json")) if root.is_dir() else []:
                if "store" in p.relative_to(out).parts:
                    continue
                e = read_run(p)
                if e is None or e.get("error"):
                    continue
                rel = p.parent.relative_to(out).as_posix()
                if rel.startswith(f"{name}/solve-") and rel != f"{name}/solve-{f['size']}":
                    continue
                for claim, state, evidence in e["claims"]:
                    why = e["why"].get(claim)
                    claims.setdefault(claim, {})[name] = {
                        "holds": None if state == UNDETERMINED else bool(state), "state": state_word(state),
                        **({"why": why} if why else {}), "cell": e["cells"][claim], "evidence": evidence, "run": rel}
    return claims


def _paths(logs) -> list[Path]:
    """One path, or several in order, as a list."""
    return [Path(logs)] if isinstance(logs, (str, Path)) else [Path(p) for p in logs]


def read_train_log(log) -> list[dict]:
    """A training log's records (log.jsonl: one JSON object a line), each checked where training_cost reads it: `step`
    a whole number >= 0, `sec_per_step` a finite number >= 0, every `eval_solve_rate*` a number in [0, 1]. A file that
    is not one is refused naming it and the line (before the model loads: `steplens study --train-log`)."""
    import math

    def bad(i, why):
        return ValueError(f"--train-log {log}, line {i + 1}: {why}; a steplens training log (log.jsonl, written by "
                          f"`steplens train`) holds one JSON object a line")

    try:
        text = Path(log).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--train-log {log}: not text (UTF-8); a steplens training log (log.jsonl, written by "
                         f"`steplens train`) holds one JSON object a line") from None
    recs = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError:
            raise bad(i, "not JSON") from None
        if not isinstance(r, dict):
            raise bad(i, f"a JSON {type(r).__name__}, not an object")
        for k, v in r.items():
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            if k == "step" and not (num and float(v).is_integer() and v >= 0):
                raise bad(i, f"step {v!r} is not a whole number >= 0")
            if k == "sec_per_step" and not (num and math.isfinite(v) and v >= 0):
                raise bad(i, f"sec_per_step {v!r} is not a finite number >= 0")
            if k.startswith("eval_solve_rate") and v is not None and not (num and 0 <= v <= 1):
                raise bad(i, f"{k} {v!r} is not a solve rate in [0, 1]")
        recs.append(r)
    return recs


def training_cost(logs, tasks: list[str], primary: str | None = None, levels=(0.5, 0.9)) -> list[dict]:
    """Per family, from a model's training logs (log.jsonl; several for a training in stages, in their order, each
    stage starting from the one before: its steps count on from where that one stopped): the first evaluation at
    which its held-out solve rate reached each level, as training steps and as wall-clock hours of training on the
    machine that trained it (the sum of the logged seconds per step; evaluation time left out), and its last
    evaluated rate. `primary`: the first task of the training config, whose rate older logs wrote as plain
    `eval_solve_rate`."""
    logs, recs, offset = _paths(logs), [], 0
    for log in logs:
        stage = sorted((r for r in read_train_log(log) if "step" in r), key=lambda r: r["step"])
        recs += [{**r, "step": r["step"] + offset} for r in stage]
        offset += stage[-1]["step"] if stage else 0
    seconds, prev, rows = 0.0, 0, {}
    for r in recs:
        if "sec_per_step" in r and r["step"] > prev:
            seconds += r["sec_per_step"] * (r["step"] - prev)
            prev = r["step"]
        for name in tasks:
            rate = r.get(f"eval_solve_rate_{name}", r.get("eval_solve_rate") if name == primary else None)
            if rate is None:
                continue
            row = rows.setdefault(name, {"family": name})
            row["last eval"] = f"{rate:.2f} at step {r['step']}"
            for lv in levels:
                key = f"≥ {lv}: step (hours)"
                if key not in row and rate >= lv:
                    row[key] = f"{r['step']} ({seconds / 3600:.1f})"
    for row in rows.values():
        for lv in levels:
            row.setdefault(f"≥ {lv}: step (hours)", "not yet")
    if not rows:
        raise ValueError(f"{', '.join(map(str, logs))} has no held-out evaluations of {', '.join(tasks)}")
    return [rows[n] for n in tasks if n in rows]


def _pct(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _count(x) -> str:
    """A count as a table shows it: "–" where it was not counted (the task lists no answers), never a raw None."""
    return "–" if x is None else str(x)


def _ci(r: dict) -> str:
    return f"{r['solve_rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _score(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _pooled(rows: list[dict]) -> dict:
    """Solve figures of several families pooled over their samples: n, solved, the solve rate with its Wilson
    interval, the mean score (each family's mean weighted by its samples)."""
    from ..experiments.stats import wilson

    n = sum(r["n"] for r in rows)
    solved = sum(round(r["solve_rate"] * r["n"]) for r in rows if r["n"])
    lo, hi = wilson(solved, n)
    scored = [r for r in rows if r.get("mean_score") is not None and r["n"]]
    mean = sum(r["mean_score"] * r["n"] for r in scored) / sum(r["n"] for r in scored) if scored else None
    return {"n": n, "solve_rate": solved / n if n else 0.0, "ci_low": lo, "ci_high": hi, "mean_score": mean}


def _pooled_floor(rows: list[dict], kind: str) -> float | None:
    """A floor's mean score pooled over families (each family's weighted by its samples)."""
    have = [r for r in rows if (r.get("floors") or {}).get(kind) is not None and r["n"]]
    return sum(r["floors"][kind] * r["n"] for r in have) / sum(r["n"] for r in have) if have else None


def _folder_tables(result: dict) -> tuple[list[dict], list[dict]]:
    """A folder's study: per task folder, and per split and overall, the mean score beside the solve rate (as
    VBVR-Bench reports: mean scores; success = score >= the scorer's threshold)."""
    fam = result["families"]
    base = result.get("baseline") or {}
    per_task, by_split = [], {}
    floored = any((f["solve"].get(FOLDER) or {}).get("floors") for f in fam.values())  # a VBVR folder (issue 34)
    for name, f in fam.items():
        d = f["solve"].get(FOLDER)
        if not d:
            continue
        b = base.get("families", {}).get(name, {}).get(FOLDER)
        per_task.append({"family": name, "split": f["split"] or "–", "task": f["task"] or "–",
                         "scored by": f.get("scored_by", "–"), "n": d["n"],
                         "mean score": _score(d["mean_score"]), "solve rate [95% CI]": _ci(d),
                         **({k: _score((d.get("floors") or {}).get(k)) for k in FLOORS} if floored else {}),
                         **({f"{base['model']}: mean score": _score(b["mean_score"]) if b else "–",
                             f"{base['model']}: solve rate [95% CI]": _ci(b) if b else "–"} if base else {})})
        by_split.setdefault(f["split"] or "–", []).append(d)
    groups = [(k, v) for k, v in by_split.items() if k != "–"]  # a VBVR-Bench layout's splits, then all
    splits = []
    for k, rows in [*groups, ("all", [r for v in by_split.values() for r in v])]:
        if not rows:
            continue
        p = _pooled(rows)
        splits.append({"split": k, "families": len(rows), "n": p["n"], "mean score": _score(p["mean_score"]),
                       "solve rate [95% CI]": _ci(p), **({x: _score(_pooled_floor(rows, x)) for x in FLOORS}
                                                         if floored else {})})
    return per_task, splits


def tables(result: dict) -> dict[str, list[dict]]:
    """The study's tables as rows (for the markdown and the report)."""
    fam = result["families"]
    folder = (result.get("config") or {}).get("data") is not None
    solve, steps, behave = [], [], []
    for name, f in fam.items():
        d, e = f["solve"].get(solve_key(f)), f["solve"].get(str(f["next_size"]))
        if d and not folder:
            base = (result.get("baseline") or {}).get("families", {}).get(name, {}).get(str(f["size"]))
            solve.append({"family": name, "scored by": f.get("scored_by", "–"), "size": f["size"], "n": d["n"],
                          "solve rate [95% CI]": _ci(d),
                          "next size": _count(f["next_size"]), "next: solve rate [95% CI]": _ci(e) if e else "–",
                          **({f"{result['baseline']['model']}, same size": _ci(base) if base else "–"}
                             if result.get("baseline") else {})})
        if d:
            behave.append({"family": name, "mean commitment step": _pct(d["mean_commitment_step"]),
                           "mean answers held at step 0": _pct(d["mean_early_candidates"]),
                           "runs holding ≥ 2 at step 0": _count(d["runs_holding_several_early"]),
                           "mean step one answer wins": _pct(d["mean_winner_step"]),
                           "mean step the right one wins": _pct(d["mean_right_step"]),
                           "scene right before the answer": f"{d['perception_before_action']} of "
                                                            f"{d['runs_with_both_steps']}",
                           "self-corrections": f"{d['self_corrections']} of {d['n']}"})
        if "sweep" in f:
            row = {"family": name}
            for k in (1, 2, 5, 10, 20, 40):
                r = f["sweep"].get(f"steps {k}")
                row[f"{k} step{'s' if k > 1 else ''}"] = _pct(r["solve_rate"]) if r else "–"
            one, twenty = f["sweep"].get("steps 1"), f["sweep"].get("steps 20")
            row["20 − 1 (points)"] = f"{100 * (twenty['solve_rate'] - one['solve_rate']):+.1f}" if one and twenty \
                else "–"
            steps.append(row)
    claims = [{"claim": c, **{n: _verdict(by[n]) if n in by else "n/a" for n in fam}}
              for c, by in result["claims"].items()]
    compare = [{"family": name, "method": r["method"], "N": r["n_seeds"], "solve rate": f"{r['solve_rate']:.3f}",
                "mean score": f"{r['mean_score']:.3f}",
                "vs one seed (points) [95% CI]": f"{100 * r['delta_vs_single']:+.1f} [{100 * r['delta_ci_low']:+.1f}, "
                                                  f"{100 * r['delta_ci_high']:+.1f}]",
                "mean score vs one seed [95% CI]": f"{r['score_delta_vs_single']:+.3f} [{r['score_delta_ci_low']:+.3f}, "
                                                   f"{r['score_delta_ci_high']:+.3f}]"
                if r.get("score_delta_vs_single") is not None else "–"}
               for name in result["compared"] for r in fam[name].get("compare", [])]
    training = (result.get("training") or {}).get("rows", [])
    skipped = [{"family": name, "part": why.split(":")[0], "why": why.split(":", 1)[1].strip() if ":" in why else why}
               for name, f in fam.items() for why in f.get("not_applicable", [])]
    chains = [{"family": f, "model": f"{result['model'] if r == 'student' else result['chains']['teacher']} ({r})",
               "n": v[r]["n"], "solve rate [95% CI]": _ci(v[r]), "mean score": _score(v[r]["mean_score"]),
               "answers held at σ ≥ 0.9": _pct(v[r]["early_held"]), "commitment σ": _pct(v[r]["commit_sigma"]),
               "claim": _verdict(v["verdict"]) if r == "student" else ""}
              for f, v in ((result.get("chains") or {}).get("families") or {}).items() for r in ("teacher", "student")]
    matched = [{"family": f, "σ": r["sigma"], "student step": r["student_step"],
                "student: noise there (clean)": f"{r['student_solve_rate']:.3f} ({r['student_clean']:.3f})",
                "teacher step (σ)": f"{r['teacher_step']} ({r['teacher_sigma']:.3f})",
                "teacher: noise there (clean)": f"{r['teacher_solve_rate']:.3f} ({r['teacher_clean']:.3f})"}
               for f, v in ((result.get("chains") or {}).get("noise_at_matched_sigma") or {}).items()
               for r in v["rows"]]
    blocks = [{"family": f, "σ": r["sigma"], "student step": r["student_step"],
               "student: top block (ratio)": f"{r['student_top_block']} ({r['student_top_ratio']:.2f})",
               "teacher step (σ)": f"{r['teacher_step']} ({r['teacher_sigma']:.3f})",
               "teacher: top block (ratio)": f"{r['teacher_top_block']} ({r['teacher_top_ratio']:.2f})"}
              for f, v in ((result.get("chains") or {}).get("energy_at_matched_sigma") or {}).items() for r in v["rows"]]
    loss = (result.get("chains") or {}).get("exploration_loss")
    if chains and loss:
        chains.append({**{k: "" for k in chains[0]}, "family": "all",
                       "claim": f"loses most where several answers are right: {_verdict(loss)}"})
    known = claim_rules()
    rules = [{"claim": c, "rule": known[c]["rule"], "protocol": known[c]["protocol"], "source": known[c]["source"]}
             for c in result["claims"] if c in known]
    cost = result.get("cost") or {}
    spent = [{"part": k, "NFE": v["nfe"], "NFE without reuse": v["nfe_without_reuse"]}
             for k, v in {**cost.get("parts", {}), **({"total": cost["total"]} if cost.get("parts") else {})}.items()]
    per_task, splits = _folder_tables(result) if folder else ([], [])
    return {**({"tasks": per_task, "splits": splits} if folder else {"solve": solve}), "steps": steps,
            "behaviours": behave, "claims": claims, "rules": rules, "compare": compare, "training": training,
            "skipped": skipped, "cost": spent, **({"chains": chains} if chains else {}),
            **({"chains_noise": matched} if matched else {}), **({"chains_energy": blocks} if blocks else {})}


def _verdict(v: dict) -> str:
    """A claim's verdict on one family as its cell shows it: the state, the number it stands on and the rule
    ("does not hold: 0 of 12 runs (rule: at least one run)"; undetermined: why first). Older study.json: the state,
    with why (a chains verdict: its numbers) and its rule where recorded."""
    if v.get("cell"):
        return v["cell"]
    state = v.get("state") or ("holds" if v["holds"] else "does not hold")
    text = f"{state}: {v['why']}" if v.get("why") else state
    return text + (f" (rule: {v['rule']})" if v.get("rule") else "")


def _md(rows: list[dict]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


TITLES = {"tasks": "Mean score and solve rate per task folder (Wilson 95% intervals; a family is a task folder); on a "
                   "VBVR folder the floors beside it: the same evaluator and mode on the static first frame, the "
                   "ground-truth video and a pan of the first frame (scored once per part, floors.json)",
          "splits": "Mean score and solve rate per split and overall (pooled over samples), floors beside it",
          "skipped": "Parts skipped (not applicable), and why",
          "solve": "Solve rate at the default difficulty and one notch harder (Wilson 95% intervals)",
          "steps": "Solve rate by sampling steps (the model uses its steps when 1 step is well below 20)",
          "behaviours": "Behaviours along the steps (default difficulty)",
          "claims": "The study's claims, per family (rules: steplens report)",
          "rules": "The rule behind each claim: the study's stated protocol or ours, with the source",
          "cost": "Compute: denoiser forward evaluations (NFE: one per step, sample and CFG branch) per part, with "
                  "and without prefix reuse",
          "compare": "Multi-seed methods on the families where one seed is weakest (paired bootstrap vs one seed)",
          "chains": "The model against the baseline at matched σ (each at its own sampling; the claim: step compression "
                    "collapses the exploration phase, steplens report's rule in steplens.orchestrators.chains)",
          "chains_noise": "Noise at one step (all frames) at matched σ: the solve rate with fresh noise at each student "
                          "step and at the teacher step nearest its σ (clean in brackets)",
          "chains_energy": "Energy by block at matched σ: the block whose answer-region energy over the background's is "
                           "highest, at each student step and the teacher step nearest its σ",
          "training": "Training cost per family on this CPU (first held-out evaluation at each level: step, "
                      "wall-clock hours)"}


def _scored_by(result: dict) -> str:
    """The scorers that scored the study, by name (each family's: a VBVR-Bench folder's tasks are scored by vbvr)."""
    c = result["config"]
    used = list(dict.fromkeys(n for f in result["families"].values() for n in str(f.get("scored_by") or "").split(", ")
                              if n))
    if c.get("scorer"):
        return c["scorer"]
    return f"each task's own scorer ({', '.join(used)})" if used else "each task's own scorer"


def _counts(c: dict, scored_by: str | None = None) -> str:
    """The samples behind each kind of figure, the scorer and the sampling, in one sentence."""
    scorer = scored_by or c.get("scorer") or "each task's own scorer"
    if c.get("data") is None:
        return (f"Held-out samples (seeds from {c['seed']}): {c['count']} per solve rate, {c['sweep_count']} per "
                f"condition of the steps and frames sweep, {c['compare_count']} per multi-seed method, "
                f"{c['probe_count']} per intervention probe condition; scored by {scorer}; {c['steps']} Euler steps, "
                f"shift {c['shift']}.")
    if "vbvr" in scorer and "mode)" not in scorer:  # the mode named (issue 34); the study scores in its default
        scorer += f" ({c.get('vbvr_score') or 'task-specific'} mode)"
    threshold = c["threshold"] if c.get("threshold") is not None else "the scorer's threshold"
    return (f"Samples from {c['data']}" + (f" (splits {', '.join(c['split'])})" if c.get("split") else "") +
            f", the first samples of each task folder: up to {c['count']} per solve rate, {c['sweep_count']} per "
            f"condition of the steps and frames sweep, {c['compare_count']} per multi-seed method, "
            f"{c['probe_count']} per intervention probe condition (noise seed = {c['seed']} + the sample's index); "
            f"scored by {scorer}, a success = score >= {threshold}; {c['steps']} steps, shift {c['shift']}, "
            f"guidance {c['guidance']}.")


def _model_line(result: dict) -> str:
    """The model as it was held: name, dtype, LoRAs (path and scale) and the sampling preset."""
    ident, c = result.get("identity") or {}, result["config"]
    loras = "; ".join(f"{comp}: {v['path']} (scale {v['scale']})" for comp, v in (ident.get("loras") or {}).items())
    preset = (c.get("sampling") or {}).get("preset")
    return (f"Model {result['model']}, {ident.get('dtype', 'float32')}" + (f", LoRAs {loras}" if loras else "") +
            (f", preset {preset}" if preset else "") + ".")


def markdown(result: dict) -> str:
    c = result["config"]
    head = f"# steplens study: {result['model']}\n\n{_model_line(result)} {_counts(c, _scored_by(result))}\n"
    t = tables(result)
    return head + "".join(f"\n## {TITLES[k]}\n\n{_md(rows)}" for k, rows in t.items())


def write_report(out: Path, result: dict) -> None:
    rep = Report(f"steplens study: {result['model']} on {len(result['families'])} task families")
    c = result["config"]
    rep.text(f"{_model_line(result)} {_counts(c, _scored_by(result))} Every number is in study.json; each run has "
             f"its own report, linked below.")
    rep.link("study.json", "study.json").link("study.md", "study.md: the tables")
    for k, rows in tables(result).items():
        rep.section(TITLES[k])
        rep.table(rows) if rows else rep.text("not run")
    rep.section("Evidence for each verdict")
    rep.table([{"claim": cl, "family": n, "verdict": _verdict(v), "evidence": v["evidence"], "run": v["run"]}
               for cl, by in result["claims"].items() for n, v in by.items()])
    rep.section("Runs")
    for p in sorted(out.rglob("report.html")):
        rel = p.relative_to(out).as_posix()
        if rel != "report.html":
            rep.link(rel, rel)
    rep.write(out / "report.html")


def _parts_list(parts: str | None) -> list[str]:
    if parts is None:
        return study_parts()
    names = [p.strip() for p in parts.split(",") if p.strip()]
    if not names:
        raise ValueError(f"--parts {parts!r} names no part; allowed: {', '.join(study_parts())} (leave --parts out "
                         f"for all of them)")
    bad = [p for p in names if p not in study_parts()]
    if bad:
        raise ValueError(f"--parts: unknown study part {bad[0]!r}; allowed: {', '.join(study_parts())}")
    return names


check_parts = _parts_list  # the --parts names, checked before any model loads


def check_chains(names: list[str], baseline: str | None, given: str | None) -> None:
    """The chains part compares the model's chain of steps with a baseline's: named without --baseline, refused
    (by default, with no baseline, it is left out)."""
    if given is not None and CHAINS in names and baseline is None:
        raise ValueError(f"--parts {given}: the chains part compares the model's chain of steps with another model's "
                         f"at matched σ (a few-step student against its teacher); give --baseline MODEL (e.g. "
                         f"--baseline tiny-reasoner), or leave chains out of --parts")


def study_config_from(model, tasks: str | None, parts: str | None, **kw) -> StudyConfig:
    names = study_tasks(model, tasks)
    return StudyConfig(tasks=names, parts=_parts_list(parts), **kw)


def folder_study_config(data, split: str | None, tasks: str | None, parts: str | None,
                        **kw) -> tuple[StudyConfig, dict[str, dict]]:
    """(config, folder_families' answer) for a study on a folder of samples, everything checked without a model:
    `tasks` filters its task folders (folder or task names, comma-separated; None or `all`: every one)."""
    from ..tasks.folders import _csv

    split_l = _csv(split)
    task_l = None if tasks is None or tasks.strip() == "all" else _csv(tasks)
    cfg = StudyConfig(tasks=["-"], parts=_parts_list(parts), data=str(Path(data).resolve()), split=split_l, **kw)
    most = max(cfg.count, cfg.sweep_count, cfg.compare_count, cfg.probe_count)
    folders = folder_families(data, split_l, task_l, count=most, scorer=cfg.scorer, threshold=cfg.threshold)
    return cfg.model_copy(update={"tasks": list(folders)}), folders


def load_result(out: Path) -> dict:
    return json.loads((Path(out) / "study.json").read_text())
