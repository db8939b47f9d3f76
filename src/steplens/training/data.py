"""Turning task items into model batches: latents of the ground-truth video and the conditioning."""

from __future__ import annotations

import torch

from ..io.video import to_model
from ..models import BorderCodec, DiTCond
from ..models.wrap import conditioning

# Training draws generator seeds from here up (and keeps only inputs of the training part, by content:
# steplens.tasks.splits); seeds no longer decide what is held out.
TRAIN_SEED_BASE = 1_000_000_000


def video_batch(samples, codec: BorderCodec, device=None) -> torch.Tensor:
    """Ground-truth latents (B, C, T, h, w) of generated samples."""
    vids = torch.stack([to_model(s.ground_truth) for s in samples])  # (B, C, T, H, W)
    return codec.encode(vids).to(device)


def sample_conditioning(samples, codec: BorderCodec, device=None, known: int = 1) -> DiTCond:
    """The conditioning of generated samples: first frame and prompt, and with `known` > 1 the first `known` frames
    of each ground truth (a frame-prefix batch)."""
    prefixes = [s.ground_truth[:known] for s in samples] if known > 1 else None
    return conditioning([s.first_frame for s in samples], [s.prompt for s in samples], codec, device, prefixes)
