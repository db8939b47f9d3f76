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
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable

from pydantic import BaseModel, field_validator, model_validator
from tqdm import tqdm

from ..io import interrupt
from ..io.files import atomic_path, atomic_write_json
from ..io.store import ResultsStore
from ..tasks import DEFAULT_TASK, Sample, Scorers
from ..tasks.folders import SampleSource
from .engine import Remote, job_rows

RunFn = Callable[[list[str], list[Sample]], dict[str, list[dict]]]


def open_store(out: Path, experiment: str, config: dict) -> ResultsStore:
    return ResultsStore(Path(out) / "store", ("condition", "sample"), {"experiment": experiment, **config})


def check_store_before_loading(out: Path, experiment: str, known: dict) -> None:
    """Before the model loads (on every process of a launch, each before its own load): refuse an OUT whose results
    store holds another configuration, naming each differing field. `known`: the part of the store's configuration
    known then (the model's identity from its files, the samples, the scorer, the sampling numbers given), a setting
    whose name a probe's option took compared with its `settings` record; the rest (the probe's own options, the
    model's own sampling) is compared once it has loaded (ResultsStore). Nothing is locked or written."""
    import json

    from ..io.files import config_diff, read_config

    out = Path(out)
    path = out / "store" / "store_config.json"
    if not path.is_file():
        return  # no result stored yet: nothing to differ from
    saved = read_config(path)
    saved = {**saved, **(saved.get("settings") or {})}  # the settings a probe's options took the names of
    mine = json.loads(json.dumps({"experiment": experiment, **known}, default=str))
    differ = {k: v for k, v in mine.items() if saved.get(k) != v}
    if differ:
        raise ValueError(f"{out} holds results of another configuration (store/store_config.json); differing fields: "
                         f"{config_diff({k: saved.get(k) for k in differ}, differ)}. Use another --out (or delete "
                         f"{out})")


def batches(samples: list[Sample], size: int) -> list[list[Sample]]:
    """Chunks of at most `size` samples that can run as one batch (same frame size and frame count), in order."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    groups: OrderedDict[tuple, list[Sample]] = OrderedDict()
    for s in samples:
        groups.setdefault((s.first_frame.shape, s.frames), []).append(s)
    return [g[i: i + size] for g in groups.values() for i in range(0, len(g), size)]


def sample_cost(s: Sample) -> int:
    """What a sample costs to run, for balancing: frames x pixels of its first frame."""
    return int(s.frames or s.video_frames or 1) * int(s.first_frame.shape[0]) * int(s.first_frame.shape[1])


def run_grid(store: ResultsStore, conditions: Iterable[str], samples: list[Sample], batch: int, run: RunFn,
             group: Callable[[str], object] = lambda c: c, desc: str = "run", progress: bool = True,
             remote: Remote | None = None) -> None:
    """Fill the store with a row for every (condition, sample) not in it yet.

    A job is one batch of samples (`batches`) with all its conditions, group by group (a group is committed to the
    store as soon as it is run: a kill loses at most the unfinished groups of the running jobs). The jobs are the
    same however many processes run them, so the rows are too. Under torchrun / accelerate launch (WORLD_SIZE > 1)
    the jobs left to run are shared among the processes, balanced by cost (`dist.assign`; every process computes the
    same split), each process writing only its own shard of the store; on a Ray engine (`engine.using`) they go to
    its actor pool and come back here. At the end the rows are folded into rows.jsonl in (sample, condition) order,
    once, after every process is done, and every process holds them all."""
    from . import dist
    from .engine import current

    conditions = list(dict.fromkeys(conditions))
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("two samples share one name; an experiment needs distinct samples")
    groups: OrderedDict[object, list[str]] = OrderedDict()
    for c in conditions:
        groups.setdefault(group(c), []).append(c)
    jobs = batches(samples, batch)

    def todo(chunk: list[Sample]) -> list[tuple[list[str], list[Sample]]]:
        """What one job still has to run: (conditions, samples) per group."""
        left = []
        for conds in groups.values():
            todo_c = [c for c in conds if not all(store.has(condition=c, sample=s.name) for s in chunk)]
            if todo_c:
                left.append((todo_c, [s for s in chunk if not all(store.has(condition=c, sample=s.name)
                                                                 for c in todo_c)]))
        return left

    engine = current()
    coord = dist.Coordinator() if engine is None or not engine.serves(remote) else None
    rank, world = (coord.rank, coord.world) if coord is not None else (0, 1)
    if world > 1:
        dist.check_shared(store.dir.parent, coord)
        store.refresh()
        store.shard = rank
    # one view of what is left, rank 0's, on every process (each read the store, but at its own moment)
    left = coord.broadcast([i for i, chunk in enumerate(jobs) if todo(chunk)]) if coord else \
        [i for i, chunk in enumerate(jobs) if todo(chunk)]
    if coord is not None:
        share = dist.assign([sum(sample_cost(s) for s in jobs[i]) * len(conditions) for i in left], world)
        mine = [left[k] for k in share[rank]]
    else:
        mine = left
    rows_of_mine = sum(len(jobs[i]) for i in mine) * len(conditions)
    where = f" [rank {rank} of {world}]" if world > 1 else f" [on {engine.workers} Ray workers]" if coord is None \
        else ""
    if progress and (left or world > 1):  # what this process runs: missing (condition, sample) rows only
        runs = sum(len(c) * len(x) for i in mine for c, x in todo(jobs[i]))
        tqdm.write(f"{desc}{where}: {len(mine)} of {len(jobs)} jobs to run, {runs} rows ({len(left)} jobs "
                   f"left in all)", file=sys.stderr)
    workers = world if coord is not None else engine.workers
    if progress and rank == 0 and 0 < len(left) < workers:
        tqdm.write(f"{desc}: {len(left)} jobs for {workers} processes: {workers - len(left)} stay idle; a job is one "
                   f"--batch of samples ({batch} now): a smaller --batch (1: a job per sample) spreads more",
                   file=sys.stderr)
    done = sum(store.has(condition=c, sample=s.name) for i in mine for c in conditions for s in jobs[i])
    with tqdm(total=rows_of_mine, initial=done, disable=not progress, desc=desc + where) as bar:
        if coord is None:  # the Ray engine's actors run the jobs; their rows come back here
            work = [(i, [(c, [s.name for s in ch]) for c, ch in todo(jobs[i])]) for i in mine]
            for i, got in engine.run(remote, work):
                interrupt.check()
                for rows in got:
                    bar.update(store.add(rows))
        else:
            for i in mine:
                for todo_c, todo_s in todo(jobs[i]):
                    interrupt.check()  # a Ctrl-C whose exception was lost still stops here
                    bar.update(store.add(job_rows(run, todo_c, todo_s)))
    if coord is not None:
        coord.barrier()  # every process's jobs are done
        store.refresh()
        store.shard = None
        coord.barrier()  # and every process read every shard before rank 0 folds them in
    if rank == 0:
        pos = {n: i for i, n in enumerate(names)}
        cpos = {c: i for i, c in enumerate(conditions)}
        store.consolidate(lambda r: (pos.get(r["sample"], len(pos)), cpos.get(r["condition"], len(cpos))))


def my_jobs(samples: list[Sample], batch: int, out: Path | None = None) -> tuple:
    """(coordinator, this process's jobs): the batches of samples (`batches`) shared among the processes of a
    torchrun / accelerate launch by cost as `run_grid` shares them (all of them when not launched), for the
    commands that loop over samples without a store (eval, trace). `out`: the output folder every process must
    share (checked)."""
    from . import dist

    coord = dist.Coordinator()
    jobs = batches(samples, batch)
    if coord.world == 1:
        return coord, jobs
    if out is not None:
        dist.check_shared(out, coord)
    share = dist.assign([sum(sample_cost(s) for s in chunk) for chunk in jobs], coord.world)[coord.rank]
    return coord, [jobs[i] for i in share]


def gather_rows(coord, rows: list[dict], samples: list[Sample]) -> list[dict]:
    """Every process's rows (each with its "sample"), in the order of `samples`, on every process."""
    if coord.world == 1:
        return rows
    pos = {s.name: i for i, s in enumerate(samples)}
    return sorted((r for part in coord.gather(rows) for r in part), key=lambda r: pos[r["sample"]])


def rows_of(store: ResultsStore, condition: str, samples: list[Sample]) -> list[dict]:
    """The stored rows of one condition for these samples (the experiment's current sample set), in their order."""
    by = {r["sample"]: r for r in store.select(condition=condition)}
    return [by[s.name] for s in samples if s.name in by]


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
    vbvr_score: str | None = None  # the vbvr scorer's mode: task-specific (None: the default) or full
    sampling: dict | None = None  # the resolved Sampling's describe() where it has settings beyond the numbers

    @model_validator(mode="before")
    @classmethod
    def _sampling_value(cls, data):
        """`sampling` may be given as a steplens.presets.Sampling: its steps, shift and guidance fill those not given,
        and its description is kept where it has settings beyond them (a pipeline's scheduler, a σ list, ...)."""
        from ..presets import Sampling

        if isinstance(data, dict) and isinstance(data.get("sampling"), Sampling):
            sp = data["sampling"]
            data = {**{k: getattr(sp, k) for k in ("steps", "shift", "guidance")},
                    **{k: v for k, v in data.items() if v is not None}, "sampling": sp.describe() if sp.extra else None}
        return data

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

    def sampling_for(self, model, steps: int | None = None):
        """The steplens.presets.Sampling a run of these settings on `model` samples with (`steps`: another step
        count, e.g. a condition's): the resolved one recorded in `sampling`, else the model's own, with these
        settings' steps, shift and guidance."""
        from ..presets import Sampling, resolve

        steps = steps or self.steps
        if self.sampling:
            return Sampling.from_description(self.sampling).with_numbers(steps, self.shift, self.guidance)
        return resolve(model, steps=steps, shift=self.shift, guidance=self.guidance)

    def source(self) -> SampleSource:
        return SampleSource(data=self.data, split=self.split, tasks=self.tasks, task=self.task, count=self.count,
                            seed=self.seed, size=self.size, frames=self.frames)

    def scorers(self) -> Scorers:
        return Scorers(self.scorer, self.threshold, vbvr_score=self.vbvr_score)

    def _evaluator(self) -> dict:
        """A VBVR kit's source hash (issue 34): a folder scored with one evaluator source resumes only with it."""
        if self.scorer not in ("vbvr", "vbvr-pro"):
            return {}
        try:
            src = getattr(self.scorers().for_task(""), "source", None)
        except ValueError:  # the kit is not there: refused where the scorer is needed
            return {}
        return {"evaluator_sha256": src["sha256"]} if src else {}

    def describe(self) -> dict:
        """The configuration an output folder records (the sample count left out: it may grow)."""
        return {**self.source().describe(), "steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                "scorer": self.scorer, "threshold": self.threshold,
                **({"vbvr_score": self.vbvr_score or "task-specific"}  # the mode named (issue 34)
                   if self.vbvr_score or self.scorer in ("vbvr", "vbvr-pro") else {}),
                **self._evaluator(),
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
                  headline: dict, samples: int | None = None, cost: dict | None = None,
                  scored_by: dict | None = None) -> None:
    """results.json and <probe>.csv; `cost`: the NFE spent ({"nfe", "nfe_without_reuse"}), when counted;
    `scored_by`: {task: the scorer that scored it} (`Scorers.used`: `settings.scorer` None means each task's own)."""
    atomic_write_json(Path(out) / "results.json", {"format": 1, "probe": probe,
                                                    "settings": settings.model_dump(mode="json"),
                                                    "samples": samples, "config": config, "headline": headline,
                                                    "table": table, **({"cost": cost} if cost else {}),
                                                    **({"scored_by": scored_by} if scored_by else {})})
    write_table(table, Path(out) / f"{probe}.csv")


def own_sampling(settings: ExperimentSettings) -> ExperimentSettings:
    """The settings with steps, shift, guidance and preset left to each model: its own sampling."""
    return settings.model_copy(update={"steps": None, "shift": None, "guidance": None, "sampling": None})
