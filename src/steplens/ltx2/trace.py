"""Trace and hook an LTX-2 image-to-video pipeline along its denoising steps, without changing what it computes.

    from steplens.ltx2 import attach, trace_ltx2
    with trace_ltx2(pipe, decode_steps=[0, -1]) as tr:
        video, audio = pipe(**kwargs, return_dict=False)
    tr.steps     # one WanStep per step: i, t, sigma, sigma_next, expert, x (x_s), v (guided), x0 (x0_hat)
    tr.decoded   # {step: x0_hat decoded by the pipeline's VAE}, only for decode_steps

    hooks = Hooks(LTX2PipelineModel(pipe)).record("blocks.1", steps=[0, 2], branch="uncond")
    with attach(pipe, hooks):
        pipe(**kwargs)

The tensors are the *video* latent as steplens sees it, (B, C, T, h, w), normalised (see steplens.ltx2.loop for
the conventions: frame 0 is the clean first-frame latent, with v = 0 and x0_hat = x_s there). The audio latents are
not traced. With `hooks=` the hooks are attached too and the trace records what the edited pipeline computed.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from ..wan.trace import WanRun, WanStep
from .decode import decode_latents
from .loop import LTX2Loop


class LTX2Trace:
    """Context manager recording every video scheduler step of the LTX-2 pipeline calls made inside it."""

    def __init__(self, pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
                 output_type: str = "pt", branches: bool = False, hooks=None):
        if isinstance(decode_steps, str):
            if decode_steps != "all":
                raise ValueError(f"decode_steps must be a list of step indices or 'all', got {decode_steps!r}")
        else:
            decode_steps = list(decode_steps)
            bad = [s for s in decode_steps if isinstance(s, bool) or not isinstance(s, int)]
            if bad:
                raise TypeError(f"decode_steps must be integers (negative ones count from the end), got {bad}")
        self.pipe, self.decode_steps, self.device, self.output_type = pipe, decode_steps, device, output_type
        self.runs: list[WanRun] = []
        self._loop = LTX2Loop(pipe, hooks, on_step=self._record, keep=self._keep, branches=branches)

    @property
    def audio_scheduler(self):
        """The scheduler the pipeline made for the audio latents (a plain copy of pipe.scheduler), last call."""
        return self._loop.audio_scheduler

    @property
    def steps(self) -> list[WanStep]:
        """The steps of the last pipeline call."""
        return self.runs[-1].steps if self.runs else []

    @property
    def decoded(self) -> dict[int, Any]:
        """{step index: decoded x0_hat} of the last pipeline call, for decode_steps only."""
        return self.runs[-1].decoded if self.runs else {}

    def decode(self, step: int, output_type: str | None = None, run: int = -1):
        """Decode x0_hat of one step now (after the block), with the pipeline's VAE."""
        return decode_latents(self.pipe, self.runs[run].steps[step].x0, output_type or self.output_type)

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return t.clone() if self.device is None else t.to(self.device, copy=True)

    def _record(self, step: WanStep) -> None:
        if step.i == 0 or not self.runs:
            self.runs.append(WanRun())
        self.runs[-1].steps.append(step)

    def __enter__(self) -> "LTX2Trace":
        self._loop.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._loop.__exit__(exc_type, exc, tb)
        if exc_type is None:
            for r, run in enumerate(self.runs):
                n = len(run.steps)
                wanted = range(n) if self.decode_steps == "all" else self.decode_steps
                for s in wanted:
                    if not -n <= s < n:
                        raise IndexError(f"decode step {s} is out of range: the pipeline call ran {n} steps")
                    if s % n not in run.decoded:
                        run.decoded[s % n] = self.decode(s % n, run=r)
        return False


def trace_ltx2(pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
               output_type: str = "pt", branches: bool = False, hooks=None) -> LTX2Trace:
    """Trace the LTX-2 pipeline calls made inside the `with` block.

    decode_steps: steps whose x0_hat is decoded with the pipeline's VAE at the end of the block (negative indices
        count from the end, "all" decodes every step).
    device: where recorded tensors are kept ("cpu"; None keeps them where they are).
    output_type: of the decoded videos, as the pipeline's ("pt", "np", "pil", or "raw": (B, 3, T, H, W) in [-1, 1]).
    branches: also keep the raw video output of each transformer forward (with CFG one forward holds both branches,
        [uncond; cond]) in WanStep.branches.
    hooks: a steplens.hooks.Hooks on LTX2PipelineModel(pipe), attached for the block.
    """
    return LTX2Trace(pipe, decode_steps, device=device, output_type=output_type, branches=branches, hooks=hooks)


def attach(pipe, hooks) -> LTX2Loop:
    """Attach `hooks` (a steplens.hooks.Hooks made on LTX2PipelineModel(pipe)) to the pipeline for a `with` block:
    block hooks (unless `with hooks:` already attached them), the step context around each transformer forward, and
    the `latent` / `v` / `x0` points. Refuses an unsupported pipeline or scheduler before anything is changed."""
    return LTX2Loop(pipe, hooks)
