"""The registry of tasks and scorers: built-ins and other packages' plug-ins, found through entry points.

Groups: `steplens.tasks` (a task object, or a list of them) and `steplens.scorers` (a scorer factory called
as `factory(threshold=...)`). steplens's own `maze`, `maze-two-goals`, the `maze` scorer and the `vbvr`
adapter are registered the same way (see pyproject.toml). The contract is `steplens.tasks.contract`.
"""

from __future__ import annotations

import re
from typing import Callable

from ..io.plugins import load_group
from .contract import SCORE_CONTRACT, Scorer, check_score, has_generator

_TASKS: dict[str, object] = {}
_SCORERS: dict[str, Callable[..., Scorer]] = {}
_LOADED = False
# Ours, in case the installed metadata predates an entry point (an editable install not yet refreshed).
BUILTIN = {"steplens.tasks": ["steplens.tasks.maze_task:TASKS", "steplens.tasks.tictactoe:TASKS",
                             "steplens.tasks.maze_loops:TASKS", "steplens.tasks.reappear:TASKS",
                             "steplens.tasks.symmetry:TASKS"],
           "steplens.scorers": ["steplens.tasks.maze_task:SCORERS", "steplens.tasks.tictactoe:SCORERS",
                                "steplens.tasks.maze_loops:SCORERS", "steplens.tasks.reappear:SCORERS",
                                "steplens.tasks.symmetry:SCORERS",
                                "steplens.tasks.vbvr:SCORERS", "steplens.tasks.vbvr_pro:SCORERS"]}
DEFAULT_TASK = "maze"  # what commands generate when no task is named
VBVR_NAME = re.compile(r"^[A-Za-z]+-\d+_(.+?)(?:_data-generator)?$")
VBVR_INSTALL = ("VBVR-EvalKit is not on the package registry: clone its repository (Video-Reason/VBVR-EvalKit) "
                "and `pip install -e .` inside it, in the environment that runs steplens")


def register_task(task) -> None:
    """Add a task (see steplens.tasks.contract.Task); a name already taken is refused."""
    for attr in ("name", "default_frames", "scorer", "answer_region"):
        if not hasattr(task, attr):
            raise TypeError(f"task {getattr(task, 'name', task)!r} lacks {attr!r} (see steplens.tasks.contract)")
    way = getattr(task, "harder", 1)
    if way not in (1, -1):
        raise ValueError(f"task {task.name!r} has harder = {way!r}; allowed: 1 (a larger knob is harder) or -1 "
                         f"(a smaller one is; see steplens.tasks.contract)")
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise ValueError(f"task name {task.name!r} is registered twice")
    _TASKS[task.name] = task


def register_scorer(name: str, factory: Callable[..., Scorer]) -> None:
    """Add a scorer factory, called as factory(threshold=None or a float)."""
    if name in _SCORERS and _SCORERS[name] is not factory:
        raise ValueError(f"scorer name {name!r} is registered twice")
    _SCORERS[name] = factory


def _add_tasks(obj) -> None:
    for t in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else [obj]):
        register_task(t)


def _add_scorers(name: str, obj) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            register_scorer(k, v)
    else:
        register_scorer(name, obj)


def _load() -> None:
    """Register every entry point of both groups (steplens's own included); ours also from BUILTIN when the
    installed metadata lacks them."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for group in ("steplens.tasks", "steplens.scorers"):
        for name, obj in load_group(group, BUILTIN[group]):
            _add_tasks(obj) if group == "steplens.tasks" else _add_scorers(name, obj)


def task_names() -> list[str]:
    _load()
    return sorted(_TASKS)


def tasks_with(hook: str) -> list[str]:
    """The registered tasks with a generator that have an optional hook (e.g. `swap_pair`, `candidates`)."""
    _load()
    return [n for n in sorted(_TASKS) if has_generator(_TASKS[n]) and callable(getattr(_TASKS[n], hook, None))]


def parse_tasks(spec: str, flag: str = "--tasks") -> list[str]:
    """Task names from a user's `spec`: one name, a comma-separated list, or `all` (every task with a generator);
    each resolved to its registry name (unknown ones refused with the list), in order, once each."""
    if spec == "all":
        names = [n for n in task_names() if has_generator(_TASKS[n])]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise ValueError(f"{flag} {spec!r} names no task; give a task name, a comma-separated list or 'all'")
    return list(dict.fromkeys(generator_task(n).name for n in names))


def next_size(task, size: int) -> int | None:
    """The next difficulty up that `task` takes after `size` (some knobs skip values, e.g. even sizes only), or
    None at the hard end of its range. The knob goes up unless the task says a smaller value is harder
    (`harder = -1`)."""
    lo, hi = task.sizes
    for k in (range(size + 1, hi + 1) if getattr(task, "harder", 1) == 1 else range(size - 1, lo - 1, -1)):
        try:
            task.sample(0, k)
            return k
        except ValueError:
            continue
    return None


def scorer_names() -> list[str]:
    _load()
    return sorted(_SCORERS)


def find_task(name: str):
    """The task a name (or a folder name) means, or None: its registry name, an alias, or a VBVR-style
    `<ID>_<name>_data-generator` folder name."""
    _load()
    if name in _TASKS:
        return _TASKS[name]
    for t in _TASKS.values():
        if name in getattr(t, "aliases", ()):
            return t
    m = VBVR_NAME.match(name)
    if m:
        inner = m.group(1)
        if inner in _TASKS:
            return _TASKS[inner]
        for t in _TASKS.values():
            if inner in getattr(t, "aliases", ()) or f"{inner}_data-generator" in getattr(t, "aliases", ()):
                return t
    return None


def get_task(name: str):
    t = find_task(name)
    if t is None:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(task_names())} (folder names of the form "
                         f"<ID>_<task>_data-generator resolve to <task>; plug-ins register through the "
                         f"'steplens.tasks' entry point group)")
    return t


def generator_task(name: str):
    """A task that can generate samples (for --task NAME --count N)."""
    t = get_task(name)
    if not has_generator(t):
        with_gen = [n for n in task_names() if has_generator(_TASKS[n])]
        raise ValueError(f"task {name!r} has no generator; generate samples with one of: {', '.join(with_gen)}, "
                         f"or read a folder with --data DIR")
    return t


def get_scorer(name: str, threshold: float | None = None, **options) -> Scorer:
    """The scorer NAME; `options` (e.g. vbvr_score, the VBVR score mode) go to the scorers that take them."""
    _load()
    if name not in _SCORERS:
        raise ValueError(f"unknown scorer {name!r}; available: {', '.join(scorer_names())}. `vbvr` scores with "
                         f"VBVR-EvalKit's evaluators when that package is installed ({VBVR_INSTALL}); plug-ins "
                         f"register through the 'steplens.scorers' entry point group")
    cls = _SCORERS[name]
    return CheckedScorer(name, cls(threshold=threshold, **_taken(cls, options)))


def _taken(cls, options: dict) -> dict:
    """The options a scorer class's constructor takes (vbvr_score is its `mode`)."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    named = {"vbvr_score": "mode", "vbvr_pro_source": "source"}
    return {named.get(k, k): v for k, v in options.items()
            if v is not None and named.get(k, k) in params}


class CheckedScorer:
    """A registered scorer whose every answer is checked (`contract.check_score`): NaN, inf, out of [0, 1], not a
    Score, or an exception other than the contract's ValueError is refused naming the scorer and the sample, never
    ranked or written. Everything else is the scorer's own (attributes read through)."""

    def __init__(self, name: str, scorer: Scorer):
        self._name, self._scorer = name, scorer

    def __getattr__(self, attr):
        if attr.startswith("_"):  # not yet set (a copy or unpickling in a worker): never the scorer's
            raise AttributeError(attr)
        return getattr(self._scorer, attr)

    def score(self, video, sample):
        who = f"scorer {self._name!r}"
        try:
            got = self._scorer.score(video, sample)
        except ValueError:  # the contract's refusal of a sample it cannot score: its own message
            raise
        except Exception as e:  # noqa: BLE001 - a plug-in's bug, named (the original kept as the cause for --debug)
            raise ValueError(f"{who} failed on sample {getattr(sample, 'name', sample)}: {type(e).__name__}: {e}; "
                             f"a scorer returns {SCORE_CONTRACT} (raising ValueError only for a sample it cannot "
                             f"score)") from e
        return check_score(got, who, sample)


def default_scorer_name(task_name: str) -> str:
    t = find_task(task_name)
    if t is None:
        raise ValueError(f"no scorer known for task {task_name!r}: it is not a registered task "
                         f"({', '.join(task_names())}); pass --scorer NAME (e.g. vbvr, for VBVR-Bench's tasks with "
                         f"VBVR-EvalKit installed)")
    return t.scorer


class Scorers:
    """The scorer of each task: one named for all (`--scorer NAME`), else each task's own default."""

    def __init__(self, name: str | None = None, threshold: float | None = None, **options):
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"a success threshold must be in [0, 1], got {threshold}")
        if options.get("vbvr_score") is not None:  # a bad mode refused before anything loads
            from .vbvr_kit import check_mode

            check_mode(options["vbvr_score"])
        self.name, self.threshold, self.options = name, threshold, options
        self._cache: dict[str, Scorer] = {}
        if name is not None:
            self._cache[""] = get_scorer(name, threshold, **options)

    def for_task(self, task_name: str) -> Scorer:
        if self.name is not None:
            return self._cache[""]
        sc = default_scorer_name(task_name)
        if sc not in self._cache:
            self._cache[sc] = get_scorer(sc, self.threshold, **self.options)
        return self._cache[sc]

    def for_sample(self, sample) -> Scorer:
        """The scorer of one sample: as `for_task`, except for a sample steplens's task checks do not bind
        (`sample.foreign`, e.g. VBVR-Bench's rendered frames): `vbvr` by default, and a task's own scorer (which
        reads steplens's drawing) refused, naming why."""
        why = getattr(sample, "foreign", None)
        if not why:
            return self.for_task(sample.task)
        if self.name is None:
            if "\0vbvr" not in self._cache:
                try:
                    self._cache["\0vbvr"] = get_scorer("vbvr", self.threshold, **self.options)
                except ValueError as e:
                    raise ValueError(f"sample {sample.name} is not drawn by steplens ({why}); such samples are scored "
                                     f"by default with vbvr, VBVR-Bench's own evaluators: {e} Or name a scorer "
                                     f"that takes any frame with --scorer NAME") from None
            return self._cache["\0vbvr"]
        _load()
        if self.name in {getattr(t, "scorer", None) for t in _TASKS.values()}:
            raise ValueError(f"--scorer {self.name} scores steplens's own task drawings, and sample {sample.name} is "
                             f"not one: {why}. Score it with --scorer vbvr (VBVR-EvalKit), or a scorer that takes "
                             f"any frame")
        return self._cache[""]

    def check(self, samples) -> None:
        """Refuse, before any work, samples whose task has no scorer (or that the scorer cannot score)."""
        firsts = {(s.task, bool(getattr(s, "foreign", None))): s for s in reversed(list(samples))}
        for (task, _), s in reversed(list(firsts.items())):
            sc = self.for_sample(s)
            if hasattr(sc, "check_task"):
                sc.check_task(task)

    def score(self, video, sample):
        return self.for_sample(sample).score(video, sample)

    def used(self, samples) -> dict[str, str]:
        """{task: the name of the scorer that scores its samples}, in the samples' order: what a result records and a
        table shows (never "each task's own" alone: a VBVR-Bench folder's tasks are scored by `vbvr`)."""
        out: dict[str, str] = {}
        for s in samples:
            if s.task not in out:
                out[s.task] = self.for_sample(s).name
        return out

    def describe(self) -> str:
        return self.name or "each task's own"
