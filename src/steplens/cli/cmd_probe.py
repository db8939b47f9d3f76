"""`steplens probe NAME` (one of the study's experiments) and `steplens compare` (the multi-seed methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..experiments.dist import is_writer
from ..probes.registry import probe_names
from ..tasks.registry import DEFAULT_TASK
from .app import (ALPHA, DATA, ENS_BLOCKS, ENS_STEPS, SCORER, SPLIT, TASKS, THRESHOLD, VBVR_SCORE, _bounded, _check,
                  _errors, _fail, _ints, _settings, _with_sampling, app, console)
from .options import (BATCH_HELP, EngineOptions, ModelOptions, SamplingOptions, batch_for, bundles, known_config, load,
                      spread)

PLAN = typer.Option(False, "--plan", help="print the jobs (samples x conditions), the NFE with and without prefix "
                                          "reuse and device-hours (with --sec-per-nfe) per part, and stop: nothing "
                                          "runs (a diffusers:PATH model is not loaded; the embedded model is, to read its "
                                          "steps and time one forward)")
SEC_PER_NFE = typer.Option(None, "--sec-per-nfe", help="seconds per model forward evaluation (one step, sample and "
                                                       "CFG branch) for --plan's device-hours, e.g. 4.1 (the study's 14B "
                                                       "model, 480p, 81 frames, one H100: 328 s / (40 steps x 2))")
NO_REUSE = typer.Option(False, "--no-reuse", help="recompute every condition whole instead of replaying the clean "
                                                  "run's shared prefix (the same results; the folder resumes either "
                                                  "way)")


JSON_PLAN = typer.Option(False, "--json", help="with --plan: print the plan as JSON ({\"parts\": [...], \"nfe\", "
                                              "\"nfe_without_reuse\", \"device_hours\"}) and nothing else")


def planner_for(mo: ModelOptions, so: SamplingOptions, settings):
    """(Planner, settings with the sampling resolved) for --plan: a wan:PATH / diffusers:PATH pipeline is not loaded
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
    """The plan's table (or JSON); without --sec-per-nfe, a loaded model's forwards timed on one sample."""
    from ..orchestrators.plan import measure_sec_per_nfe, plan_json, plan_rows, plan_text

    sec = sec_per_nfe
    model = planner.model if planner is not None else None
    if sec is None and model is not None and settings is not None:
        one = settings.source().model_copy(update={"count": 1}).load(model.frames_from_video)
        sec = measure_sec_per_nfe(model, one[0], settings.sampling_for(model))
        if not as_json:
            typer.echo(f"measured {sec:.4g} s per NFE on this machine (the model's forwards timed on one sample)")
    if as_json:
        import json

        typer.echo(json.dumps({**plan_json(parts, sec), **({"measured": True} if sec != sec_per_nfe else {})}))
        return
    typer.echo(plan_text(plan_rows(parts, sec), shape, sec, what))


def check_json(as_json: bool, plan: bool) -> None:
    if as_json and not plan:
        raise ValueError("--json prints the plan: it goes with --plan")


def _spread_run(eo, mo, so, out, settings, run, probe):
    """`run(model, settings)` on the chosen engine: the model loaded (and bound to a Ray pool), the settings given
    the resolved sampling; an OUT of another configuration refused first, before the model loads (`probe`: the
    experiment, steplens.probes.contract.Probe)."""
    from ..experiments.grid import check_store_before_loading

    described = {k: v for k, v in settings.describe().items() if k not in ("steps", "shift", "guidance", "sampling")}
    check_store_before_loading(out, probe.name, {**described, **known_config(mo, so)})  # every process, each itself
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
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    task: Optional[str] = typer.Option(None, help="generate samples of this task (without --data; default: the "
                                                  "probe's own, maze; swap: the first task whose prompt chooses the "
                                                  "answer, maze-two-goals)"),
    count: Optional[int] = typer.Option(None, min=1, help="samples (generated: 100; a folder: all)"),
    seed: int = typer.Option(0), size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None),
    batch: Optional[int] = typer.Option(None, min=1, help=BATCH_HELP.format(n=50)),
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD, vbvr_score: Optional[str] = VBVR_SCORE,
    frame_noise: Optional[str] = typer.Option(None, "--frame-noise", help="noise probe: one-step (default: the same "
                                                                          "fresh noise at step k on one latent frame, "
                                                                          "at a few steps and frames) | every-step "
                                                                          "(one frame replaced at every step, "
                                                                          "steplens' earlier protocol)"),
    n_seeds: Optional[int] = typer.Option(None, "--n-seeds", help="plan probe: seeds per sample (default 4; plan "
                                                                   "diversity needs 2 or more)"),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="plan probe: a model measured beside this one on "
                                                                  "the same samples and seeds, at its own sampling, "
                                                                  "at the steps nearest in σ (a student's teacher)"),
    plan: bool = PLAN, sec_per_nfe: Optional[float] = SEC_PER_NFE, no_reuse: bool = NO_REUSE,
    as_json: bool = JSON_PLAN,
):
    """Run one of the study's experiments on a model: a table, plots and a report section."""
    from ..orchestrators.plan import check_sec_per_nfe
    from ..probes import get_probe
    from ..probes.base import check_before_loading
    from ..reports.page import Report
    from ..tape import no_reuse as reuse_off

    try:
        batch = batch_for(mo, batch, 50)  # 1 on a pipeline unless asked
        _check(out=out, threshold=threshold)
        check_sec_per_nfe(sec_per_nfe)
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
        task = task or mod.default_task()
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames, count=count,
                             seed=seed, steps=so.steps, shift=so.shift, guidance=so.guidance, batch=batch,
                             scorer=scorer, threshold=threshold, vbvr_score=vbvr_score)
        check_before_loading(mod, settings, **options)  # the probe's options, the task, the scorer: no model yet
        check_json(as_json, plan)
        if plan:
            planner, settings = planner_for(mo, so, settings)
            part = planner.part(mod, settings, options)
            print_plan([part], planner.shape(settings)[0], sec_per_nfe, planner, settings, f"steplens probe {name}",
                       as_json)
            return
        _bounded(data, {"--count": count})
        with reuse_off(no_reuse):
            res = _spread_run(eo, mo, so, out, settings, lambda m, st: mod.run(m, out, st, **options), mod)
    except _errors() as e:
        _fail(e)
    if not is_writer():
        return
    rep = Report(f"steplens probe {name}: {mo.model}")
    mod.report_section(rep, out, res)
    rep.write(out / "report.html")
    console.print_json(data=res["headline"])
    console.print(f"results: {out / 'results.json'}  report: [bold]{(out / 'report.html').resolve()}[/]")


@app.command("compare")
@bundles
def compare_cmd(
    mo: ModelOptions = None, so: SamplingOptions = None, eo: EngineOptions = None,
    out: Path = typer.Option(..., help="results.json, compare.csv, compare.png, report.html; resumes (or grows with a "
                                       "larger --count) if present"),
    n_seeds: str = typer.Option("2,3,4,8", help="comma-separated N values"),
    methods: str = typer.Option(",".join(("steps-x", "vote", "best-consensus", "best-oracle", "ensemble",
                                          "ensemble-update", "ensemble-x0", "ensemble-vote"))),
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    task: str = typer.Option(DEFAULT_TASK, help="generate samples of this task (without --data)"),
    count: Optional[int] = typer.Option(None, min=1, help="samples (generated: 500; a folder: all)"),
    seed: int = typer.Option(0), size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None),
    batch: Optional[int] = typer.Option(None, min=1, help=BATCH_HELP.format(n=50)),
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD, vbvr_score: Optional[str] = VBVR_SCORE,
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
    plan: bool = PLAN, sec_per_nfe: Optional[float] = SEC_PER_NFE, as_json: bool = JSON_PLAN,
    budget: Optional[str] = typer.Option(None, "--budget", help="compute budgets in units of one plain run's NFE, "
                                                                "e.g. 1,2,4,8: the multi-seed methods at N = each "
                                                                "budget >= 2 (replaces --n-seeds) and the search "
                                                                "methods at each budget; adds the accuracy-vs-NFE "
                                                                "table and plot per family and the step-k AUC"),
    search_methods: str = typer.Option(",".join(("best-of-n", "early-beam", "smc")), "--search-methods",
                                       help="with --budget: best-of-n, early-beam, smc, chain (tasks with "
                                            "continue_from)"),
    verifier: str = typer.Option("task", "--verifier", help="with --budget: the search methods' verifier"),
    keep: int = typer.Option(1, "--keep", help="with --budget: early-beam's beams kept"),
    beam_step: Optional[int] = typer.Option(None, "--beam-step", help="with --budget: early-beam's beam step"),
    resample_steps: Optional[str] = typer.Option(None, "--resample-steps", help="with --budget: smc's resampling "
                                                                                "steps (default: the beam step, "
                                                                                "1/4 and 1/2 of the way)"),
):
    """Every method on the same samples and noises: solve rates, mean scores, paired-bootstrap deltas vs one seed."""
    from ..orchestrators.plan import check_sec_per_nfe
    from ..methods.ensemble import EnsembleConfig
    from ..probes.base import check_before_loading
    from ..probes.compare import PROBE, compare, report_section
    from ..reports.page import Report

    try:
        batch = batch_for(mo, batch, 50)  # 1 on a pipeline unless asked
        _check(out=out, threshold=threshold, alpha=alpha)
        check_sec_per_nfe(sec_per_nfe)
        ens = EnsembleConfig(blocks=_ints(ens_blocks, '--ens-blocks'), steps=_ints(ens_steps, '--ens-steps'),
                             alpha=alpha)
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames,
                             count=count or (None if data else 500), seed=seed, steps=so.steps, shift=so.shift,
                             guidance=so.guidance, batch=batch, scorer=scorer, threshold=threshold,
                             vbvr_score=vbvr_score)
        settings.scorers()
        n_list = _ints(n_seeds, '--n-seeds')
        if not n_list:
            raise ValueError(f"--n-seeds {n_seeds!r}: give comma-separated N values, e.g. 2,3,4,8")
        kw = {}
        if budget is not None:
            from ..cli.options import SearchOptions
            from ..probes.compare import check_budgets

            kw = {"budgets": check_budgets(_ints(budget, "--budget")), "search_methods": search_methods.split(","),
                  "search": SearchOptions(search="best-of-n", keep=keep, beam_step=beam_step,
                                          resample_steps=resample_steps, verifier=verifier).config()}
        elif (search_methods, verifier, keep, beam_step, resample_steps) != ("best-of-n,early-beam,smc", "task", 1,
                                                                              None, None):
            raise ValueError("--search-methods, --verifier, --keep, --beam-step and --resample-steps go with "
                             "--budget (the search methods run at budgets)")
        if not plan:  # a run, not a bill (which prices any count): bounded before any check that builds its jobs
            _bounded(data, {"--count": count}, {"--n-seeds": n_list, "--budget": kw.get("budgets")})
        check_before_loading(PROBE, settings, n_list=n_list, methods=methods.split(","), ens=ens, **kw)
        check_json(as_json, plan)
        if plan:  # the run's own options: its jobs, search methods and budgets included
            planner, settings = planner_for(mo, so, settings)
            part = planner.part(PROBE, settings, dict(n_list=n_list, methods=methods.split(","), ens=ens, **kw))
            print_plan([part], planner.shape(settings)[0], sec_per_nfe, planner, settings, "steplens compare",
                       as_json)
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
    rep.write(out / "report.html")
    table = Table(title="solve rate vs single seed (paired bootstrap 95% CI)")
    for col in ("method", "N", "solve rate", "mean score", "delta", "95% CI"):
        table.add_column(col)
    for r in res["table"]:
        table.add_row(r["method"], str(r["n_seeds"]), f"{r['solve_rate']:.3f}", f"{r['mean_score']:.3f}",
                      f"{r['delta_vs_single']:+.3f}", f"[{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]")
    console.print(table)
    if res.get("budget_table"):
        v = res.get("verifier") or {}
        from ..tasks import verifier_strength

        bt = Table(title=f"accuracy against NFE per family (paired bootstrap 95% CI vs one seed); search verifier "
                         f"{v.get('name')!r} (strength: {verifier_strength(v['name']) if v.get('name') else '-'}), "
                         f"ties: lowest particle index")
        for col in ("task", "method", "budget", "NFE (runs)", "solve rate", "delta", "95% CI", "mean score",
                    "separated", "ties", "one-seed pick", "last link"):
            bt.add_column(col)
        for r in res["budget_table"]:
            work = r.get("separated") is not None
            bt.add_row(r["task"], r["method"], str(r["budget"]), f"{r.get('nfe_runs') or 0:.2f}",
                       f"{r['solve_rate']:.3f}", f"{r['delta'] or 0.0:+.3f}",
                       f"[{r['delta_ci_low'] or 0.0:+.3f}, {r['delta_ci_high'] or 0.0:+.3f}]",
                       f"{r['mean_score']:.3f}",
                       f"{r['separated']:.2f} of {r['decided']}" if work else "-",
                       str(r["ties"]) if r.get("ties") is not None else "-",
                       f"{r['picked_one_seed']:.2f}" if r.get("picked_one_seed") is not None else "-",
                       f"{r['last_link_share']:.2f}" if r.get("last_link_share") is not None else "-")
        console.print(bt)
        console.print("separated: share of samples where the verifier's scores were not all equal at some choice; "
                      "ties: choices the tie rule decided; one-seed pick: share whose pick is the one seed's own run; "
                      "last link (chain): the mean share of a solved answer its last link drew")
        if v.get("note"):
            console.print(f"[bold yellow]note:[/] {v['note']}")
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")
