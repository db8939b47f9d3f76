"""The steplens command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


@app.callback()
def _root():
    """steplens: trace, probe and improve how video diffusion models reason along denoising steps."""


@app.command()
def train(
    out: Path = typer.Option(..., help="run folder: checkpoint.safetensors, log.jsonl, config.json"),
    config: Optional[Path] = typer.Option(None, help="JSON training config (see steplens.train.TrainConfig)"),
    steps: Optional[int] = typer.Option(None, help="train until this step (overrides the config)"),
    device: str = typer.Option("cpu", help="torch device"),
    threads: Optional[int] = typer.Option(None, help="CPU threads"),
):
    """Train (or resume) the embedded model with flow matching; resumes from OUT/checkpoint.safetensors."""
    from .train import TrainConfig, Trainer

    cfg = TrainConfig.model_validate_json(config.read_text()) if config else TrainConfig()
    if steps is not None:
        cfg = cfg.model_copy(update={"steps": steps})
    if threads is not None:
        cfg = cfg.model_copy(update={"threads": threads})
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.model_dump_json(indent=2))
    trainer = Trainer(cfg, out, device=device)
    console.print(f"training {cfg.arch} from step {trainer.step} to {cfg.steps} -> {out}")
    trainer.run()


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
