"""Where an experiment's jobs run: here (one process, or the processes of a torchrun / accelerate launch, each taking
its share: `steplens.experiments.dist`), or on a Ray actor pool (`RayEngine`: one model per actor, a dynamic queue,
Ray's own restarts and retries of a lost worker). No scheduler of our own.

A job is one batch of samples (`grid.batches`: at most --batch samples of one frame size and count) with all its
conditions, so a process can share the prefixes of one sample's conditions. `run_grid` hands the Ray engine a
`Remote`: how a worker rebuilds the experiment's batch function around its own model (a module-level function and
its picklable arguments); the samples travel by name, each worker makes them itself.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

ENGINES = ("torchrun", "ray")
RAY_INSTALL = "pip install 'steplens[ray]'  (or: pip install ray==2.60.0)"
MAX_RESTARTS = 3  # a lost worker is restarted (its model loaded again) and its job retried, this many times
PLACE_WAIT = 120  # seconds the pool's resources may take to be reserved (a cluster busy with other jobs) before refusing


@dataclass(frozen=True)
class Remote:
    """How a worker rebuilds an experiment's batch run: `build(model, *args) -> (run, {sample name: Sample})`,
    `build` a module-level function (pickled by reference). `model` is the driver's model: only an engine made for
    that model runs the jobs (another model, e.g. a study's baseline, runs here)."""

    model: Any
    build: Callable
    args: tuple
    key: str  # one experiment (its output folder): a worker builds it once


_CURRENT: dict = {"engine": None}


@contextmanager
def using(engine) -> Iterator:
    """Run the experiments of the block on `engine` (None: here)."""
    before = _CURRENT["engine"]
    _CURRENT["engine"] = engine
    try:
        yield engine
    finally:
        _CURRENT["engine"] = before


def current():
    return _CURRENT["engine"]


def require_ray():
    """The ray module, or a ValueError with the install line (said before any model loads)."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--engine ray needs Ray, which is not installed here: {RAY_INSTALL}") from None
    return ray


def job_rows(run: Callable, conds: list[str], chunk: list) -> list[dict]:
    """One group of conditions of one job run: the store rows, keyed by (condition, sample)."""
    got = run(conds, chunk)
    rows = []
    for c in conds:
        if len(got[c]) != len(chunk):
            raise RuntimeError(f"condition {c!r} returned {len(got[c])} rows for {len(chunk)} samples")
        rows += [{"condition": c, "sample": s.name, "task": s.task, **r} for s, r in zip(chunk, got[c])]
    return rows


class _Worker:
    """A Ray actor: one model, the experiments it was handed (built once each), their jobs."""

    def __init__(self, make_model: Callable):
        self.model = make_model()
        self.built: dict[str, tuple] = {}

    def pid(self) -> int:
        return os.getpid()

    def run(self, key: str, build: Callable, args: tuple, job: int, todo: list[tuple[list[str], list[str]]]) -> tuple:
        """(job, the rows of each (conditions, sample names) group of the job)."""
        if key not in self.built:
            self.built = {key: build(self.model, *args)}  # one experiment at a time: the last one's state goes
        run, samples = self.built[key]
        return job, [job_rows(run, conds, [samples[n] for n in names]) for conds, names in todo]


class RayEngine:
    """Jobs on a pool of `workers` Ray actors, one model each (`make_model()`, a picklable callable, run in the
    actor; `gpus` GPUs per actor, so one actor per GPU with 1). Connects to the cluster in RAY_ADDRESS, or an
    already initialised Ray, else starts a local one. Results come back to this process, the store's one writer."""

    def __init__(self, workers: int | None, make_model: Callable, gpus: float = 0, model=None):
        """workers None: one per GPU of the cluster (gpus > 0), else one per CPU."""
        self.ray = require_ray()
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        self.workers, self.make_model, self.gpus, self.model = workers, make_model, gpus, model
        self.actors: list = []
        self._started_ray = False
        self._group = None

    def bind(self, model) -> "RayEngine":
        """The driver's model whose experiments the pool runs."""
        self.model = model
        return self

    def serves(self, remote: Remote | None) -> bool:
        return remote is not None and self.model is not None and remote.model is self.model

    def start(self) -> "RayEngine":
        """The pool, its resources checked against the cluster's and reserved (a placement group) before any actor
        starts; refused naming what the cluster has, or that they did not come within PLACE_WAIT seconds."""
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
            self._started_ray = True
        try:
            if not self.actors:
                self._place()
        except BaseException:
            self.close()
            raise
        return self

    def _have(self) -> str:
        have = self.ray.cluster_resources()
        where = os.environ.get("RAY_ADDRESS") or "the local one"
        return f"the Ray cluster ({where}) has {have.get('CPU', 0):g} CPU(s) and {have.get('GPU', 0):g} GPU(s)"

    def _place(self) -> None:
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        ray = self.ray
        have = ray.cluster_resources()
        cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
        room = int(cpus) if not self.gpus else min(int(cpus), int(gpus / self.gpus))
        if self.workers is None:  # one actor per GPU (with gpus), else per CPU of the cluster
            self.workers = max(1, room)
        if self.workers > room:
            each = "1 CPU" + (f" and {self.gpus:g} GPU" if self.gpus else "")
            raise ValueError(f"--workers {self.workers}: each Ray worker takes {each}, and {self._have()}: room for "
                             f"{room} worker(s); give --workers {max(1, room)} or fewer, or leave --workers out (one "
                             f"per {'GPU' if self.gpus else 'CPU'})")
        bundle = {"CPU": 1, **({"GPU": self.gpus} if self.gpus else {})}
        self._group = placement_group([bundle] * self.workers)
        try:
            ray.get(self._group.ready(), timeout=PLACE_WAIT)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(self._group)
            self._group = None
            raise ValueError(f"--engine ray: the cluster could not place {self.workers} worker(s) ({bundle} each) "
                             f"within {PLACE_WAIT} s; {self._have()}, some of it held by other jobs. Wait for them, "
                             f"or give fewer --workers") from None
        cls = ray.remote(num_cpus=1, num_gpus=self.gpus, max_restarts=MAX_RESTARTS,
                         max_task_retries=MAX_RESTARTS)(_Worker)
        self.actors = [cls.options(scheduling_strategy=PlacementGroupSchedulingStrategy(self._group, i))
                       .remote(self.make_model) for i in range(self.workers)]

    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.start().actors])

    def run(self, remote: Remote, jobs: list[tuple[int, list[tuple[list[str], list[str]]]]]) -> Iterator:
        """(job index, rows per group) for every job, as each finishes (a dynamic queue over the actors)."""
        from ray.util import ActorPool

        pool = ActorPool(self.start().actors)
        yield from pool.map_unordered(lambda actor, job: actor.run.remote(remote.key, remote.build, remote.args, *job),
                                      jobs)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if getattr(self, "_group", None) is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._group)
            self._group = None
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False
