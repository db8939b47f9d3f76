"""`steplens probe NAME` (one of the study's experiments) and `steplens compare` (the multi-seed methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..experiments.dist import is_writer
from ..probes.registry import probe_names
from ..tasks.registry import DEFAULT_TASK
from .app import (ALPHA, DATA, ENS_BLOCKS, ENS_STEPS, SCORER, SPLIT, TASKS, THRESHOLD, _check, _errors, _fail, _ints,
                  _settings, _with_sampling, app, console)
from .options import EngineOptions, ModelOptions, SamplingOptions, bundles, load, spread


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
    batch: int = typer.Option(50, min=1),
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
):
    """Run one of the study's experiments on a model: a table, plots and a report section."""
    from ..probes import get_probe
    from ..reports.page import Report

    try:
        _check(out=out, threshold=threshold)
        mod = get_probe(name)
        task = task or mod.default_task()
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames, count=count,
                             seed=seed, steps=so.steps, shift=so.shift, guidance=so.guidance, batch=batch,
                             scorer=scorer, threshold=threshold)
        settings.scorers()  # an unknown scorer is named before the model loads
        with spread(eo, mo, so, out) as engine:
            m, sp = load(mo, so)
            if engine is not None:
                engine.bind(m)
            settings = _with_sampling(settings, sp)
            res = mod.run(m, out, settings)
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
    batch: int = typer.Option(50, min=1),
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
):
    """Every method on the same samples and noises: solve rates, mean scores, paired-bootstrap deltas vs one seed."""
    from ..methods.ensemble import EnsembleConfig
    from ..probes.compare import compare, report_section
    from ..reports.page import Report

    try:
        _check(out=out, threshold=threshold, alpha=alpha)
        ens = EnsembleConfig(blocks=_ints(ens_blocks, '--ens-blocks'), steps=_ints(ens_steps, '--ens-steps'),
                             alpha=alpha)
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames,
                             count=count or (None if data else 500), seed=seed, steps=so.steps, shift=so.shift,
                             guidance=so.guidance, batch=batch, scorer=scorer, threshold=threshold)
        settings.scorers()
        n_list = _ints(n_seeds, '--n-seeds')
        if not n_list:
            raise ValueError(f"--n-seeds {n_seeds!r}: give comma-separated N values, e.g. 2,3,4,8")
        with spread(eo, mo, so, out) as engine:
            m, sp = load(mo, so)
            if engine is not None:
                engine.bind(m)
            settings = _with_sampling(settings, sp)
            res = compare(m, out, settings, n_list=n_list, methods=methods.split(","), ens=ens)
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
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")
