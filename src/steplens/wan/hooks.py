"""steplens hooks on a diffusers Wan pipeline: the same `Hooks` as on the embedded model.

    hooks = Hooks(WanPipelineModel(pipe)).record("blocks.1", steps=[0, 3], branch="uncond", expert="transformer_2")
    with attach(pipe, hooks):
        video = pipe(**kwargs).frames
    hooks.get("blocks.1", 3, "uncond", "transformer_2")      # records keyed (point, step, branch, expert)

While attached (also after an exception, everything is put back on exit):

* every transformer forward runs inside `step_context(StepContext(step, sigma, (branch,), expert))`:
  step = the scheduler's step index (= the pipeline's loop index i), sigma = scheduler.sigmas[step],
  expert = the component that runs ("transformer" / "transformer_2"), branch = "cond" or "uncond".
  WanImageToVideoPipeline runs CFG as two forwards per step, cond then uncond, each with batch B and each
  inside `transformer.cache_context("cond"/"uncond")`: the branch is the name the pipeline gives there
  (call order as a fallback), and a module hook sees one branch per call;
* `latent` (x_s) fires before the first forward of a step. x_s is the pipeline's own `latents` (float32 at
  step 0, as prepare_latents made them; afterwards what scheduler.step returned, unless a
  callback_on_step_end replaced them: then the latent part of the transformer input). An edit replaces x_s
  in the transformer input of both CFG forwards *and* the `sample` handed to scheduler.step, so the update
  starts from the edited latent, as in steplens' own Euler sampler; the next step starts from what the
  scheduler returned;
* `x0` (x0_hat = x_s - sigma v, v the guided velocity, in float32) fires in scheduler.step, through
  Hooks.on_x0 (so do the points Hooks derives from x0_hat, e.g. `v`); an edit hands the scheduler
  v = (x_s - x0_hat') / sigma instead of the pipeline's v;
* Wan2.2-TI2V-5B (expand_timesteps): the transformer sees mix(x_s), x_s with its first latent frame replaced
  by the clean image latent (steplens.wan.ti2v). `latent` is still the pipeline's `latents`, and an edit x_s'
  enters the transformer as mix(x_s') and goes to scheduler.step as it is; x0_hat = mix(x_s - sigma v), so
  its frame 0 is the image latent, as in the pipeline's final latents.

Why wrap the transformer's forward and scheduler.step rather than use callback_on_step_end: the callback
runs after the update of step k-1, so it cannot edit step 0 without a second mechanism, it is the user's
argument to pipe(...) (we would have to merge ours with theirs and with its tensor-inputs list), and it
cannot see the velocity. The forward and scheduler.step see every step the same way.

Schedulers (SUPPORTED_SCHEDULERS):
* FlowMatchEulerDiscreteScheduler: keeps no history, edits mean exactly what they mean in our sampler.
* UniPCMultistepScheduler (flow_prediction, predict_x0, no thresholding; the hub's Wan configs): it keeps the
  previous x_s (`last_sample`, for its corrector) and the previous x0_hat (`model_outputs`, for its multistep
  predictor). An `x0` edit at step k replaces this step's x0_hat wherever UniPC uses it: in the corrector
  of x_s at step k, in the predictor of step k, and in the history of steps k+1, k+2. A `latent` edit at
  step k restarts the solver from the edited x_s: the corrector of step k (which would rebuild x_s from
  step k-1's x_s and x0_hat and so drop the edit) is skipped and the predictor of step k is first-order
  (from x_s' and x0_hat(x_s') only, which for flow sigmas is the Euler step); from step k+1 on, UniPC builds
  up its history again, as at the start of sampling. x0_hat of steps before k is untouched.
Other schedulers are refused (a TypeError naming the scheduler and listing these).

Edit functions get copies of x_s / x0_hat; an edit counts as one only if the value changes (an identity or
a clone changes nothing, not even under UniPC's restart; an in-place change counts).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..context import StepContext, step_context
from ..hooks import SAMPLER_POINTS
from .model import WanPipelineModel, check_pipeline
from .ti2v import FirstFrame, is_ti2v
from .trace import InstancePatches, transformer_components

SUPPORTED_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler", "UniPCMultistepScheduler")
BRANCHES = ("cond", "uncond")

_ACTIVE: set[int] = set()  # id() of the pipelines hooks are attached to now


def check_scheduler(scheduler) -> str:
    """"euler" or "unipc" for a scheduler steplens can hook; otherwise an error naming it and what is supported."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return "euler"
    if isinstance(scheduler, UniPCMultistepScheduler):
        cfg = scheduler.config
        problems = []
        if cfg.prediction_type != "flow_prediction":
            problems.append(f"prediction_type={cfg.prediction_type!r} (needs 'flow_prediction')")
        if not cfg.predict_x0:
            problems.append("predict_x0=False (needs True)")
        if cfg.thresholding:
            problems.append("thresholding=True (x0_hat would not be x_s - sigma v)")
        if problems:
            raise ValueError("steplens.wan hooks support UniPCMultistepScheduler only as Wan configures it "
                             "(prediction_type='flow_prediction', use_flow_sigmas=True); this one has "
                             + "; ".join(problems))
        return "unipc"
    raise TypeError(f"steplens does not trace or hook the scheduler {type(scheduler).__name__} (it needs flow "
                    f"matching, x0_hat = x_s - sigma v); supported: {', '.join(SUPPORTED_SCHEDULERS)} (set e.g. "
                    f"pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config), or "
                    f"--preset vbvr)")


def _check_hooks_model(hooks, experts: dict) -> None:
    model = getattr(hooks, "model", None)
    mods = model.modules() if isinstance(model, WanPipelineModel) else None
    if not isinstance(mods, dict) or {k: id(v) for k, v in mods.items()} != {k: id(v) for k, v in experts.items()}:
        raise ValueError(f"these hooks were made on {model!r}, not on this pipeline's transformers "
                         f"({', '.join(experts)}); make them with Hooks(WanPipelineModel(pipe))")


def _hidden_states(args: tuple, kwargs: dict):
    """The transformer's `hidden_states` argument and a function putting a replacement back."""
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"], lambda h: (args, {**kwargs, "hidden_states": h})
    if args:
        return args[0], lambda h: ((h, *args[1:]), kwargs)
    raise TypeError("the transformer was called without hidden_states")


def _prev_sample(out):
    return out[0] if isinstance(out, (tuple, list)) else out.prev_sample


def _changed(new: torch.Tensor, ref: torch.Tensor) -> bool:
    """Whether an edit changed the value (hooks get a copy of `ref`, so in-place edits count too)."""
    return not torch.equal(new.to(ref.device, ref.dtype), ref)


class PipelineHooks:
    """Context manager: `hooks` attached to a Wan pipeline (use `attach(pipe, hooks)`)."""

    def __init__(self, pipe, hooks):
        check_pipeline(pipe)
        self.kind = check_scheduler(pipe.scheduler)
        self.experts = transformer_components(pipe)
        _check_hooks_model(hooks, self.experts)
        self.pipe, self.hooks, self.scheduler = pipe, hooks, pipe.scheduler
        self._patches = InstancePatches()
        self._own_module_hooks = False
        self._active = False
        self._branch_name: str | None = None  # the pipeline's cache_context name around the current forward
        self._first = FirstFrame() if is_ti2v(pipe) else None  # TI2V: condition and mask, from prepare_latents
        self._reset_run()

    # -- state of the pipeline call --------------------------------------------------------------------------
    def _reset_run(self):
        self._latent = None  # the pipeline's latents as last produced (prepare_latents, scheduler.step)
        self._reset_step()

    def _reset_step(self):
        self._step = None  # the step the forwards below belong to
        self._calls = 0  # transformer forwards at this step
        self._expert = None  # the component that ran at this step
        self._edited = None  # the edited x_s of this step, if the `latent` point changed it

    def _where(self) -> tuple[int, float]:
        sched = self.pipe.scheduler
        if sched is not self.scheduler:
            raise RuntimeError("the pipeline's scheduler was replaced while hooks were attached; "
                               "set pipe.scheduler before attach(pipe, hooks)")
        k = sched.step_index
        if k is None:  # before the first scheduler.step of a call (set_timesteps resets the index)
            k = sched.begin_index if sched.begin_index is not None else 0
        return k, float(sched.sigmas[k])

    def _wants(self, point: str) -> bool:
        return any(s.point == point for s in self.hooks.specs)

    def _wants_x0(self) -> bool:
        """Whether Hooks.on_velocity / on_x0 have work (`v` or `x0` points)."""
        return any(s.point in SAMPLER_POINTS and s.point != "latent" for s in self.hooks.specs)

    def _pipeline_latent(self, hidden: torch.Tensor, expert: str) -> torch.Tensor:
        if self._first is not None:  # TI2V: the transformer sees mix(latents)
            return self._first.pipeline_latent(self._latent, hidden)
        z = self._latent.shape[1] if self._latent is not None else self.experts[expert].config.out_channels
        seen = hidden[:, :z]
        if (self._latent is not None and self._latent.shape == seen.shape
                and torch.equal(self._latent.to(seen.device, seen.dtype), seen)):
            return self._latent
        return seen  # e.g. a callback_on_step_end replaced the latents: what the transformer sees

    # -- wrappers --------------------------------------------------------------------------------------------
    def _wrap_forward(self, name: str):
        def make(original):
            def forward(*args, **kwargs):
                step, sigma = self._where()
                if self._step != step:
                    self._reset_step()
                    self._step = step
                if self._branch_name in BRANCHES:
                    branch = self._branch_name
                elif self._calls < len(BRANCHES):
                    branch = BRANCHES[self._calls]
                else:
                    raise RuntimeError(f"{self._calls + 1} transformer calls at step {step}: steplens expects at "
                                       f"most two per step (cond, then uncond)")
                first = self._calls == 0
                self._calls += 1
                self._expert = name
                hidden, put = _hidden_states(args, kwargs)
                if first and self._wants("latent"):
                    ref = self._pipeline_latent(hidden, name)
                    new = self.hooks.on_latent(StepContext(step, sigma, ("cond",), name), ref.clone())
                    if _changed(new, ref):
                        self._edited = new.to(ref.device)
                if self._edited is not None:
                    z = self._edited.shape[1]
                    hidden = (self._first.transformer_input(self._edited, hidden) if self._first is not None else
                              torch.cat([self._edited.to(hidden.device, hidden.dtype), hidden[:, z:]], dim=1))
                    args, kwargs = put(hidden)
                with step_context(StepContext(step, sigma, (branch,), name)):
                    return original(*args, **kwargs)

            forward.__wrapped__ = original
            return forward

        return make

    def _wrap_cache_context(self):
        def make(original):
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

        return make

    def _wrap_step(self):
        def make(original):
            def step(model_output, timestep, sample, *args, **kwargs):
                k, sigma = self._where()
                try:
                    if self._edited is not None and self._step == k:
                        sample = self._edited.to(sample.device, sample.dtype)
                        if self.kind == "unipc":  # restart the multistep solver from the edited x_s
                            self.scheduler.last_sample = None  # no corrector at this step
                            self.scheduler.lower_order_nums = 0  # first-order predictor at this step
                    if self._wants_x0():
                        s = self.scheduler.sigmas[k].to(sample.device)
                        x = sample.to(torch.float32)
                        ctx = StepContext(k, sigma, ("cond",), self._expert)
                        v = self.hooks.on_velocity(ctx, sample.clone(), model_output.clone())
                        if _changed(v, model_output):
                            model_output = v.to(model_output.dtype)
                        x0 = x - s * model_output
                        if self._first is not None:  # TI2V: frame 0 is the image latent
                            x0 = self._first.mix(x0)
                        new = self.hooks.on_x0(StepContext(k, sigma, ("cond",), self._expert), sample.clone(),
                                               x0.clone())
                        if _changed(new, x0):
                            if sigma == 0:
                                raise ValueError(f"cannot edit x0 at step {k}: sigma is 0 there")
                            model_output = ((x - new.to(x.device, torch.float32)) / s).to(model_output.dtype)
                    out = original(model_output, timestep, sample, *args, **kwargs)
                finally:
                    self._reset_step()
                self._latent = _prev_sample(out)
                return out

            step.__wrapped__ = original
            return step

        return make

    def _wrap_set_timesteps(self):
        def make(original):
            def set_timesteps(*args, **kwargs):
                out = original(*args, **kwargs)
                self._reset_run()  # a new pipeline call
                self.hooks.check_run(len(self.scheduler.timesteps))
                return out

            set_timesteps.__wrapped__ = original
            return set_timesteps

        return make

    def _wrap_prepare_latents(self):
        def make(original):
            def prepare_latents(*args, **kwargs):
                out = original(*args, **kwargs)
                self._latent = out[0] if isinstance(out, (tuple, list)) else out
                if self._first is not None:
                    self._first.capture(out)
                return out

            prepare_latents.__wrapped__ = original
            return prepare_latents

        return make

    # -- attaching -------------------------------------------------------------------------------------------
    def __enter__(self) -> "PipelineHooks":
        if self._active or id(self.pipe) in _ACTIVE:
            raise RuntimeError("hooks are already attached to this pipeline; attach one Hooks at a time "
                               "(one Hooks can hold any number of records and edits)")
        try:
            p = self._patches
            p.patch(self.scheduler, "set_timesteps", self._wrap_set_timesteps())
            p.patch(self.scheduler, "step", self._wrap_step())
            p.patch(self.pipe, "prepare_latents", self._wrap_prepare_latents())
            for name, module in self.experts.items():
                p.patch(module, "forward", self._wrap_forward(name))
                if hasattr(module, "cache_context"):
                    p.patch(module, "cache_context", self._wrap_cache_context())
            self._own_module_hooks = self.hooks.attach_module_points()  # unless `with hooks:` attached them
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


def attach(pipe, hooks) -> PipelineHooks:
    """Attach `hooks` (a steplens.hooks.Hooks made on WanPipelineModel(pipe)) to the pipeline for a `with`
    block: block hooks on the experts (unless `with hooks:` already attached them), the step context around
    each transformer forward, and the `latent` / `x0` points in the denoising loop. Raises a clear error for
    an unsupported pipeline class or scheduler before anything is changed."""
    return PipelineHooks(pipe, hooks)

