"""`steplens tasks list | generate`: the registered tasks, and samples written in the VBVR-Bench layout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..tasks.registry import DEFAULT_TASK
from .app import _bounded, _check, _errors, _fail, app, console, tasks_app
from .inputs import SampleOptions
from .options import bundles, part

GENERATE_SAMPLES = part(SampleOptions, "split", "count", "seed", "size", "frames", count=10, split="test")


@tasks_app.command("list")
def tasks_list():
    """The registered tasks (with their scorers and generators) and scorers, plug-ins included."""
    from ..tasks import get_task, has_generator, scorer_names, task_names

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
@bundles
def tasks_generate(
    task: str = typer.Argument(DEFAULT_TASK, help="task name (steplens tasks list)"),
    sa: GENERATE_SAMPLES = None,
    upscale: int = typer.Option(16, min=1, help="integer nearest-neighbour upscale of PNG/MP4"),
    out: Path = typer.Option(..., help="root folder; samples go to OUT/<task>/<idx:05d>/"),
):
    """Write samples in the VBVR-Bench sample layout (first_frame.png, final_frame.png, ground_truth.mp4, ...)."""
    from tqdm import tqdm

    from ..orchestrators.runner import check_out_config
    from ..tasks import generator_task, write_sample

    count, seed, split, size, frames = sa.count, sa.seed, sa.split, sa.size, sa.frames
    try:
        _check(out=out)
        _bounded(None, {"--count": count})
        from ..tasks import check_part, draw

        t = generator_task(task)
        check_part(split, "--split")
        made = [draw(t, seed + i, split, size, frames, idx=i) for i in range(count)]  # validate before writing
        odd = [s_ for s_ in made if (s_.first_frame.shape[0] * upscale) % 2 or (s_.first_frame.shape[1] * upscale) % 2]
        if odd:
            h, w = odd[0].first_frame.shape[:2]
            raise ValueError(f"--upscale {upscale}: {w}x{h}-pixel frames would be {w * upscale}x{h * upscale}, and "
                             f"H.264 video needs even sides; use an even --upscale")
        folder = out / t.name  # its manifest: more samples of one configuration, never a mix of two
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "run_config.json").exists():
            raise ValueError(f"{folder} already holds files not made by `steplens tasks generate`; use another --out")
        check_out_config(folder, {"command": "tasks generate", "task": t.name, "split": split, "seed": seed, "size": size,
                                  "frames": frames, "upscale": upscale})
        for s_ in tqdm(made, desc=f"generate {task}"):
            write_sample(out, s_, scale=upscale)
    except _errors() as e:
        _fail(e)
    console.print(f"wrote {count} {task} samples to {out / task}")


@app.command("verifiers")
def verifiers_list():
    """The registered verifiers (built-ins and plug-ins) the search methods pick with (--verifier), what each reads,
    and which tasks the `task` verifier can read."""
    from ..tasks import task_names, tasks_with, verifier_names, verifier_origin, verifier_reads, verifier_strength

    try:
        table = Table(title="verifiers (--verifier NAME; a verifier never reads the answer)")
        for col in ("verifier", "kind", "strength", "reads"):
            table.add_column(col)
        for name in verifier_names():
            table.add_row(name, verifier_origin(name), verifier_strength(name), verifier_reads(name))
        hooks = set(tasks_with("verify"))
        tasks = task_names()
    except _errors() as e:
        _fail(e)
    console.print(table)
    console.print("tasks the `task` verifier reads (their own verify hook): "
                  + ", ".join(f"{t} {'yes' if t in hooks else 'no'}" for t in tasks))
    console.print("A folder steplens did not draw (VBVR-Bench's rendered frames): `--verifier consensus` or a plug-in "
                  "that reads any frame (a VLM judge); plug-ins register through the 'steplens.verifiers' entry point "
                  "group or steplens.tasks.register_verifier.")
