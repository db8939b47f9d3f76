"""Conversions between uint8 RGB videos (T, H, W, 3) and model tensors (C, T, H, W) in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


def to_model(video: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) or (H, W, 3) uint8 -> (3, T, H, W) or (3, H, W) float32 in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(video)).float() / 127.5 - 1.0
    return t.movedim(-1, 0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) or (3, H, W) in [-1, 1] -> (T, H, W, 3) or (H, W, 3) uint8 (clamped)."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(0, -1).cpu().numpy()


def to_rgb(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) float RGB in 0..255, unrounded (for soft per-pixel metrics)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).cpu().numpy()


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour integer upscale of (..., H, W, 3)."""
    return img.repeat(k, axis=-3).repeat(k, axis=-2) if k > 1 else img


def resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of (..., H, W, 3) to (h, w); at a whole multiple it equals `upscale`."""
    H, W = img.shape[-3:-1]
    return img[..., (np.arange(h) * H) // h, :, :][..., (np.arange(w) * W) // w, :]


def check_frames(frames) -> int:
    """A video to generate needs at least 2 frames (the first frame and the answer)."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
        raise ValueError(f"a video needs at least 2 frames (the first frame and the answer), got {frames!r}")
    return int(frames)
