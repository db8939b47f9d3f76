"""What every probe shares: settings, held-out samples, running a condition into the store, summaries.

A probe is a set of named *conditions*; a condition builds the hooks for a batch (or none, for the
clean baseline). Every (condition, sample) gives one row: success, score, and whatever extra metrics
the probe computes from the run. Rows go to a ResultsStore, so an interrupted probe resumes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pydantic import BaseModel

from ..evaluate import wilson
from ..hooks import Hooks
from ..io import atomic_path, atomic_write_json
from ..store import ResultsStore
from ..tasks import Sample, get_task
from ..video import to_uint8

MakeHooks = Callable[[list[Sample], list[int]], "Hooks | None"]


class ProbeSettings(BaseModel):
    task: str = "maze"
    size: int | None = None
    frames: int | None = None
    count: int = 100
    seed: int = 0  # held-out samples seed .. seed + count - 1; noise seed = sample seed
    steps: int = 20
    shift: float = 3.0
    guidance: float = 1.0
    batch: int = 50

    def resolved(self) -> "ProbeSettings":
        t = get_task(self.task)
        return self.model_copy(update={"size": self.size or t.default_size, "frames": self.frames or t.default_frames})


def held_out(s: ProbeSettings) -> tuple[list[Sample], list[int]]:
    task = get_task(s.task)
    seeds = list(range(s.seed, s.seed + s.count))
    return [task.sample(x, s.size, s.frames, idx=x) for x in seeds], seeds


def score_outputs(model, samples: list[Sample], latents: torch.Tensor) -> list[dict]:
    vids = model.decode(latents)
    out = []
    for s, v in zip(samples, vids):
        sc = get_task(s.task).score(to_uint8(v[:, -1]), s.first_frame, s.prompt)
        out.append({"success": sc.success, "score": sc.score})
    return out


def run_condition(model, s: ProbeSettings, store: ResultsStore, condition: str, make_hooks: MakeHooks | None,
                  samples: list[Sample], seeds: list[int], steps: int | None = None, frames: int | None = None,
                  extra: Callable[[list[Sample], torch.Tensor, "Hooks | None"], list[dict]] | None = None,
                  bar=None) -> None:
    """Run one condition over the samples not yet in the store for it."""
    todo = [i for i, sd in enumerate(seeds) if not store.has(condition=condition, idx=sd)]
    for lo in range(0, len(todo), s.batch):
        idx = todo[lo: lo + s.batch]
        batch, bseeds = [samples[i] for i in idx], [seeds[i] for i in idx]
        hooks = make_hooks(batch, bseeds) if make_hooks else None
        if hooks is not None:
            with hooks:
                lat = model.generate(batch, bseeds, frames, steps=steps or s.steps, shift=s.shift,
                                     guidance=s.guidance, hooks=hooks)
        else:
            lat = model.generate(batch, bseeds, frames, steps=steps or s.steps, shift=s.shift, guidance=s.guidance)
        rows = score_outputs(model, batch, lat)
        if extra is not None:
            for r, e in zip(rows, extra(batch, lat, hooks)):
                r.update(e)
        store.add([{"condition": condition, "idx": sd, **r} for sd, r in zip(bseeds, rows)])
        if bar is not None:
            bar.update(len(idx))


def rate(rows: list[dict], field: str = "success") -> dict:
    k, n = sum(bool(r[field]) for r in rows), len(rows)
    lo, hi = wilson(k, n)
    return {"n": n, "rate": k / n if n else float("nan"), "ci95": [lo, hi]}


def summary_rows(store: ResultsStore, conditions: list[str], **extra_cols) -> list[dict]:
    out = []
    for c in conditions:
        rows = store.select(condition=c)
        r = rate(rows)
        out.append({"condition": c, "n": r["n"], "solve_rate": r["rate"], "ci_low": r["ci95"][0],
                    "ci_high": r["ci95"][1], "mean_score": float(np.mean([x["score"] for x in rows])) if rows else None,
                    **{k: v(c) for k, v in extra_cols.items()}})
    return out


def write_table(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_results(out: Path, probe: str, settings: ProbeSettings, config: dict, table: list[dict],
                  headline: dict) -> None:
    atomic_write_json(Path(out) / "results.json", {"probe": probe, "settings": settings.model_dump(),
                                                    "config": config, "headline": headline, "table": table})
    write_table(table, Path(out) / f"{probe}.csv")
