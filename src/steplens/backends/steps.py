"""Runs and steps of a diffusers pipeline, and the trace that records them (every backend's).

    from steplens.backends import trace_pipeline
    with trace_pipeline(pipe, decode_steps=[0, -1]) as tr:
        video = pipe(**kwargs).frames
    tr.steps    # one PipelineStep per step: i, t, sigma, sigma_next, expert, x (x_s), v (guided), x0 (x0_hat)
    tr.decoded  # {step: x0_hat decoded by the pipeline's VAE}, only for decode_steps

The trace is the backend's interception loop (steplens.backends.loop.PipelineLoop, found by the pipeline's class in
steplens.backends.registry) with a recorder as its `on_step`: it changes nothing the pipeline computes. What x_s, v
and x0_hat are for each family: its adapter's docstring (Wan: x0_hat = x_s - sigma v in float32, or UniPC's own x0
prediction; TI2V: with the clean image latent in frame 0; LTX-2: the unpacked video latent, clean frame 0).
Decoding is deferred to the end of the block (the VAE would otherwise compete with the transformer for memory) and
done exactly as the pipeline decodes its final latents (the backend's `decode_latents`).

With `hooks=` (a steplens.hooks.Hooks made on the pipeline's model) the hooks are attached by the same loop, so the
trace records what the edited pipeline really computed: the edited x_s, the velocity re-derived from an edited x0_hat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from ..sampling import StepInfo


@dataclass
class PipelineStep(StepInfo):
    """StepInfo (i, sigma, sigma_next, x, v, x0, expert: the pipeline component that ran, "transformer" /
    "transformer_2", "+"-joined if several) plus what a diffusers pipeline adds."""

    t: float = float("nan")  # the scheduler's timestep (FlowMatchEuler: sigma * 1000)
    calls: int = 0  # transformer forward passes at this step (Wan with CFG: 2, cond then uncond; LTX-2: 1)
    x0_source: str = ""  # "scheduler" (its own x0, e.g. UniPC) or "x-sigma*v"
    branches: tuple = ()  # the raw transformer outputs of this step in call order, if branches=True


class StepDict(dict):
    """{step index: value} that also takes negative indices (-1: the last step of the run) and, for a step it
    lacks, raises a KeyError listing the steps it has."""

    def __init__(self, run: "PipelineRun"):
        super().__init__()
        self._run = run

    def _key(self, step):
        if isinstance(step, int) and step < 0:
            step += len(self._run.steps)
        return step

    def __getitem__(self, step):
        k = self._key(step)
        if not dict.__contains__(self, k):
            raise KeyError(f"step {step} was not decoded; decoded steps: {sorted(self)} (pass it in decode_steps, "
                           f"or 'all')")
        return dict.__getitem__(self, k)

    def __contains__(self, step):
        return dict.__contains__(self, self._key(step))


@dataclass
class PipelineRun:
    """One pipeline call: its steps and the decoded x0_hat of the chosen steps."""

    steps: list[PipelineStep] = field(default_factory=list)
    decoded: dict[int, Any] = field(default=None)

    def __post_init__(self):
        if self.decoded is None:
            self.decoded = StepDict(self)


def transformer_components(pipe) -> dict[str, torch.nn.Module]:
    """The pipeline's denoisers: its nn.Module components whose name starts with "transformer"
    (Wan: `transformer`, and `transformer_2` for the two-expert Wan2.2 A14B)."""
    out, seen = {}, set()
    for name, comp in pipe.components.items():
        if name.startswith("transformer") and isinstance(comp, torch.nn.Module) and id(comp) not in seen:
            seen.add(id(comp))
            out[name] = comp
    return dict(sorted(out.items()))


class PipelineTrace:
    """Context manager recording every scheduler step of the pipeline calls made inside it: one PipelineRun per call,
    its steps, the decoded x0_hat of `decode_steps` (see trace_pipeline). Attributes the backend's loop adds are read
    through the trace (LTX-2: `audio_scheduler`)."""

    def __init__(self, pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
                 output_type: str = "pt", branches: bool = False, hooks=None, decode_dir=None, tiled: bool = False,
                 fps: int = 16):
        if isinstance(decode_steps, str):
            if decode_steps != "all":
                raise ValueError(f"decode_steps must be a list of step indices or 'all', got {decode_steps!r}")
        else:
            decode_steps = list(decode_steps)
            bad = [s for s in decode_steps if isinstance(s, bool) or not isinstance(s, int)]
            if bad:
                raise TypeError(f"decode_steps must be integers (negative ones count from the end), got {bad}")
        if getattr(pipe, "scheduler", None) is None:
            raise ValueError("the pipeline has no scheduler to trace")
        from .registry import backend_for

        backend = backend_for(pipe)
        self.pipe, self.decode_steps, self.device, self.output_type = pipe, decode_steps, device, output_type
        self.decode_dir, self.tiled, self.fps = decode_dir, tiled, fps
        self.decode_fn = backend.decode_latents
        self.runs: list[PipelineRun] = []
        self.loop = backend.loop_class(pipe, hooks, on_step=self._record, keep=self._keep, branches=branches,
                                       on_run=lambda: self.runs.append(PipelineRun()))

    def __getattr__(self, name):  # what the backend's loop adds (e.g. LTX-2's audio_scheduler)
        loop = self.__dict__.get("loop")
        if loop is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(loop, name)

    @property
    def steps(self) -> list[PipelineStep]:
        """The steps of the last pipeline call."""
        return self.runs[-1].steps if self.runs else []

    @property
    def decoded(self) -> dict[int, Any]:
        """{step index: decoded x0_hat} of the last pipeline call, for decode_steps only."""
        return self.runs[-1].decoded if self.runs else {}

    def decode(self, step: int, output_type: str | None = None, run: int = -1):
        """Decode x0_hat of one step now (after the block), with the pipeline's VAE."""
        return self.decode_fn(self.pipe, self.runs[run].steps[step].x0, output_type or self.output_type)

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return t.clone() if self.device is None else t.to(self.device, copy=True)

    def _record(self, step: PipelineStep) -> None:
        if not self.runs:
            self.runs.append(PipelineRun())
        self.runs[-1].steps.append(step)

    def _undecoded(self, run: PipelineRun) -> list[int]:
        """The decode_steps of a run (negative ones resolved) not decoded yet; refuses one out of range."""
        n = len(run.steps)
        out = []
        for s in range(n) if self.decode_steps == "all" else self.decode_steps:
            if not -n <= s < n:
                raise IndexError(f"decode step {s} is out of range: the pipeline call ran {n} steps")
            if s % n not in run.decoded and s % n not in out:
                out.append(s % n)
        return out

    def __enter__(self) -> "PipelineTrace":
        self.loop.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.loop.__exit__(exc_type, exc, tb)
        if exc_type is None:
            self._decode_runs()
        return False

    def _decode_runs(self):
        vae = self.pipe.vae
        was_tiled = getattr(vae, "use_tiling", False)
        if self.tiled and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        try:
            for r, run in enumerate(self.runs):
                for s in self._undecoded(run):
                    run.decoded[s] = self._stream(r, s) if self.decode_dir else self.decode(s, run=r)
        finally:
            if self.tiled and not was_tiled and hasattr(vae, "disable_tiling"):
                vae.disable_tiling()

    def _stream(self, r: int, s: int) -> list:
        """Decode one step and write it as MP4 files (one per batch element); keeps only the paths."""
        from pathlib import Path

        import numpy as np

        from ..io.files import write_mp4

        video = self.decode(s, output_type="np", run=r)  # (B, T, H, W, 3) in [0, 1]
        out = []
        for b, v in enumerate(np.asarray(video)):
            path = Path(self.decode_dir) / f"run{r}_step{s:03d}_{b}.mp4"
            write_mp4(path, (np.clip(v, 0, 1) * 255).round().astype(np.uint8), fps=self.fps)
            out.append(path)
        return out


def trace_pipeline(pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
                   output_type: str = "pt", branches: bool = False, hooks=None, decode_dir=None,
                   tiled: bool = False, fps: int = 16) -> PipelineTrace:
    """Trace the pipeline calls made inside the `with` block.

    decode_steps: the steps whose x0_hat is decoded with the pipeline's VAE at the end of the block
        (negative indices count from the end, "all" decodes every step: expensive at scale).
    device: where recorded tensors are kept ("cpu" by default; None keeps them where they are).
    output_type: of the decoded videos, as the pipeline's ("pt", "np", "pil", or "raw" for the VAE's
        (B, C, T, H, W) in [-1, 1]).
    branches: also keep each transformer output in `PipelineStep.branches` (Wan with CFG: cond, then uncond; LTX-2:
        one forward holding [uncond; cond]).
    hooks: a steplens.hooks.Hooks on the pipeline's model (e.g. WanPipelineModel(pipe)), attached for the block by
        the same loop, so that the trace records the edited run.
    decode_dir: stream each decoded step to `decode_dir/run<r>_step<s>_<b>.mp4` (one step in memory at a
        time); `decoded[s]` then holds the paths.
    tiled: decode with the VAE's tiling (e.g. AutoencoderKLWan.enable_tiling) to bound memory at large sizes.
    """
    return PipelineTrace(pipe, decode_steps, device=device, output_type=output_type, branches=branches, hooks=hooks,
                         decode_dir=decode_dir, tiled=tiled, fps=fps)


def attach(pipe, hooks):
    """Attach `hooks` (a steplens.hooks.Hooks made on the pipeline's model) for a `with` block: block hooks (unless
    `with hooks:` already attached them), the step context around each transformer forward, and the `latent` / `v` /
    `x0` points in the denoising loop. Refuses an unsupported pipeline class or scheduler before anything changes."""
    from .registry import backend_for

    return backend_for(pipe).loop_class(pipe, hooks)
