"""The denoiser's forward passes, counted, recorded and replayed: compute spent (NFE) and prefixes shared.

    counter = NFECounter()
    tape = ForwardTape()
    with forwards(model, record=tape, counter=counter):          # the clean run, its outputs kept
        clean = model.generate(batch, seeds)
    with forwards(model, replay=tape, upto=k, counter=counter):  # a run equal to it until step k
        with hooks:                                              # e.g. noise at step k
            out = model.generate(batch, seeds, hooks=hooks)
    counter.nfe, counter.replayed                                 # computed, and taken from the tape instead

`forwards(model, ...)` wraps the `forward` of each denoiser the model contract names (`model.modules()`: the
embedded model's network, a pipeline's `transformer` / `transformer_2`; where that is a naming view, the module it
names as `runs`). A call runs inside the step context the
sampler sets (steplens.context: ours, or a diffusers pipeline under steplens' interception loop, which a pipeline
model enters while a block is open: `active()`), so the wrapper knows the step; a call outside any step context is
run and not counted; calls are keyed by (step, n-th call at that step).

*Replay.* At steps before `upto`, a call returns the recorded output of the same key instead of running the
network. Everything else of the run (the scheduler's arithmetic, its history, hooks at later steps) runs as
before on identical inputs, so a run that follows the recorded one until step `upto` is bit-identical to
recomputing it, whatever the scheduler (FlowMatch Euler, UniPC with its history alike). Hooks on blocks or
points do not fire at replayed steps: only replay steps where the run's hooks do nothing.

*Stop.* `stop_before=k` ends the run at the first denoiser call of step k (after step k - 1's callback and
x0_hat): `generate` raises `StoppedAt`, caught by `run_until`. A search runs particles to step k, reads their
x0_hat, and continues the chosen ones later by replaying their tape (`ForwardTape.select`).

*NFE.* One model forward evaluation per sample and CFG branch: a call adds its batch's rows (a CFG step in one
batch [cond; uncond] adds 2 per sample; Wan's two calls add 1 each; a two-expert step counts the expert that ran).
A plain run costs steps x branches per sample.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from .context import current

_OPEN: ContextVar[int] = ContextVar("steplens_forwards_open", default=0)
_REUSE: ContextVar[bool] = ContextVar("steplens_prefix_reuse", default=True)


def reuse_enabled() -> bool:
    """Whether experiments replay a shared prefix (default) or recompute every run whole (`no_reuse()`)."""
    return _REUSE.get()


@contextmanager
def no_reuse(off: bool = True) -> Iterator[None]:
    """Inside the block, experiments recompute every condition whole instead of replaying the clean run's prefix
    (the CLI's --no-reuse): the same results, the cost without reuse. `no_reuse(False)` changes nothing."""
    token = _REUSE.set(False) if off else None
    try:
        yield
    finally:
        if token is not None:
            _REUSE.reset(token)


def active() -> bool:
    """Whether a `forwards` block is open: a backend whose plain call sets no step context (a diffusers pipeline
    without hooks) must then run under its step-aware loop, so that calls know their step."""
    return _OPEN.get() > 0


class StoppedAt(Exception):
    """A run ended on purpose before step `step` (`forwards(..., stop_before=step)`)."""

    def __init__(self, step: int):
        super().__init__(f"sampling stopped before step {step}")
        self.step = step


@dataclass
class NFECounter:
    """Model forward evaluations: `nfe` computed, `replayed` taken from a tape (what reuse saved)."""
    nfe: int = 0
    replayed: int = 0

    @property
    def without_reuse(self) -> int:
        return self.nfe + self.replayed

    def as_dict(self) -> dict:
        return {"nfe": self.nfe, "nfe_without_reuse": self.without_reuse}

    def add(self, other: "NFECounter") -> None:
        self.nfe += other.nfe
        self.replayed += other.replayed


def _map(out, fn: Callable[[torch.Tensor], torch.Tensor]):
    if isinstance(out, torch.Tensor):
        return fn(out)
    if isinstance(out, (tuple, list)):
        return type(out)(_map(o, fn) for o in out)
    if isinstance(out, dict):
        return type(out)((k, _map(v, fn)) for k, v in out.items())
    if out is None:
        return None
    raise TypeError(f"a denoiser returned {type(out).__name__}; steplens' tape keeps tensors, tuples, lists and "
                    f"dicts of them")


def _first_tensor(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return _first_tensor(out[0])
    if isinstance(out, dict):
        return _first_tensor(next(iter(out.values())))
    raise TypeError(f"no tensor in a denoiser output of type {type(out).__name__}")


def rows_of(args: tuple, kwargs: dict) -> int:
    """The batch rows of a denoiser call: its `hidden_states` (diffusers) or first tensor argument."""
    x = kwargs.get("hidden_states")
    if x is None:
        x = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if x is None:
        x = next((a for a in kwargs.values() if isinstance(a, torch.Tensor)), None)
    if x is None:
        raise TypeError("a denoiser call without a tensor argument: cannot count its rows")
    return int(x.shape[0])


@dataclass
class ForwardTape:
    """The outputs of one sampling run's denoiser calls, by (step, n-th call at that step); `rows` per call."""
    outputs: dict[tuple[int, int], Any] = field(default_factory=dict)
    batch: int | None = None  # the samples of the recorded run (set by whoever records, for `select`)

    @property
    def steps(self) -> list[int]:
        return sorted({k for k, _ in self.outputs})

    def select(self, index: Sequence[int], batch: int | None = None) -> "ForwardTape":
        """The tape of some samples of the recorded batch (the particles a search keeps, in `index` order). A call
        of r x batch rows holds r equal blocks of `batch` rows (CFG branches stacked), each indexed alike."""
        n = batch or self.batch
        if n is None:
            raise ValueError("ForwardTape.select needs the recorded batch size (tape.batch or batch=)")
        index = [int(i) for i in index]
        if any(not 0 <= i < n for i in index):
            raise ValueError(f"select: indices {index} outside the recorded batch of {n}")

        def take(t: torch.Tensor) -> torch.Tensor:
            if t.shape[0] % n:
                raise ValueError(f"a recorded output of {t.shape[0]} rows is not a whole number of batches of {n}")
            blocks = t.shape[0] // n
            rows = [b * n + i for b in range(blocks) for i in index]
            return t[rows]
        return ForwardTape({k: _map(v, take) for k, v in self.outputs.items()}, len(index))

    @staticmethod
    def concat(tapes: Sequence["ForwardTape"]) -> "ForwardTape":
        """One tape for the samples of several tapes side by side (batch order), over the steps all of them hold."""
        if not tapes:
            raise ValueError("concat of no tapes")
        keys = set(tapes[0].outputs).intersection(*(t.outputs for t in tapes[1:]))
        sizes = [t.batch for t in tapes]
        if any(b is None for b in sizes):
            raise ValueError("ForwardTape.concat needs each tape's batch size")

        def join(parts: list) -> Any:
            first = parts[0]
            if isinstance(first, torch.Tensor):
                blocks = [p.shape[0] // b for p, b in zip(parts, sizes)]
                if len(set(blocks)) != 1:
                    raise ValueError("tapes with different CFG layouts cannot be joined")
                r = blocks[0]
                return torch.cat([p[j * b:(j + 1) * b] for j in range(r) for p, b in zip(parts, sizes)])
            if isinstance(first, (tuple, list)):
                return type(first)(join([p[i] for p in parts]) for i in range(len(first)))
            if isinstance(first, dict):
                return type(first)((k, join([p[k] for p in parts])) for k in first)
            return first
        return ForwardTape({k: join([t.outputs[k] for t in tapes]) for k in sorted(keys)}, sum(sizes))


@contextmanager
def forwards(model, *, record: ForwardTape | None = None, replay: ForwardTape | None = None, upto: int = 0,
             stop_before: int | None = None, counter: NFECounter | None = None) -> Iterator[NFECounter]:
    """Count, record and replay the denoiser calls of the sampling runs inside the block (see the module doc).
    One sampling run per block when recording or replaying. Yields the counter (a new one if none is given)."""
    counter = counter if counter is not None else NFECounter()
    if upto and replay is None:
        raise ValueError(f"upto={upto} without a tape to replay")
    if stop_before is not None and stop_before < 1:
        raise ValueError(f"stop_before must be a step >= 1, got {stop_before}")
    seen: dict[int, int] = {}  # step -> calls so far
    patched: list[tuple[torch.nn.Module, bool, Any]] = []

    def wrap(original):
        def forward(*args, **kwargs):
            ctx = current()
            if ctx is None:  # a call outside sampling (a warm-up, a shape probe): not a denoising step
                return original(*args, **kwargs)
            step = ctx.step
            if stop_before is not None and step >= stop_before:
                raise StoppedAt(stop_before)
            n = seen.get(step, 0)
            seen[step] = n + 1
            rows = rows_of(args, kwargs)
            if replay is not None and step < upto:
                if (step, n) not in replay.outputs:
                    raise RuntimeError(f"the tape holds no output for call {n} of step {step} (it holds steps "
                                       f"{replay.steps}); replay only a run that repeats the recorded one")
                counter.replayed += rows
                return _map(replay.outputs[(step, n)], torch.Tensor.clone)
            out = original(*args, **kwargs)
            counter.nfe += rows
            if record is not None:
                record.outputs[(step, n)] = _map(out, lambda t: t.detach().clone())
            return out
        return forward

    try:
        # a naming view of a denoiser (a backend's BlockView, never run) gives the module that runs as `runs`
        for module in dict.fromkeys(getattr(m, "runs", m) for m in model.modules().values()):
            had = "forward" in module.__dict__
            patched.append((module, had, module.__dict__.get("forward")))
            module.forward = wrap(module.forward)
        token = _OPEN.set(_OPEN.get() + 1)
        try:
            yield counter
        finally:
            _OPEN.reset(token)
    finally:
        for module, had, previous in reversed(patched):
            if had:
                module.forward = previous
            else:
                module.__dict__.pop("forward", None)


def run_until(fn: Callable[[], Any]) -> Any | None:
    """fn() (a `generate` inside `forwards(..., stop_before=k)`), or None where it stopped at k on purpose."""
    try:
        return fn()
    except StoppedAt:
        return None
