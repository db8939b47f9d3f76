"""`steplens run` (a video for every sample of a folder) and `steplens score` (outputs against their samples)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from .app import _check, _errors, _fail, app, console, err
from .inputs import SampleOptions, ScoreOptions
from .options import ModelOptions, SamplingOptions, SearchOptions, batch_for, bundles, known_config, load, part
from .run_options import EnsembleOptions

RUN_SAMPLES = part(SampleOptions, "data", "split", "tasks", "count", "seed", "frames", "batch", data=...)
ENSEMBLE = "Ensemble"  # the --help panel of run's ensemble options, beside the EnsembleOptions bundle's


@app.command()
@bundles
def run(
    sa: RUN_SAMPLES = None,
    out: Path = typer.Option(..., help="outputs mirror the samples' layout: OUT/[<split>/]<task>/<idx>.mp4 and .png"),
    mo: ModelOptions = None, so: SamplingOptions = None, sc: SearchOptions = None,
    ensemble: Optional[int] = typer.Option(None, help="N: sample N seeds per sample with the latent ensemble",
                                           rich_help_panel=ENSEMBLE),
    ens_target: str = typer.Option("block", help="what the ensemble averages: block | update | latent | x0 | v",
                                   rich_help_panel=ENSEMBLE),
    eno: EnsembleOptions = None,
    select: str = typer.Option("first", help="which ensemble member to write: first | consensus | all",
                               rich_help_panel=ENSEMBLE),
    split_seeds: bool = typer.Option(False, help="under torchrun: split the N seeds over the processes "
                                                 "(all-reduced means) instead of the samples", rich_help_panel=ENSEMBLE),
    video: str = typer.Option("full", help="full: the model's whole decoded video at the sample's fps (its "
                                           "ground_truth.mp4's, else the model's) | latent-frames: one frame per "
                                           "latent frame, 4 fps"),
):
    """Generate a video for every sample under DATA (skips those already done)."""
    from ..contract import identity
    from ..experiments.dist import join, quiet_others, rank_world, totals
    from ..experiments.provenance import check_resume, data_manifest, record, recorded, stage_provenance
    from ..orchestrators.runner import (RUN_CONFIG, SELECT, VIDEOS, check_out_config, even_upscale_note, even_upscales,
                                      run_samples)
    from ..methods.ensemble import check_ensemble
    from ..tasks.folders import SampleSource

    rank = quiet_others()  # under torchrun: rank 0 speaks for all (warnings once, totals)
    try:
        batch = batch_for(mo, sa.batch, 16)  # 1 on a pipeline unless asked
        _check(out=out)
        if video not in VIDEOS:
            raise ValueError(f"--video {video!r}: unknown; allowed: {', '.join(VIDEOS)}")
        given = [o for o, v, d in (("--ens-target", ens_target, "block"), ("--ens-blocks", eno.ens_blocks, None),
                                   ("--ens-steps", eno.ens_steps, None), ("--select", select, "first"),
                                   ("--split-seeds", split_seeds, False)) if v != d]
        if ensemble is None and given:  # never silently ignored
            raise ValueError(f"{', '.join(given)} without --ensemble: these need an ensemble (N seeds per sample); "
                             f"give --ensemble N")
        if select not in SELECT:
            raise ValueError(f"--select: unknown selection rule {select!r}; available: {', '.join(SELECT)}")
        ens = None if ensemble is None else eno.config(n_seeds=ensemble, target=ens_target)
        search = sc.config()
        if search is not None and ens is not None:
            raise ValueError(f"--search {search.method} and --ensemble {ensemble}: give one of them")
        source = SampleSource(data=sa.data, split=sa.split, tasks=sa.tasks, count=sa.count, seed=sa.seed,
                              frames=sa.frames)
        check_out_config(out, {**known_config(mo, so), **source.describe(), "ensemble": ens.model_dump() if ens else
                               None, "select": select, "video": video}, partial=True)  # before minutes of loading
        with warnings.catch_warnings():  # the samples' own warnings come once, with the load below
            warnings.simplefilter("ignore")
            listed = source.load(need_frames=False)
            note = even_upscale_note(listed)  # odd sides: decided before the model loads
        if search is not None:  # every sample's verifier resolved before the model loads
            from ..methods.search import check_search
            check_search(search, so.steps if so.sigmas is None else None, (), listed)
        man = data_manifest(listed)  # the data and the runtime a resume must share: checked before loading
        check_resume(out, man, stage_provenance("run", man, mo.device))
        if note and rank == 0:
            console.print(note)
        m, sp = load(mo, so)
        m.step_progress = m.is_pipeline  # minutes per sample on a 14B pipeline: progress per step
        steps, shift, guidance = sp.steps, sp.shift, sp.guidance
        if ens is not None:
            check_ensemble(ens, m, steps)
        samples = source.load(m.frames_from_video)
        if search is not None:
            from ..methods.search import check_search
            check_search(search, steps, sorted({x.task for x in samples}))
        if split_seeds:
            join()
        config = {**identity(m), "steps": steps, "shift": shift, "guidance": guidance, **source.describe(),
                  **({"sampling": sp.describe()} if sp.extra else {}),
                  "ensemble": ens.model_dump() if ens else None, "select": select, "video": video,
                  **({"even_upscale": even_upscales(samples)} if even_upscales(samples) else {}),
                  **({"search": search.model_dump()} if search is not None else {})}
        def note_provenance():  # the folder is ours (its run_config.json written), the run done or cut short
            if rank == 0 and (Path(out) / RUN_CONFIG).is_file():
                recorded_man = recorded(out, man)
                record(out, recorded_man, stage_provenance("run", recorded_man, mo.device, family=m.backend, **{
                    k: config[k] for k in config if k not in source.describe()}))
        try:
            done = run_samples(m, samples, out, sp, batch=batch, ensemble=ens, select=select, split_seeds=split_seeds, config=config, video=video,
                               search=search)
        except _errors():  # refused (another configuration, a bad option): the folder's records stay as they were
            raise
        except BaseException:  # interrupted or failed part-way: what was written is recorded
            note_provenance()
            raise
        note_provenance()
        made, world = totals(len(done))[0], rank_world()[1]
    except _errors() as e:
        _fail(e)
    if rank == 0:
        console.print(f"generated {made} videos into {out} ({len(samples) - made} of {len(samples)} were done)"
                      + (f" by {world} processes" if world > 1 else ""))


def _print_rate(title: str, res: dict) -> None:
    mean = "-" if res["mean_score"] is None else f"{res['mean_score']:.3f}"
    console.print(f"{title}: solved {res['solved']}/{res['n']} = [bold]{res['solve_rate']:.3f}[/] "
                  f"(95% CI {res['ci_low']:.3f}-{res['ci_high']:.3f}), mean score {mean}")


@app.command()
@bundles
def score(
    sa: part(SampleOptions, "data", "split", "tasks", data=...) = None,
    outputs: Path = typer.Option(..., help="folder mirroring DATA: [<split>/]<task>/<idx>.mp4 (and .png)"),
    sco: ScoreOptions = None,
    out: Optional[Path] = typer.Option(None, help="write the scores here: a .json file (or a folder: scores.json; "
                                                  "with the vbvr scorer also its manifest, provenance and floors, "
                                                  "and a rescore resumes there)"),
):
    """Score generated outputs against their samples: solve rate, mean score, missing outputs."""
    from ..orchestrators.runner import score_samples, write_scores
    from ..experiments.vbvr_scores import is_vbvr, score_vbvr, table_lines
    from ..tasks.folders import SampleSource

    try:
        _check(out_file=out if out is not None and Path(out).suffix == ".json" else None,
               out=out if out is not None and Path(out).suffix != ".json" else None)
        vbvr_score, vbvr_pro_source = sco.vbvr_score, sco.vbvr_pro_source
        scorers = sco.scorers(vbvr_pro_source=vbvr_pro_source)
        samples = SampleSource(data=sa.data, split=sa.split, tasks=sa.tasks).load(need_frames=False)
        kit = all(is_vbvr(scorers.for_sample(s)) for s in samples)  # a folder mixing kinds: scored row by row
        if vbvr_score is not None and not kit:
            raise ValueError(f"--vbvr-score {vbvr_score} applies to the vbvr scorer; these samples are scored by "
                             f"{scorers.describe()} (give --scorer vbvr)")
        if vbvr_pro_source is not None and sco.scorer != "vbvr-pro":
            raise ValueError(f"--vbvr-pro-source {vbvr_pro_source} applies to --scorer vbvr-pro; the scorer here is "
                             f"{scorers.describe()}")
        if kit:
            record = out if out is not None and Path(out).suffix != ".json" else None
            res = score_vbvr(samples, outputs, scorers, record=record, floors=sco.floors)
            res.setdefault("scored_by", {s.task: scorers.for_sample(s).name for s in samples})
        else:
            res = score_samples(samples, outputs, scorers)
        path = write_scores(res, out) if out else None
    except _errors() as e:
        _fail(e)
    if res["missing"]:
        err.print(f"[yellow]warning:[/] {res['missing']} of {res['n']} outputs missing (scored as failures, score 0)")
    if kit:
        bad = [r for r in res["rows"] if r.get("error")]
        if bad:
            err.print(f"[yellow]warning:[/] the evaluator failed on {len(bad)} of {res['n']} samples (counted as "
                      f"errors, as score 0 in the means): " + "; ".join(f"{r['sample']}: {r['error']}" for r in bad))
        for line in table_lines(res):
            console.print(line, markup=False)
    elif len(res["per_task"]) > 1:
        for t, r in res["per_task"].items():
            _print_rate(f"  {t} (scored by {res['scored_by'][t]})", r)
    _print_rate(f"score (scored by {', '.join(dict.fromkeys(res['scored_by'].values()))}"
                + (f", {res['mode']} mode" if kit else "") + ")", res)
    if path:
        console.print(f"scores: {path}")
