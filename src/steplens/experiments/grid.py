"""One skeleton for every experiment: a resumable loop over (condition, sample) on the results store.

An experiment names its conditions, and a `run(conditions, samples) -> {condition: [row per sample]}`
function computes them for a batch of samples (conditions of one *group* share a run: the methods that read
the same N-seed generation, the swaps that read one recording). Every row is stored under the key
(condition, sample name), so an interrupted experiment resumes, and one finished with --count N is extended
by a larger --count (only the new samples run). The output folder records the configuration that made it,
the sample count left out; another configuration is refused before anything is written.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable

from pydantic import BaseModel, field_validator
from tqdm import tqdm

from ..io import interrupt
from ..io.files import atomic_path, atomic_write_json
from ..io.store import ResultsStore
from ..tasks import DEFAULT_TASK, Sample, Scorers
from ..tasks.folders import SampleSource

RunFn = Callable[[list[str], list[Sample]], dict[str, list[dict]]]


def open_store(out: Path, experiment: str, config: dict) -> ResultsStore:
    return ResultsStore(Path(out) / "store", ("condition", "sample"), {"experiment": experiment, **config})


def batches(samples: list[Sample], size: int) -> list[list[Sample]]:
    """Chunks of at most `size` samples that can run as one batch (same frame size and frame count), in order."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    groups: OrderedDict[tuple, list[Sample]] = OrderedDict()
    for s in samples:
        groups.setdefault((s.first_frame.shape, s.frames), []).append(s)
    return [g[i: i + size] for g in groups.values() for i in range(0, len(g), size)]


def run_grid(store: ResultsStore, conditions: Iterable[str], samples: list[Sample], batch: int, run: RunFn,
             group: Callable[[str], object] = lambda c: c, desc: str = "run", progress: bool = True) -> None:
    """Fill the store with a row for every (condition, sample) not in it yet."""
    conditions = list(dict.fromkeys(conditions))
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("two samples share one name; an experiment needs distinct samples")
    groups: OrderedDict[object, list[str]] = OrderedDict()
    for c in conditions:
        groups.setdefault(group(c), []).append(c)
    total = len(conditions) * len(samples)
    done = sum(store.has(condition=c, sample=n) for c in conditions for n in names)
    with tqdm(total=total, initial=done, disable=not progress, desc=desc) as bar:
        for conds in groups.values():
            for chunk in batches(samples, batch):
                interrupt.check()  # a Ctrl-C whose exception was lost still stops here
                todo_c = [c for c in conds if not all(store.has(condition=c, sample=s.name) for s in chunk)]
                if not todo_c:
                    continue
                todo_s = [s for s in chunk if not all(store.has(condition=c, sample=s.name) for c in todo_c)]
                got = run(todo_c, todo_s)
                rows = []
                for c in todo_c:
                    if len(got[c]) != len(todo_s):
                        raise RuntimeError(f"condition {c!r} returned {len(got[c])} rows for {len(todo_s)} samples")
                    rows += [{"condition": c, "sample": s.name, "task": s.task, **r} for s, r in zip(todo_s, got[c])]
                new = store.add(rows)
                bar.update(new)


def rows_of(store: ResultsStore, condition: str, samples: list[Sample]) -> list[dict]:
    """The stored rows of one condition for these samples (the experiment's current sample set), in order."""
    want = {s.name for s in samples}
    return [r for r in store.select(condition=condition) if r["sample"] in want]


class ExperimentSettings(BaseModel):
    """What every experiment shares: where the samples come from (a folder, or a task's generator), how they
    are sampled, and how they are scored."""

    data: Path | None = None
    split: list[str] | str | None = None
    tasks: list[str] | str | None = None
    task: str = DEFAULT_TASK
    size: int | None = None
    frames: int | None = None
    count: int | None = None  # generated: 100 by default; a folder: all its samples by default
    seed: int = 0  # generated: samples seed .. seed + count - 1 (noise seed = sample seed); a folder: seed + idx
    steps: int | None = None  # None: the model's own (its sampling_defaults), filled in by for_model
    shift: float | None = None
    guidance: float | None = None
    batch: int = 50
    scorer: str | None = None  # None: each task's own
    threshold: float | None = None
    sampling: dict | None = None  # a pipeline's resolved preset (steplens.presets.Sampling.describe()), if any

    @field_validator("steps", "batch")
    @classmethod
    def _positive(cls, v, info):
        if v is not None and v < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {v}")
        return v

    def for_model(self, model) -> "ExperimentSettings":
        """These settings with steps, shift and guidance left None taken from the model's own sampling."""
        from ..presets import own

        if None not in (self.steps, self.guidance) and self.shift is not None:
            return self
        steps, shift, guidance = own(model, self.steps, self.shift, self.guidance)
        return self.model_copy(update={"steps": steps, "shift": shift, "guidance": guidance})

    def source(self) -> SampleSource:
        return SampleSource(data=self.data, split=self.split, tasks=self.tasks, task=self.task, count=self.count,
                            seed=self.seed, size=self.size, frames=self.frames)

    def scorers(self) -> Scorers:
        return Scorers(self.scorer, self.threshold)

    def describe(self) -> dict:
        """The configuration an output folder records (the sample count left out: it may grow)."""
        return {**self.source().describe(), "steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                "scorer": self.scorer, "threshold": self.threshold,
                **({"sampling": self.sampling} if self.sampling else {})}


def load_samples(model, s: "ExperimentSettings") -> list[Sample]:
    """The experiment's samples; frames of folder samples without metadata follow the model's mapping."""
    samples = s.source().load(model.frames_from_video)
    s.scorers().check(samples)  # a task without a scorer is refused before any work
    return samples


def seeds_of(samples: list[Sample]) -> list[int]:
    return [int(x.seed) for x in samples]


def write_table(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_results(out: Path, probe: str, settings: ExperimentSettings, config: dict, table: list[dict],
                  headline: dict, samples: int | None = None, cost: dict | None = None) -> None:
    """results.json and <probe>.csv; `cost`: the NFE spent ({"nfe", "nfe_without_reuse"}), when counted."""
    atomic_write_json(Path(out) / "results.json", {"format": 1, "probe": probe,
                                                    "settings": settings.model_dump(mode="json"),
                                                    "samples": samples, "config": config, "headline": headline,
                                                    "table": table, **({"cost": cost} if cost else {})})
    write_table(table, Path(out) / f"{probe}.csv")
