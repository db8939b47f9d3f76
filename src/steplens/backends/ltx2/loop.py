"""The LTX-2 denoising loop (LTX2ImageToVideoPipeline), the steplens way: steplens.backends.loop.PipelineLoop with
LTX-2's layout, and LTX-2's decoding.

On top of the shared loop (transformer forwards under the step context, `scheduler.step`, `set_timesteps`,
`prepare_latents`), `LTX2Loop` reads:

* the name the pipeline gives each forward with `cache_context` ("cond_uncond", "uncond_stg", "uncond_modality"):
  the branches of its batch;
* `scheduler.step` is the *video* scheduler's; `scheduler.__deepcopy__`: the pipeline makes its audio scheduler as
  `copy.deepcopy(pipe.scheduler)`; the copy is made without steplens' wrappers, so the audio branch is stepped by a
  plain scheduler of its own;
* `pipe.prepare_latents` and `pipe._pack_latents`: they tell which tensor is the pipeline's current (packed) video
  latent, so that steplens can read it and edit it.

What steplens sees (the LTX-2 conventions, see steplens.backends.ltx2.model for the user's view):

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
x0' (Euler's x + (0 - sigma) (x - x0') / sigma equals x0' up to float rounding; the core loop returns x0' itself).
A `v` edit that changes frame 0 is refused (the pipeline never uses frame 0's velocity). The audio latents are
neither traced nor editable: they are denoised by the pipeline as usual, jointly with the (possibly edited) video.

K leading frames (steplens.backends.ltx2.prefix): when the pipeline's conditioning mask marks latent frames
0 .. K-1 of a row (K > 1), the loop holds them as the pipeline holds frame 0: their tokens keep timestep 0 (the
mask), the scheduler gets velocity 0 on them (they do not move), and every latent packed after a step gets them
back exactly (the per-step re-pin, as the pipeline's `torch.cat([latents[:, :, :1], ...])` does for frame 0). Traced,
they are x_s = x0_hat = the given latent, v = 0; an edit that would change them is refused. K = 1 is the plain
path above, untouched.
"""

from __future__ import annotations

import copy

import torch

from ...context import StepContext
from ...hooks import SAMPLER_POINTS
from ..checks import check_euler, check_pipeline_class
from ..decode import vae_decode, vae_device
from ..loop import PipelineLoop
from ..patches import changed, timestep_value
from ..steps import PipelineStep

PIPELINES = ("LTX2ImageToVideoPipeline",)
EXPERT = "transformer"  # the one denoiser's component name: the expert in step contexts and record keys
EXTRA_BRANCHES = {"uncond_stg": "stg", "uncond_modality": "modality"}
_LOOPS: dict[int, "LTX2Loop"] = {}  # id(pipe) -> the LTX2Loop attached to it now


def attached_loop(pipe) -> "LTX2Loop | None":
    """The LTX2Loop attached to `pipe` now (hooks, a trace, generate's own), or None."""
    return _LOOPS.get(id(pipe))


def check_pipeline(pipe) -> None:
    """Raise a TypeError / ValueError naming what steplens does not support about this pipeline (or its scheduler)."""
    check_pipeline_class(pipe, PIPELINES, "LTX-2")
    check_scheduler(pipe.scheduler)


def check_scheduler(scheduler) -> None:
    """steplens reads LTX-2's steps as FlowMatch Euler (x0_hat = x_s - sigma v); refuse anything else."""
    check_euler(scheduler, "LTX-2")


def unpack(pipe, packed: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """The pipeline's packed video tokens (B, L, C) -> latent (B, C, T, h, w), as the pipeline unpacks them."""
    t, h, w = grid
    return type(pipe)._unpack_latents(packed, t, h, w, pipe.transformer_spatial_patch_size,
                                      pipe.transformer_temporal_patch_size)


def pack(pipe, latent: torch.Tensor) -> torch.Tensor:
    """Latent (B, C, T, h, w) -> the pipeline's packed tokens (B, L, C), tokens ordered (frame, h, w)."""
    return type(pipe)._pack_latents(latent, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)


def denormalize(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents -> the VAE's latents, as the pipeline does before decoding (and for output_type="latent")."""
    vae = pipe.vae
    return type(pipe)._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt", decode_timestep: float = 0.0):
    """Decode normalised latents (B, C, T, h, w) as the pipeline does: denormalise, vae.decode (with the decode
    timestep if the VAE is timestep-conditioned; at the pipeline's default decode_timestep 0 no noise is mixed
    in), then the core's vae_decode (output_type "raw": the VAE's (B, 3, frames, H, W) in [-1, 1])."""
    device = vae_device(pipe)
    # the pipeline casts to its prompt embeddings' dtype first (the connectors' dtype for steplens' embeddings)
    latents = latents.to(device, getattr(pipe.connectors, "dtype", latents.dtype))
    temb = None
    if pipe.vae.config.timestep_conditioning:
        if decode_timestep != 0:
            raise ValueError(f"decode_timestep {decode_timestep}: steplens decodes at the pipeline's default 0 "
                             f"(no decode noise)")
        temb = torch.zeros(latents.shape[0], device=device, dtype=latents.dtype)
    return vae_decode(pipe, denormalize(pipe, latents).to(pipe.vae.dtype), output_type, temb)


class LTX2Loop(PipelineLoop):
    """PipelineLoop on an LTX2ImageToVideoPipeline (see the module doc). `audio_scheduler`: the pipeline's deepcopy
    of the scheduler, for the audio latents, of the last call."""

    @classmethod
    def check(cls, pipe) -> str:
        check_pipeline(pipe)
        return "euler"

    def __init__(self, pipe, *args, **kwargs):
        self.audio_scheduler = None
        # K > 1 leading frames of the call (set by every prepare_latents, before set_timesteps resets the run):
        # (their packed clean latent, token mask (B, L, 1), K per row), else None
        self._pin = None
        super().__init__(pipe, *args, **kwargs)

    def __enter__(self):
        out = super().__enter__()
        _LOOPS[id(self.pipe)] = self
        return out

    def _exit(self):
        if _LOOPS.get(id(self.pipe)) is self:
            del _LOOPS[id(self.pipe)]
        self._pin = None
        super()._exit()

    # -- state: the packed latent (self._latent), and what a step leaves for the next ----------------------------------
    def _reset_run(self):
        self._after_step = False  # the next _pack_latents call packs the latent of the next step
        self._frame0 = None  # an x0 edit's frame 0, for the next latent
        self._grid = None  # (T, h, w) of the latent, from the transformer's keyword arguments
        super()._reset_run()

    def _reset_step(self):
        super()._reset_step()
        self._seen = None  # the packed latent the step's first forward saw

    def prepared(self, out, args, kwargs):
        latents = out[0]
        given = kwargs.get("latents", args[10] if len(args) > 10 else None)
        if given is not None and latents is given:  # never edit the caller's tensor in place
            latents = latents.clone()
            out = (latents, *out[1:])
        self._latent = latents
        self._pin = self._given(latents, out[1], kwargs.get("num_frames", args[5] if len(args) > 5 else None))
        return out

    def _given(self, latents: torch.Tensor, mask: torch.Tensor, num_frames) -> tuple | None:
        """The K > 1 leading frames the conditioning mask marks (steplens.backends.ltx2.prefix), else None."""
        if num_frames is None or mask is None or mask.ndim != 2:
            return None
        t = (int(num_frames) - 1) // self.pipe.vae_temporal_compression_ratio + 1
        per_frame = mask.shape[1] // t
        known = [int(round(float(m.sum()))) // per_frame for m in mask]
        if max(known) <= 1:
            return None
        return latents.detach().clone(), (mask > 0)[..., None], known

    def known_mask(self, frames: int, start: int = 0) -> torch.Tensor | None:
        """(B, 1, frames, 1, 1) bool: the given latent frames start .. start+frames-1 of each row (K > 1), else None."""
        if self._pin is None:
            return None
        idx = torch.arange(start, start + frames)
        return torch.stack([idx < k for k in self._pin[2]]).view(len(self._pin[2]), 1, frames, 1, 1)

    def _refuse_given(self, what: str, k: int, new: torch.Tensor, old: torch.Tensor) -> None:
        m = self.known_mask(new.shape[2])
        if m is not None and changed(torch.where(m.to(new.device), new, 0), torch.where(m.to(old.device), old, 0)):
            raise ValueError(f"{what} at step {k} changed the given leading latent frames (K = {max(self._pin[2])}: "
                             f"they are held as given, as the pipeline holds frame 0); edit the frames after them")

    def stepped(self, out) -> None:
        self._after_step = True

    def patch(self, patches) -> None:
        if "__deepcopy__" in self.scheduler.__dict__:
            raise RuntimeError("the scheduler already has an instance __deepcopy__; steplens cannot attach")
        patches.patch(self.scheduler, "__deepcopy__", lambda original: self._deepcopy)
        patches.patch(self.pipe, "_pack_latents", self._wrap_pack)

    def _wrap_pack(self, original):
        def _pack_latents(latents, *args, **kwargs):
            if not self._after_step:
                return original(latents, *args, **kwargs)
            self._after_step = False
            if self._frame0 is not None:
                latents = torch.cat([self._frame0.to(latents.device, latents.dtype), latents[:, :, 1:]], dim=2)
                self._frame0 = None
            out = original(latents, *args, **kwargs)
            if self._pin is not None:  # the given frames, exactly as given (the per-step re-pin)
                clean, tokens, _ = self._pin
                out = torch.where(tokens.to(out.device), clean.to(out.device, out.dtype), out)
            self._latent = out
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

    # -- forwards: one batch [uncond; cond] under CFG, packed tokens -----------------------------------------------------
    def forward_branches(self, step, cache_name, hidden):
        if cache_name in EXTRA_BRANCHES:
            return (EXTRA_BRANCHES[cache_name],)
        cfg = bool(getattr(self.pipe, "do_classifier_free_guidance", False))
        if cfg and hidden.shape[0] % 2:
            raise RuntimeError(f"a CFG forward with an odd batch ({hidden.shape[0]}): steplens expects [uncond; cond] "
                               f"rows")
        return ("uncond", "cond") if cfg else ("cond",)

    def forward_input(self, step, sigma, name, hidden, branches, kwargs):
        if "num_frames" in kwargs:
            self._grid = (int(kwargs["num_frames"]), int(kwargs["height"]), int(kwargs["width"]))
        if self._calls == 0 and self._grid is not None:
            hidden = self._latent_hook(step, sigma, hidden, hidden.shape[0] // len(branches))
        return hidden

    def _live(self, first_rows: torch.Tensor) -> torch.Tensor | None:
        """The pipeline's own packed latent if the transformer input is it (else a callback replaced it)."""
        p = self._latent
        if p is not None and p.shape == first_rows.shape and torch.equal(p.to(first_rows.dtype), first_rows):
            return p
        return None

    def _latent_hook(self, step: int, sigma: float, hidden: torch.Tensor, rows: int) -> torch.Tensor:
        live = self._live(hidden[:rows])
        seen = live if live is not None else hidden[:rows].float()
        if self.wants("latent"):
            ref = unpack(self.pipe, seen, self._grid)
            new = self.hooks.on_latent(StepContext(step, sigma, ("cond",), EXPERT), ref.clone())
            if changed(new, ref):
                self._refuse_given("a latent edit", step, new, ref)
                if live is None:
                    raise RuntimeError("cannot edit the latent: the pipeline's latents were replaced (by a "
                                       "callback_on_step_end?) and steplens cannot reach them")
                live.copy_(pack(self.pipe, new.to(live.device, live.dtype)))
                n = hidden.shape[0] // rows
                hidden = torch.cat([live] * n).to(hidden.dtype)
        self._seen = seen
        return hidden

    # -- the step: frame 0 is the clean first frame ---------------------------------------------------------------------
    def _full(self, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame 0 of the step's latent, float32; x_s = [frame 0, sample] as (B, C, T, h, w))."""
        x = sample.to(torch.float32)
        if self._seen is not None and self._grid is not None:
            frame0 = unpack(self.pipe, self._seen, self._grid)[:, :, :1].to(x.device, torch.float32)
        else:  # pragma: no cover - the pipeline always runs the transformer before stepping
            raise RuntimeError("scheduler.step ran before any transformer forward at this step")
        return frame0, torch.cat([frame0, x], dim=2)

    def step_points(self, k, sigma, model_output, sample):
        s = self.scheduler.sigmas[k].to(sample.device)
        frame0, x = self._full(sample)
        v = model_output
        held = self.known_mask(v.shape[2], start=1)
        if held is not None:  # the given frames 1 .. K-1 do not move (frame 0 is not stepped at all)
            v = torch.where(held.to(v.device), torch.zeros((), dtype=v.dtype, device=v.device), v)
        if self.wants(*[p for p in SAMPLER_POINTS if p != "latent"]):
            ctx = StepContext(k, sigma, ("cond",), EXPERT)
            v_full = torch.cat([torch.zeros_like(frame0).to(v.dtype), v], dim=2)
            new_v = self.hooks.on_velocity(ctx, x.clone(), v_full.clone())
            if changed(new_v, v_full):
                if new_v[:, :, :1].abs().max() > 0:
                    raise ValueError(f"a v edit at step {k} changed latent frame 0, the clean first frame (its "
                                     f"velocity is 0 and unused by the pipeline); edit x0 or the latent to change it")
                self._refuse_given("a v edit", k, new_v, v_full)
                v = new_v[:, :, 1:].to(model_output.dtype)
            x0 = torch.cat([frame0, x[:, :, 1:] - s * v], dim=2)
            x0_edit = self.x0_point(ctx, x, x0)
            if x0_edit is not None:  # the core's after_step lands on it at sigma 0
                self._refuse_given("an x0 edit", k, x0_edit, x0)
                v = ((x[:, :, 1:] - x0_edit[:, :, 1:]) / s).to(model_output.dtype)
                if changed(x0_edit[:, :, :1], frame0):
                    self._frame0 = x0_edit[:, :, :1]
        return v, sample, (frame0, x)

    def scheduled(self, latent):
        return latent[:, :, 1:]  # the scheduler steps frames 1..

    def step_record(self, k, timestep, v, sample, state) -> PipelineStep:
        frame0, x = state
        s = self.scheduler.sigmas[k].to(x.device)
        v32 = v.to(torch.float32)
        x0 = self._x0_edit if self._x0_edit is not None else torch.cat([frame0, x[:, :, 1:] - s * v32], dim=2)
        v_full = torch.cat([torch.zeros_like(frame0), v32], dim=2)
        return PipelineStep(i=k, sigma=float(self.scheduler.sigmas[k]), sigma_next=float(self.scheduler.sigmas[k + 1]),
                            x=self.keep(x), v=self.keep(v_full), x0=self.keep(x0), t=timestep_value(timestep),
                            expert=EXPERT, calls=self._calls, x0_source="x-sigma*v", branches=tuple(self._outputs))
