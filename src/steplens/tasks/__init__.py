"""Tasks and scorers as plug-ins: the contract (`contract`), the registry, and steplens's own tasks.

Code outside this package uses only what is exported here; it never imports a task's own module.
"""

from __future__ import annotations

from .contract import Score, Scorer, Task, default_answer_region, has_generator
from .registry import (DEFAULT_TASK, Scorers, find_task, generator_task, get_scorer, get_task, next_size, parse_tasks,
                       register_scorer, register_task, scorer_names, task_names, tasks_with)
from .rules import RuleBasedScorer
from .checker import strength_of
from .sample import Sample, continue_from_frames, write_sample
from .splits import PARTS, check_part, content_id, draw, draw_many, part_of
from .verify import (Verifier, check_samples, check_verifier_task, frame_verifiers, get_verifier, register_verifier, strip_sample,
                     verifier_names, verifier_origin, verifier_reads, verifier_strength, verify_many)


def answer_region(sample: Sample):
    """The pixels the answer to `sample` changes: its task's own rule, or where the ground truth changes (also for
    a sample not drawn by steplens, `sample.foreign`)."""
    t = None if sample.foreign else find_task(sample.task)
    if t is not None and hasattr(t, "answer_region"):
        return t.answer_region(sample)
    return default_answer_region(sample)


def candidates(sample: Sample):
    """Every right answer of `sample` as a final frame ((H, W, 3) uint8 list), if its task lists them (the
    optional task hook `candidates`); None otherwise (also for a sample not drawn by steplens)."""
    t = None if sample.foreign else find_task(sample.task)
    if t is not None and hasattr(t, "candidates"):
        return t.candidates(sample)
    return None


def partial_checks(video, sample: Sample) -> list[bool] | None:
    """Per frame t of a (T, H, W, 3) uint8 video answering `sample`: whether the video up to t passes the checker,
    frames before the last by the task's `check_partial` hook (nothing drawn so far breaks a rule), the last by its
    `check` hook (the answer whole). None when the family cannot judge single frames (no `check_partial` hook, or a
    sample not drawn by steplens)."""
    import numpy as np

    t = None if sample.foreign else find_task(sample.task)
    partial, whole = getattr(t, "check_partial", None), getattr(t, "check", None)
    if not callable(partial) or not callable(whole):
        return None
    video = np.asarray(video)
    last = len(video) - 1
    return [bool((whole if i == last else partial)(video[: i + 1], sample).success) for i in range(len(video))]


def palette(task: str | Sample):
    """The palette ((K, 3) uint8) of a task, or of a sample's task, or None (also for a sample not drawn by
    steplens: nothing to snap its frames to)."""
    if isinstance(task, Sample):
        if task.foreign:
            return None
        task = task.task
    t = find_task(task)
    return getattr(t, "palette", None) if t is not None else None


__all__ = ["DEFAULT_TASK", "tasks_with", "next_size", "parse_tasks", "RuleBasedScorer", "Sample", "Score", "Scorer", "Scorers", "Task", "answer_region", "candidates", "default_answer_region", "find_task",
           "generator_task", "get_scorer", "get_task", "has_generator", "palette", "register_scorer",
           "register_task", "scorer_names", "task_names", "write_sample", "Verifier", "get_verifier", "register_verifier", "strip_sample",
           "verifier_names", "verify_many", "continue_from_frames", "partial_checks", "PARTS", "check_part", "content_id", "draw", "draw_many", "part_of",
           "check_samples", "check_verifier_task", "strength_of", "verifier_strength", "verifier_reads", "verifier_origin", "frame_verifiers"]
