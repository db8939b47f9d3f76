"""Where in the sampling a forward pass runs: step, sigma, CFG branch layout, expert.

Samplers (ours, or a diffusers pipeline wrapped by steplens) set it around each model call; hooks
read it, so they know the step without knowing the sampler or the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class StepContext:
    step: int
    sigma: float
    branches: tuple[str, ...] = ("cond",)  # how the batch splits along dim 0: equal chunks, in order
    expert: str | None = None  # which expert module runs (two-expert models), None for one


_CURRENT: ContextVar[StepContext | None] = ContextVar("steplens_step_context", default=None)


def current() -> StepContext | None:
    return _CURRENT.get()


@contextmanager
def step_context(ctx: StepContext | None = None, **changes):
    """Set the context (or change fields of the current one) for the duration of the block."""
    base = ctx if ctx is not None else current()
    if base is None:
        raise RuntimeError("step_context(**changes) needs an enclosing context or a StepContext")
    token = _CURRENT.set(replace(base, **changes) if changes else base)
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
