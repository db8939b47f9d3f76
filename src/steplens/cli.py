"""The steplens command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
tasks_app = typer.Typer(no_args_is_help=True, help="Procedural reasoning tasks.")
app.add_typer(tasks_app, name="tasks")
console = Console()
err = Console(stderr=True, soft_wrap=True)

MODEL = typer.Option("tiny-maze", "--model", "-m", help="tiny-maze (shipped), a .safetensors file, or wan:PATH")
STEPS = typer.Option(20, help="sampling steps (>= 1)")
SHIFT = typer.Option(3.0, help="Wan's sigma shift")
GUIDANCE = typer.Option(1.0, help="classifier-free guidance scale (1 = off)")
DEVICE = typer.Option("cpu", help="torch device")
DTYPE = typer.Option("float32", help="float32 | bfloat16 | float16 (wan:PATH pipelines; the VAE and image encoder "
                                     "stay float32; the embedded model runs in float32)")
OFFLOAD = typer.Option("none", help="none | model | sequential: CPU offload of a wan:PATH pipeline onto --device "
                                    "(needs accelerate and an accelerator)")
ENS_BLOCKS = typer.Option(None, "--ens-blocks", help="ensemble blocks, e.g. 4,5 (default: the middle quarter)")
ENS_STEPS = typer.Option(None, "--ens-steps", help="ensemble steps, e.g. 0,1,2 (default: the first 15%)")
ALPHA = typer.Option(1.0, help="ensemble strength in [0, 1]: 0 = independent seeds, 1 = replaced by the mean")


def _ints(v: Optional[str]) -> Optional[list[int]]:
    try:
        return [int(x) for x in v.split(",")] if v else None
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {v!r}") from None


@app.callback()
def _root():
    """steplens: trace, probe and improve how video diffusion models reason along denoising steps."""


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(2)


def _model(spec: str, device: str, dtype: str = "float32", offload: str = "none"):
    from .models.load import load_model

    try:
        return load_model(spec, device, dtype=dtype, offload=offload)
    except (ValueError, FileNotFoundError, ImportError) as e:
        _fail(e)


@tasks_app.command("generate")
def tasks_generate(
    task: str = typer.Argument("maze", help="task name"),
    count: int = typer.Option(10, min=1, help="number of samples"),
    seed: int = typer.Option(0, help="first seed; sample i uses seed + i"),
    size: Optional[int] = typer.Option(None, help="maze size n (n x n cells)"),
    frames: Optional[int] = typer.Option(None, help="frames of the ground-truth video"),
    upscale: int = typer.Option(16, min=1, help="integer nearest-neighbour upscale of PNG/MP4"),
    out: Path = typer.Option(..., help="root folder; samples go to OUT/<task>/<idx:05d>/"),
):
    """Write samples in the VBVR-Bench layout (first_frame.png, final_frame.png, ground_truth.mp4, ...)."""
    from tqdm import tqdm

    from .tasks import get_task
    from .tasks.sample import write_sample

    try:
        t = get_task(task)
        for i in tqdm(range(count), desc=f"generate {task}"):
            write_sample(out, t.sample(seed + i, size, frames, idx=i), scale=upscale)
    except ValueError as e:
        _fail(e)
    console.print(f"wrote {count} {task} samples to {out / task}")


@app.command()
def run(
    data: Path = typer.Option(..., help="folder of sample folders"),
    out: Path = typer.Option(..., help="outputs: OUT/<task>/<idx:05d>.mp4 and .png"),
    model: str = MODEL, steps: int = STEPS, shift: float = SHIFT, guidance: float = GUIDANCE,
    seed: int = typer.Option(0, help="noise seed of sample idx is seed + idx"),
    frames: Optional[int] = typer.Option(None, help="frames to generate (default: the sample's)"),
    batch: int = typer.Option(16, min=1), device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD,
    ensemble: Optional[int] = typer.Option(None, help="N: sample N seeds per sample with the latent ensemble"),
    ens_target: str = typer.Option("block", help="what the ensemble averages: block | update | latent | x0 | v"),
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
    select: str = typer.Option("first", help="which ensemble member to write: first | consensus | all"),
    split_seeds: bool = typer.Option(False, help="under torchrun: split the N seeds over the processes "
                                                 "(all-reduced means) instead of the samples"),
):
    """Generate a video for every sample folder under DATA (skips those already done)."""
    from .ensemble import EnsembleConfig
    from .runner import run_folder

    try:
        ens = None if ensemble is None else EnsembleConfig(n_seeds=ensemble, target=ens_target,
                                                           blocks=_ints(ens_blocks), steps=_ints(ens_steps),
                                                           alpha=alpha)
        m = _model(model, device, dtype, offload)
        if split_seeds:
            _distributed()
        done = run_folder(m, data, out, steps=steps, shift=shift, seed=seed, batch=batch, guidance=guidance,
                          frames=frames, ensemble=ens, select=select, split_seeds=split_seeds)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    console.print(f"generated {len(done)} videos into {out}")


def _print_rate(title: str, res: dict) -> None:
    lo, hi = res["ci95"]
    console.print(f"{title}: solved {res['solved']}/{res['count']} = [bold]{res['solve_rate']:.3f}[/] "
                  f"(95% CI {lo:.3f}-{hi:.3f}), mean score {res['mean_score']:.3f}")


@app.command()
def score(
    data: Path = typer.Option(..., help="folder of sample folders"),
    outputs: Path = typer.Option(..., help="folder with <task>/<idx:05d>.png or .mp4"),
    out: Optional[Path] = typer.Option(None, help="write scores.json here"),
):
    """Score generated outputs against their sample folders with the rule-based scorers."""
    from .runner import score_folder, write_scores

    try:
        res = score_folder(data, outputs)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    if out:
        write_scores(res, out)
    _print_rate("score", res)


@app.command("eval")
def evaluate(
    model: str = MODEL,
    task: str = typer.Option("maze"),
    count: int = typer.Option(100, min=1),
    seed: int = typer.Option(0, help="held-out seeds seed..seed+count-1 (training uses seeds >= 1e9)"),
    size: Optional[int] = typer.Option(None, help="maze size n"),
    frames: Optional[int] = typer.Option(None), steps: int = STEPS, shift: float = SHIFT,
    guidance: float = GUIDANCE, batch: int = typer.Option(50, min=1), device: str = DEVICE,
    dtype: str = DTYPE, offload: str = OFFLOAD,
    method: str = typer.Option("single", help="single | steps-x | vote | best-consensus | best-oracle | "
                                              "ensemble | ensemble-update | ensemble-x0 | ensemble-vote"),
    n_seeds: int = typer.Option(3, help="N for the multi-seed methods"),
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
    out: Optional[Path] = typer.Option(None, help="write results.json here"),
):
    """Generate held-out samples, run the model and score: solve rate with its 95% interval."""
    from .ensemble import EnsembleConfig
    from .evaluate import solve_rate
    from .io import atomic_write_json
    from .tasks import get_task

    m = _model(model, device, dtype, offload)
    try:
        t = get_task(task)
        n = size or t.default_size
        if method == "single":
            res = solve_rate(m, task, range(seed, seed + count), n=n, frames=frames or t.default_frames,
                             steps=steps, shift=shift, batch=batch, guidance=guidance)
        else:
            ens = EnsembleConfig(n_seeds=n_seeds, blocks=_ints(ens_blocks), steps=_ints(ens_steps), alpha=alpha)
            res = _eval_method(m, t, method, ens, count, seed, n, frames, steps, shift, batch)
    except ValueError as e:
        _fail(e)
    res["solved"], res["count"] = sum(bool(getattr(s, "success", s)) for s in res["scores"]), res["n"]
    _print_rate(f"{model} ({method}{'' if method == 'single' else f', N={n_seeds}'}) on {count} {task} {n}x{n}", res)
    if out:
        atomic_write_json(Path(out) / "results.json", {
            "model": model, "task": task, "size": n, "seeds": [seed, seed + count - 1], "steps": steps,
            "shift": shift, "guidance": guidance, **{k: v for k, v in res.items() if k != "scores"},
            "method": method, "n_seeds": n_seeds,
            "per_sample": [s.to_dict() if hasattr(s, "to_dict") else {"success": s} for s in res["scores"]]})


def _eval_method(m, t, method, ens, count, seed, n, frames, steps, shift, batch) -> dict:
    from .compare import check_method, run_methods
    from .evaluate import wilson
    from tqdm import tqdm

    check_method(method)
    seeds = list(range(seed, seed + count))
    ok = []
    for lo in tqdm(range(0, count, batch), desc=f"eval {method}"):
        chunk = seeds[lo: lo + batch]
        samples = [t.sample(x, n, frames) for x in chunk]
        ok += run_methods(m, samples, chunk, [method], ens.n_seeds, steps, shift, ens)[method]
    lo_ci, hi_ci = wilson(sum(ok), len(ok))
    return {"solve_rate": sum(ok) / len(ok), "ci95": [lo_ci, hi_ci], "n": len(ok), "mean_score": float("nan"),
            "scores": ok}


@app.command()
def trace(
    model: str = MODEL,
    sample: Optional[Path] = typer.Option(None, help="a sample folder (else --task/--seed/--size)"),
    task: str = typer.Option("maze"), seed: int = typer.Option(0), size: Optional[int] = typer.Option(None),
    frames: Optional[int] = typer.Option(None), steps: int = STEPS, shift: float = SHIFT,
    guidance: float = GUIDANCE, device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD,
    out: Path = typer.Option(..., help="folder for x0.safetensors, grid.png, final_x0.gif, cos.png, metrics.json"),
):
    """Trace one sample: x0_hat at every step, a step x frame grid, a GIF and chain-of-steps metrics."""
    from .tasks import get_task
    from .tasks.sample import read_sample
    from .trace import trace as run_trace
    from .trace import write_trace

    m = _model(model, device, dtype, offload)
    try:
        s = read_sample(sample, frames) if sample else get_task(task).sample(seed, size, frames, idx=seed)
        tr = run_trace(m, [s], [seed], steps=steps, shift=shift, guidance=guidance, frames=frames)[0]
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    write_trace(tr, out)
    cs = tr.summary["commitment_step"]
    console.print(f"solved: {tr.final_score['success']}, commitment step: {cs}, candidate mass per step: "
                  f"{[m_['candidate_mass'] for m_ in tr.metrics]}")
    console.print(f"trace written to {out}")


@app.command()
def demo(
    model: str = MODEL, out: Path = typer.Option(Path("runs/demo")), count: int = typer.Option(6, min=1),
    size: Optional[int] = typer.Option(None), seed: int = typer.Option(0), steps: int = STEPS,
    shift: float = SHIFT, device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD,
):
    """The main job: held-out mazes solved, scored and traced, gathered in OUT/report.html."""
    from .demo import run_demo

    m = _model(model, device, dtype, offload)
    try:
        report = run_demo(m, out, count=count, size=size, seed=seed, steps=steps, shift=shift)
    except ValueError as e:
        _fail(e)
    summary = json.loads((out / "summary.json").read_text())
    table = Table(title=f"{summary['model']}: {summary['solved']}/{summary['count']} solved")
    for col in ("maze", "path length", "solved", "commitment step", "candidates step 0", "candidates final"):
        table.add_column(col)
    for r in summary["rows"]:
        table.add_row(*[str(r[c]) for c in ("maze", "path length", "solved", "commitment step",
                                            "candidates step 0", "candidates final")])
    console.print(table)
    console.print(f"report: [bold]{report.resolve()}[/]")


@app.command()
def probe(
    name: str = typer.Argument(..., help="noise | propagation | energy | swap | sweep | behaviours"),
    model: str = MODEL,
    out: Path = typer.Option(..., help="results.json, <probe>.csv, plots, report.html; resumes if present"),
    task: str = typer.Option("maze"), count: int = typer.Option(100, min=1, help="held-out samples"),
    seed: int = typer.Option(0), size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None),
    steps: int = STEPS, shift: float = SHIFT, guidance: float = GUIDANCE, batch: int = typer.Option(50, min=1),
    device: str = DEVICE, dtype: str = DTYPE, offload: str = OFFLOAD,
):
    """Run one of the study's experiments on a model: a table, plots and a report section."""
    from .probes import get_probe
    from .probes.base import ProbeSettings
    from .report import Report

    try:
        mod = get_probe(name)
        settings = ProbeSettings(task=task, size=size, frames=frames, count=count, seed=seed, steps=steps,
                                 shift=shift, guidance=guidance, batch=batch)
        m = _model(model, device, dtype, offload)
        res = mod.run(m, out, settings)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    rep = Report(f"steplens probe {name}: {model}")
    mod.report_section(rep, out, res)
    rep.write(out / "report.html")
    console.print_json(data=res["headline"])
    console.print(f"results: {out / 'results.json'}  report: [bold]{(out / 'report.html').resolve()}[/]")


@app.command("compare")
def compare_cmd(
    model: str = MODEL,
    out: Path = typer.Option(..., help="results.json, compare.csv, compare.png, report.html; resumes if present"),
    n_seeds: str = typer.Option("2,3,4,8", help="comma-separated N values"),
    methods: str = typer.Option(",".join(("steps-x", "vote", "best-consensus", "best-oracle", "ensemble",
                                          "ensemble-update", "ensemble-x0", "ensemble-vote"))),
    task: str = typer.Option("maze"), count: int = typer.Option(500, min=1), seed: int = typer.Option(0),
    size: Optional[int] = typer.Option(None), frames: Optional[int] = typer.Option(None), steps: int = STEPS,
    shift: float = SHIFT, batch: int = typer.Option(50, min=1), device: str = DEVICE,
    dtype: str = DTYPE, offload: str = OFFLOAD,
    ens_blocks: Optional[str] = ENS_BLOCKS, ens_steps: Optional[str] = ENS_STEPS, alpha: float = ALPHA,
):
    """Every method on the same held-out samples and noises: solve rates, paired-bootstrap deltas vs one seed."""
    from .compare import compare
    from .ensemble import EnsembleConfig
    from .probes.base import ProbeSettings
    from .report import Report
    from .compare import report_section

    try:
        ens = EnsembleConfig(blocks=_ints(ens_blocks), steps=_ints(ens_steps), alpha=alpha)
        settings = ProbeSettings(task=task, size=size, frames=frames, count=count, seed=seed, steps=steps,
                                 shift=shift, batch=batch)
        m = _model(model, device, dtype, offload)
        res = compare(m, out, settings, n_list=_ints(n_seeds), methods=methods.split(","), ens=ens)
    except ValueError as e:
        _fail(e)
    rep = Report(f"steplens compare: {model}")
    report_section(rep, out, res)
    rep.write(out / "report.html")
    table = Table(title="solve rate vs single seed (paired bootstrap 95% CI)")
    for col in ("method", "N", "solve rate", "delta", "95% CI"):
        table.add_column(col)
    for r in res["table"]:
        table.add_row(r["method"], str(r["n_seeds"]), f"{r['solve_rate']:.3f}", f"{r['delta_vs_single']:+.3f}",
                      f"[{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}]")
    console.print(table)
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")


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

    try:
        cfg = TrainConfig.model_validate_json(config.read_text()) if config else TrainConfig()
        if steps is not None:
            cfg = cfg.model_copy(update={"steps": steps})
        if threads is not None:
            cfg = cfg.model_copy(update={"threads": threads})
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(cfg.model_dump_json(indent=2))
        rank, world = _distributed()
        trainer = Trainer(cfg, out, device=device, rank=rank, world=world)
    except ValueError as e:
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

    try:
        state, arch, info = load_weights(checkpoint)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    net = VideoDiT(DiTConfig.from_dict(arch))
    net.load_state_dict(state)
    save_weights(out, net, arch, {**info, "command": command, "argv": sys.argv})
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, step {info.get('step')})")


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
