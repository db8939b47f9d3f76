"""The steplens command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .tasks.registry import DEFAULT_TASK

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
tasks_app = typer.Typer(no_args_is_help=True, help="Procedural reasoning tasks.")
app.add_typer(tasks_app, name="tasks")
console = Console()
err = Console(stderr=True, soft_wrap=True)

MODEL = typer.Option("tiny-maze", "--model", "-m", help="tiny-maze (shipped), a .safetensors file, or wan:PATH (a "
                                                         "diffusers Wan or LTX-2 image-to-video folder)")
STEPS = typer.Option(None, help="sampling steps (>= 1; default: the preset's: the model's own, 20 on the embedded "
                                 "model, the pipeline's 50 on wan:PATH)")
SHIFT = typer.Option(None, help="sigma shift of the flow schedule (default: the preset's; the model's own)")
GUIDANCE = typer.Option(None, help="classifier-free guidance scale, 1 = off (default: the preset's; the model's own)")
PRESET = typer.Option(None, "--preset", help="pipeline (default: the model's own settings) | vbvr (the study's "
                                             "VBVR-Wan2.2 sampling: Euler, 50 steps, shift 5, CFG 5, expert switch "
                                             "0.875; wan:PATH only); explicit options override it")
HEIGHT = typer.Option(None, "--height", help="wan:PATH: the video height in pixels (a multiple of the pipeline's; "
                                             "default: the sample's frame upscaled, or the first frame's size)")
WIDTH = typer.Option(None, "--width", help="wan:PATH: the video width in pixels (with --height)")
NEGATIVE = typer.Option(None, "--negative-prompt", help="wan:PATH: CFG's negative prompt (default: the preset's)")
DEVICE = typer.Option("cpu", help="torch device")
DTYPE = typer.Option("float32", help="float32 | bfloat16 | float16 (wan:PATH pipelines; the VAE and image encoder "
                                     "stay float32; the embedded model runs in float32)")
OFFLOAD = typer.Option("none", help="none | model | sequential: CPU offload of a wan:PATH pipeline onto --device "
                                    "(needs accelerate and an accelerator)")
LORA = typer.Option(None, "--lora", help="PATH[:SCALE]: a LoRA for a wan:PATH model's first (or only) transformer "
                                         "(DiffSynth, original Wan / ComfyUI or diffusers keys)")
LORA_2 = typer.Option(None, "--lora-2", help="PATH[:SCALE]: a LoRA for Wan2.2's second expert (transformer_2)")
ENS_BLOCKS = typer.Option(None, "--ens-blocks", help="ensemble blocks, e.g. 4,5 (default: the middle quarter)")
ENS_STEPS = typer.Option(None, "--ens-steps", help="ensemble steps, e.g. 0,1,2 (default: the first 15%)")
ALPHA = typer.Option(1.0, help="ensemble strength in [0, 1]: 0 = independent seeds, 1 = replaced by the mean")


def _ints(v: Optional[str], option: str = "") -> Optional[list[int]]:
    if v is None:
        return None
    try:
        return [int(x) for x in v.split(",")]
    except ValueError:
        raise ValueError(f"{option + ' ' if option else ''}expected comma-separated integers, got {v!r}") from None


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show the Python traceback of an error")):
    """steplens: trace, probe and improve how video diffusion models reason along denoising steps."""
    global DEBUG
    DEBUG = debug


DEBUG = False


def _check(steps=None, shift=None, guidance=None, device=None, out=None, out_file=None, threshold=None, alpha=None,
           upscale=None):
    """Every option checked before any work or write (steplens.checks); stale temp files of killed runs removed."""
    from . import checks
    from .io import clean_stale_temps

    checks.sampling(steps, shift, guidance)
    checks.number("--threshold", threshold, 0, 1)
    checks.number("--alpha", alpha, 0, 1)
    if device is not None:
        checks.device(device)
    if out is not None:
        checks.out_dir(out)
        clean_stale_temps(out)
    if out_file is not None:
        checks.out_file(out_file)


def _model(spec: str, device: str, dtype: str = "float32", offload: str = "none", lora=None, lora_2=None):
    from .models.load import load_model

    try:
        return load_model(spec, device, dtype=dtype, offload=offload, lora=lora, lora_2=lora_2)
    except (ValueError, OSError, ImportError) as e:
        _fail(e)


def _sampled(spec, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height=None, width=None,
             negative_prompt=None):
    """(model, steplens.presets.Sampling): the model loaded and set up for the preset, explicit values winning."""
    from .presets import check_preset, check_size_pair, resolve

    check_preset(preset)  # named before the model loads
    check_size_pair(height, width)
    m = _model(spec, device, dtype, offload, lora, lora_2)
    return m, resolve(m, preset, steps, shift, guidance, height, width, negative_prompt)


def _with_sampling(s, sp):
    """Experiment settings with the resolved sampling (a pipeline's preset recorded in its configs)."""
    extra = {"sampling": sp.describe()} if sp.extra else {}
    return s.model_copy(update={"steps": sp.steps, "shift": sp.shift, "guidance": sp.guidance, **extra})


def _scorer_help() -> str:
    return ("scorer for every sample (default: each task's own: maze for the mazes); vbvr = VBVR-EvalKit's "
            "evaluators, when that package is installed")


DATA = typer.Option(None, "--data", help="folder of samples: steplens (<task>/<idx>/) or VBVR-Bench "
                                         "(<split>/<task>/<idx>/) layout, found by looking")
SPLIT = typer.Option(None, "--split", help="only these splits of a VBVR-Bench folder, e.g. In-Domain_50")
TASKS = typer.Option(None, "--tasks", help="only these task folders (or task names), comma-separated")
SCORER = typer.Option(None, "--scorer", help=_scorer_help())
THRESHOLD = typer.Option(None, "--threshold", help="success = score >= this, for continuous scorers (vbvr: 0.8)")


def _settings(**kw):
    from .experiment import ExperimentSettings

    return ExperimentSettings(**{k: v for k, v in kw.items() if v is not None})


def _errors():
    from pydantic import ValidationError

    return (ValueError, OSError, ValidationError)


def _pydantic_message(e) -> str:
    from pydantic import ValidationError

    if isinstance(e, ValidationError):  # a field's error names the field and the value; a whole-model one is whole
        return "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
                         if err["loc"] else err["msg"].removeprefix("Value error, ") for err in e.errors())
    return str(e)


def _fail(e: Exception) -> None:
    if DEBUG:
        raise e
    err.print(f"[bold red]error:[/] {_pydantic_message(e)}", markup=True, highlight=False)
    raise typer.Exit(2)


@tasks_app.command("list")
def tasks_list():
    """The registered tasks (with their scorers and generators) and scorers, plug-ins included."""
    from .tasks import get_task, has_generator, scorer_names, task_names

    table = Table(title="tasks")
    for col in ("task", "scorer", "generator", "difficulty (size)", "frames"):
        table.add_column(col)
    for n in task_names():
        t = get_task(n)
        table.add_row(n, t.scorer, "yes" if has_generator(t) else "no",
                      f"{t.default_size} ({t.sizes[0]}..{t.sizes[1]})" if has_generator(t) else "-", str(t.default_frames))
    console.print(table)
    console.print(f"scorers: {', '.join(scorer_names())}")


@tasks_app.command("generate")
def tasks_generate(
    task: str = typer.Argument(DEFAULT_TASK, help="task name (steplens tasks list)"),
    count: int = typer.Option(10, min=1, help="number of samples"),
    seed: int = typer.Option(0, help="first seed; sample i uses seed + i"),
    size: Optional[int] = typer.Option(None, help="the task's difficulty knob (a maze: n x n cells)"),
    frames: Optional[int] = typer.Option(None, help="frames of the ground-truth video"),
    upscale: int = typer.Option(16, min=1, help="integer nearest-neighbour upscale of PNG/MP4"),
    out: Path = typer.Option(..., help="root folder; samples go to OUT/<task>/<idx:05d>/"),
):
    """Write samples in the VBVR-Bench sample layout (first_frame.png, final_frame.png, ground_truth.mp4, ...)."""
    from tqdm import tqdm

    from .runner import check_out_config
    from .tasks import generator_task, write_sample

    try:
        _check(out=out)
        t = generator_task(task)
        made = [t.sample(seed + i, size, frames, idx=i) for i in range(count)]  # validate before writing anything
        odd = [s_ for s_ in made if (s_.first_frame.shape[0] * upscale) % 2 or (s_.first_frame.shape[1] * upscale) % 2]
        if odd:
            h, w = odd[0].first_frame.shape[:2]
            raise ValueError(f"--upscale {upscale}: {w}x{h}-pixel frames would be {w * upscale}x{h * upscale}, and "
                             f"H.264 video needs even sides; use an even --upscale")
        folder = out / t.name  # its manifest: more samples of one configuration, never a mix of two
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "run_config.json").exists():
            raise ValueError(f"{folder} already holds files not made by `steplens tasks generate`; use another --out")
        check_out_config(folder, {"command": "tasks generate", "task": t.name, "seed": seed, "size": size,
                                  "frames": frames, "upscale": upscale})
        for s_ in tqdm(made, desc=f"generate {task}"):
            write_sample(out, s_, scale=upscale)
    except _errors() as e:
        _fail(e)
    console.print(f"wrote {count} {task} samples to {out / task}")


@app.command()
def run(
    data: Path = typer.Option(..., help="folder of samples (steplens or VBVR-Bench layout)"),
    out: Path = typer.Option(..., help="outputs mirror the samples' layout: OUT/[<split>/]<task>/<idx>.mp4 and .png"),
    split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    count: Optional[int] = typer.Option(None, min=1, help="only the first COUNT samples (after the filters)"),
    model: str = MODEL, steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT, guidance: Optional[float] = GUIDANCE,
    seed: int = typer.Option(0, help="noise seed of sample idx is seed + idx"),
    frames: Optional[int] = typer.Option(None, help="frames to generate (default: the sample's metadata, else its "
                                                    "ground_truth.mp4's, mapped to the model's)"),
    batch: int = typer.Option(16, min=1), device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE,
    ensemble: Optional[int] = typer.Option(None, help="N: sample N seeds per sample with the latent ensemble"),
    ens_target: str = typer.Option("block", help="what the ensemble averages: block | update | latent | x0 | v"),
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
    select: str = typer.Option("first", help="which ensemble member to write: first | consensus | all"),
    split_seeds: bool = typer.Option(False, help="under torchrun: split the N seeds over the processes "
                                                 "(all-reduced means) instead of the samples"),
):
    """Generate a video for every sample under DATA (skips those already done)."""
    from .ensemble import EnsembleConfig, check_ensemble
    from .folders import SampleSource
    from .runner import run_samples

    try:
        _check(steps, shift, guidance, device, out=out, alpha=alpha)
        ens = None if ensemble is None else EnsembleConfig(n_seeds=ensemble, target=ens_target,
                                                           blocks=_ints(ens_blocks, '--ens-blocks'), steps=_ints(ens_steps, '--ens-steps'),
                                                           alpha=alpha)
        source = SampleSource(data=data, split=split, tasks=tasks, count=count, seed=seed, frames=frames)
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height, width,
                         negative_prompt)
        steps, shift, guidance = sp.steps, sp.shift, sp.guidance
        if ens is not None:
            check_ensemble(ens, m, steps)
        samples = source.load(m.frames_from_video)
        if split_seeds:
            _distributed()
        config = {"model": model, "steps": steps, "shift": shift, "guidance": guidance, **source.describe(),
                  **({"sampling": sp.describe()} if sp.extra else {}),
                  "ensemble": ens.model_dump() if ens else None, "select": select}
        done = run_samples(m, samples, out, steps=steps, shift=shift, batch=batch, guidance=guidance, ensemble=ens,
                           select=select, split_seeds=split_seeds, config=config)
    except _errors() as e:
        _fail(e)
    console.print(f"generated {len(done)} videos into {out} ({len(samples) - len(done)} of {len(samples)} were done)")


def _print_rate(title: str, res: dict) -> None:
    mean = "-" if res["mean_score"] is None else f"{res['mean_score']:.3f}"
    console.print(f"{title}: solved {res['solved']}/{res['n']} = [bold]{res['solve_rate']:.3f}[/] "
                  f"(95% CI {res['ci_low']:.3f}-{res['ci_high']:.3f}), mean score {mean}")


@app.command()
def score(
    data: Path = typer.Option(..., help="folder of samples (steplens or VBVR-Bench layout)"),
    outputs: Path = typer.Option(..., help="folder mirroring DATA: [<split>/]<task>/<idx>.mp4 (and .png)"),
    split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
    out: Optional[Path] = typer.Option(None, help="write the scores here: a .json file (or a folder: scores.json)"),
):
    """Score generated outputs against their samples: solve rate, mean score, missing outputs."""
    from .folders import SampleSource
    from .runner import score_samples, write_scores
    from .tasks import Scorers

    try:
        _check(threshold=threshold, out_file=out if out is not None and Path(out).suffix == ".json" else None,
               out=out if out is not None and Path(out).suffix != ".json" else None)
        scorers = Scorers(scorer, threshold)
        samples = SampleSource(data=data, split=split, tasks=tasks).load(need_frames=False)
        res = score_samples(samples, outputs, scorers)
        path = write_scores(res, out) if out else None
    except _errors() as e:
        _fail(e)
    if res["missing"]:
        err.print(f"[yellow]warning:[/] {res['missing']} of {res['n']} outputs missing (scored as failures, score 0)")
    if len(res["per_task"]) > 1:
        for t, r in res["per_task"].items():
            _print_rate(f"  {t}", r)
    _print_rate(f"score ({res['scorer']} scorer)", res)
    if path:
        console.print(f"scores: {path}")


@app.command("eval")
def evaluate(
    model: str = MODEL,
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    task: str = typer.Option(DEFAULT_TASK, help="generate samples of this task (without --data)"),
    count: Optional[int] = typer.Option(None, min=1, help="samples (generated: 100; a folder: all)"),
    seed: int = typer.Option(0, help="held-out seeds seed..seed+count-1 (training uses seeds >= 1e9); with --data, "
                                     "noise seed = seed + idx"),
    size: Optional[int] = typer.Option(None, help="the task's difficulty knob (a maze: n x n cells)"),
    frames: Optional[int] = typer.Option(None), steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT,
    guidance: Optional[float] = GUIDANCE, batch: int = typer.Option(50, min=1), device: str = DEVICE,
    dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE, scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
    method: str = typer.Option("single", help="single | steps-x | vote | best-consensus | best-oracle | "
                                              "ensemble | ensemble-update | ensemble-x0 | ensemble-vote"),
    n_seeds: int = typer.Option(3, help="N for the multi-seed methods"),
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
    out: Optional[Path] = typer.Option(None, help="write results.json here"),
):
    """Generate (or read) samples, run the model and score: solve rate with its 95% interval, mean score."""
    from .compare import check_method
    from .ensemble import EnsembleConfig
    from .evaluate import evaluate_samples
    from .io import atomic_write_json
    from .experiment import load_samples
    from .stats import summarize

    try:
        _check(steps, shift, guidance, device, out=out, threshold=threshold, alpha=alpha)
        check_method(method)
        s = _settings(data=data, split=split, tasks=tasks, task=task, count=count, seed=seed, size=size, frames=frames,
                      steps=steps, shift=shift, guidance=guidance, batch=batch, scorer=scorer, threshold=threshold)
        ens = EnsembleConfig(n_seeds=n_seeds, blocks=_ints(ens_blocks, '--ens-blocks'), steps=_ints(ens_steps, '--ens-steps'), alpha=alpha)
        scorers = s.scorers()
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height, width,
                         negative_prompt)
        s = _with_sampling(s, sp)
        steps, shift, guidance = sp.steps, sp.shift, sp.guidance
        samples = load_samples(m, s)
        if method == "single":
            rows, res = evaluate_samples(m, samples, steps, shift, guidance, batch, scorers)
        else:
            rows = _eval_method(m, samples, method, ens, s, scorers)
            res = summarize(rows)
    except _errors() as e:
        _fail(e)
    where = str(data) if data else f"{task}" + (f" size {size}" if size else "")
    _print_rate(f"{model} ({method}{'' if method == 'single' else f', N={n_seeds}'}) on {len(samples)} samples of "
                f"{where}", res)
    if out:
        atomic_write_json(Path(out) / "results.json", {
            "model": model, "method": method, "n_seeds": None if method == "single" else n_seeds,
            "config": s.describe(), "samples": len(samples), **res, "per_sample": rows})


def _eval_method(m, samples, method, ens, s, scorers) -> list[dict]:
    from tqdm import tqdm

    from .compare import run_methods
    from .experiment import batches

    rows = []
    with tqdm(total=len(samples), desc=f"eval {method}") as bar:
        for chunk in batches(samples, s.batch):
            got = run_methods(m, chunk, [x.seed for x in chunk], [method], ens.n_seeds, s.steps, s.shift, ens,
                              scorers, s.guidance)[method]
            rows += [{"sample": x.name, "task": x.task, **r} for x, r in zip(chunk, got)]
            bar.update(len(chunk))
    return rows


@app.command()
def trace(
    model: str = MODEL,
    sample: Optional[Path] = typer.Option(None, help="one sample folder (else --data, or --task/--seed/--size)"),
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    count: Optional[int] = typer.Option(None, min=1, help="with --data: trace the first COUNT samples (default 1)"),
    task: str = typer.Option(DEFAULT_TASK), seed: int = typer.Option(0), size: Optional[int] = typer.Option(None),
    frames: Optional[int] = typer.Option(None), steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT,
    guidance: Optional[float] = GUIDANCE, device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE,
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
    out: Path = typer.Option(..., help="folder for x0.safetensors, grid.png, final_x0.gif, cos.png, metrics.json "
                                       "(with --data: one folder per sample, mirroring the layout)"),
):
    """Trace samples: x0_hat at every step, a step x frame grid, a GIF and chain-of-steps metrics."""
    from .folders import SampleSource, read_sample
    from .tasks import Scorers, generator_task
    from .trace import trace as run_trace
    from .trace import write_trace

    try:
        _check(steps, shift, guidance, device, out=out, threshold=threshold)
        scorers = Scorers(scorer, threshold)
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height, width,
                         negative_prompt)
        steps, shift, guidance = sp.steps, sp.shift, sp.guidance
        ffv = m.frames_from_video
        if sample is not None:
            found = [read_sample(sample, sample.parent.parent, seed, frames, ffv)]
            dirs = [out]
        elif data is not None:
            found = SampleSource(data=data, split=split, tasks=tasks, count=count or 1, seed=seed,
                                 frames=frames).load(ffv)
            dirs = [out / x.name for x in found]
        else:
            found = [generator_task(task).sample(seed, size, frames, idx=seed)]
            dirs = [out]
        scorers.check(found)
        for x, d in zip(found, dirs):
            tr = run_trace(m, [x], [x.seed], steps=steps, shift=shift, guidance=guidance, scorers=scorers)[0]
            write_trace(tr, d)
            cs = tr.summary["commitment_step"]
            console.print(f"{x.name}: solved: {tr.final_score['success']}, score {tr.final_score['score']:.3f}, "
                          f"commitment step: {cs}, candidate mass per step: "
                          f"{[m_['candidate_mass'] for m_ in tr.metrics]}")
    except _errors() as e:
        _fail(e)
    console.print(f"trace written to {out}")


@app.command()
def demo(
    model: str = MODEL, out: Path = typer.Option(Path("runs/demo")),
    count: Optional[int] = typer.Option(None, min=1, help="samples (one task: 6, half one notch harder; several: 1 "
                                                          "of each)"),
    task: Optional[str] = typer.Option(None, help="the task families to show: a name, a comma-separated list or "
                                                  "'all' (default: those the model was trained on, else maze)"),
    size: Optional[int] = typer.Option(None), seed: int = typer.Option(0), steps: Optional[int] = STEPS,
    shift: Optional[float] = SHIFT, device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE,
):
    """The main job: held-out samples of each task family solved, scored and traced, gathered in OUT/report.html."""
    from .demo import run_demo

    try:
        _check(steps, shift, None, device, out=out)
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, None, height, width,
                         negative_prompt)
        steps, shift = sp.steps, sp.shift
        report = run_demo(m, out, count=count, size=size, seed=seed, steps=steps, shift=shift, task_name=task)
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
    console.print(f"report: [bold]{report.resolve()}[/]")


@app.command()
def probe(
    name: str = typer.Argument(..., help="noise | propagation | energy | swap | sweep | behaviours"),
    model: str = MODEL,
    out: Path = typer.Option(..., help="results.json, <probe>.csv, plots, report.html; resumes (or grows with a larger "
                                       "--count) if present"),
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    task: Optional[str] = typer.Option(None, help="generate samples of this task (without --data; default: the "
                                                  "probe's own, maze; swap: the first task whose prompt chooses the "
                                                  "answer, maze-two-goals)"),
    count: Optional[int] = typer.Option(None, min=1, help="samples (generated: 100; a folder: all)"),
    seed: int = typer.Option(0), size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None),
    steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT, guidance: Optional[float] = GUIDANCE, batch: int = typer.Option(50, min=1),
    device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE,
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
):
    """Run one of the study's experiments on a model: a table, plots and a report section."""
    from .probes import get_probe
    from .report import Report

    try:
        _check(steps, shift, guidance, device, out=out, threshold=threshold)
        mod = get_probe(name)
        task = task or getattr(mod, "default_task", lambda: DEFAULT_TASK)()
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames, count=count,
                             seed=seed, steps=steps, shift=shift, guidance=guidance, batch=batch, scorer=scorer,
                             threshold=threshold)
        settings.scorers()  # an unknown scorer is named before the model loads
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height, width,
                         negative_prompt)
        settings = _with_sampling(settings, sp)
        res = mod.run(m, out, settings)
    except _errors() as e:
        _fail(e)
    rep = Report(f"steplens probe {name}: {model}")
    mod.report_section(rep, out, res)
    rep.write(out / "report.html")
    console.print_json(data=res["headline"])
    console.print(f"results: {out / 'results.json'}  report: [bold]{(out / 'report.html').resolve()}[/]")


@app.command("compare")
def compare_cmd(
    model: str = MODEL,
    out: Path = typer.Option(..., help="results.json, compare.csv, compare.png, report.html; resumes (or grows with a "
                                       "larger --count) if present"),
    n_seeds: str = typer.Option("2,3,4,8", help="comma-separated N values"),
    methods: str = typer.Option(",".join(("steps-x", "vote", "best-consensus", "best-oracle", "ensemble",
                                          "ensemble-update", "ensemble-x0", "ensemble-vote"))),
    data: Optional[Path] = DATA, split: Optional[str] = SPLIT, tasks: Optional[str] = TASKS,
    task: str = typer.Option(DEFAULT_TASK, help="generate samples of this task (without --data)"),
    count: Optional[int] = typer.Option(None, min=1, help="samples (generated: 500; a folder: all)"),
    seed: int = typer.Option(0), size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None),
    steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT, guidance: Optional[float] = GUIDANCE, batch: int = typer.Option(50, min=1),
    device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD, lora: Optional[str] = LORA, lora_2: Optional[str] = LORA_2,
    preset: Optional[str] = PRESET, height: Optional[int] = HEIGHT, width: Optional[int] = WIDTH,
    negative_prompt: Optional[str] = NEGATIVE,
    scorer: Optional[str] = SCORER, threshold: Optional[float] = THRESHOLD,
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
):
    """Every method on the same samples and noises: solve rates, mean scores, paired-bootstrap deltas vs one seed."""
    from .compare import compare, report_section
    from .ensemble import EnsembleConfig
    from .report import Report

    try:
        _check(steps, shift, guidance, device, out=out, threshold=threshold, alpha=alpha)
        ens = EnsembleConfig(blocks=_ints(ens_blocks, '--ens-blocks'), steps=_ints(ens_steps, '--ens-steps'), alpha=alpha)
        settings = _settings(data=data, split=split, tasks=tasks, task=task, size=size, frames=frames,
                             count=count or (None if data else 500), seed=seed, steps=steps, shift=shift,
                             guidance=guidance, batch=batch, scorer=scorer, threshold=threshold)
        settings.scorers()
        n_list = _ints(n_seeds, '--n-seeds')
        if not n_list:
            raise ValueError(f"--n-seeds {n_seeds!r}: give comma-separated N values, e.g. 2,3,4,8")
        m, sp = _sampled(model, device, dtype, offload, lora, lora_2, preset, steps, shift, guidance, height, width,
                         negative_prompt)
        settings = _with_sampling(settings, sp)
        res = compare(m, out, settings, n_list=n_list, methods=methods.split(","), ens=ens)
    except _errors() as e:
        _fail(e)
    rep = Report(f"steplens compare: {model}")
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


@app.command()
def study(
    model: str = MODEL,
    out: Path = typer.Option(..., help="one folder per family and part, study.json, study.md, report.html; resumes "
                                       "(or grows with a larger --count) if present"),
    tasks: Optional[str] = typer.Option(None, help="task families, comma-separated, or all (default: those the "
                                                   "model was trained on)"),
    count: int = typer.Option(500, min=1, help="held-out samples per solve-rate figure (solve; sweep and compare "
                                               "too unless given)"),
    sweep_count: Optional[int] = typer.Option(None, min=1, help="held-out samples per condition of the steps and "
                                                                "frames sweep (default: --count)"),
    compare_count: Optional[int] = typer.Option(None, min=1, help="held-out samples per multi-seed method "
                                                                  "(default: --count)"),
    probe_count: int = typer.Option(100, min=1, help="samples per intervention probe (noise, propagation, energy, "
                                                     "swap)"),
    parts: Optional[str] = typer.Option(None, help="comma-separated subset of: solve, sweep, noise, propagation, "
                                                   "energy, swap, compare (default: all)"),
    compare_families: int = typer.Option(2, min=0, help="compare the multi-seed methods on this many families, "
                                                        "those where one seed is weakest"),
    n_seeds: int = typer.Option(3, min=2, help="N of the multi-seed methods"),
    baseline: Optional[str] = typer.Option(None, help="another embedded model (e.g. tiny-maze) measured on the "
                                                      "families it was trained on, beside"),
    train_log: Optional[List[Path]] = typer.Option(None, help="the model's training log (log.jsonl): training cost "
                                                              "per family; repeat it for a training in stages, in "
                                                              "their order"),
    seed: int = typer.Option(0), steps: Optional[int] = STEPS, shift: Optional[float] = SHIFT,
    batch: int = typer.Option(50, min=1), device: str = DEVICE,
):
    """Every experiment of the study on every task family of a model: solve rates (default and next difficulty),
    the steps sweep, every probe, the multi-seed methods, and a family x claim table of which claims hold."""
    from .study import run_study, study_config_from, tables

    try:
        _check(steps, shift, None, device, out=out)
        for log in train_log or []:
            from . import checks

            checks.in_file(log, "--train-log")
        m, sp = _sampled(model, device, "float32", "none", None, None, None, steps, shift, None, None, None, None)
        cfg = study_config_from(m, tasks, parts, count=count, probe_count=probe_count, sweep_count=sweep_count,
                                compare_count=compare_count, seed=seed, steps=sp.steps,
                                shift=sp.shift, batch=batch, compare_families=compare_families, n_seeds=n_seeds)
        base = _sampled(baseline, device, "float32", "none", None, None, None, steps, shift, None, None, None,
                        None)[0] if baseline else None
        res = run_study(m, out, cfg, baseline=base, train_log=train_log)
    except _errors() as e:
        _fail(e)
    t = tables(res)
    for key, title in (("solve", "solve rate"), ("steps", "solve rate by steps"), ("claims", "the study's claims"),
                       ("training", "training cost")):
        if not t[key]:
            continue
        table = Table(title=title)
        for col in t[key][0]:
            table.add_column(str(col))
        for r in t[key]:
            table.add_row(*[str(v) for v in r.values()])
        console.print(table)
    console.print(f"tables: {out / 'study.md'}  report: [bold]{(out / 'report.html').resolve()}[/]")


@app.command("report")
def report_cmd(
    runs: Path = typer.Argument(..., help="a folder of runs: probes, comparisons, demos, traces (searched recursively)"),
    out: Optional[Path] = typer.Option(None, help="the index page to write (default: RUNS/index.html)"),
):
    """An index page for a folder of runs: headline numbers, links, and whether each of the study's claims holds."""
    from .index import write_index

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
    bad = [e for e in entries if e.get("error")]
    for e in bad:
        err.print(f"[yellow]warning:[/] {e['error']}")
    console.print(f"index: [bold]{path.resolve()}[/]")


@app.command()
def train(
    out: Path = typer.Option(..., help="run folder: checkpoint.safetensors, log.jsonl, config.json"),
    config: Optional[Path] = typer.Option(None, help="JSON training config (see steplens.train.TrainConfig)"),
    steps: Optional[int] = typer.Option(None, help="train until this step (overrides the config)"),
    device: str = DEVICE,
    threads: Optional[int] = typer.Option(None, help="CPU threads"),
):
    """Train (or resume) the embedded model with flow matching; resumes from OUT/checkpoint.safetensors."""
    from .train import TrainConfig, Trainer

    from . import checks
    from .io import atomic_write_text

    try:
        _check(device=device, out=out)
        checks.in_file(config, "--config")
        checks.number("--steps", steps, 0, integer=True)
        checks.threads(threads)
        cfg = TrainConfig.from_file(config) if config else TrainConfig()
        update = {k: v for k, v in (("steps", steps), ("threads", threads)) if v is not None}
        cfg = TrainConfig.model_validate({**cfg.model_dump(), **update})
        rank, world = _distributed()
        trainer = Trainer(cfg, out, device=device, rank=rank, world=world)  # a refused resume writes nothing
        if rank == 0:
            atomic_write_text(out / "config.json", cfg.model_dump_json(indent=2))
    except _errors() as e:
        _fail(e)
    if rank == 0:
        console.print(f"training {cfg.arch} from step {trainer.step} to {cfg.steps} on {world} process(es) -> {out}")
    trainer.run()


def _distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group (gloo on CPU, NCCL on GPUs)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


@app.command()
def export(
    checkpoint: Path = typer.Option(..., help="a training checkpoint.safetensors"),
    out: Path = typer.Option(..., help="weights file to write (float16, EMA weights)"),
    command: str = typer.Option("", help="the command that trained it, recorded in the weights' metadata"),
):
    """Export a checkpoint's EMA weights as a small shippable safetensors file."""
    from .checkpoint import load_weights, save_weights
    from .models import DiTConfig, VideoDiT

    from . import checks

    try:
        checks.in_file(checkpoint, "--checkpoint")
        checks.out_file(out, "--out", suffix=".safetensors")
        if out.exists() and out.resolve() == checkpoint.resolve():
            raise ValueError(f"--out {out} is the checkpoint itself: exporting onto it would destroy it; give another "
                             f"path")
        state, arch, info = load_weights(checkpoint)
        net = VideoDiT(DiTConfig.from_dict(arch))
        net.load_state_dict(state)
        save_weights(out, net, arch, {**info, "command": command, "argv": sys.argv})
    except _errors() as e:
        _fail(e)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, step {info.get('step')})")


class Interrupted(BaseException):
    """Ctrl-C, raised as our own exception: not an Exception (no `except Exception` turns it into an error
    message) and not a KeyboardInterrupt (which the CLI framework swallows silently)."""


def main():  # pragma: no cover  (the console script; tests call `app` through typer's runner)
    """The steplens command: Ctrl-C exits 130 with one line saying what was kept; no traceback unless --debug."""
    import signal

    def interrupt(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGINT, interrupt)
    try:
        app()
    except (Interrupted, KeyboardInterrupt):
        err.print("interrupted: every output written so far is whole and kept (no half-written file); run the same "
                  "command again to resume where it stopped")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
