"""Decode LTX-2 video latents exactly as LTX2ImageToVideoPipeline decodes its final latents.

steplens' LTX-2 latents are the denoising loop's own: normalised ((z - latents_mean) * scaling_factor /
latents_std, per channel), unpacked to (B, C, T, h, w). The pipeline returns *denormalised* latents for
output_type="latent"; `denormalize` is the same step, for comparing the two.
"""

from __future__ import annotations

import torch


def denormalize(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents -> the VAE's latents, as the pipeline does before decoding (and for output_type="latent")."""
    vae = pipe.vae
    return type(pipe)._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)


def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt", decode_timestep: float = 0.0):
    """Decode normalised latents (B, C, T, h, w) as the pipeline does: denormalise, vae.decode (with the decode
    timestep if the VAE is timestep-conditioned; at the pipeline's default decode_timestep 0 no noise is mixed
    in), video_processor.postprocess_video. output_type "raw": the VAE's (B, 3, frames, H, W) in [-1, 1]."""
    from diffusers.utils.torch_utils import get_module_execution_device

    vae = pipe.vae
    with torch.no_grad():
        device = get_module_execution_device(vae)
        # the pipeline casts to its prompt embeddings' dtype first (the connectors' dtype for steplens' embeddings)
        latents = latents.to(device, getattr(pipe.connectors, "dtype", latents.dtype))
        temb = None
        if vae.config.timestep_conditioning:
            if decode_timestep != 0:
                raise ValueError(f"decode_timestep {decode_timestep}: steplens decodes at the pipeline's default 0 "
                                 f"(no decode noise)")
            temb = torch.zeros(latents.shape[0], device=device, dtype=latents.dtype)
        z = denormalize(pipe, latents).to(vae.dtype)
        video = vae.decode(z, temb, return_dict=False)[0]
        if output_type == "raw":
            return video
        return pipe.video_processor.postprocess_video(video, output_type=output_type)
