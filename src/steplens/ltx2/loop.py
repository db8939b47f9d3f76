"""The denoising loop of a diffusers LTX2ImageToVideoPipeline, seen the steplens way (shared by trace and hooks).

`LTX2Loop(pipe, hooks=None, on_step=None)` is a context manager that, for the duration of the `with` block,
wraps (instance attributes shadowing the class methods, all put back on exit, also after an exception):

* `transformer.forward`: runs it inside `step_context(StepContext(step, sigma, branches, "transformer"))`, and
  fires the `latent` point before the first forward of a step;
* `transformer.cache_context`: the name the pipeline gives each forward ("cond_uncond", "uncond_stg",
  "uncond_modality") tells the branches of its batch;
* `scheduler.step` (the *video* scheduler): fires the `v` and `x0` points and reports the step (`on_step`);
* `scheduler.set_timesteps`: a new pipeline call; `scheduler.__deepcopy__`: the pipeline makes its audio
  scheduler as `copy.deepcopy(pipe.scheduler)`; the copy is made without steplens' wrappers, so the audio
  branch is stepped by a plain scheduler of its own;
* `pipe.prepare_latents` and `pipe._pack_latents`: they tell which tensor is the pipeline's current (packed)
  video latent, so that steplens can read it and edit it.

What steplens sees (the LTX-2 conventions, see steplens.ltx2.model for the user's view):

* the latent x_s is the pipeline's video latent unpacked to (B, C, T, h, w), normalised as the denoising loop
  has it (float32). Latent frame 0 is the clean first-frame latent: the pipeline gives its tokens timestep 0
  and steps only frames 1..T-1 (`scheduler.step` gets `latents[:, :, 1:]`);
* v is the guided velocity the video scheduler gets, with frame 0 set to 0 (the frame does not move);
* x0_hat = x_s - sigma v in float32 as FlowMatch Euler does its update (frames 1..), and x_s itself on frame 0:
  at the last step (sigma_next = 0) it is the final latent, bit for bit;
* CFG: LTX-2 runs the two CFG branches as ONE forward on the batch [uncond rows; cond rows], so the step
  context of that forward is branches=("uncond", "cond") and Hooks split the batch in that order. Optional extra
  forwards are named after the pipeline's cache contexts: "stg" (spatio-temporal guidance, batch B) and
  "modality" (modality-isolation guidance, batch B); a hook with branch=None sees them too.

Edits: a `latent` edit replaces the pipeline's latent tensor in place (so the transformer, the CFG maths, the
scheduler and the frame-0 copy all start from it); an `x0` edit hands the scheduler v = (x_s - x0') / sigma and,
on frame 0, becomes frame 0 of the next latent; at a step with sigma_next = 0 the scheduler's result is exactly
x0' (Euler's x + (0 - sigma) (x - x0') / sigma equals x0' up to float rounding; steplens returns x0' itself).
A `v` edit that changes frame 0 is refused (the pipeline never uses frame 0's velocity). The audio latents are
neither traced nor editable: they are denoised by the pipeline as usual, jointly with the (possibly edited) video.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Callable

import torch

from ..context import StepContext, step_context
from ..hooks import SAMPLER_POINTS
from ..wan.trace import InstancePatches, WanStep

SUPPORTED_PIPELINES = ("LTX2ImageToVideoPipeline",)
EXPERT = "transformer"  # the one denoiser's component name: the expert in step contexts and record keys
EXTRA_BRANCHES = {"uncond_stg": "stg", "uncond_modality": "modality"}
_ACTIVE: set[int] = set()  # id() of the pipelines a loop is attached to now


def check_pipeline(pipe) -> None:
    """Raise a TypeError / ValueError naming what steplens does not support about this pipeline."""
    try:
        from diffusers import LTX2ImageToVideoPipeline
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers LTX-2 backend needs diffusers >= 0.37 with LTX-2 (the 'wan' extra: "
                          "pip install 'steplens[wan]')") from e
    if not isinstance(pipe, LTX2ImageToVideoPipeline):
        raise TypeError(f"steplens.ltx2 does not support the pipeline class {type(pipe).__name__}; supported: "
                        f"{', '.join(SUPPORTED_PIPELINES)}")
    if getattr(pipe, "transformer", None) is None:
        raise ValueError("the LTX2ImageToVideoPipeline has no transformer")
    check_scheduler(pipe.scheduler)


def check_scheduler(scheduler) -> None:
    """steplens reads LTX-2's steps as FlowMatch Euler (x0_hat = x_s - sigma v); refuse anything else."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        raise TypeError(f"steplens.ltx2 supports FlowMatchEulerDiscreteScheduler (LTX-2's own scheduler), not "
                        f"{type(scheduler).__name__}")
    cfg = scheduler.config
    if cfg.stochastic_sampling or cfg.invert_sigmas:
        raise ValueError("steplens.ltx2 needs a deterministic FlowMatch Euler scheduler (stochastic_sampling=False, "
                         f"invert_sigmas=False); this one has stochastic_sampling={cfg.stochastic_sampling}, "
                         f"invert_sigmas={cfg.invert_sigmas}")


def unpack(pipe, packed: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """The pipeline's packed video tokens (B, L, C) -> latent (B, C, T, h, w), as the pipeline unpacks them."""
    t, h, w = grid
    return type(pipe)._unpack_latents(packed, t, h, w, pipe.transformer_spatial_patch_size,
                                      pipe.transformer_temporal_patch_size)


def pack(pipe, latent: torch.Tensor) -> torch.Tensor:
    """Latent (B, C, T, h, w) -> the pipeline's packed tokens (B, L, C), tokens ordered (frame, h, w)."""
    return type(pipe)._pack_latents(latent, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)


def _changed(new: torch.Tensor, ref: torch.Tensor) -> bool:
    return not torch.equal(new.to(ref.device, ref.dtype), ref)


def _hidden_states(args: tuple, kwargs: dict):
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"], lambda h: (args, {**kwargs, "hidden_states": h})
    if args:
        return args[0], lambda h: ((h, *args[1:]), kwargs)
    raise TypeError("the LTX-2 transformer was called without hidden_states")


class LTX2Loop:
    """Context manager: steplens' view of the LTX-2 denoising loop (see the module doc).

    hooks: a steplens.hooks.Hooks made on LTX2PipelineModel(pipe), or None.
    on_step: called with a WanStep (a StepInfo: i, sigma, sigma_next, x, v, x0 as (B, C, T, h, w); t, expert,
        calls, branches) after each video scheduler step; `keep` copies the tensors it gets (e.g. to the CPU).
    branches: also hand the raw video outputs of the step's transformer forwards (in call order) to on_step."""

    def __init__(self, pipe, hooks=None, on_step: Callable[[WanStep], None] | None = None,
                 keep: Callable[[torch.Tensor], torch.Tensor] | None = None, branches: bool = False):
        check_pipeline(pipe)
        if hooks is not None and getattr(hooks.model, "pipe", None) is not pipe:
            raise ValueError(f"these hooks were made on {hooks.model!r}, not on this pipeline; make them with "
                             f"Hooks(LTX2PipelineModel(pipe))")
        self.pipe, self.hooks, self.on_step, self.branches = pipe, hooks, on_step, branches
        self.keep = keep or (lambda t: t.detach().clone())
        self.scheduler, self.transformer = pipe.scheduler, pipe.transformer
        self.audio_scheduler = None  # the pipeline's deepcopy of the scheduler, for the audio latents
        self._patches = InstancePatches()
        self._own_module_hooks = False
        self._active = False
        self._branch_name: str | None = None
        self._reset_run()

    # -- state of the pipeline call --------------------------------------------------------------------------
    def _reset_run(self):
        self._packed = None  # the pipeline's current packed video latent (prepare_latents / _pack_latents)
        self._after_step = False  # the next _pack_latents call packs the latent of the next step
        self._frame0 = None  # an x0 edit's frame 0, for the next latent
        self._grid = None  # (T, h, w) of the latent, from the transformer's keyword arguments
        self._reset_step()

    def _reset_step(self):
        self._step = None
        self._calls = 0
        self._outputs: list = []
        self._seen = None  # the packed latent the step's first forward saw

    def _where(self) -> tuple[int, float]:
        sched = self.pipe.scheduler
        if sched is not self.scheduler:
            raise RuntimeError("the pipeline's scheduler was replaced while steplens was attached; set "
                               "pipe.scheduler before attaching")
        k = sched.step_index
        if k is None:
            k = sched.begin_index if sched.begin_index is not None else 0
        return k, float(sched.sigmas[k])

    def _wants(self, *points: str) -> bool:
        return self.hooks is not None and any(s.point in points for s in self.hooks.specs)

    def _branches(self, batch: int) -> tuple[str, ...]:
        name = self._branch_name
        if name in EXTRA_BRANCHES:
            return (EXTRA_BRANCHES[name],)
        cfg = bool(getattr(self.pipe, "do_classifier_free_guidance", False))
        if cfg and batch % 2:
            raise RuntimeError(f"a CFG forward with an odd batch ({batch}): steplens expects [uncond; cond] rows")
        return ("uncond", "cond") if cfg else ("cond",)

    # -- the latent ------------------------------------------------------------------------------------------
    def _live(self, first_rows: torch.Tensor) -> torch.Tensor | None:
        """The pipeline's own packed latent if the transformer input is it (else a callback replaced it)."""
        p = self._packed
        if p is not None and p.shape == first_rows.shape and torch.equal(p.to(first_rows.dtype), first_rows):
            return p
        return None

    def _latent_hook(self, step: int, sigma: float, hidden: torch.Tensor, rows: int) -> torch.Tensor:
        live = self._live(hidden[:rows])
        seen = live if live is not None else hidden[:rows].float()
        if self._wants("latent"):
            ref = unpack(self.pipe, seen, self._grid)
            new = self.hooks.on_latent(StepContext(step, sigma, ("cond",), EXPERT), ref.clone())
            if _changed(new, ref):
                if live is None:
                    raise RuntimeError("cannot edit the latent: the pipeline's latents were replaced (by a "
                                       "callback_on_step_end?) and steplens cannot reach them")
                live.copy_(pack(self.pipe, new.to(live.device, live.dtype)))
                n = hidden.shape[0] // rows
                hidden = torch.cat([live] * n).to(hidden.dtype)
        self._seen = seen
        return hidden

    # -- wrappers --------------------------------------------------------------------------------------------
    def _wrap_forward(self, original):
        def forward(*args, **kwargs):
            step, sigma = self._where()
            if self._step != step:
                self._reset_step()
                self._step = step
            if "num_frames" in kwargs:
                self._grid = (int(kwargs["num_frames"]), int(kwargs["height"]), int(kwargs["width"]))
            hidden, put = _hidden_states(args, kwargs)
            branches = self._branches(hidden.shape[0])
            if self._calls == 0 and self._grid is not None:
                new = self._latent_hook(step, sigma, hidden, hidden.shape[0] // len(branches))
                if new is not hidden:
                    args, kwargs = put(new)
            self._calls += 1
            with step_context(StepContext(step, sigma, branches, EXPERT)):
                out = original(*args, **kwargs)
            if self.branches:
                video = out[0] if isinstance(out, (tuple, list)) else out.sample
                self._outputs.append(self.keep(video))
            return out

        forward.__wrapped__ = original
        return forward

    def _wrap_cache_context(self, original):
        @contextmanager
        def cache_context(name, *args, **kwargs):
            previous, self._branch_name = self._branch_name, name
            try:
                with original(name, *args, **kwargs):
                    yield
            finally:
                self._branch_name = previous

        cache_context.__wrapped__ = original
        return cache_context

    def _full(self, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame 0 of the step's latent, float32; x_s = [frame 0, sample] as (B, C, T, h, w))."""
        x = sample.to(torch.float32)
        if self._seen is not None and self._grid is not None:
            frame0 = unpack(self.pipe, self._seen, self._grid)[:, :, :1].to(x.device, torch.float32)
        else:  # pragma: no cover - the pipeline always runs the transformer before stepping
            raise RuntimeError("scheduler.step ran before any transformer forward at this step")
        return frame0, torch.cat([frame0, x], dim=2)

    def _wrap_step(self, original):
        def step(model_output, timestep, sample, *args, **kwargs):
            k, sigma = self._where()
            try:
                s = self.scheduler.sigmas[k].to(sample.device)
                s_next = float(self.scheduler.sigmas[k + 1])
                frame0, x = self._full(sample)
                v, x0_edit = model_output, None
                if self._wants(*[p for p in SAMPLER_POINTS if p != "latent"]):
                    ctx = StepContext(k, sigma, ("cond",), EXPERT)
                    v_full = torch.cat([torch.zeros_like(frame0).to(v.dtype), v], dim=2)
                    new_v = self.hooks.on_velocity(ctx, x.clone(), v_full.clone())
                    if _changed(new_v, v_full):
                        if new_v[:, :, :1].abs().max() > 0:
                            raise ValueError(f"a v edit at step {k} changed latent frame 0, the clean first frame "
                                             f"(its velocity is 0 and unused by the pipeline); edit x0 or the latent "
                                             f"to change it")
                        v = new_v[:, :, 1:].to(model_output.dtype)
                    x0 = torch.cat([frame0, x[:, :, 1:] - s * v], dim=2)
                    new = self.hooks.on_x0(ctx, x.clone(), x0.clone())
                    if _changed(new, x0):
                        if sigma == 0:
                            raise ValueError(f"cannot edit x0 at step {k}: sigma is 0 there")
                        x0_edit = new.to(x.device, torch.float32)
                        v = ((x[:, :, 1:] - x0_edit[:, :, 1:]) / s).to(model_output.dtype)
                        if _changed(x0_edit[:, :, :1], frame0):
                            self._frame0 = x0_edit[:, :, :1]
                out = original(v, timestep, sample, *args, **kwargs)
                if x0_edit is not None and s_next == 0:  # the last step lands on x0' itself
                    prev = (out[0] if isinstance(out, (tuple, list)) else out.prev_sample)
                    exact = x0_edit[:, :, 1:].to(prev.device, prev.dtype)
                    if isinstance(out, (tuple, list)):
                        out = (exact, *out[1:])
                    else:
                        out.prev_sample = exact
                if self.on_step is not None:
                    self._report(k, sigma, s_next, timestep, frame0, x, v, x0_edit)
            finally:
                self._reset_step()
            self._after_step = True
            return out

        step.__wrapped__ = original
        return step

    def _report(self, k, sigma, s_next, timestep, frame0, x, v, x0_edit):
        s = self.scheduler.sigmas[k].to(x.device)
        v32 = v.to(torch.float32)
        x0 = x0_edit if x0_edit is not None else torch.cat([frame0, x[:, :, 1:] - s * v32], dim=2)
        v_full = torch.cat([torch.zeros_like(frame0), v32], dim=2)
        t = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
        self.on_step(WanStep(i=k, sigma=float(sigma), sigma_next=s_next, x=self.keep(x), v=self.keep(v_full),
                             x0=self.keep(x0), t=t, expert=EXPERT, calls=self._calls, x0_source="x-sigma*v",
                             branches=tuple(self._outputs)))

    def _wrap_set_timesteps(self, original):
        def set_timesteps(*args, **kwargs):
            out = original(*args, **kwargs)
            packed = self._packed  # prepare_latents ran before set_timesteps in the pipeline's call
            self._reset_run()
            self._packed = packed
            if self.hooks is not None:
                self.hooks.check_run(len(self.scheduler.timesteps))
            return out

        set_timesteps.__wrapped__ = original
        return set_timesteps

    def _wrap_prepare_latents(self, original):
        def prepare_latents(*args, **kwargs):
            out = original(*args, **kwargs)
            latents = out[0]
            given = kwargs.get("latents", args[10] if len(args) > 10 else None)
            if given is not None and latents is given:  # never edit the caller's tensor in place
                latents = latents.clone()
                out = (latents, *out[1:])
            self._packed = latents
            return out

        prepare_latents.__wrapped__ = original
        return prepare_latents

    def _wrap_pack(self, original):
        def _pack_latents(latents, *args, **kwargs):
            if not self._after_step:
                return original(latents, *args, **kwargs)
            self._after_step = False
            if self._frame0 is not None:
                latents = torch.cat([self._frame0.to(latents.device, latents.dtype), latents[:, :, 1:]], dim=2)
                self._frame0 = None
            out = original(latents, *args, **kwargs)
            self._packed = out
            return out

        return _pack_latents

    def _deepcopy(self, memo):
        """copy.deepcopy(pipe.scheduler) while attached: a plain copy, without steplens' wrappers."""
        sched = self.scheduler
        clone = object.__new__(type(sched))
        memo[id(sched)] = clone
        ours = {"step", "set_timesteps", "__deepcopy__"}
        for key, value in sched.__dict__.items():
            if key not in ours:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        self.audio_scheduler = clone
        return clone

    # -- attaching -------------------------------------------------------------------------------------------
    def __enter__(self) -> "LTX2Loop":
        if self._active or id(self.pipe) in _ACTIVE:
            raise RuntimeError("steplens is already attached to this pipeline (hooks or a trace); attach one at a "
                               "time (trace_ltx2(pipe, hooks=hooks) does both)")
        p, sched = self._patches, self.scheduler
        try:
            if "__deepcopy__" in sched.__dict__:
                raise RuntimeError("the scheduler already has an instance __deepcopy__; steplens cannot attach")
            sched.__dict__["__deepcopy__"] = self._deepcopy
            p.patch(sched, "set_timesteps", self._wrap_set_timesteps)
            p.patch(sched, "step", self._wrap_step)
            p.patch(self.pipe, "prepare_latents", self._wrap_prepare_latents)
            p.patch(self.pipe, "_pack_latents", self._wrap_pack)
            p.patch(self.transformer, "forward", self._wrap_forward)
            p.patch(self.transformer, "cache_context", self._wrap_cache_context)
            self._own_module_hooks = self.hooks is not None and self.hooks.attach_module_points()
        except BaseException:
            self._exit()
            raise
        _ACTIVE.add(id(self.pipe))
        self._active = True
        return self

    def _exit(self):
        try:
            if self._own_module_hooks:
                self.hooks.detach()
        finally:
            self._own_module_hooks = False
            self._patches.restore()
            if self.scheduler.__dict__.get("__deepcopy__") == self._deepcopy:
                del self.scheduler.__dict__["__deepcopy__"]
            self._reset_run()
            self._branch_name = None

    def __exit__(self, *exc) -> bool:
        try:
            self._exit()
        finally:
            if self._active:
                _ACTIVE.discard(id(self.pipe))
            self._active = False
        return False


__all__ = ["EXPERT", "LTX2Loop", "check_pipeline", "check_scheduler", "pack", "unpack"]
