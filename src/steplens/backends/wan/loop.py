"""The Wan denoising loop, the steplens way: the plain flow-matching loop of steplens.backends.loop, plus TI2V-5B.

Wan2.1 I2V / Wan2.2-A14B are the loop's default: x_s is the `latents` handed to `scheduler.step` (the first z
channels of the transformer input, after which come the mask and the first-frame condition), one forward per CFG
branch ("cond", then "uncond"), the expert that ran named by its component (`transformer` / `transformer_2`).
Wan2.2-TI2V-5B (expand_timesteps) replaces latent frame 0 by the clean image latent (steplens.backends.wan.ti2v): the
transformer sees mix(x_s), an edited x_s' enters it as mix(x_s'), and x0_hat is mix(x_s - sigma v), so that x0_hat of
the last Euler step is the pipeline's output bit for bit.
"""

from __future__ import annotations

import torch

from ..checks import check_pipeline_class, check_scheduler
from ..decode import vae_decode, vae_device
from ..loop import PipelineLoop
from .ti2v import FirstFrame, is_ti2v

PIPELINES = ("WanImageToVideoPipeline",)
VARIANTS = (" (Wan2.1 I2V with one transformer, Wan2.2-A14B I2V with two experts `transformer`/`transformer_2`, "
            "Wan2.2-TI2V-5B with expand_timesteps=True)")


def check_pipeline(pipe) -> None:
    """Raise a TypeError/ValueError naming what is not supported about this pipeline."""
    check_pipeline_class(pipe, PIPELINES, "Wan", VARIANTS)


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt"):
    """Decode normalised latents (B, z, T, h, w) exactly as WanImageToVideoPipeline / WanPipeline decode
    their final latents: undo latents_mean/std, then the core's vae_decode ("raw": the VAE's video in [-1, 1])."""
    vae = pipe.vae
    latents = latents.to(device=vae_device(pipe), dtype=vae.dtype)
    z = vae.config.z_dim
    latents_mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    return vae_decode(pipe, latents / latents_std + latents_mean, output_type)


class WanLoop(PipelineLoop):
    """PipelineLoop on a WanImageToVideoPipeline (TI2V-5B: x_s and x0_hat with the image latent's frame 0)."""

    @classmethod
    def check(cls, pipe) -> str:
        check_pipeline(pipe)
        return check_scheduler(pipe.scheduler)

    def __init__(self, pipe, *args, **kwargs):
        super().__init__(pipe, *args, **kwargs)
        self._first = FirstFrame() if is_ti2v(pipe) else None  # TI2V: condition and mask, from prepare_latents

    def prepared(self, out, args, kwargs):
        if self._first is not None:
            self._first.capture(out)
        return super().prepared(out, args, kwargs)

    def latent_seen(self, hidden, name):
        if self._first is not None:  # the transformer sees mix(latents)
            return self._first.pipeline_latent(self._latent, hidden)
        return super().latent_seen(hidden, name)

    def latent_input(self, latent, hidden):
        if self._first is not None:
            return self._first.transformer_input(latent, hidden)
        return super().latent_input(latent, hidden)

    def x0_view(self, x0):
        return self._first.mix(x0) if self._first is not None else x0
