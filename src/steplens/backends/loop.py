"""The one interception loop: a diffusers pipeline's denoising loop seen the steplens way, under trace and hooks alike.

`PipelineLoop(pipe, hooks=None, on_step=None)` is a context manager that, for the duration of the `with` block:

* runs each denoiser's `forward` (the pipeline's `transformer*` components) inside
  `step_context(StepContext(step, sigma, branches, expert))`, fires the `latent` point before the first forward of
  a step, and keeps the raw outputs if asked (`branches=True`). This side is carried by diffusers' own
  `HookRegistry` / `ModelHook` (steplens.backends.patches.ForwardHooks), which also hands over the name the
  pipeline gives each forward with `cache_context` ("cond", "uncond", ...): the CFG branch;
* wraps what diffusers' hooks cannot carry, because it is not an `nn.Module` forward (instance attributes shadowing
  the methods, all put back on exit, also after an exception): the scheduler's `step` (x_s, the guided v, x0_hat:
  the `v` and `x0` points, and the step handed to `on_step`), its `set_timesteps` (a new pipeline call) and the
  pipeline's `prepare_latents` (the latent the call starts from);
* attaches the hooks' block points (unless `with hooks:` already did).

Trace (steplens.backends.steps.PipelineTrace) and hooks (`attach`) are this same loop: a trace with hooks records
what the edited pipeline computed. One loop per pipeline at a time.

The default is the plain flow-matching pipeline (Wan's shape): x_s is the `latents` handed to `scheduler.step`, also
the first channels of the transformer input; v is the guided velocity `scheduler.step` gets; x0_hat = x_s - sigma v
in float32, as FlowMatch Euler does its update (UniPC with predict_x0: its own x0 prediction, for the trace); one
forward per CFG branch, named by `cache_context` ("cond", "uncond"; diffusers' guiders: "pred_cond", "pred_uncond")
or else by call order. An adapter overrides the
methods under "what an adapter may override" for its layout (LTX-2: packed tokens, one forward holding
[uncond; cond], a clean frame 0).

Edits: a `latent` edit replaces x_s where the transformer and the scheduler get it; an `x0` edit hands the scheduler
v = (x_s - x0') / sigma, and at a FlowMatch Euler step to sigma 0 the step's result and the recorded x0_hat are x0'
itself, bit for bit (`after_step`; Euler's x - sigma (x - x0') / sigma equals it only up to rounding), for every
family alike (an adapter says which part of the latent the scheduler steps: `scheduled`).

Schedulers: FlowMatchEulerDiscreteScheduler keeps no history, so edits mean exactly what they mean in steplens'
sampler. UniPCMultistepScheduler (flow_prediction, predict_x0) keeps the previous x_s and x0_hat: an `x0` edit at
step k replaces that step's x0_hat wherever UniPC uses it (corrector, predictor, the history of steps k+1, k+2); a
`latent` edit at step k restarts the solver from the edited x_s (no corrector at step k, a first-order predictor,
then UniPC builds its history up again). Edit functions get copies; an edit counts only if the value changes.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch

from ..context import StepContext, step_context
from .checks import check_scheduler
from .patches import (ForwardHooks, InstancePatches, changed, first_output, hidden_states, prev_sample, timestep_value,
                      with_prev_sample)
from .steps import PipelineStep, transformer_components

BRANCHES = ("cond", "uncond")
# cache_context names -> CFG branch: the pipelines' own ("cond", "uncond") and diffusers' guiders' identifiers
BRANCH_NAMES = {"cond": "cond", "uncond": "uncond", "pred_cond": "cond", "pred_uncond": "uncond"}
_ACTIVE: set[int] = set()  # id() of the pipelines a loop is attached to now


class PipelineLoop:
    """Context manager: steplens' view of a diffusers pipeline's denoising loop (see the module doc).

    hooks: a steplens.hooks.Hooks made on this pipeline's model, or None.
    on_step: called with a PipelineStep (a StepInfo: i, sigma, sigma_next, x, v, x0; t, expert, calls, branches) after
        each scheduler step; `keep` copies the tensors it gets (default: a detached clone).
    on_run: called before the first step of each pipeline call.
    branches: also hand the raw outputs of the step's transformer forwards (in call order) to on_step."""

    def __init__(self, pipe, hooks=None, on_step: Callable[[PipelineStep], None] | None = None,
                 keep: Callable[[torch.Tensor], torch.Tensor] | None = None, branches: bool = False,
                 on_run: Callable[[], None] | None = None):
        self.kind = type(self).check(pipe)
        self.pipe, self.hooks, self.on_step, self.on_run, self.branches = pipe, hooks, on_step, on_run, branches
        self.keep = keep or (lambda t: t.detach().clone())
        self.experts = self.components()
        if hooks is not None:
            self.check_hooks(hooks)
        self.scheduler = pipe.scheduler
        self._patches = InstancePatches()
        self._forwards = ForwardHooks()
        self._own_module_hooks = False
        self._active = False
        self._latent = None  # the pipeline's x_s as last produced (prepare_latents, scheduler.step)
        self._reset_run()

    # -- what an adapter may override ------------------------------------------------------------------------------
    @classmethod
    def check(cls, pipe) -> str:
        """Refuse an unsupported pipeline or scheduler (before anything changes); the scheduler kind."""
        return check_scheduler(pipe.scheduler)

    def components(self) -> dict[str, torch.nn.Module]:
        """{expert name: module} whose forwards run under the step context."""
        return transformer_components(self.pipe)

    def patch(self, patches: InstancePatches) -> None:
        """Wrap more of the pipeline (e.g. a pack/unpack step), with `patches.patch(obj, attr, make_wrapper)`."""

    def prepared(self, out, args, kwargs):
        """What `prepare_latents` returned: note the starting latent; returns the (possibly replaced) output."""
        self._latent = out[0] if isinstance(out, (tuple, list)) else out
        return out

    def forward_branches(self, step: int, cache_name: str | None, hidden: torch.Tensor) -> tuple[str, ...]:
        """The CFG branches of this forward's batch, in row order: one per forward, by cache name or call order."""
        if cache_name in BRANCH_NAMES:
            return (BRANCH_NAMES[cache_name],)
        if self._calls < len(BRANCHES):
            return (BRANCHES[self._calls],)
        raise RuntimeError(f"{self._calls + 1} transformer calls at step {step}: steplens expects at most two per "
                           f"step (cond, then uncond)")

    def forward_input(self, step: int, sigma: float, name: str, hidden: torch.Tensor, branches: tuple,
                      kwargs: dict) -> torch.Tensor:
        """The transformer input after the `latent` point (fired at the step's first forward)."""
        if self._calls == 0 and self.wants("latent"):
            ref = self.latent_seen(hidden, name)
            new = self.hooks.on_latent(StepContext(step, sigma, ("cond",), name), ref.clone())
            if changed(new, ref):
                self._edited = new.to(ref.device)
        if self._edited is not None:
            hidden = self.latent_input(self._edited, hidden)
        return hidden

    def latent_seen(self, hidden: torch.Tensor, name: str) -> torch.Tensor:
        """x_s behind a transformer input: the pipeline's latent if the input starts with it, else those channels
        (e.g. a callback_on_step_end replaced the latents)."""
        z = self._latent.shape[1] if self._latent is not None else self.experts[name].config.out_channels
        seen = hidden[:, :z]
        if (self._latent is not None and self._latent.shape == seen.shape
                and torch.equal(self._latent.to(seen.device, seen.dtype), seen)):
            return self._latent
        return seen

    def latent_input(self, latent: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The transformer input with its x_s channels replaced by `latent`."""
        z = latent.shape[1]
        return torch.cat([latent.to(hidden.device, hidden.dtype), hidden[:, z:]], dim=1)

    def x0_view(self, x0: torch.Tensor) -> torch.Tensor:
        """x0_hat as steplens shows it (TI2V: the clean image latent in frame 0)."""
        return x0

    def step_points(self, k: int, sigma: float, model_output: torch.Tensor, sample: torch.Tensor):
        """Apply a `latent` edit and the `v` / `x0` points before scheduler.step: (model_output, sample, state)."""
        if self._edited is not None and self._step == k:
            sample = self._edited.to(sample.device, sample.dtype)
            if self.kind == "unipc":  # restart the multistep solver from the edited x_s
                self.scheduler.last_sample = None  # no corrector at this step
                self.scheduler.lower_order_nums = 0  # first-order predictor at this step
        if self.wants("v", "x0"):
            s = self.scheduler.sigmas[k].to(sample.device)
            x = sample.to(torch.float32)
            ctx = StepContext(k, sigma, ("cond",), self._expert)
            v = self.hooks.on_velocity(ctx, sample.clone(), model_output.clone())
            if changed(v, model_output):
                model_output = v.to(model_output.dtype)
            if self.x0_point(ctx, sample, self.x0_view(x - s * model_output)) is not None:
                model_output = ((x - self._x0_edit) / s).to(model_output.dtype)
        return model_output, sample, None

    def x0_point(self, ctx: StepContext, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor | None:
        """The `x0` point: the hooks get copies of (x_s, x0_hat); an edit that changes x0_hat is kept (float32) for
        the step's result and record (`after_step`, `step_record`) and returned, else None; refused at sigma 0."""
        new = self.hooks.on_x0(ctx, x.clone(), x0.clone())
        if not changed(new, x0):
            return None
        if ctx.sigma == 0:
            raise ValueError(f"cannot edit x0 at step {ctx.step}: sigma is 0 there")
        self._x0_edit = new.to(x.device, torch.float32)
        return self._x0_edit

    def scheduled(self, latent: torch.Tensor) -> torch.Tensor:
        """The part of a full latent (B, C, T, h, w) that scheduler.step gets (LTX-2: frames 1..)."""
        return latent

    def after_step(self, k: int, out, state):
        """scheduler.step's output, as the pipeline gets it: after an x0 edit at a FlowMatch Euler step to sigma 0,
        exactly the edited x0' (Euler's x + (0 - sigma) (x - x0') / sigma is x0' only up to float rounding)."""
        if self._x0_edit is not None and self.kind == "euler" and float(self.scheduler.sigmas[k + 1]) == 0:
            prev = prev_sample(out)
            out = with_prev_sample(out, self.scheduled(self._x0_edit).to(prev.device, prev.dtype))
        return out

    def stepped(self, out) -> None:
        """Note the latent scheduler.step produced."""
        self._latent = prev_sample(out)

    def step_record(self, k: int, timestep, v: torch.Tensor, x: torch.Tensor, state) -> PipelineStep:
        """The PipelineStep handed to on_step, after scheduler.step ran with (v, x)."""
        sched = self.scheduler
        sigma, sigma_next = sched.sigmas[k], sched.sigmas[k + 1]
        if getattr(sched, "predict_x0", False) and getattr(sched, "model_outputs", None):
            x0, source = sched.model_outputs[-1], "scheduler"
        elif self._x0_edit is not None:  # flow matching, x0 edited: x0' itself (x_s - sigma v is x0' up to rounding)
            x0, source = self._x0_edit, "x-sigma*v"
        else:  # flow matching: x0_hat = x_s - sigma v, in float32 like FlowMatchEuler's update
            x0, source = x.to(torch.float32) - sigma.to(x.device) * v, "x-sigma*v"
        names = list(dict.fromkeys(self._ran))
        return PipelineStep(i=k, sigma=float(sigma), sigma_next=float(sigma_next), x=self.keep(x), v=self.keep(v),
                            x0=self.keep(self.x0_view(x0)), t=timestep_value(timestep),
                            expert="+".join(names) if names else None, calls=self._calls, x0_source=source,
                            branches=tuple(self._outputs))

    # -- state of the pipeline call ----------------------------------------------------------------------------------
    def _reset_run(self):
        self._new_run = True
        self._reset_step()

    def _reset_step(self):
        self._step = None  # the step the forwards below belong to
        self._calls = 0  # transformer forwards at this step
        self._ran: list[str] = []  # the experts of those forwards
        self._expert = None  # the last of them
        self._outputs: list = []  # their raw outputs (branches=True)
        self._edited = None  # the edited x_s of this step, if the `latent` point changed it
        self._x0_edit = None  # the edited x0_hat (float32) of this step, if the `x0` point changed it

    def where(self) -> tuple[int, float]:
        """(step index, sigma) of the step the pipeline is at."""
        sched = self.pipe.scheduler
        if sched is not self.scheduler:
            raise RuntimeError("the pipeline's scheduler was replaced while steplens was attached (hooks or a trace); "
                               "set pipe.scheduler before attaching")
        k = sched.step_index
        if k is None:  # before the first scheduler.step of a call (set_timesteps resets the index)
            k = sched.begin_index if sched.begin_index is not None else 0
        return k, float(sched.sigmas[k])

    def wants(self, *points: str) -> bool:
        return self.hooks is not None and any(s.point in points for s in self.hooks.specs)

    def check_hooks(self, hooks) -> None:
        model = getattr(hooks, "model", None)
        if not (getattr(model, "is_pipeline", False) and getattr(model, "pipe", None) is self.pipe):
            raise ValueError(f"these hooks were made on {model!r}, not on this pipeline's transformers "
                             f"({', '.join(self.experts)}); make them on this pipeline's model, "
                             f"Hooks(backend_for(pipe)(pipe)) (steplens.backends.registry)")

    # -- wrappers --------------------------------------------------------------------------------------------------
    def _forward(self, name: str, original, cache_name, args, kwargs):
        step, sigma = self.where()
        if self._step != step:
            self._reset_step()
            self._step = step
        hidden, put = hidden_states(args, kwargs)
        branches = self.forward_branches(step, cache_name, hidden)
        new = self.forward_input(step, sigma, name, hidden, branches, kwargs)
        if new is not hidden:
            args, kwargs = put(new)
        self._calls += 1
        self._ran.append(name)
        self._expert = name
        with step_context(StepContext(step, sigma, branches, name)):
            out = original(*args, **kwargs)
        if self.branches:
            self._outputs.append(self.keep(first_output(out)))
        return out

    def _wrap_step(self, original):
        def step(model_output, timestep, sample, *args, **kwargs):
            k, sigma = self.where()
            try:
                model_output, sample, state = self.step_points(k, sigma, model_output, sample)
                out = self.after_step(k, original(model_output, timestep, sample, *args, **kwargs), state)
                if self.on_run is not None and self._new_run:
                    self.on_run()
                self._new_run = False
                if self.on_step is not None:
                    self.on_step(self.step_record(k, timestep, model_output, sample, state))
            finally:
                self._reset_step()
            self.stepped(out)
            return out

        step.__wrapped__ = original
        return step

    def _wrap_set_timesteps(self, original):
        def set_timesteps(*args, **kwargs):
            out = original(*args, **kwargs)
            self._reset_run()  # a new pipeline call
            if self.hooks is not None:
                self.hooks.check_run(len(self.scheduler.timesteps))
            return out

        set_timesteps.__wrapped__ = original
        return set_timesteps

    def _wrap_prepare_latents(self, original):
        def prepare_latents(*args, **kwargs):
            return self.prepared(original(*args, **kwargs), args, kwargs)

        prepare_latents.__wrapped__ = original
        return prepare_latents

    # -- attaching -------------------------------------------------------------------------------------------------
    def __enter__(self):
        if self._active or id(self.pipe) in _ACTIVE:
            raise RuntimeError("steplens is already attached to this pipeline (hooks or a trace); attach one at a "
                               "time: one Hooks holds any number of records and edits, and trace_pipeline(pipe, "
                               "hooks=hooks) does both")
        try:
            p = self._patches
            p.patch(self.scheduler, "set_timesteps", self._wrap_set_timesteps)
            p.patch(self.scheduler, "step", self._wrap_step)
            p.patch(self.pipe, "prepare_latents", self._wrap_prepare_latents)
            self.patch(p)
            for name, module in self.experts.items():
                self._forwards.add(module, partial(self._forward, name))
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
            self._forwards.remove()
            self._patches.restore()
            self._latent = None
            self._reset_run()

    def __exit__(self, *exc) -> bool:
        try:
            self._exit()
        finally:
            if self._active:
                _ACTIVE.discard(id(self.pipe))
            self._active = False
        return False
