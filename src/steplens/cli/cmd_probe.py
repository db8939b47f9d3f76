"""`steplens probe NAME` (one of the study's experiments) and `steplens compare` (the multi-seed methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..experiments.dist import is_writer
from ..probes.registry import probe_names
from .app import _bounded, _check, _errors, _fail, _ints, _with_sampling, app, console
from .inputs import SCORES, SampleOptions, experiment_settings
from .options import (EngineOptions, ModelOptions, SamplingOptions, SearchOptions, batch_for, bundles, known_config,
                      load, part, spread)
from .run_options import SEARCH_METHODS, CompareOptions, EnsembleOptions, PlanOptions, ProbeOptions

NO_REUSE = typer.Option(False, "--no-reuse", help="recompute every condition whole instead of replaying the clean "
                                                  "run's shared prefix (the same results; the folder resumes either "
                                                  "way)", rich_help_panel=EngineOptions.PANEL)
PROBE_SAMPLES = part(SampleOptions, task=None)  # the probe's own task unless named
# compare's search options: the search methods' at each --budget (the method is compare's --search-methods; it checks
# them itself, against --budget)
COMPARE_SEARCH = part(SearchOptions, "verifier", "keep", "beam_step", "resample_steps", checked=False)


def planner_for(mo: ModelOptions, so: SamplingOptions, settings):
    """(Planner, settings with the sampling resolved) for --plan: a diffusers:PATH pipeline is not loaded
    (its backend reads its blocks and temporal factor from the folder, `folder_geometry`; steps and CFG from the
    options or the preset); the embedded model is (a few MB), and its own sampling, blocks and frames answer."""
    from ..backends.load import adapter_for_spec, is_pipeline_spec
    from ..orchestrators.plan import Planner

    if is_pipeline_spec(mo.model):
        from ..backends.load import folder_geometry
        from ..io.checks import sigma_list
        from .options import check_preset_before_loading

        check_preset_before_loading(mo, so)
        found = adapter_for_spec(str(mo.model))  # its adapter's presets (the folder's model_index.json)
        pre = dict(found[0].presets[so.preset].settings) if found and so.preset in found[0].presets else {}
        steps = len([x for x in sigma_list(so.sigmas) if x > 0]) if so.sigmas else (so.steps or pre.get("steps"))
        guidance = so.guidance if so.guidance is not None else pre.get("guidance")
        if steps is None or guidance is None:
            raise ValueError(f"--plan on {mo.model}: its own steps and CFG are known only once it loads; give --steps "
                             f"and --guidance (or a --preset of its family's that sets them)")
        blocks, _, frames_from_video = folder_geometry(str(mo.model))
        settings = settings.model_copy(update={"steps": steps, "guidance": guidance})
        return Planner(steps, settings.shift, guidance, tuple(blocks), frames_from_video), settings
    m, sp = load(mo, so)
    return Planner.of(m), _with_sampling(settings, sp)


def print_plan(parts, shape, sec_per_nfe, planner=None, settings=None, what: str = "", as_json: bool = False) -> None:
    """The plan's table (or JSON); without --sec-per-nfe, a loaded model's forwards timed on a batch of the run's size."""
    from ..orchestrators.plan import measure_sec_per_nfe, plan_json, plan_rows, plan_text

    sec = sec_per_nfe
    model = planner.model if planner is not None else None
    if sec is None and model is not None and settings is not None:
        one = settings.source().model_copy(update={"count": 1}).load(model.frames_from_video)
        batch = max(1, min(settings.batch, settings.count or settings.batch))
        sec = measure_sec_per_nfe(model, one[0], settings.sampling_for(model), batch=batch)
        if not as_json:
            typer.echo(f"measured {sec:.4g} s per NFE on this machine (the model's forwards timed on a batch of "
                       f"{batch}, the run's --batch)")
    if as_json:
        import json

        typer.echo(json.dumps({**plan_json(parts, sec), **({"measured": True} if sec != sec_per_nfe else {})}))
        return
    typer.echo(plan_text(plan_rows(parts, sec), shape, sec, what))


def _spread_run(eo, mo, so, out, settings, run, probe):
    """`run(model, settings)` on the chosen engine: the model loaded (and bound to a Ray pool), the settings given
    the resolved sampling; an OUT of another configuration refused first, before the model loads (`probe`: the
    experiment, steplens.probes.contract.Probe)."""
    from ..experiments.grid import check_store_before_loading
    from ..experiments.provenance import check_data

    described = {k: v for k, v in settings.describe().items() if k not in ("steps", "shift", "guidance", "sampling")}
    check_store_before_loading(out, probe.name, {**described, **known_config(mo, so)})  # every process, each itself
    check_data(out, settings.data)  # a sample's file changed since the folder was made: named before loading
    with spread(eo, mo, so, out) as engine:
        m, sp = load(mo, so)
        if engine is not None:
            engine.bind(m)
        return run(m, _with_sampling(settings, sp))


@app.command()
@bundles
def probe(
    name: str = typer.Argument(..., help=" | ".join(probe_names()) + " (plug-ins: the steplens.probes entry points)"),
    mo: ModelOptions = None, so: SamplingOptions = None, eo: EngineOptions = None,
    out: Path = typer.Option(..., help="results.json, <probe>.csv, plots, report.html; resumes (or grows with a larger "
                                       "--count) if present"),
    sa: PROBE_SAMPLES = None, sco: SCORES = None, po: ProbeOptions = None, pl: PlanOptions = None,
    no_reuse: bool = NO_REUSE,
):
    """Run one of the study's experiments on a model: a table, plots and a report section."""
    from ..probes import get_probe
    from ..probes.base import check_before_loading, floors_lines, floors_section
    from ..reports.page import Report
    from ..tape import no_reuse as reuse_off

    frame_noise, n_seeds, teacher = po.frame_noise, po.n_seeds, po.teacher
    try:
        batch = batch_for(mo, sa.batch, 50)  # 1 on a pipeline unless asked
        _check(out=out)
        mod = get_probe(name)
        options = {}
        if frame_noise is not None:
            if name != "noise":
                raise ValueError(f"--frame-noise {frame_noise} is an option of the noise probe, not of {name!r}")
            from ..probes.noise import check_options
            options = {"frame_noise": check_options(frame_noise=frame_noise)["frame_noise"]}
        if n_seeds is not None:
            if name != "plan":
                raise ValueError(f"--n-seeds {n_seeds} is an option of the plan probe, not of {name!r}")
            options["n_seeds"] = n_seeds
        if teacher is not None:
            if name != "plan":
                raise ValueError(f"--teacher {teacher} is an option of the plan probe, not of {name!r}")
            options["teacher"] = teacher
        settings = experiment_settings(sa, so, sco, batch, task=sa.task or mod.default_task())
        check_before_loading(mod, settings, **options)  # the probe's options, the task, the scorer: no model yet
        if pl.plan:
            planner, settings = planner_for(mo, so, settings)
            job = planner.part(mod, settings, options)
            print_plan([job], planner.shape(settings)[0], pl.sec_per_nfe, planner, settings, f"steplens probe {name}",
                       pl.as_json)
            return
        _bounded(sa.data, {"--count": sa.count})
        with reuse_off(no_reuse):
            res = _spread_run(eo, mo, so, out, settings, lambda m, st: mod.run(m, out, st, **options), mod)
    except _errors() as e:
        _fail(e)
    if not is_writer():
        return
    rep = Report(f"steplens probe {name}: {mo.model}")
    mod.report_section(rep, out, res)
    floors_section(rep, res)
    rep.write(out / "report.html")
    console.print_json(data=res["headline"])
    for line in floors_lines(res):
        console.print(line, markup=False)
    console.print(f"results: {out / 'results.json'}  report: [bold]{(out / 'report.html').resolve()}[/]")


@app.command("compare")
@bundles
def compare_cmd(
    mo: ModelOptions = None, so: SamplingOptions = None, eo: EngineOptions = None,
    out: Path = typer.Option(..., help="results.json, compare.csv, compare.png, report.html; resumes (or grows with a "
                                       "larger --count) if present"),
    co: CompareOptions = None, sa: SampleOptions = None, sco: SCORES = None, eno: EnsembleOptions = None,
    pl: PlanOptions = None, sc: COMPARE_SEARCH = None,
):
    """Every method on the same samples and noises: solve rates, mean scores, paired-bootstrap deltas vs one seed."""
    import dataclasses

    from ..probes.base import check_before_loading, floors_lines, floors_section
    from ..probes.compare import PROBE, compare, report_section
    from ..reports.page import Report

    try:
        batch = batch_for(mo, sa.batch, 50)  # 1 on a pipeline unless asked
        data, count, methods = sa.data, sa.count, co.methods
        _check(out=out)
        ens = eno.config()
        settings = experiment_settings(sa, so, sco, batch, count=count or (None if data else 500))
        settings.scorers()
        n_list = co.n_list()
        kw = {}
        if co.budget is not None:
            from ..probes.compare import check_budgets

            kw = {"budgets": check_budgets(_ints(co.budget, "--budget")),
                  "search_methods": co.search_methods.split(","),
                  "search": dataclasses.replace(sc, search="best-of-n").config()}
            if co.beside_verifiers is not None:
                kw["beside"] = [v.strip() for v in co.beside_verifiers.split(",")]
        elif (co.search_methods, sc, co.beside_verifiers) != (",".join(SEARCH_METHODS), SearchOptions(), None):
            raise ValueError("--search-methods, --verifier, --beside-verifiers, --keep, --beam-step and "
                             "--resample-steps go with --budget (the search methods run at budgets)")
        if not pl.plan:  # a run, not a bill (which prices any count): bounded before any check that builds its jobs
            _bounded(data, {"--count": count}, {"--n-seeds": n_list, "--budget": kw.get("budgets")})
        check_before_loading(PROBE, settings, n_list=n_list, methods=methods.split(","), ens=ens, **kw)
        if pl.plan:  # the run's own options: its jobs, search methods and budgets included
            planner, settings = planner_for(mo, so, settings)
            job = planner.part(PROBE, settings, dict(n_list=n_list, methods=methods.split(","), ens=ens, **kw))
            print_plan([job], planner.shape(settings)[0], pl.sec_per_nfe, planner, settings, "steplens compare",
                       pl.as_json)
            return
        res = _spread_run(eo, mo, so, out, settings, lambda m, st: compare(m, out, st, n_list=n_list,
                                                                          methods=methods.split(","), ens=ens, **kw),
                          PROBE)
    except _errors() as e:
        _fail(e)
    if not is_writer():
        return
    rep = Report(f"steplens compare: {mo.model}")
    report_section(rep, out, res)
    floors_section(rep, res)
    rep.write(out / "report.html")
    from rich.markup import escape  # a method or task name in brackets ("best-of-n [task]") is not markup

    table = Table(title="solve rate vs single seed (paired bootstrap 95% CI)")
    for col in ("method", "N", "solve rate", "mean score", "delta", "95% CI"):
        table.add_column(col)
    for r in res["table"]:
        table.add_row(escape(r["method"]), str(r["n_seeds"]), f"{r['solve_rate']:.3f}", f"{r['mean_score']:.3f}",
                      f"{r['delta_vs_single']:+.3f}", f"[{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]")
    console.print(table)
    if res.get("budget_table"):
        v = res.get("verifier") or {}
        from ..tasks import verifier_strength

        bt = Table(title=f"accuracy against NFE per family (paired bootstrap 95% CI vs one seed); search verifier "
                         f"{v.get('name')!r} (strength: {verifier_strength(v['name']) if v.get('name') else '-'}), "
                         f"ties: lowest particle index")
        for col in ("task", "method", "budget", "NFE (runs)", "solve rate", "delta", "95% CI", "vs best-of-n",
                    "mean score", "separated", "ties", "one-seed pick", "last link"):
            bt.add_column(col)
        for r in res["budget_table"]:
            work = r.get("separated") is not None
            vs = r.get("vs_best_of_n")
            bt.add_row(escape(r["task"]), escape(r["method"]), str(r["budget"]), f"{r.get('nfe_runs') or 0:.2f}",
                       f"{r['solve_rate']:.3f}", f"{r['delta'] or 0.0:+.3f}",
                       f"[{r['delta_ci_low'] or 0.0:+.3f}, {r['delta_ci_high'] or 0.0:+.3f}]",
                       "-" if vs is None else f"{vs:+.3f} [{r['vs_best_of_n_ci_low']:+.3f}, "
                                              f"{r['vs_best_of_n_ci_high']:+.3f}]",
                       f"{r['mean_score']:.3f}",
                       f"{r['separated']:.2f} of {r['decided']}" if work else "-",
                       str(r["ties"]) if r.get("ties") is not None else "-",
                       f"{r['picked_one_seed']:.2f}" if r.get("picked_one_seed") is not None else "-",
                       f"{r['last_link_share']:.2f}" if r.get("last_link_share") is not None else "-")
        console.print(bt)
        console.print("separated: share of samples where the verifier's scores were not all equal at some choice; "
                      "ties: choices the tie rule decided; one-seed pick: share whose pick is the one seed's own run; "
                      "last link (chain): the mean share of a solved answer its last link drew; vs best-of-n: solve "
                      "rate minus the search verifier's best-of-n at the budget (paired bootstrap 95% CI)")
        if v.get("note"):
            console.print(f"[bold yellow]note:[/] {escape(v['note'])}")
    for line in floors_lines(res):
        console.print(line, markup=False)
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")
