"""`steplens eval`: generate (or read) samples, run the model with one method and score: the solve rate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import _bounded, _check, _errors, _fail, _with_sampling, app
from .cmd_run import _print_rate
from .inputs import SCORES, SampleOptions, experiment_settings
from .options import ModelOptions, SamplingOptions, SearchOptions, batch_for, bundles, known_config, load
from .run_options import EnsembleOptions

METHODS = "Methods"  # the --help panel of eval's method options


@app.command("eval")
@bundles
def evaluate(
    mo: ModelOptions = None, so: SamplingOptions = None, sc: SearchOptions = None,
    sa: SampleOptions = None, sco: SCORES = None,
    method: str = typer.Option("single", help="single | steps-x | vote | best-consensus | best-oracle | "
                                              "ensemble | ensemble-update | ensemble-x0 | ensemble-vote",
                               rich_help_panel=METHODS),
    n_seeds: int = typer.Option(3, help="N for the multi-seed methods", rich_help_panel=METHODS),
    eno: EnsembleOptions = None,
    out: Optional[Path] = typer.Option(None, help="write results.json here (a folder holding another evaluation's "
                                                  "results, or `run` outputs of another configuration, is refused "
                                                  "before the model loads)"),
):
    """Generate (or read) samples, run the model and score: solve rate with its 95% interval, mean score."""
    from ..contract import identity
    from ..experiments.evaluate import evaluate_samples
    from ..experiments.grid import batches, gather_rows, load_samples, my_jobs
    from ..experiments.stats import summarize
    from ..io.files import atomic_write_json
    from ..probes.compare import check_method
    from ..tape import forwards

    try:
        batch = batch_for(mo, sa.batch, 50)  # 1 on a pipeline unless asked
        data, task, size = sa.data, sa.task, sa.size
        _check(out=out)
        check_method(method)
        _bounded(data, {"--count": sa.count}, {"--n-seeds": [n_seeds]})
        search = sc.config()
        if search is not None and method != "single":
            raise ValueError(f"--search {search.method} and --method {method}: give one of them")
        s = experiment_settings(sa, so, sco, batch)
        ens = eno.config(n_seeds=n_seeds)
        scorers = s.scorers()
        s.source().check()  # a generated task that does not exist, before the model loads
        if search is not None:  # the steps where given, and every sample's verifier: before loading
            from ..methods.search import check_search
            from ..probes.compare import folder_samples
            check_search(search, so.steps if so.sigmas is None else None, [task] if data is None else [],
                         folder_samples(s) if data is not None else [])
        if out is not None:
            _check_eval_out(out, {"method": method, "n_seeds": None if method == "single" else n_seeds,
                                  **known_config(mo, so), **s.describe()}, so)
        m, sp = load(mo, so)
        m.step_progress = m.is_pipeline  # minutes per sample on a 14B pipeline: progress per step
        s = _with_sampling(s, sp)
        samples = load_samples(m, s)
        # under torchrun / accelerate launch each process runs its share of the batches; rank 0 reports them all
        coord, mine = my_jobs(samples, batch)
        mine = [x for chunk in mine for x in chunk]  # batched again into the same chunks
        if search is not None:
            from ..methods.search import check_search, search_rows

            check_search(search, s.steps, sorted({x.task for x in samples}))
        with forwards(m) as counted:  # the NFE of the evaluation (one per step, sample and CFG branch)
            if search is not None:
                rows = search_rows(m, mine, search, scorers, sp, None, batch, progress=True)
            elif method == "single":
                rows = evaluate_samples(m, mine, sp, batch, scorers)[0]
            else:
                rows = _eval_method(m, mine, method, ens, s, sp, scorers)
        rows = gather_rows(coord, rows, [x for chunk in batches(samples, batch) for x in chunk])  # one process's order
        res = summarize(rows)
        if search is not None:
            from ..methods.search import TIE_RULE
            from ..probes.compare import search_work

            res["nfe_per_sample"] = sum(r["nfe"] for r in rows) / max(1, len(rows))
            res["search_work"] = {**search_work(rows), "tie_rule": TIE_RULE}
        cost = {k: sum(v) for k, v in zip(("nfe", "nfe_without_reuse"),
                                          zip(*[tuple(c.values()) for c in coord.gather(counted.as_dict())]))}
    except _errors() as e:
        _fail(e)
    if coord.rank != 0:
        return
    where = str(data) if data else f"{task}" + (f" size {size}" if size else "")
    label = method + ("" if method == "single" else f", N={n_seeds}")
    if search is not None:
        label = f"search {search.method}, N={search.n}, verifier {search.verifier}"
    scored_by = scorers.used(samples)
    label += f", scored by {', '.join(dict.fromkeys(scored_by.values()))}"
    _print_rate(f"{mo.model} ({label}) on {len(samples)} samples of {where}", res)
    if search is not None:
        from .app import console

        console.print(f"NFE per sample: {res['nfe_per_sample']:.1f}")
        w = res["search_work"]
        if w["decided"]:
            sep = round(w["separated"] * w["decided"])
            console.print(f"the verifier separated the candidates on {sep} of {w['decided']} samples with a choice; "
                          f"{w['ties']} choices fell to the tie rule (lowest particle index)"
                          + ("" if sep else ": it scored every candidate alike"
                             + (", so every pick is particle 0, the one seed's video"
                                if w["picked_one_seed"] == 1.0 else "")))
        method = f"search:{search.method}"
    floors = None
    if search is None and method == "single":  # VBVR tables read against a still image (issue 34)
        from ..experiments.vbvr_scores import floor_lines, floors_for
        from .app import console

        try:
            floors = floors_for(samples, scorers, Path(out) if out else None)
        except _errors() as e:
            _fail(e)
        for line in floor_lines(floors) if floors else []:
            console.print(line, markup=False)
    if out:
        atomic_write_json(Path(out) / "results.json", {
            "model": mo.model, "identity": identity(m), "method": method,
            "n_seeds": None if method == "single" or search else n_seeds,
            "search": search.model_dump() if search is not None else None,
            "config": s.describe(), "scored_by": scored_by, "samples": len(samples), **res, "cost": cost,
            "per_sample": rows, **({"floors": floors} if floors else {})})


def _check_eval_out(out: Path, known: dict, so: SamplingOptions) -> None:
    """Before the model loads: an --out holding the results.json of another evaluation (model identity, method,
    samples, sampling given, scorer), or the run_config.json of `run` outputs made otherwise, is refused naming each
    differing field; the same evaluation reruns (results.json rewritten)."""
    import json

    from ..orchestrators.runner import RUN_CONFIG, check_out_config
    from ..io.files import read_config

    given = {k: v for k, v in known.items() if k not in ("steps", "shift", "guidance")
             or getattr(so, k) is not None and so.sigmas is None}  # the model's own numbers: known after loading
    res = Path(out) / "results.json"
    if res.is_file():
        saved = read_config(res)
        flat = {"method": saved.get("method"), "n_seeds": saved.get("n_seeds"),
                **(saved.get("identity") or {"model": saved.get("model")}), **(saved.get("config") or {})}
        check_out_config(out, {k: v for k, v in given.items() if k in flat or k in ("method", "n_seeds")},
                         partial=True, name="results.json", saved=json.loads(json.dumps(flat, default=str)))
    if (Path(out) / RUN_CONFIG).is_file():
        saved = read_config(Path(out) / RUN_CONFIG)
        check_out_config(out, {k: v for k, v in given.items() if k in saved}, partial=True)


def _eval_method(m, samples, method, ens, s, sp, scorers) -> list[dict]:
    from tqdm import tqdm

    from ..experiments.grid import batches
    from ..probes.compare import run_methods

    rows = []
    with tqdm(total=len(samples), desc=f"eval {method}") as bar:
        for chunk in batches(samples, s.batch):
            got = run_methods(m, chunk, [x.seed for x in chunk], [method], ens.n_seeds, sp, ens, scorers)[method]
            rows += [{"sample": x.name, "task": x.task, **r} for x, r in zip(chunk, got)]
            bar.update(len(chunk))
    return rows
