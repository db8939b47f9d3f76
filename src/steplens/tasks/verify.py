"""Verifiers: judge a generated video from what a user has at test time, never from the answer.

A scorer (``steplens.tasks.contract``) may read the ground truth; a verifier may not. It sees only what
``strip_sample`` leaves of a sample: the first frame, the prompt, the task's name, the frame count and the size
knob (``meta["n"]``); never ``final_frame``, ``ground_truth``, the generator seed, nor the answer fields of the
metadata. Search methods (best-of-n, early-beam, smc, chain) pick and prune with a verifier; the tests run every
verifier on stripped samples and check it gives the same score as on the full sample.

Import everything here from ``steplens.tasks`` (nothing outside the package imports its modules).

Writing a verifier plug-in
--------------------------
A verifier is an object with ``name`` (str) and

    verify(video, sample) -> Score

- ``video``: (T, H, W, 3) uint8 RGB, a generated video or x0_hat decoded at one step; frames at the sample's
  native size or an integer upscale of it, possibly lossy; T need not equal the sample's frame count.
- ``sample``: a ``Sample``; read only ``first_frame``, ``prompt``, ``task``, ``frames`` and ``meta["n"]``
  (``strip_sample`` shows what is there at test time; anything else may be absent).
- returns a ``Score`` (``steplens.tasks.contract``): ``score`` in [0, 1] (higher is better: search methods rank
  by it), ``success`` (bool: the verifier accepts the answer), ``details`` (JSON-able).
- A frame that gives no answer (a copy of the first frame, a flat frame) must not be accepted.
- Never raise on a bad answer (a low score); raise ``ValueError`` only when the sample cannot be verified by
  this verifier (say which sample and why). ``check_task(task_name)`` (optional): raise ``ValueError`` before any
  work for a task it cannot verify.
- ``verify_many(videos, sample) -> list[Score]`` (optional): score several answers to one sample together (a
  verifier that compares them, such as ``consensus``). Callers use the module function ``verify_many``, which
  falls back to ``verify`` one by one, and checks every output before anything ranks it: a return that is not a
  ``Score``, a score that is not a finite number in [0, 1], a non-bool ``success``, a wrong count or an exception
  stops the run with a ValueError naming the verifier and the sample.
- ``check_sample(sample)`` (optional): like ``check_task``, per sample (the ``task`` verifier refuses samples
  steplens did not draw); commands call it on every sample before the model loads (``check_samples``).
- ``reads`` (optional str): what it reads, shown by ``steplens verifiers`` (else its docstring's first paragraph).

Each verifier declares its ``strength`` (``steplens.tasks.checker``): ``checker`` (validity rules, nothing solved),
``solver`` (computes the answer from the first frame), ``consensus`` (agreement among particles), or a plug-in's own.

Built in: ``checker`` (each task's ``check`` hook), ``task`` alias ``solver`` (the sample's task's own ``verify`` hook, see ``tasks/contract.py``; ``tasks_with("verify")``
lists the families that have one) and ``consensus`` (any task: how much a particle's final frame agrees with the
other particles'; it needs them, through ``verify_many``).

Register one in a package's pyproject.toml::

    [project.entry-points."steplens.verifiers"]
    my-judge = "my_pkg.judge:MyJudge"      # a factory called with no arguments (a class), or a dict name -> factory

or at run time with ``steplens.tasks.register_verifier(name, factory)``; ``get_verifier(name)`` builds it.

A VLM judge for VBVR-Bench tasks (a plug-in, not shipped): its ``verify`` writes the video's frames (or a few of
them) and asks a vision-language model, given ``sample.first_frame`` and ``sample.prompt`` only, whether the
video does what the prompt asks; ``score`` is the model's probability of "yes" (or a 0-10 grade / 10) and
``success`` is ``score >= threshold``. Its ``check_task`` accepts any task (it reads pixels and words, not a
drawing), so it also verifies samples steplens did not draw (``sample.foreign``), which the ``task`` verifier
refuses. Load the model once, in the factory, and keep it on the object; ``verify_many`` may batch the calls.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..io.plugins import load_group
from ..regions import changed_region, downscale, snap
from .contract import Score
from .registry import find_task, tasks_with
from .sample import Sample

GROUP = "steplens.verifiers"
BUILTIN = ["steplens.tasks.verify:VERIFIERS", "steplens.tasks.checker:VERIFIERS"]
# metadata a user has at test time (the size knob, the frame count); everything else is dropped by strip_sample
TEST_TIME_META = ("task", "n", "frames", "upscale", "chain_prefix")  # chain_prefix: what a chain's own links drew

_VERIFIERS: dict[str, Callable[[], "Verifier"]] = {}
_LOADED = False
# what works where the `task` verifier cannot read a sample (VBVR-Bench's rendered frames, a task without a hook)
OTHERS = ("use --verifier consensus (any task: how much the particles' answers agree) or a plug-in verifier that "
          "reads any frame, such as a VLM judge (`steplens verifiers` lists those registered)")


@runtime_checkable
class Verifier(Protocol):
    name: str

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """Judge a (T, H, W, 3) uint8 RGB video answering `sample` from the first frame and prompt only."""
        ...


def strip_sample(sample: Sample) -> Sample:
    """What a user has at test time: the first frame, prompt, task, frame counts, size knob and names; no ground
    truth, final frame, folder (`dir=None`), generator seed, nor answer fields of the metadata."""
    meta = {k: v for k, v in (sample.meta or {}).items() if k in TEST_TIME_META}
    return replace(sample, meta=meta, ground_truth=None, final=None, dir=None, seed=None)


def register_verifier(name: str, factory: Callable[[], Verifier]) -> None:
    """Add a verifier factory (called with no arguments); a name already taken by another factory is refused."""
    _load()
    if name in _VERIFIERS and _VERIFIERS[name] is not factory:
        raise ValueError(f"verifier name {name!r} is registered twice")
    _VERIFIERS[name] = factory


def _add(name: str, obj) -> None:
    items = obj.items() if isinstance(obj, dict) else [(name, obj)]
    for k, v in items:
        if k in _VERIFIERS and _VERIFIERS[k] is not v:
            raise ValueError(f"verifier name {k!r} is registered twice")
        _VERIFIERS[k] = v


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for name, obj in load_group(GROUP, BUILTIN):
        _add(name, obj)


def verifier_names() -> list[str]:
    _load()
    return sorted(_VERIFIERS)


def frame_verifiers() -> list[str]:
    """The verifiers that judge single frames (`judges_frames`, read off their factories without building them): what
    backtracking needs (steplens.methods.backtrack)."""
    _load()
    return [n for n in sorted(_VERIFIERS) if getattr(_VERIFIERS[n], "judges_frames", False)]


def get_verifier(name: str) -> Verifier:
    """The verifier registered as `name`, built; an unknown name is refused with the list."""
    _load()
    if name not in _VERIFIERS:
        raise ValueError(f"unknown verifier {name!r}; available: {', '.join(verifier_names())} (`task`: each "
                         f"sample's task's own verify hook, for {', '.join(tasks_with('verify'))}; plug-ins register "
                         f"through the '{GROUP}' entry point group or steplens.tasks.register_verifier)")
    try:
        return _VERIFIERS[name]()
    except Exception as e:  # a plug-in's factory (a judge's weights, a server): named, never a raw traceback
        raise ValueError(f"verifier {name!r} could not be built: {type(e).__name__}: {short(str(e))}") from None


def check_verifier_task(verifier: Verifier, task: str) -> None:
    """The verifier's own `check_task(task)` where it has one; its ValueError passes as it is (it says why), any
    other exception is named with the verifier and the task."""
    fn = getattr(verifier, "check_task", None)
    if callable(fn):
        _named(verifier, f"checking task {task!r}", fn, task)


def _named(verifier, what: str, fn, *args):
    try:
        return fn(*args)
    except ValueError:
        raise
    except Exception as e:
        name = getattr(verifier, "name", type(verifier).__name__)
        raise ValueError(f"verifier {name!r} raised {type(e).__name__} {what}: {short(str(e))}") from None


def verifier_strength(name: str) -> str:
    """The declared strength of the verifier registered as `name` (checker, solver, consensus, a plug-in's own, or
    'undeclared'), read from its factory without building it."""
    from .checker import strength_of

    _load()
    return strength_of(_VERIFIERS.get(name))


def verifier_reads(name: str) -> str:
    """What the verifier registered as `name` reads, from its factory (never built: a plug-in's factory may load a
    model): its `reads`, else the first line of its docstring, else "not declared"."""
    _load()
    factory = _VERIFIERS[name]
    text = getattr(factory, "reads", None)
    if not isinstance(text, str) or not text.strip():
        doc = (getattr(factory, "__doc__", None) or "").strip()
        text = " ".join(doc.split("\n\n")[0].split())
    return text or "not declared (give the plug-in a `reads` attribute)"


def verifier_origin(name: str) -> str:
    """"built-in" for steplens's own verifiers, else "plug-in (module.factory)"."""
    _load()
    factory = _VERIFIERS[name]
    if any(factory is v for v in VERIFIERS.values()):
        return "built-in"
    where = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', type(factory).__name__)}"
    return f"plug-in ({where})"


def check_samples(verifier: Verifier, samples) -> None:
    """Refuse, before any work, samples `verifier` cannot verify: its `check_sample(sample)` for every sample where
    it has one, else its `check_task(task)` once per task; the error counts them and names the first."""
    one = getattr(verifier, "check_sample", None)
    per_task = getattr(verifier, "check_task", None)
    samples = list(samples)
    bad, tasks = [], {}
    for x in samples:
        try:
            if callable(one):
                _named(verifier, f"checking sample {x.name}", one, x)
            elif callable(per_task):
                if x.task not in tasks:
                    tasks[x.task] = None
                    check_verifier_task(verifier, x.task)
        except ValueError as e:
            bad.append(e)
            tasks[x.task] = e
        else:
            if not callable(one) and tasks.get(x.task) is not None:
                bad.append(tasks[x.task])
    if bad:
        name = getattr(verifier, "name", type(verifier).__name__)
        raise ValueError(f"verifier {name!r} cannot verify {len(bad)} of {len(samples)} samples: {bad[0]}")


def verify_many(verifier: Verifier, videos, sample: Sample) -> list[Score]:
    """Scores of several answers to one sample: the verifier's own `verify_many` if it has one, else `verify`
    one by one. Every output is checked before anything ranks it (`checked_score`): an exception, a return that is
    not a `Score`, a score that is not a finite number in [0, 1] or a wrong count is a ValueError naming the
    verifier and the sample."""
    videos = list(videos)
    name = getattr(verifier, "name", type(verifier).__name__)
    where = f"verifier {name!r} on sample {sample.name}"
    try:
        if callable(getattr(verifier, "verify_many", None)):
            got = verifier.verify_many(videos, sample)
            got = list(got) if isinstance(got, (list, tuple)) else got
        else:
            got = [verifier.verify(np.asarray(v), sample) for v in videos]
    except Exception as e:  # a plug-in's own failure: named, never a raw traceback
        if isinstance(e, ValueError) and str(e).startswith(where):
            raise
        raise ValueError(f"{where} raised {type(e).__name__}: {short(str(e))}") from None
    if not isinstance(got, list):
        raise ValueError(f"{where}: verify_many returned a {type(got).__name__}; expected a list of Score, one per "
                         f"video")
    if len(got) != len(videos):
        raise ValueError(f"verifier {name!r} returned {len(got)} score{'s' if len(got) != 1 else ''} for "
                         f"{len(videos)} videos of sample {sample.name}; expected one Score per video")
    return [checked_score(sc, where) for sc in got]


def checked_score(sc, where: str) -> Score:
    """`sc` if it is a `Score` with a finite number in [0, 1] and a bool; else a ValueError naming `where`."""
    import math
    import numbers

    if not isinstance(sc, Score):
        raise ValueError(f"{where} returned a {type(sc).__name__} ({short(repr(sc))}); expected a "
                         f"steplens.tasks.Score(score in [0, 1], success: bool)")
    v = sc.score
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ValueError(f"{where}: score {short(repr(v))} is a {type(v).__name__}; a Score's score is a number in "
                         f"[0, 1]")
    if not math.isfinite(float(v)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{where}: score {float(v)!r} is not a finite number in [0, 1]; a verifier's Score has a "
                         f"score in [0, 1] (higher is better), never NaN or infinite")
    if not isinstance(sc.success, (bool, np.bool_)):
        raise ValueError(f"{where}: success {short(repr(sc.success))} is a {type(sc.success).__name__}; a Score's "
                         f"success is a bool")
    return sc


def short(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters (a message names a value, it does not echo a page of it)."""
    return text if len(text) <= limit else text[: limit - 25] + f"... ({len(text)} characters)"


class TaskVerifier:
    """Each sample's task's own `verify` hook (see steplens.tasks.contract): rules that read the first frame and
    the prompt."""

    name = "task"
    strength = "solver"  # the tasks' verify hooks compute the answer from the first frame (steplens.tasks.checker)
    reads = ("the first frame and prompt, through the sample's task's own verify hook (rules that know steplens's "
             "drawings); not a sample steplens did not draw (VBVR-Bench's rendered frames)")

    def _hook(self, task_name: str):
        t = find_task(task_name)
        fn = getattr(t, "verify", None) if t is not None else None
        if not callable(fn):
            raise ValueError(f"task {task_name!r} has no verify hook; tasks with one: "
                             f"{', '.join(tasks_with('verify'))}; {OTHERS}")
        return fn

    def check_task(self, task_name: str) -> None:
        self._hook(task_name)

    def check_sample(self, sample: Sample) -> None:
        """Refuse, before any work, a sample this verifier cannot read: one not drawn by steplens, or of a task
        without a verify hook."""
        if getattr(sample, "foreign", None):
            raise ValueError(f"sample {sample.name} is not drawn by steplens ({sample.foreign}); the `task` verifier "
                             f"reads steplens's drawings only: {OTHERS}")
        self._hook(sample.task)

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        self.check_sample(sample)
        return self._hook(sample.task)(np.asarray(video), sample)


class ConsensusVerifier:
    """Any task: how much a particle's answer agrees with the other particles' answers to the same sample.

    Each final frame is brought to the first frame's size (an integer upscale undone) and, where the task has a
    palette, snapped to it (else pixels agree within an RGB distance of 120, as the scorers' tolerance). Over the
    pixels where any particle changed the first frame, a particle's score is its mean agreement with each other
    particle; one that changed nothing scores 0 (no answer). Success: score >= threshold (default 0.5). It reads
    the first frame and the task's palette only. It needs the others: call `verify_many(verifier, videos,
    sample)` with two or more videos; `verify` on one video is refused."""

    name = "consensus"
    strength = "consensus"
    reads = ("the final frames of the sample's other particles, its first frame and its task's palette: any task, "
             "any folder (VBVR-Bench's included); needs two or more particles")

    def __init__(self, threshold: float = 0.5):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"consensus threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        raise ValueError("the consensus verifier compares several answers to one sample: call "
                         "steplens.tasks.verify_many(verifier, videos, sample) with two or more videos")

    def _native(self, frame: np.ndarray, first: np.ndarray, sample: Sample) -> np.ndarray:
        h, w = first.shape[:2]
        fh, fw = frame.shape[:2]
        if fh % h or fw % w or fh // h != fw // w:
            raise ValueError(f"{sample.name}: a frame of {fw}x{fh} pixels is not the first frame's {w}x{h} or an "
                             f"integer upscale of it")
        return downscale(frame, fh // h)

    def verify_many(self, videos, sample: Sample) -> list[Score]:
        if len(videos) < 2:
            raise ValueError(f"the consensus verifier needs two or more answers to {sample.name}, got {len(videos)}")
        first = np.asarray(sample.first_frame)
        finals = np.stack([self._native(np.asarray(v)[-1], first, sample) for v in videos]).astype(np.float32)
        changed = np.stack([changed_region(first, f) for f in finals])  # (N, H, W)
        region = changed.any(0)
        t = None if sample.foreign else find_task(sample.task)
        pal = getattr(t, "palette", None)
        n = len(finals)
        agree = np.zeros((n, n))
        if region.any():
            if pal is not None:
                lab = snap(finals[:, region], pal)  # (N, P)
                same = lab[:, None] == lab[None]
            else:
                px = finals[:, region]
                same = np.abs(px[:, None] - px[None]).sum(-1) < 120
            agree = same.mean(-1)  # (N, N)
        out = []
        for i in range(n):
            score = float((agree[i].sum() - agree[i, i]) / (n - 1)) if changed[i].any() else 0.0
            out.append(Score(score=score, success=score >= self.threshold,
                             details={"others": n - 1, "region_pixels": int(region.sum()),
                                      "changed_pixels": int(changed[i].sum())}))
        return out


VERIFIERS = {"task": TaskVerifier, "solver": TaskVerifier, "consensus": ConsensusVerifier}
