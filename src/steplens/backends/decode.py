"""The VAE end of a pipeline call, as every backend's `decode_latents` ends it (the family's own part: how its latents
are denormalised before the VAE).

    z = latents.to(vae_device(pipe), pipe.vae.dtype) / pipe.vae.config.scaling_factor   # the family's part
    return vae_decode(pipe, z, output_type)
"""

from __future__ import annotations

import torch

from ..sampling import check_finite


def vae_device(pipe) -> torch.device:
    """Where the pipeline's VAE runs (its execution device, also under CPU offload)."""
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(pipe.vae)


@torch.no_grad()
def vae_decode(pipe, z: torch.Tensor, output_type: str = "pt", *args) -> torch.Tensor:
    """vae.decode(z, *args) as the pipelines decode their final latents: output_type "raw" gives the VAE's video
    (B, 3, frames, H, W) in [-1, 1], any other goes through the pipeline's video_processor.postprocess_video.
    Non-finite pixels raise FloatingPointError, naming the VAE."""
    video = pipe.vae.decode(z, *args, return_dict=False)[0]
    # finite latents can still decode to NaN (a damaged VAE, fp16 overflow): never scored as a black video
    check_finite(video, f"the VAE's decoded video ({type(pipe.vae).__name__})")
    return video if output_type == "raw" else pipe.video_processor.postprocess_video(video, output_type=output_type)
