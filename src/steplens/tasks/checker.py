"""The `checker` verifier: each sample's task's `check` hook, validity rules only (see tasks/contract.py).

Verifiers declare their strength (`strength`), what they know beyond the answer they judge:

- ``checker``: validity rules a user can apply by looking (a maze path that starts at the start, stays in open cells,
  is connected and reaches the goal; no distances). Built in: ``checker`` (this module).
- ``solver``: computes the answer from the first frame and compares (the shortest path, the winning moves, where the
  object must reappear). Built in: ``task`` (each task's ``verify`` hook; ``solver`` is the same verifier).
- ``consensus``: agreement among particles, no task knowledge. Built in: ``consensus``.
- a plug-in's own declaration (e.g. ``judge`` for a VLM), or ``undeclared``.

Search figures made with a ``solver`` are upper bounds for what a user without one gets (on VBVR-Bench there is
none); tables name the strength beside the verifier.
"""

from __future__ import annotations

import numpy as np

from .contract import Score
from .registry import find_task, tasks_with
from .sample import Sample

STRENGTHS = ("checker", "solver", "consensus")


def strength_of(verifier) -> str:
    """A verifier's declared strength (`strength` attribute), or 'undeclared'."""
    got = getattr(verifier, "strength", None)
    return str(got) if got else "undeclared"


class CheckerVerifier:
    """Each sample's task's own `check` hook: validity rules from the first frame and prompt, nothing solved."""

    name = "checker"
    strength = "checker"
    judges_frames = True  # the task's rules frame by frame (its check_partial hook): what backtracking reads
    reads = ("the first frame and prompt, through the sample's task's own check hook: validity rules, nothing solved "
             "(a maze: one connected path from start to goal off the walls, no distances); not a sample steplens did "
             "not draw")

    def _hook(self, task_name: str):
        t = find_task(task_name)
        fn = getattr(t, "check", None) if t is not None else None
        if not callable(fn):
            raise ValueError(f"task {task_name!r} has no check hook (validity rules); tasks with one: "
                             f"{', '.join(tasks_with('check'))}; use another verifier (`consensus`, or a plug-in)")
        return fn

    def check_task(self, task_name: str) -> None:
        self._hook(task_name)

    def check_sample(self, sample: Sample) -> None:
        """Refuse, before any work, a sample not drawn by steplens or of a task without a check hook."""
        if getattr(sample, "foreign", None):
            raise ValueError(f"sample {sample.name} is not drawn by steplens ({sample.foreign}); the checker reads "
                             f"steplens's drawings: use `consensus` or a plug-in verifier that reads any frame")
        self._hook(sample.task)

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        self.check_sample(sample)
        return self._hook(sample.task)(np.asarray(video), sample)


VERIFIERS = {"checker": CheckerVerifier}
