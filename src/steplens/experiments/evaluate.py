"""Generate and score: the rows and the summary (steplens.experiments.stats schema) of a model on a set of samples."""

from __future__ import annotations

from ..io import interrupt
from ..io.video import to_uint8
from ..tasks import Scorers, draw_many, generator_task
from .grid import batches
from .stats import summarize, wilson  # noqa: F401  (wilson kept importable from here)


def score_videos(samples, videos, scorers: Scorers, details: bool = False) -> list[dict]:
    """One row per sample: `success` and `score` of its (T, H, W, 3) uint8 video (with the scorer's `details`)."""
    rows = []
    for s, v in zip(samples, videos):
        sc = scorers.score(v, s)
        rows.append({"success": bool(sc.success), "score": float(sc.score), **({"details": sc.details} if details else {})})
    return rows


def generate_and_score(model, samples, scorers: Scorers, frames: int | None = None, sampling=None, hooks=None,
                       details: bool = False):
    """(latents, rows): the one path from samples to scored videos. Noise seed = sample.seed; `sampling`
    (steplens.presets.Sampling; None: the model's own); `hooks` (steplens.hooks.Hooks) are attached for the call."""
    seeds = [int(s.seed) for s in samples]
    if hooks is None:
        lat = model.generate(samples, seeds, frames, sampling)
    else:
        with hooks:
            lat = model.generate(samples, seeds, frames, sampling, hooks=hooks)
    return lat, score_videos(samples, [to_uint8(v) for v in model.decode(lat)], scorers, details)


def evaluate_samples(model, samples, sampling=None, batch: int = 50, scorers: Scorers | None = None,
                     progress: bool = True, desc: str = "eval") -> tuple[list, dict]:
    """([per-sample row: sample, task, success, score, details], summary) with noise seed = sample.seed, sampled with
    `sampling` (steplens.presets.Sampling; None: the model's own)."""
    from tqdm import tqdm

    scorers = scorers or Scorers()
    rows = []
    with tqdm(total=len(samples), disable=not progress, desc=desc) as bar:
        for chunk in batches(samples, batch):
            interrupt.check()  # a Ctrl-C whose exception was lost still stops here
            _, scored = generate_and_score(model, chunk, scorers, sampling=sampling, details=True)
            rows += [{"sample": s.name, "task": s.task, **r} for s, r in zip(chunk, scored)]
            bar.update(len(chunk))
    return rows, summarize(rows)


def solve_rate(model, task_name: str, seeds, n: int, frames: int, sampling=None, batch: int = 50,
               progress: bool = True, part: str = "test") -> dict:
    """Generate the samples of `seeds` (noise seed = sample seed) with the task's generator, from `part` of its
    inputs (steplens.tasks.splits: test, held out of training by content), and score them with `sampling`
    (steplens.presets.Sampling; None: the model's own)."""
    task = generator_task(task_name)
    samples = draw_many(task, seeds, part, n, frames)
    rows, summary = evaluate_samples(model, samples, sampling, batch, progress=progress,
                                     desc=f"eval {task_name} {n}")
    return {**summary, "rows": rows}
