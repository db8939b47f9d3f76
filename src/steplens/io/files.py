"""Atomic file writing: a results file is either whole or absent, never half-written.

A file is written to a temporary name beside it, `.<name>.<pid>.steplens-tmp<suffix>`, then renamed over it;
its mode follows the umask, as a plainly created file's would. A process killed mid-write leaves its temporary
file behind: `clean_stale_temps(folder)` (called when a command starts on an output folder) removes those whose
process is gone, never another live process's.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TMP_MARK = ".steplens-tmp"
_TMP = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+" + re.escape(TMP_MARK))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}.", suffix=f"{TMP_MARK}{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: Path) -> int:
    """Remove the temporary files that killed steplens processes left under `folder`; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in folder.rglob(f"*{TMP_MARK}*"):
        m = _TMP.match(p.name)
        if m and p.is_file() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            n += 1
    return n


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
        img = iio.imread(path, plugin="pillow")
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
    """H.264 video of (T, H, W, 3) uint8, re-opened and its frames counted before it is committed.

    H.264 in yuv420p needs even sides: an odd-sized video is refused (never silently resized)."""
    import imageio.v2 as iio2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"writing {path}: expected frames (T, H, W, 3), got shape {frames.shape}")
    h, w_ = frames.shape[1:3]
    if h % 2 or w_ % 2:
        raise ValueError(f"writing {path}: a video of {w_}x{h} pixels cannot be encoded (H.264 needs even sides); "
                         f"use an even upscale")
    with atomic_path(path) as tmp:
        w = iio2.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1,
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
