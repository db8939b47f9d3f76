"""K leading frames given to Wan image-to-video (frame-prefix conditioning, `steplens.tasks.continue_from_frames`).

WanImageToVideoPipeline conditions a call on one image: its `prepare_latents` VAE-encodes a video whose frame 0 is
the image and whose other frames are zeros, and masks frame 0 as known (`mask` channels, 4 per latent frame: the
VAE's temporal factor). Given K sample frames, `prefix_condition` builds the same tensor from a video whose first
frames are the K frames and marks them known: sample frame 0 is video frame 0, and sample frame j >= 1 fills video
frames 4j-3 .. 4j (latent frame j; the module doc of steplens.backends.wan.model maps sample to latent frames), so
latent frames 0 .. K-1 are given whole. With K = 1 it is the pipeline's own condition, bit for bit (tested).

Wan2.2-TI2V-5B (expand_timesteps) conditions another way (the clean image latent in frame 0): not supported yet.
Whether a checkpoint continues given frames well is its training's question (Wan's I2V checkpoints are trained on a
first frame); the mechanism is the pipeline's own mask.
"""

from __future__ import annotations

import torch


def prefix_condition(pipe, frames: list[torch.Tensor], num_frames: int, dtype, device) -> torch.Tensor:
    """The (1, 4 + z, latent frames, h, w) condition of `frames` ((1, C, H, W) tensors in [-1, 1], the K sample
    frames at the call size) for a `num_frames`-frame video, as WanImageToVideoPipeline.prepare_latents builds it
    for one image."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents
    from diffusers.utils.torch_utils import get_module_execution_device

    t = pipe.vae_scale_factor_temporal
    video = [frames[0]] + [f for f in frames[1:] for _ in range(t)]  # video frames 0 .. t(K-1)
    known = len(video)
    if known >= num_frames:
        raise ValueError(f"{len(frames)} leading frames cover {known} of the call's {num_frames} video frames: "
                         f"nothing left to generate")
    first = video[0]
    cond = torch.cat([torch.stack(video, dim=2),
                      first.new_zeros(first.shape[0], first.shape[1], num_frames - known, *first.shape[2:])], dim=2)
    cond = cond.to(device=get_module_execution_device(pipe.vae), dtype=pipe.vae.dtype)
    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean).view(1, cfg.z_dim, 1, 1, 1).to(device, dtype)
    inv_std = 1.0 / torch.tensor(cfg.latents_std).view(1, cfg.z_dim, 1, 1, 1).to(device, dtype)
    lat = retrieve_latents(pipe.vae.encode(cond), sample_mode="argmax").to(device=device, dtype=dtype)
    lat = (lat - mean) * inv_std
    h, w = lat.shape[-2:]
    mask = torch.ones(1, 1, num_frames, h, w)
    mask[:, :, known:] = 0
    head = torch.repeat_interleave(mask[:, :, 0:1], dim=2, repeats=t)
    mask = torch.cat([head, mask[:, :, 1:]], dim=2).view(1, -1, t, h, w).transpose(1, 2).to(lat.device)
    return torch.cat([mask, lat], dim=1)
