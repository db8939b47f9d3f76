"""Atomic file writing: a results file is either whole or absent, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_png(path: Path, img: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.asarray(img, dtype=np.uint8), extension=".png")


def read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        img = iio.imread(path)
    except Exception as e:
        raise ValueError(f"{path} is not a readable image ({type(e).__name__}: {e})") from None
    if img.dtype != np.uint8:
        raise ValueError(f"{path} has {img.dtype} pixels; steplens reads 8-bit images (uint8 RGB)")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (3, 4) or 0 in img.shape:
        raise ValueError(f"{path} is not an RGB image (shape {img.shape})")
    return img[..., :3]


def write_mp4(path: Path, frames: np.ndarray, fps: int = 4) -> None:
    """H.264 video of (T, H, W, 3) uint8; H and W should be even (use an even upscale)."""
    import imageio.v2 as iio2

    with atomic_path(path) as tmp:
        w = iio2.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2,
                            ffmpeg_params=["-crf", "10"], pixelformat="yuv420p", ffmpeg_log_level="error")
        for f in frames:
            w.append_data(np.asarray(f, dtype=np.uint8))
        w.close()
        try:  # never commit a failed or truncated encode
            got = count_frames(tmp)
        except ValueError as e:
            raise OSError(f"writing {path} failed: the encoded video cannot be read back (a full disk or a file-size "
                          f"limit?): {e}") from None
        if got != len(frames):
            raise OSError(f"writing {path} failed: the encoded video holds {got} of {len(frames)} frames")


def read_mp4(path: Path) -> np.ndarray:
    import imageio.v2 as iio2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        r = iio2.get_reader(str(path), format="FFMPEG")
        try:
            frames = [f[..., :3] for f in r]
        finally:
            r.close()
    except Exception as e:
        raise ValueError(f"{path} is not a readable video ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not frames:
        raise ValueError(f"{path} holds no frames")
    return np.stack(frames)


def count_frames(path: Path) -> int:
    """Frames of a video file (decoded, so a truncated file is caught); ValueError naming it if unreadable."""
    import imageio.v2 as iio2

    path = Path(path)
    try:
        r = iio2.get_reader(str(path), format="FFMPEG")
        try:
            n = r.count_frames()
        finally:
            r.close()
    except Exception as e:
        raise ValueError(f"{path} is not a readable video ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if n < 1:
        raise ValueError(f"{path} holds no frames")
    return int(n)


def write_gif(path: Path, frames: np.ndarray, fps: int = 4) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.asarray(frames, dtype=np.uint8), extension=".gif", duration=1000 / fps, loop=0)
