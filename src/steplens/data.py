"""Turning task items into model batches: latents of the ground-truth video and the conditioning."""

from __future__ import annotations

import numpy as np
import torch

from .models import BorderCodec, DiTCond
from .models.prompt import encode_prompts
from .video import to_model

# Seeds below this are held out: training draws its samples from seeds at or above it.
TRAIN_SEED_BASE = 1_000_000_000


def conditioning(first_frames: list[np.ndarray], prompts: list[str], codec: BorderCodec, device=None) -> DiTCond:
    """The clean first frames (as latents) and the prompts."""
    first = torch.stack([to_model(f) for f in first_frames])
    return DiTCond(codec.encode(first).to(device), encode_prompts(prompts).to(device))


def video_batch(samples, codec: BorderCodec, device=None) -> torch.Tensor:
    """Ground-truth latents (B, C, T, h, w) of generated samples."""
    vids = torch.stack([to_model(s.ground_truth) for s in samples])  # (B, C, T, H, W)
    return codec.encode(vids).to(device)


def sample_conditioning(samples, codec: BorderCodec, device=None) -> DiTCond:
    return conditioning([s.first_frame for s in samples], [s.prompt for s in samples], codec, device)
