"""`steplens train` (the embedded model, resumable, under torchrun too) and `steplens export` (shippable weights)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .app import _check, _errors, _fail, app, console


@app.command()
def train(
    out: Path = typer.Option(..., help="run folder: checkpoint.safetensors, log.jsonl, config.json"),
    config: Optional[Path] = typer.Option(None, help="JSON training config (see steplens.training.train.TrainConfig)"),
    steps: Optional[int] = typer.Option(None, help="train until this step (overrides the config)"),
    device: str = typer.Option("cpu", help="torch device"),
    threads: Optional[int] = typer.Option(None, help="CPU threads"),
):
    """Train (or resume) the embedded model with flow matching; resumes from OUT/checkpoint.safetensors."""
    from ..experiments.dist import join
    from ..io import checks
    from ..io.files import atomic_write_text
    from ..training.train import TrainConfig, Trainer

    try:
        _check(device=device, out=out)
        checks.in_file(config, "--config")
        checks.number("--steps", steps, 0, integer=True)
        checks.threads(threads)
        cfg = TrainConfig.from_file(config) if config else TrainConfig()
        update = {k: v for k, v in (("steps", steps), ("threads", threads)) if v is not None}
        cfg = TrainConfig.model_validate({**cfg.model_dump(), **update})
        rank, world = join()
        trainer = Trainer(cfg, out, device=device, rank=rank, world=world)  # a refused resume writes nothing
        if rank == 0:
            atomic_write_text(out / "config.json", cfg.model_dump_json(indent=2))
    except _errors() as e:
        _fail(e)
    if rank == 0:
        console.print(f"training {cfg.arch} from step {trainer.step} to {cfg.steps} on {world} process(es) -> {out}")
    trainer.run()


@app.command()
def export(
    checkpoint: Path = typer.Option(..., help="a training checkpoint.safetensors"),
    out: Path = typer.Option(..., help="weights file to write (float16, EMA weights)"),
    command: str = typer.Option("", help="the command that trained it, recorded in the weights' metadata"),
):
    """Export a checkpoint's EMA weights as a small shippable safetensors file."""
    from ..io import checks
    from ..models.adapter import build_net
    from ..models.weights import load_weights, save_weights

    try:
        checks.in_file(checkpoint, "--checkpoint")
        checks.out_file(out, "--out", suffix=".safetensors")
        if out.exists() and out.resolve() == checkpoint.resolve():
            raise ValueError(f"--out {out} is the checkpoint itself: exporting onto it would destroy it; give another "
                             f"path")
        state, arch, info = load_weights(checkpoint)
        net = build_net(arch, info)
        net.load_state_dict(state)
        save_weights(out, net, arch, {**info, "command": command, "argv": sys.argv})
    except _errors() as e:
        _fail(e)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, step {info.get('step')})")
