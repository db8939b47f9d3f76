"""`steplens trace` (x0_hat at every step of some samples) and `steplens demo` (the main job, in one report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .app import _bounded, _check, _errors, _fail, _ints, app, console
from .inputs import SCORES, SampleOptions
from .options import ModelOptions, SamplingOptions, bundles, known_config, load, part

TRACE_SAMPLES = part(SampleOptions, "data", "split", "tasks", "task", "count", "seed", "size", "frames")
DEMO_SAMPLES = part(SampleOptions, "task", "count", "size", "seed", task=None)

TRACE_CONFIG = "trace_config.json"  # the configuration a trace folder was made with


@app.command()
@bundles
def trace(
    mo: ModelOptions = None, so: SamplingOptions = None,
    sample: Optional[Path] = typer.Option(None, help="one sample folder (else --data, or --task/--seed/--size)",
                                          rich_help_panel=SampleOptions.PANEL),
    sa: TRACE_SAMPLES = None, sco: SCORES = None,
    decode_steps: Optional[str] = typer.Option(None, "--decode-steps", help="decode, score and keep x0_hat only at "
                                                                            "these steps, e.g. 0,10,25,-1 (-1: the last; default: "
                                                                            "every step on the embedded model; on a "
                                                                            "pipeline, whose VAE decodes each for "
                                                                            "seconds, steps 0, 1/4, 1/2, 3/4 and the "
                                                                            "last; 'all' for every step)"),
    out: Path = typer.Option(..., help="folder for x0.safetensors, grid.png, final_x0.gif, cos.png, metrics.json "
                                       "(with --data: one folder per sample, mirroring the layout) and "
                                       "trace_config.json (a folder traced otherwise is refused before the model "
                                       "loads)"),
):
    """Trace samples: x0_hat at every step, a step x frame grid, a GIF and chain-of-steps metrics."""
    from ..contract import identity
    from ..experiments.grid import my_jobs
    from ..orchestrators.runner import check_out_config
    from ..reports.traces import write_trace
    from ..tasks import generator_task
    from ..tasks.folders import SampleSource, read_sample
    from ..trace import check_decode_steps, trace as run_trace

    data, split, tasks, task, count, seed, size, frames = (sa.data, sa.split, sa.tasks, sa.task, sa.count, sa.seed,
                                                           sa.size, sa.frames)
    scorer, threshold, vbvr_score = sco.scorer, sco.threshold, sco.vbvr_score
    try:
        _check(out=out)
        scorers = sco.scorers()
        every = decode_steps is not None and decode_steps.strip() == "all"
        chosen = None if every else check_decode_steps(_ints(decode_steps, "--decode-steps"),
                                                       so.steps if so.sigmas is None else None,
                                                       "--decode-steps")  # before loading, where the steps are given
        where = ({"sample": str(Path(sample).resolve()), "seed": seed, "frames": frames} if sample is not None else
                 SampleSource(data=data, split=split, tasks=tasks, seed=seed, frames=frames).describe()
                 if data is not None else SampleSource(task=task, split=split, seed=seed, size=size,
                                                       frames=frames).describe())
        if sample is not None and not Path(sample).is_dir():
            raise ValueError(f"--sample {sample}: not a sample folder (one holding first_frame.png and prompt.txt)")
        if sample is None:  # the folder (it exists), its filters, the task that generates, its part: before loading
            SampleSource(data=data, split=split, tasks=tasks, task=task, seed=seed, frames=frames,
                         size=size if data is None else None).check()
        where = {**where, "scorer": scorer, "threshold": threshold,
                 **({"vbvr_score": vbvr_score} if vbvr_score else {})}
        check_out_config(out, {**known_config(mo, so), **where, **(  # before minutes of loading, on every process
            {"decode_steps": chosen} if chosen is not None and so.steps is not None and so.sigmas is None else {})},
            partial=True, name=TRACE_CONFIG)
        m, sp = load(mo, so)
        if decode_steps is None and m.is_pipeline:  # a few steps by default where each decode costs seconds
            chosen = sorted({0, sp.steps // 4, sp.steps // 2, 3 * sp.steps // 4, sp.steps - 1})
        chosen = check_decode_steps(chosen, sp.steps, "--decode-steps")
        config = {**identity(m), "steps": sp.steps, "shift": sp.shift, "guidance": sp.guidance,
                  **({"sampling": sp.describe()} if sp.extra else {}), **where,
                  "decode_steps": list(range(sp.steps)) if chosen is None else chosen}
        ffv = m.frames_from_video
        if sample is not None:
            found = [read_sample(sample, sample.parent.parent, seed, frames, ffv)]
            dirs = [out]
        elif data is not None:
            found = SampleSource(data=data, split=split, tasks=tasks, count=count or 1, seed=seed,
                                 frames=frames).load(ffv)
            dirs = [out / x.name for x in found]
        else:
            found = SampleSource(task=task, split=split, count=1, seed=seed, size=size, frames=frames).load(ffv)
            dirs = [out]
        scorers.check(found)
        check_out_config(out, config, name=TRACE_CONFIG)  # every process, under a lock; the first records it
        # under torchrun / accelerate launch each process traces its share of the samples (balanced by cost) into
        # its own folders; OUT must be one folder every process shares
        _, mine = my_jobs(found, 1, out)
        mine = {x.name for chunk in mine for x in chunk}
        for x, d in ((x, d) for x, d in zip(found, dirs) if x.name in mine):
            tr = run_trace(m, [x], [x.seed], sp, scorers=scorers, decode_steps=chosen,
                           x0_files=[d / "x0.safetensors"])[0]
            write_trace(tr, d)
            cs = tr.summary["commitment_step"]
            console.print(f"{x.name}: solved: {tr.final_score['success']}, score {tr.final_score['score']:.3f} "
                          f"(scored by {tr.final_score['scorer']}), "
                          f"commitment step: {cs}, candidate mass per step: "
                          f"{[m_['candidate_mass'] for m_ in tr.metrics]}")
    except _errors() as e:
        _fail(e)
    console.print(f"trace written to {out}")


@app.command()
@bundles
def demo(
    mo: ModelOptions = None, so: SamplingOptions = None,
    out: Path = typer.Option(Path("runs/demo")),
    sa: DEMO_SAMPLES = None,
):
    """The main job: held-out samples of each task family solved, scored and traced, gathered in OUT/report.html."""
    from ..orchestrators.demo import run_demo

    count, task, size, seed = sa.count, sa.task, sa.size, sa.seed
    try:
        _check(out=out)
        _bounded(None, {"--count": count})
        if task is not None:  # the families named, before the model loads
            from ..tasks import parse_tasks

            parse_tasks(task, "--task")
        m, sp = load(mo, so)
        report = run_demo(m, out, count=count, size=size, seed=seed, sampling=sp, task_name=task)
    except _errors() as e:
        _fail(e)
    summary = json.loads((out / "summary.json").read_text())
    table = Table(title=f"{summary['model']}: {summary['solved']}/{summary['count']} solved")
    cols = ("sample", "size", "solved", "commitment step", "answers held step 0", "changed px step 0",
            "changed px final")
    for col in cols:
        table.add_column(col)
    for r in summary["rows"]:
        table.add_row(*[str(r[c]) for c in cols])
    console.print(table)
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")
