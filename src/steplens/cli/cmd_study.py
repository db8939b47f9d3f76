"""`steplens study` (every experiment on every family of a model) and `steplens report` (an index of runs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .app import _bounded, _check, _errors, _fail, app, console, err
from .cmd_probe import NO_REUSE
from .inputs import SampleOptions, ScoreOptions
from .options import EngineOptions, ModelOptions, SamplingOptions, batch_for, bundles, known_config, load, part, spread
from .run_options import PlanOptions, StudyOptions

STUDY_SAMPLES = part(SampleOptions, "data", "split", "tasks", "count", "seed", "batch", count=500)


@app.command()
@bundles
def study(
    mo: ModelOptions = None, so: SamplingOptions = None, eo: EngineOptions = None,
    out: Path = typer.Option(..., help="one folder per family and part, study.json, study.md, report.html; resumes "
                                       "(or grows with a larger --count) if present"),
    sa: STUDY_SAMPLES = None, st: StudyOptions = None, sco: part(ScoreOptions, "scorer", "threshold") = None,
    pl: PlanOptions = None, no_reuse: bool = NO_REUSE,
):
    """Every experiment of the study on every task family of a model: solve rates (default and next difficulty),
    the steps sweep, every probe, the multi-seed methods, and a family x claim table of which claims hold. With
    --data, on a folder of samples: each task folder a family, mean score beside solve rate per task, per split and
    overall; the parts that need a task's generator or swap pair are said and skipped."""
    from ..orchestrators.study import check_study_before_loading, folder_study_config, run_study, study_config_from, tables
    from ..tape import no_reuse as reuse_off
    from ..tasks import Scorers

    data, split, tasks, count, seed = sa.data, sa.split, sa.tasks, sa.count, sa.seed
    scorer, threshold = sco.scorer, sco.threshold
    sweep_count, compare_count, probe_count, parts = st.sweep_count, st.compare_count, st.probe_count, st.parts
    compare_families, n_seeds, baseline, train_log = st.compare_families, st.n_seeds, st.baseline, st.train_log
    try:
        batch = batch_for(mo, sa.batch, 50)  # 1 on a pipeline unless asked
        _check(out=out)
        counts = dict(count=count, probe_count=probe_count, sweep_count=sweep_count, compare_count=compare_count,
                      seed=seed, batch=batch, compare_families=compare_families, n_seeds=n_seeds, scorer=scorer,
                      threshold=threshold)
        Scorers(scorer, threshold)  # an unknown scorer, or a threshold it does not take, named now
        folders = None
        if data is not None:  # the folder, its filters, its samples and their scorer: checked before the model loads
            cfg, folders = folder_study_config(data, split, tasks, parts, **counts)
        elif split is not None:
            raise ValueError(f"--split {split} filters a folder of samples (VBVR-Bench's <split>/<task>/<idx>/): "
                             f"give --data DIR")
        if pl.plan:
            return _plan_study(mo, so, tasks, parts, pl.sec_per_nfe, folders=folders, cfg=cfg if data else None,
                               baseline=baseline, as_json=pl.as_json,
                               **{k: v for k, v in counts.items() if k not in ("scorer", "threshold")})
        _bounded(data, {"--count": count, "--probe-count": probe_count, "--sweep-count": sweep_count,
                        "--compare-count": compare_count}, {"--n-seeds": [n_seeds]})
        if baseline is not None:  # the baseline named, before either model loads
            from ..models.load import check_spec

            check_spec(baseline, "--baseline")
        if data is None and tasks is not None:  # the families named, before the model loads
            from ..tasks import parse_tasks

            parse_tasks(tasks, "--tasks")
        # a study folder made with other settings: refused now, on every process, before minutes of loading
        known = {**known_config(mo, so), "scorer": scorer, "threshold": threshold, "seed": seed,
                 "data": cfg.data if data is not None else None}
        check_study_before_loading(out, known, (baseline, known_config(ModelOptions(model=baseline, device=mo.device),
                                                                       so)) if baseline else None)
        with spread(eo, mo, so, out) as engine:
            m, sp = load(mo, so)
            if engine is not None:
                engine.bind(m)
            sampling = dict(steps=sp.steps, shift=sp.shift, guidance=sp.guidance,
                            sampling=sp.describe() if sp.extra else None)
            if data is None:
                cfg = study_config_from(m, tasks, parts, **counts, **sampling)
            else:
                cfg = cfg.model_copy(update=sampling)
            base = load(ModelOptions(model=baseline, device=mo.device))[0] if baseline else None  # cfg's sampling
            with reuse_off(no_reuse):
                res = run_study(m, out, cfg, baseline=base, train_log=train_log, folders=folders)
    except _errors() as e:
        _fail(e)
    if res is None:  # a process of a launch other than rank 0: rank 0 writes and prints
        return
    t = tables(res)
    for key, title in (("solve", "solve rate"), ("tasks", "mean score and solve rate per task"),
                       ("splits", "per split and overall"), ("steps", "solve rate by steps"),
                       ("claims", "the study's claims"), ("skipped", "parts skipped"), ("training", "training cost")):
        if not t.get(key):
            continue
        table = Table(title=title)
        for col in t[key][0]:
            table.add_column(str(col))
        for r in t[key]:
            table.add_row(*[str(v) for v in r.values()])
        console.print(table)
    console.print(f"tables: {out / 'study.md'}  report: [bold]{(out / 'report.html').resolve()}[/]")


def _plan_study(mo, so, tasks, parts, sec_per_nfe, folders: dict | None = None, cfg=None, baseline=None,
                as_json: bool = False, **kw) -> None:
    """`study --plan`: every part's jobs, NFE and device-hours, before any run (a diffusers:PATH model not loaded), priced
    on the runs `run_study` makes (steplens.orchestrators.study_plan): each family's own samples and frames, the
    parts that apply to it, the baseline's and the chains' runs. On a folder, `cfg` and `folders` are
    folder_study_config's answer."""
    from ..experiments.grid import ExperimentSettings
    from ..orchestrators.plan import Planner
    from ..orchestrators.study import SOLVE, SOLVE_PROBE, StudyConfig, study_probes, study_tasks
    from ..orchestrators.study_plan import study_plan
    from ..probes import get_probe
    from .cmd_probe import planner_for, print_plan
    from ..backends.load import is_pipeline_spec

    if folders is None and tasks is None and is_pipeline_spec(mo.model):
        raise ValueError(f"--plan on {mo.model}: name the task families with --tasks (the model is not loaded to "
                         f"read them)")
    first = next(iter(folders)) if folders is not None else None
    settings = ExperimentSettings(**({"task": (tasks or "maze").split(",")[0].strip()} if folders is None else
                                     {"data": cfg.data, "split": cfg.split, "tasks": [folders[first]["folder"]]}),
                                  count=(kw["count"] or 500) if folders is None else 1, seed=kw["seed"], batch=kw["batch"])
    planner, settings = planner_for(mo, so, settings)
    sampling = dict(steps=settings.steps, shift=settings.shift, guidance=settings.guidance)
    if cfg is None:
        names = study_tasks(planner.model, tasks) if planner.model is not None else \
            [t.strip() for t in tasks.split(",") if t.strip()]
        plist = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
        cfg = StudyConfig(tasks=names, **({"parts": plist} if plist else {}), **sampling, **kw)
    else:
        cfg = cfg.model_copy(update=sampling)
    solve = get_probe(SOLVE_PROBE) if SOLVE in cfg.parts else None
    base = Planner.of(load(ModelOptions(model=baseline, device=mo.device))[0]) if baseline else None
    plans = study_plan(cfg, planner, solve, [p for p in study_probes() if p.name in cfg.parts], folders, base)
    print_plan(plans, planner.shape(settings)[0], sec_per_nfe, planner, settings,
               f"steplens study on {', '.join(cfg.tasks)}", as_json)


@app.command("report")
def report_cmd(
    runs: Path = typer.Argument(..., help="a folder of runs: probes, comparisons, demos, traces (searched recursively)"),
    out: Optional[Path] = typer.Option(None, help="the index page to write (default: RUNS/index.html)"),
):
    """An index page for a folder of runs: headline numbers, links, and whether each of the study's claims holds."""
    from ..orchestrators.report_index import write_index

    try:
        _check(out_file=out)
        path, entries = write_index(runs, out)
    except _errors() as e:
        _fail(e)
    table = Table(title=f"{len(entries)} runs under {runs}")
    for col in ("kind", "run", "headline"):
        table.add_column(col)
    for e in entries:
        table.add_row(e["kind"], str(e["path"].parent.relative_to(runs)), e.get("error") or e["headline"])
    console.print(table)
    verdicts = [(c, e["cells"].get(c, ""), str(e["path"].parent.relative_to(runs))) for e in entries
                for c, _, _ in e.get("claims", [])]
    if verdicts:  # each verdict with the number it stands on and its rule, as the index page shows it
        table = Table(title="the study's claims")
        for col in ("claim", "verdict (number, rule)", "run"):
            table.add_column(col)
        for row in verdicts:
            table.add_row(*row)
        console.print(table)
    bad = [e for e in entries if e.get("error")]
    for e in bad:
        err.print(f"[yellow]warning:[/] {e['error']}")
    console.print(f"index: [bold]{path.resolve()}[/]")
