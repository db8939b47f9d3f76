"""The task and scorer contract: what a plug-in gives steplens, and what steplens gives it.

Everything outside `steplens.tasks` talks to tasks and scorers through these two protocols and the
registry (`steplens.tasks.registry`); none of it knows a particular task.

Writing a task plug-in
----------------------
A task is an object with:

- ``name`` (str): the registry name, e.g. ``"maze"``. ``aliases`` (tuple of str): other folder names
  that mean this task (VBVR-Bench's ``O-39_maze_data-generator`` style names also resolve by rule:
  ``<ID>_<name>_data-generator`` -> ``<name>``).
- ``default_frames`` (int): frames of its ground-truth video when none is asked for.
- ``scorer`` (str): the registry name of its default scorer.
- ``default_size`` (int or None) and ``sizes`` ((lo, hi) or None): its difficulty knob, documented in
  its docstring (a maze: n x n cells). None when the task has no generator. Optional ``harder``
  (+1 or -1, default +1): the direction in which the knob makes the task harder (tic-tac-toe's knob
  counts winning moves, and more right answers make it easier: -1). ``next_size`` steps that way.
- ``sample(seed, size=None, frames=None, idx=None, **options) -> Sample`` (only with a generator):
  the sample of ``seed``, deterministic by seed: first frame, prompt, frame count and the ground-truth
  video at the native size, uint8 RGB. Raise ``ValueError`` naming a bad size or option and what is
  allowed. A task without a generator raises ``NotImplementedError`` (or leaves ``default_size`` None).
- ``split_by_content`` (optional, bool, default True): generated samples are drawn from one part of the task's
  inputs, train, val or test, by a hash of what the model sees (first frame and prompt; ``steplens.tasks.splits``),
  so that held out means unseen. A generator must therefore have many distinct inputs at each size (thousands: the
  test part holds 15% of them); ``steplens.tasks.splits.input_space`` counts them. A task whose inputs are too few
  to hold any out sets it False: every part then draws from all inputs, and its figures are on seen inputs.
- ``answer_region(sample) -> (H, W) bool``: the pixels of the native frame that the answer changes.
  The default (``default_answer_region``) is where the ground truth's final frame differs from the
  first frame; a task may widen it (the maze adds start and goal, the cells its path joins).
- ``validate(sample) -> None`` (optional): raise ``ValueError`` when a sample read from a folder is not
  one of this task's (a maze frame without a start, a greyscale frame that lost its colours).
- ``swap_pair(sample) -> Sample`` (optional): the same scene with a prompt asking for another answer (the
  swap probe's pair: two-goal mazes name the other goal).
- ``vbvr_name`` (optional, str): the VBVR-Bench task whose evaluator (``--scorer vbvr``) scores this task's
  generated samples (the maze: ``O-39_maze_data-generator``).
- ``palette`` (optional, (K, 3) uint8): the colours its frames are drawn in. Where given, the majority
  vote and consensus of the multi-seed methods snap frames to it; otherwise they work on RGB.
- ``candidates(sample) -> list of Candidate`` (optional): the answers x0_hat may weigh, each a
  ``Candidate(label, frame, right)``: ``frame`` is the final frame with that one answer drawn alone ((H, W, 3)
  uint8, native size), ``label`` says which answer in a few words ("X at row 1, col 2"), ``right`` whether it is
  a right answer. List every right answer where there are several (tic-tac-toe's winning moves, the shortest
  paths of a maze with loops, the colours an open symmetry cell may take), and the tempting wrong ones where that
  is what the behaviour is about (the other goal of a two-goal maze: perception before action; the reappearing
  object in other colours and shapes: working memory). ``steplens.cos`` measures per step how strongly x0_hat
  draws each (superposition, multi-path exploration, working memory). Keep them distinct and few (<= 8).
- ``verify(video, sample) -> Score`` (optional): the task's own verifier, judged without the answer: it reads
  only ``sample.first_frame``, ``sample.prompt``, ``sample.task``, ``sample.frames`` and ``meta["n"]`` (what
  ``steplens.tasks.strip_sample`` leaves), never ``final_frame``, ``ground_truth`` nor answer fields of the
  metadata, and takes ``video`` as a scorer does. Search methods pick answers with it (the ``task`` verifier,
  ``steplens.tasks.verify``). Its ``success`` should agree with the scorer's wherever the first frame and prompt
  determine the answer; its docstring says where it can differ (it may rank valid answers the scorer treats
  alike, it may read a scene from the picture that the scorer reads from the metadata). A family where no rule
  can judge an answer without the ground truth leaves it out and says why in its docstring.
- ``check(video, sample) -> Score`` (optional): the task's checker, validity rules only, nothing solved: what a
  user can judge by looking (a maze: one connected path from the start to the goal, off the walls; no distances;
  reappear: the object whole past the wall, not where). Reads what ``verify`` may. The ``checker`` verifier calls
  it (``steplens.tasks.checker``); ``verify`` is the ``solver`` (it may compute the answer from the first frame).
  Where validity is the answer (symmetry), ``check`` applies the same rule and says so in its details.
- ``check_partial(video, sample) -> Score`` (optional): the checker on a video that is not over yet (``video`` is
  a generated video cut at frame t, ``video[:t + 1]``): success when nothing drawn so far breaks a validity rule,
  so that it can still become a valid answer (a maze: the orange pixels so far are one chain growing from the
  start, off the walls, no fork). Reads what ``check`` may. ``steplens.tasks.partial_checks`` applies it at every
  frame (the time of first error, `steplens probe plan`); a family without it cannot judge single frames.
- ``continue_from(sample, frame, strength="solver") -> Sample`` (optional): the next link of a chain of generations. ``frame``
  ((H, W, 3) uint8, native size or an integer upscale) is an answer, perhaps partial; the part of it the verifier
  accepts becomes part of the scene and the rest is asked again: an ordinary sample of the same task, with first
  frame, prompt and a ground truth solved from the new scene, so that the scorer and the verifier still apply
  (the maze: the start moves to the tip of the drawn path's verified prefix; the walls stay). Reads only what
  ``verify`` may; raises ``ValueError`` when ``frame`` is not an answer to ``sample`` (wrong size). ``strength``
  (optional keyword): ``"checker"`` keeps only the part the checker's rules vouch for (no solving).

Writing a scorer plug-in
------------------------
A scorer is an object with ``name`` (str), ``threshold`` (float or None) and

    score(video, sample) -> Score

- ``video``: (T, H, W, 3) uint8 RGB, the generated video (or x0_hat decoded at one step). Frames come
  at the sample's native size or at an integer upscale of it (outputs written by ``steplens run``), and
  may be lossy (MP4); T need not equal the ground truth's frame count.
- ``sample``: the ``Sample`` being answered (first frame, prompt, ground truth or final frame, and
  ``sample.dir``, its folder, when it was read from one).
- returns a ``Score``: ``score`` in [0, 1]; ``success`` (bool); ``details`` (a JSON-able dict).
  A rule-based scorer decides success by its rules; a continuous one sets ``threshold`` and
  success = score >= threshold (users may override it: ``--threshold``).
- A frame that gives no answer (a flat grey frame, a copy of the first frame) must score at the
  scorer's documented floor, never partial credit for structure it did not draw.
- ``check_task(task_name)`` (optional): raise ``ValueError`` when this scorer cannot score a task, so that
  a run is refused before any work (the ``vbvr`` adapter: a task folder VBVR-EvalKit has no evaluator for).
  ``RuleBasedScorer`` (``steplens.tasks.rules``) does it from its ``tasks`` attribute (the families it reads; empty: any).
- ``score_file(video_path, sample)`` (optional): score a video file as written by ``steplens run``
  (``score`` prefers it over decoding the file itself).
- A scorer may read the answer (``final_frame``, ``ground_truth``, the metadata); a verifier (the task hook
  ``verify``, or a plug-in of ``steplens.verifiers``, written in ``steplens.tasks.verify``) may not.
- Never raise on a bad answer: a wrong answer is a low score. Raise ``ValueError`` only when the
  *sample* cannot be scored by this scorer (and say which sample and why).

Registering
-----------
Other packages add tasks and scorers through Python entry points, in their pyproject.toml::

    [project.entry-points."steplens.tasks"]
    my-task = "my_pkg.tasks:MY_TASK"          # a task object, or a list/dict of them

    [project.entry-points."steplens.scorers"]
    my-scorer = "my_pkg.scorers:MyScorer"     # a scorer class (or factory) called as MyScorer(threshold=...)

or at run time with ``steplens.tasks.register_task(task)`` / ``register_scorer(name, factory)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..regions import changed_region
from .sample import Sample


@dataclass
class Score:
    """One scored answer: score in [0, 1], success, and what the scorer saw."""

    score: float
    success: bool
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


SCORE_CONTRACT = ("a Score (steplens.tasks.Score) whose score is a finite number in [0, 1] and success a bool "
                  "(the contract: steplens/tasks/contract.py)")


def check_score(result, who: str, sample) -> Score:
    """A plug-in's answer checked against the contract: a Score, its score a finite number in [0, 1], success a bool.
    Anything else (NaN, inf, 1.5, a dict, a string) is refused naming `who` (e.g. "scorer 'my-judge'") and the sample,
    before it is ranked, averaged or written."""
    import math

    where = f"for sample {getattr(sample, 'name', sample)}"
    if not isinstance(result, Score):
        raise ValueError(f"{who} returned {result!r} {where}, not a Score; it must return {SCORE_CONTRACT}")
    v = result.score
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise ValueError(f"{who} returned score {v!r} {where}; it must return {SCORE_CONTRACT}")
    if not math.isfinite(float(v)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{who} returned score {float(v)!r} {where}: not in [0, 1]; it must return {SCORE_CONTRACT}")
    if not isinstance(result.success, (bool, np.bool_)):
        raise ValueError(f"{who} returned success {result.success!r} {where}; it must return {SCORE_CONTRACT}")
    return result


@dataclass(frozen=True)
class Candidate:
    """One answer x0_hat may draw (the task hook `candidates`): a label, the final frame with it drawn alone, and
    whether it is right."""

    label: str
    frame: np.ndarray
    right: bool = True


@runtime_checkable
class Scorer(Protocol):
    name: str
    threshold: float | None

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        """Score a (T, H, W, 3) uint8 RGB video answering `sample` (see the module docstring)."""
        ...


@runtime_checkable
class Task(Protocol):
    name: str
    default_frames: int
    scorer: str

    def answer_region(self, sample: Sample) -> np.ndarray:
        """(H, W) bool at the native size: the pixels the answer changes."""
        ...


def default_answer_region(sample: Sample) -> np.ndarray:
    """Where the ground truth's final frame differs from the first frame (native size)."""
    final = sample.final_frame
    if final is None:
        raise ValueError(f"sample {sample.key or sample.idx}: no ground truth (final_frame.png or ground_truth.mp4), "
                         f"so the region its answer changes is unknown")
    return changed_region(sample.first_frame, final)


def has_generator(task) -> bool:
    return callable(getattr(task, "sample", None)) and getattr(task, "default_size", None) is not None
