"""Reading maze-like frames: find the integer upscale, go back to the native pixel grid, snap to the palette."""

from __future__ import annotations

import numpy as np

from ..regions import components, neighbours  # noqa: F401  (re-exported for the maze scorer)
from .maze import MAX_SIZE, MIN_SIZE, PALETTE

LABELS = list(PALETTE)  # wall, free, start, goal, path, goal2
COLOURS = np.array([PALETTE[k] for k in LABELS], dtype=np.float32)
WALL, FREE, START, GOAL, PATH, GOAL2 = range(len(LABELS))


def snap(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB (uint8 or float 0..255) -> (H, W) palette labels by nearest colour."""
    d = ((img[..., None, :].astype(np.float32) - COLOURS) ** 2).sum(-1)
    return d.argmin(-1)


def _block_means(img: np.ndarray, k: int) -> np.ndarray:
    h, w = img.shape[0] // k, img.shape[1] // k
    return img.reshape(h, k, w, k, 3).astype(np.float32).mean(axis=(1, 3))


def native_labels(img: np.ndarray, n: int | None = None) -> tuple[np.ndarray, int]:
    """Snap a frame (native or integer-upscaled, possibly lossy) to native labels; returns (labels, k).

    Without `n`, the scale k is the one whose blocks are uniform and whose grid has a wall border
    and wall corners, as every maze frame has; raises ValueError naming the size when none fits.
    With `n` (an answer frame read against its maze), only the size must fit: a frame full of
    wrong colours is still read, and scored as wrong.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    h, w = img.shape[:2]
    sizes = [n] if n is not None else range(MIN_SIZE, MAX_SIZE + 1)
    tried = []
    for m in sizes:
        side = 2 * m + 1
        if h != w or h % side:
            continue
        k = h // side
        tried.append(f"{m}x{m} cells at x{k}")
        labels = snap(_block_means(img, k))
        if n is not None:
            return labels, k
        full = snap(img.reshape(-1, 3)).reshape(h, w)
        uniform = (full == labels.repeat(k, 0).repeat(k, 1)).mean()
        corners = labels[::2, ::2]
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        # a wrong answer may paint a few corner or border pixels: tolerate 5% of them, at least one
        off_corners, off_border = int((corners != WALL).sum()), int((border != WALL).sum())
        if uniform >= 0.9 and off_corners <= max(1, corners.size // 20) and off_border <= max(1, border.size // 20):
            return labels, k
    allowed = f"(2n+1)*k pixels square with n from {MIN_SIZE} to {MAX_SIZE} and integer k >= 1"
    if not tried:
        raise ValueError(f"image of {w}x{h} pixels is not a maze frame: its side must be {allowed}")
    raise ValueError(f"image of {w}x{h} pixels is not a maze frame ({', '.join(tried)} tried: "
                     f"blocks not uniform or no wall border); expected {allowed}")
