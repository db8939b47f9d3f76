"""Wan2.2-TI2V-5B: what differs from Wan2.1 I2V / Wan2.2-A14B, for the shared Wan code to call.

TI2V-5B is a WanImageToVideoPipeline with `expand_timesteps=True` (Wan2.2's VAE: z_dim 48, 16x spatial
compression; one transformer with 48 input channels). It conditions on the image by *replacing* the first
latent frame rather than by concatenating mask and condition channels (diffusers' pipeline_wan_i2v.py):

* `prepare_latents` returns (latents, condition, first_frame_mask): `condition` (B, z, 1, h, w) is the
  normalised VAE latent of the image, `first_frame_mask` (1, 1, T, h, w) is 0 on latent frame 0, 1 elsewhere;
* every transformer forward sees mix(latents) = (1 - mask) * condition + mask * latents, and a per-token
  timestep: 0 on the tokens of latent frame 0, t on the others;
* the pipeline's final latents are mix(latents).
scheduler.step updates every frame of `latents`, frame 0 included, but frame 0 of `latents` never reaches
the transformer nor the output.

steplens' view (the same on the pipeline and in steplens' own sampler):
* x_s (the `latent` point, PipelineStep.x) is the pipeline's `latents`; an edit x_s' enters the transformer as
  mix(x_s') and goes to scheduler.step as it is;
* x0_hat (the `x0` point, PipelineStep.x0) is mix(x_s - sigma v): the clean image latent in frame 0, as the
  pipeline treats its final latents, so that x0_hat of the last Euler step is the pipeline's output bit for
  bit. An x0 edit x0' hands the scheduler v = (x_s - x0') / sigma, as for the other Wan models.
"""

from __future__ import annotations

from dataclasses import replace

import torch


def is_ti2v(pipe) -> bool:
    """Whether the pipeline runs TI2V-5B's first-frame replacement (WanImageToVideoPipeline, expand_timesteps)."""
    return bool(getattr(getattr(pipe, "config", None), "expand_timesteps", False))


def mix(x: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(1 - mask) * condition + mask * x: x with its first latent frame replaced by the condition (the
    pipeline's own expression, so that the result is its result bit for bit)."""
    return (1 - mask) * condition.to(x.device) + mask.to(x.device) * x


def first_frame_mask(latent_shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 1, T, h, w): 0 on latent frame 0, 1 elsewhere, as prepare_latents makes it (float32 there)."""
    _, _, t, h, w = latent_shape
    mask = torch.ones(1, 1, t, h, w, dtype=dtype, device=device)
    mask[:, :, 0] = 0
    return mask


def token_timesteps(mask: torch.Tensor, t: torch.Tensor, patch_size, batch: int) -> torch.Tensor:
    """(batch, tokens) timesteps: 0 on the tokens of the first latent frame, t elsewhere (tokens ordered
    frame, h, w; the pipeline subsamples the mask by the patch size, 2)."""
    _, ph, pw = patch_size
    return (mask[0][0][:, ::ph, ::pw] * t).flatten().unsqueeze(0).expand(batch, -1)


def transformer_input(x: torch.Tensor, condition: torch.Tensor, t: torch.Tensor, patch_size,
                      dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden_states, timestep) of a TI2V forward on latents x (B, z, T, h, w), as the pipeline builds them."""
    mask = first_frame_mask(x.shape, x.device)
    hidden = mix(x, condition, mask).to(dtype)
    return hidden, token_timesteps(mask, t.to(x.device), patch_size, x.shape[0])


def join_rows(rows: list[tuple]) -> tuple:
    """Concatenate per-sample prepare_latents outputs along the batch: (latents, condition) for Wan2.1 /
    A14B; for TI2V also first_frame_mask, which has batch 1 and is the same for every sample (kept once)."""
    parts = list(zip(*rows))
    return tuple(torch.cat(p) for p in parts[:2]) + tuple(p[0] for p in parts[2:])


class FirstFrame:
    """The condition and first_frame_mask of the current TI2V pipeline call, captured from prepare_latents.

    `capture(out)` keeps them from prepare_latents' output; `mix(x)` replaces the first latent frame of x by the condition (x unchanged before any capture)."""

    def __init__(self):
        self.condition: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None

    def capture(self, out) -> None:
        if isinstance(out, (tuple, list)) and len(out) == 3:
            _, self.condition, self.mask = out

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mask is None else mix(x, self.condition, self.mask)

    def transformer_input(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """mix(x) as the transformer gets it: on `like`'s device, in `like`'s dtype."""
        return self.mix(x.to(like.device)).to(like.dtype)

    def pipeline_latent(self, latent: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
        """The pipeline's `latents` behind a transformer input: `latent` if mix(latent) is that input, else the
        input itself (e.g. a callback_on_step_end replaced the latents: only mix(latents) is known then)."""
        if latent is not None and latent.shape == hidden.shape and torch.equal(
                self.transformer_input(latent, hidden), hidden):
            return latent
        return hidden


class _MixedX0Hooks:
    """Hooks as steplens' sample_euler calls them, with on_x0 seeing mix(x_s - sigma v) (as on the pipeline)."""

    def __init__(self, hooks, first: FirstFrame):
        self.hooks, self.first = hooks, first

    def on_latent(self, ctx, x):
        return self.hooks.on_latent(ctx, x)

    def on_velocity(self, ctx, x, v):
        return self.hooks.on_velocity(ctx, x, v)

    def on_x0(self, ctx, x, x0):
        mixed = self.first.mix(x0)
        new = self.hooks.on_x0(ctx, x, mixed)
        return x0 if new is mixed else new  # unedited: sample_euler keeps its own x0 and v


def sample_euler(model, x: torch.Tensor, sigmas: torch.Tensor, cond, callback=None, *, guidance: float = 1.0,
                 uncond=None, hooks=None) -> torch.Tensor:
    """steplens.sampling.sample_euler for TI2V (`cond.condition` the (B, z, 1, h, w) image latent): callbacks and
    the `x0` point get mix(x0_hat), and the result is mix(x) as the pipeline's final latents."""
    from ...sampling import sample_euler as euler

    first = FirstFrame()
    first.condition, first.mask = cond.condition, first_frame_mask(x.shape, x.device)
    cb = None if callback is None else (lambda st: callback(replace(st, x0=first.mix(st.x0))))
    h = None if hooks is None else _MixedX0Hooks(hooks, first)
    return first.mix(euler(model, x, sigmas, cond, cb, guidance=guidance, uncond=uncond, hooks=h))
