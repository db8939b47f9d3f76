"""Tasks and scorers as plug-ins: the contract (`contract`), the registry, and steplens's own tasks.

Code outside this package uses only what is exported here; it never imports a task's own module.
"""

from __future__ import annotations

from .contract import Score, Scorer, Task, default_answer_region, has_generator
from .registry import (DEFAULT_TASK, Scorers, find_task, generator_task, get_scorer, get_task, register_scorer,
                       register_task, next_size, parse_tasks, scorer_names, task_names, tasks_with)
from .rules import RuleBasedScorer
from .sample import Sample, write_sample


def answer_region(sample: Sample):
    """The pixels the answer to `sample` changes: its task's own rule, or where the ground truth changes."""
    t = find_task(sample.task)
    if t is not None and hasattr(t, "answer_region"):
        return t.answer_region(sample)
    return default_answer_region(sample)


def candidates(sample: Sample):
    """Every right answer of `sample` as a final frame ((H, W, 3) uint8 list), if its task lists them (the
    optional task hook `candidates`); None otherwise."""
    t = find_task(sample.task)
    if t is not None and hasattr(t, "candidates"):
        return t.candidates(sample)
    return None


def palette(task_name: str):
    """The task's palette ((K, 3) uint8) or None."""
    t = find_task(task_name)
    return getattr(t, "palette", None) if t is not None else None


__all__ = ["DEFAULT_TASK", "tasks_with", "next_size", "parse_tasks", "RuleBasedScorer", "Sample", "Score", "Scorer", "Scorers", "Task", "answer_region", "candidates", "default_answer_region", "find_task",
           "generator_task", "get_scorer", "get_task", "has_generator", "palette", "register_scorer",
           "register_task", "scorer_names", "task_names", "write_sample"]
