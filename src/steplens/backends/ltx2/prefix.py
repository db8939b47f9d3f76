"""K leading frames given to LTX-2 image-to-video (frame-prefix conditioning, `steplens.tasks.continue_from_frames`).

LTX2ImageToVideoPipeline conditions a call on one image: its `prepare_latents` VAE-encodes the image alone (one
latent frame), normalises it, puts it in latent frame 0 of the noise, and marks frame 0 in its `conditioning_mask`;
the denoising loop then gives those tokens timestep 0 (`video_timestep = t (1 - mask)`) and keeps frame 0 as it is at
every step (`scheduler.step` gets frames 1.. only, frame 0 is concatenated back). Given K sample frames,
`prefix_latents` encodes them the way the VAE reads a video (sample frame 0 is video frame 0, sample frame j >= 1
fills video frames r(j-1)+1 .. rj, latent frame j, r the VAE's temporal factor; see steplens.backends.ltx2.model),
`condition_rows` puts them in latent frames 0 .. K-1 of the pipeline's prepared latents and marks them in its mask,
and the loop (steplens.backends.ltx2.loop) holds them at every step as the pipeline holds frame 0. With K = 1 it is
the pipeline's own first-frame latent, bit for bit (tested).

Whether a checkpoint continues given frames well is its training's question (LTX-2's image-to-video is trained on a
first frame); the mechanism is the pipeline's own mask and re-pin.
"""

from __future__ import annotations

import torch


def prefix_latents(pipe, frames: list[torch.Tensor], dtype) -> torch.Tensor:
    """The (1, C, K, h, w) normalised latents of `frames` ((1, 3, H, W) tensors in [-1, 1], the K sample frames at
    the call size), as LTX2ImageToVideoPipeline.prepare_latents makes the first frame's latent."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_image2video import retrieve_latents

    r = pipe.vae_temporal_compression_ratio
    video = [frames[0]] + [f for f in frames[1:] for _ in range(r)]  # video frames 0 .. r(K-1)
    lat = retrieve_latents(pipe.vae.encode(torch.stack(video, dim=2)), None, "argmax").to(dtype)
    return type(pipe)._normalize_latents(lat, pipe.vae.latents_mean, pipe.vae.latents_std)


def condition_rows(pipe, latents: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int, int],
                   given: list[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pipeline's prepared (packed latents (B, L, C), packed mask (B, L)) with row i's latent frames 0 .. K_i-1
    replaced by `given[i]` ((1, C, K_i, h, w), or None: the row as prepared) and marked known in the mask."""
    from .loop import pack, unpack

    t, h, w = grid
    lat = unpack(pipe, latents, grid).clone()
    m = mask.reshape(mask.shape[0], 1, t, h, w).clone()  # patch sizes 1 (checked by the model): tokens (frame, h, w)
    for i, g in enumerate(given):
        if g is not None:
            k = g.shape[2]
            lat[i:i + 1, :, :k] = g.to(lat.device, lat.dtype)
            m[i, :, :k] = 1.0
    return pack(pipe, lat).to(latents.dtype), m.reshape(mask.shape)
