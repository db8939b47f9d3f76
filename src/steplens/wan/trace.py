"""Trace a diffusers (Wan) pipeline along its denoising steps, without changing what it computes.

    from steplens.wan import trace_pipeline
    with trace_pipeline(pipe, decode_steps=[0, -1]) as tr:
        video = pipe(**kwargs).frames
    tr.steps    # one WanStep per step: i, t, sigma, sigma_next, expert, x (x_s), v (guided), x0 (x0_hat)
    tr.decoded  # {step: x0_hat decoded by the pipeline's VAE}, only for decode_steps

How: for the duration of the `with` block the scheduler's `step` and each transformer's `forward` are
wrapped (instance attributes shadowing the class methods; whatever was there before, e.g. accelerate's
offload hooks, is wrapped and put back on exit, also after an exception). The pipeline's loop calls
`scheduler.step(noise_pred, t, latents)` with the guided velocity `noise_pred`, so the wrapper sees
x_s, v and t; the transformer wrappers record which expert(s) ran since the previous step.

x0_hat: schedulers that keep x0 predictions (UniPC / DPM-Solver multistep with predict_x0: their
`convert_model_output`, i.e. x_s - sigma v for flow_prediction, plus thresholding if configured) are read
from `scheduler.model_outputs[-1]`; for the others (FlowMatchEuler) x0_hat = x_s - sigma v, computed in
float32 as FlowMatchEuler does its update, so that at the last step (sigma_next = 0) x0_hat is the final
latent. Wan2.2-TI2V-5B (expand_timesteps): x0_hat has its first latent frame replaced by the clean image
latent (the condition captured from prepare_latents), as the pipeline does to its final latents
(steplens.wan.ti2v). Decoding is deferred to the end of the block (the VAE would otherwise compete with the
transformer for memory) and done exactly as the pipeline decodes its final latents.

With `hooks=` (a steplens.hooks.Hooks made on WanPipelineModel(pipe)) the hooks are attached inside the
trace (see steplens.wan.hooks.attach), so the trace records what the edited pipeline really computed:
the edited x_s, the velocity re-derived from an edited x0_hat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from ..sampling import StepInfo
from .ti2v import FirstFrame, is_ti2v

_MISSING = object()


@dataclass
class WanStep(StepInfo):
    """StepInfo (i, sigma, sigma_next, x, v, x0) plus what a diffusers pipeline adds."""

    t: float = float("nan")  # the scheduler's timestep (Wan: sigma * 1000 for FlowMatchEuler)
    expert: str | None = None  # the pipeline component that ran ("transformer" / "transformer_2"); "+"-joined if several
    calls: int = 0  # transformer forward passes at this step (2 with CFG: cond, then uncond)
    x0_source: str = ""  # "scheduler" (its own x0, e.g. UniPC) or "x-sigma*v"
    branches: tuple = ()  # the raw transformer outputs of this step in call order, if branches=True


class StepDict(dict):
    """{step index: value} that also takes negative indices (-1: the last step of the run) and, for a step it
    lacks, raises a KeyError listing the steps it has."""

    def __init__(self, run: "WanRun"):
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
class WanRun:
    """One pipeline call: its steps and the decoded x0_hat of the chosen steps."""

    steps: list[WanStep] = field(default_factory=list)
    decoded: dict[int, Any] = field(default=None)

    def __post_init__(self):
        if self.decoded is None:
            self.decoded = StepDict(self)


def _first_output(out):
    """The sample of a transformer's output (tuple with return_dict=False, or an output dataclass)."""
    if isinstance(out, (tuple, list)):
        return out[0]
    return getattr(out, "sample", out)


def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt"):
    """Decode normalised latents (B, z, T, h, w) exactly as WanImageToVideoPipeline / WanPipeline decode
    their final latents: undo latents_mean/std, vae.decode, video_processor.postprocess_video."""
    from diffusers.utils.torch_utils import get_module_execution_device

    vae = pipe.vae
    with torch.no_grad():
        latents = latents.to(device=get_module_execution_device(vae), dtype=vae.dtype)
        z = vae.config.z_dim
        latents_mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
        latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
        latents = latents / latents_std + latents_mean
        video = vae.decode(latents, return_dict=False)[0]
        if output_type == "raw":  # (B, C, T, H, W) in [-1, 1], before post-processing
            return video
        return pipe.video_processor.postprocess_video(video, output_type=output_type)


class InstancePatches:
    """Shadow methods of objects with wrappers (instance attributes), and put back exactly what was there.

    `patch(obj, attr, make_wrapper)` sets obj.attr = make_wrapper(current obj.attr); `restore()` undoes the
    patches in reverse order: an instance attribute that was there before (e.g. accelerate's offload hook on
    `forward`, or another steplens wrapper) is put back, otherwise the attribute is removed so that the class
    method shows through again."""

    def __init__(self):
        self._saved: list[tuple[Any, str, Any]] = []  # (object, attribute, its previous instance attribute)

    def patch(self, obj, attr: str, make_wrapper) -> None:
        previous = obj.__dict__.get(attr, _MISSING)
        original = getattr(obj, attr)
        self._saved.append((obj, attr, previous))
        setattr(obj, attr, make_wrapper(original))

    def restore(self) -> None:
        while self._saved:
            obj, attr, previous = self._saved.pop()
            if previous is _MISSING:
                obj.__dict__.pop(attr, None)
            else:
                obj.__dict__[attr] = previous


def transformer_components(pipe) -> dict[str, torch.nn.Module]:
    """The pipeline's denoisers: its nn.Module components whose name starts with "transformer"
    (Wan: `transformer`, and `transformer_2` for the two-expert Wan2.2 A14B)."""
    out, seen = {}, set()
    for name, comp in pipe.components.items():
        if name.startswith("transformer") and isinstance(comp, torch.nn.Module) and id(comp) not in seen:
            seen.add(id(comp))
            out[name] = comp
    return dict(sorted(out.items()))


# pipeline class name -> a check raising a TypeError/ValueError naming what is not supported (backends register here)
TRACEABLE: dict = {}


def register_traceable(class_name: str, check) -> None:
    """Let trace_pipeline / attach take pipelines of `class_name`; `check(pipe)` refuses unsupported variants."""
    TRACEABLE[class_name] = check


def check_traceable(pipe) -> None:
    """Refuse, before anything is wrapped, a pipeline class or scheduler whose steps steplens cannot read as
    flow matching (x0_hat = x_s - sigma v): e.g. WanPipeline (text-to-video), DPM-Solver, epsilon prediction."""
    from .hooks import check_scheduler
    from .model import check_pipeline

    TRACEABLE.setdefault("WanImageToVideoPipeline", check_pipeline)
    check = TRACEABLE.get(type(pipe).__name__)
    if check is None:
        raise TypeError(f"steplens does not trace the pipeline class {type(pipe).__name__}; supported: "
                        f"{', '.join(sorted(TRACEABLE))}")
    check(pipe)
    check_scheduler(pipe.scheduler)


class TracedRuns:
    """What every backend's trace holds and reads: one WanRun per pipeline call, its steps, the decoded x0_hat of
    `decode_steps`. Subclasses record the steps; `decode_fn(pipe, latents, output_type)` is the backend's VAE
    decoding as its pipeline does it."""

    decode_fn = staticmethod(decode_latents)

    def __init__(self, pipe, decode_steps: Iterable[int] | str = (), device: str | torch.device | None = "cpu",
                 output_type: str = "pt"):
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
        return type(self).decode_fn(self.pipe, self.runs[run].steps[step].x0, output_type or self.output_type)

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return t.clone() if self.device is None else t.to(self.device, copy=True)

    def _undecoded(self, run: WanRun) -> list[int]:
        """The decode_steps of a run (negative ones resolved) not decoded yet; refuses one out of range."""
        n = len(run.steps)
        out = []
        for s in range(n) if self.decode_steps == "all" else self.decode_steps:
            if not -n <= s < n:
                raise IndexError(f"decode step {s} is out of range: the pipeline call ran {n} steps")
            if s % n not in run.decoded and s % n not in out:
                out.append(s % n)
        return out


class PipelineTrace(TracedRuns):
    """Context manager recording every scheduler step of the pipeline calls made inside it."""

    def __init__(self, pipe, decode_steps: Iterable[int] | str = (), *, device: str | torch.device | None = "cpu",
                 output_type: str = "pt", branches: bool = False, hooks=None, decode_dir=None, tiled: bool = False,
                 fps: int = 16):
        super().__init__(pipe, decode_steps, device, output_type)
        if getattr(pipe, "scheduler", None) is None:
            raise ValueError("the pipeline has no scheduler to trace")
        check_traceable(pipe)  # with or without hooks: x0_hat must mean x_s - sigma v
        self.branches = branches
        self.hooks = hooks
        self.decode_dir = decode_dir
        self.tiled = tiled
        self.fps = fps
        self._patches = InstancePatches()
        self._attached = None  # the steplens.wan.hooks.attach context of `hooks`, while active
        self._pending: list[tuple[str, Any]] = []  # (component name, output) since the last scheduler step
        self._active = False
        self._first = FirstFrame() if is_ti2v(pipe) else None  # TI2V: the condition that is x0_hat's frame 0

    # -- patching -----------------------------------------------------------------------------------------
    def _patch(self, obj, attr: str, make_wrapper):
        self._patches.patch(obj, attr, make_wrapper)

    def _restore(self):
        self._patches.restore()

    def _wrap_forward(self, name: str):
        def make(original):
            def forward(*args, **kwargs):
                out = original(*args, **kwargs)
                self._pending.append((name, self._keep(_first_output(out)) if self.branches else None))
                return out

            forward.__wrapped__ = original
            return forward

        return make

    def _wrap_step(self, scheduler):
        def make(original):
            def step(model_output, timestep, sample, *args, **kwargs):
                new_run = scheduler.step_index is None  # set_timesteps resets it: a new pipeline call
                out = original(model_output, timestep, sample, *args, **kwargs)
                self._record(scheduler, model_output, timestep, sample, new_run)
                return out

            step.__wrapped__ = original
            return step

        return make

    def _record(self, scheduler, v, timestep, x, new_run: bool):
        if new_run or not self.runs:
            self.runs.append(WanRun())
        run = self.runs[-1]
        k = scheduler.step_index - 1  # the index this step used (incremented on completion)
        sigma, sigma_next = scheduler.sigmas[k], scheduler.sigmas[k + 1]
        if getattr(scheduler, "predict_x0", False) and getattr(scheduler, "model_outputs", None):
            x0, source = scheduler.model_outputs[-1], "scheduler"
        else:  # flow matching: x0_hat = x_s - sigma v, in float32 like FlowMatchEuler's update
            x0, source = x.to(torch.float32) - sigma.to(x.device) * v, "x-sigma*v"
        if self._first is not None:
            x0 = self._first.mix(x0)
        names = list(dict.fromkeys(n for n, _ in self._pending))
        run.steps.append(WanStep(
            i=len(run.steps), sigma=float(sigma), sigma_next=float(sigma_next),
            x=self._keep(x), v=self._keep(v), x0=self._keep(x0),
            t=float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep),
            expert="+".join(names) if names else None, calls=len(self._pending), x0_source=source,
            branches=tuple(o for _, o in self._pending) if self.branches else (),
        ))
        self._pending = []

    def __enter__(self) -> "PipelineTrace":
        if self._active:
            raise RuntimeError("this trace is already active")
        try:
            scheduler = self.pipe.scheduler
            self._patch(scheduler, "step", self._wrap_step(scheduler))
            if self._first is not None:
                self._patch(self.pipe, "prepare_latents", self._first.wrap)
            for name, module in transformer_components(self.pipe).items():
                self._patch(module, "forward", self._wrap_forward(name))
            if self.hooks is not None:  # outside the trace's wrappers: the trace sees the edited values
                from .hooks import attach

                attached = attach(self.pipe, self.hooks)
                attached.__enter__()
                self._attached = attached
        except BaseException:
            self._restore()
            raise
        self._active = True
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if self._attached is not None:
                self._attached.__exit__(exc_type, exc, tb)
        finally:
            self._attached = None
            self._restore()
        self._active = False
        self._pending = []
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

        from ..io import write_mp4

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
    branches: also keep each transformer output (Wan with CFG: cond, then uncond) in `WanStep.branches`.
    hooks: a steplens.hooks.Hooks on WanPipelineModel(pipe), attached for the block (steplens.wan.hooks.attach)
        inside the trace's wrappers, so that the trace records the edited run.
    decode_dir: stream each decoded step to `decode_dir/run<r>_step<s>_<b>.mp4` (one step in memory at a
        time); `decoded[s]` then holds the paths.
    tiled: decode with the VAE's tiling (AutoencoderKLWan.enable_tiling) to bound memory at large sizes.
    """
    return PipelineTrace(pipe, decode_steps, device=device, output_type=output_type, branches=branches, hooks=hooks,
                         decode_dir=decode_dir, tiled=tiled, fps=fps)
