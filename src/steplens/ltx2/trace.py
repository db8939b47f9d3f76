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

from typing import Iterable

import torch

from ..wan.trace import TracedRuns, WanRun, WanStep
from .decode import decode_latents
from .loop import LTX2Loop


class LTX2Trace(TracedRuns):
    """Context manager recording every video scheduler step of the LTX-2 pipeline calls made inside it."""

    decode_fn = staticmethod(decode_latents)

    def __init__(self, pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
                 output_type: str = "pt", branches: bool = False, hooks=None):
        super().__init__(pipe, decode_steps, device, output_type)
        self._loop = LTX2Loop(pipe, hooks, on_step=self._record, keep=self._keep, branches=branches)

    @property
    def audio_scheduler(self):
        """The scheduler the pipeline made for the audio latents (a plain copy of pipe.scheduler), last call."""
        return self._loop.audio_scheduler

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
                for s in self._undecoded(run):
                    run.decoded[s] = self.decode(s, run=r)
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
