"""What every probe shares: settings, samples, one condition = one sampling run, summaries.

A probe is a set of named *conditions*; a condition builds the hooks for a batch (or none, for the
clean baseline). Every (condition, sample) gives one row: success, score, and whatever extra metrics
the probe computes from the run. The loop over them is steplens.experiment.run_grid (resumable,
extendable with more samples).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import torch
from pydantic import BaseModel, field_validator

from ..folders import SampleSource
from ..hooks import Hooks
from ..io import atomic_path, atomic_write_json
from ..stats import summarize
from ..tasks import Sample, Scorers
from ..video import to_uint8

MakeHooks = Callable[[list[Sample], list[int]], "Hooks | None"]


class ProbeSettings(BaseModel):
    """What every experiment shares: where the samples come from (a folder, or a task's generator), how they
    are sampled, and how they are scored."""

    data: Path | None = None
    split: list[str] | str | None = None
    tasks: list[str] | str | None = None
    task: str = "maze"
    size: int | None = None
    frames: int | None = None
    count: int | None = None  # generated: 100 by default; a folder: all its samples by default
    seed: int = 0  # generated: samples seed .. seed + count - 1 (noise seed = sample seed); a folder: seed + idx
    steps: int = 20
    shift: float = 3.0
    guidance: float = 1.0
    batch: int = 50
    scorer: str | None = None  # None: each task's own
    threshold: float | None = None

    @field_validator("steps", "batch")
    @classmethod
    def _positive(cls, v, info):
        if v < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {v}")
        return v

    def source(self) -> SampleSource:
        return SampleSource(data=self.data, split=self.split, tasks=self.tasks, task=self.task, count=self.count,
                            seed=self.seed, size=self.size, frames=self.frames)

    def scorers(self) -> Scorers:
        return Scorers(self.scorer, self.threshold)

    def describe(self) -> dict:
        """The configuration an output folder records (the sample count left out: it may grow)."""
        return {**self.source().describe(), "steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                "scorer": self.scorer, "threshold": self.threshold}


def load_samples(model, s: ProbeSettings) -> list[Sample]:
    """The experiment's samples; frames of folder samples without metadata follow the model's mapping."""
    samples = s.source().load(getattr(model, "frames_from_video", None))
    s.scorers().check(samples)  # a task without a scorer is refused before any work
    return samples


def seeds_of(samples: list[Sample]) -> list[int]:
    return [int(x.seed) for x in samples]


def score_outputs(model, samples: list[Sample], latents: torch.Tensor, scorers: Scorers) -> list[dict]:
    vids = model.decode(latents)
    out = []
    for s, v in zip(samples, vids):
        sc = scorers.score(to_uint8(v), s)
        out.append({"success": bool(sc.success), "score": float(sc.score)})
    return out


def generate(model, s: ProbeSettings, batch: list[Sample], hooks: Hooks | None = None, steps: int | None = None,
             frames: int | None = None) -> torch.Tensor:
    """One batch sampled with the experiment's settings (and hooks, attached for the call)."""
    kw = dict(steps=steps or s.steps, shift=s.shift, guidance=s.guidance)
    if hooks is None:
        return model.generate(batch, seeds_of(batch), frames, **kw)
    with hooks:
        return model.generate(batch, seeds_of(batch), frames, hooks=hooks, **kw)


def condition_runner(model, s: ProbeSettings, make_hooks: Callable[[str, list[Sample]], "Hooks | None"],
                     extra: Callable[[list[Sample], torch.Tensor, "Hooks | None"], list[dict]] | None = None,
                     steps_of: Callable[[str], int | None] = lambda c: None,
                     frames_of: Callable[[str], int | None] = lambda c: None):
    """A `run` for experiment.run_grid where each condition is one sampling run with its own hooks."""
    scorers = s.scorers()

    def run(conds, batch):
        got = {}
        for c in conds:
            hooks = make_hooks(c, batch)
            lat = generate(model, s, batch, hooks, steps_of(c), frames_of(c))
            rows = score_outputs(model, batch, lat, scorers)
            if extra is not None:
                for r, e in zip(rows, extra(batch, lat, hooks)):
                    r.update(e)
            got[c] = rows
        return got
    return run


def summary_rows(rows_by_condition: dict[str, list[dict]], **extra_cols) -> list[dict]:
    """One row per condition in the statistics schema (n, solved, solve_rate, ci_low, ci_high, mean_score)."""
    out = []
    for c, rows in rows_by_condition.items():
        out.append({"condition": c, **summarize(rows), **{k: v(c) for k, v in extra_cols.items()}})
    return out


def write_table(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_results(out: Path, probe: str, settings: ProbeSettings, config: dict, table: list[dict],
                  headline: dict, samples: int | None = None) -> None:
    atomic_write_json(Path(out) / "results.json", {"probe": probe, "settings": settings.model_dump(mode="json"),
                                                    "samples": samples, "config": config, "headline": headline,
                                                    "table": table})
    write_table(table, Path(out) / f"{probe}.csv")
