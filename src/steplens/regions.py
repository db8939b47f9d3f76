"""Task-free pixel geometry: connected components, what changed between two frames, integer upscales.

These are the pieces every task and every chain-of-steps metric shares; none of them knows a palette.
"""

from __future__ import annotations

from math import gcd

import numpy as np

# A pixel "changed" when its RGB distance to the reference exceeds this fraction of the largest
# possible distance (255 * sqrt(3)): white -> orange is 0.65, white -> light grey (200) 0.22.
CHANGE_THRESHOLD = 0.25


def neighbours(p, shape):
    """The 4-neighbours of pixel p inside an array of `shape`."""
    r, c = p
    for q in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
        if 0 <= q[0] < shape[0] and 0 <= q[1] < shape[1]:
            yield q


def components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """4-connected components of a boolean mask, as lists of pixels."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for p in zip(*np.nonzero(mask)):
        if seen[p]:
            continue
        comp, stack = [], [p]
        seen[p] = True
        while stack:
            q = stack.pop()
            comp.append((int(q[0]), int(q[1])))
            for r in neighbours(q, mask.shape):
                if mask[r] and not seen[r]:
                    seen[r] = True
                    stack.append(r)
        out.append(comp)
    return out


def change(frame: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1]: per-pixel RGB distance of `frame` to `ref` (both RGB 0..255), over its maximum."""
    d = np.asarray(frame, np.float32) - np.asarray(ref, np.float32)
    return np.sqrt((d ** 2).sum(-1)) / (255.0 * np.sqrt(3.0))


def changed_region(first: np.ndarray, final: np.ndarray, threshold: float = CHANGE_THRESHOLD) -> np.ndarray:
    """(H, W) bool: where `final` differs from `first` by more than `threshold` (the answer's region)."""
    if first.shape != final.shape:
        raise ValueError(f"first frame {first.shape} and final frame {final.shape} differ in size")
    return change(final, first) > threshold


def native_scale(img: np.ndarray) -> int:
    """The largest integer k such that `img` is a k x k nearest-neighbour upscale (every k x k block uniform).

    Exact, for lossless images (PNG); a photograph or a frame at its native size gives 1."""
    img = np.asarray(img)
    h, w = img.shape[:2]
    g = gcd(h, w)
    for k in sorted((d for d in range(2, g + 1) if g % d == 0), reverse=True):
        small = img[::k, ::k]
        if np.array_equal(small.repeat(k, 0).repeat(k, 1), img):
            return k
    return 1


def downscale(img: np.ndarray, k: int) -> np.ndarray:
    """Undo an integer nearest-neighbour upscale of (..., H, W, C) by block means (robust to lossy input)."""
    if k == 1:
        return np.asarray(img)
    *lead, h, w, c = img.shape
    if h % k or w % k:
        raise ValueError(f"a frame of {w}x{h} pixels is not an upscale by {k}")
    x = np.asarray(img, np.float32).reshape(*lead, h // k, k, w // k, k, c).mean(axis=(-4, -2))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def snap(img: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...) index of the nearest colour of `palette` (K, 3)."""
    cols = np.asarray(palette, np.float32)
    d = ((np.asarray(img, np.float32)[..., None, :] - cols) ** 2).sum(-1)
    return d.argmin(-1)
