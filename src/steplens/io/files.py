"""Atomic file writing: a results file is either whole or absent, never half-written.

A file is written to a temporary name beside it, `.<name>.<pid>-<start>.<random>.steplens-tmp<suffix>` (`start`:
the writer's start time in clock ticks since boot, where /proc tells it), then renamed over it; its mode follows the
umask, as a plainly created file's would. A process killed mid-write leaves its temporary file behind:
`clean_stale_temps(folder)` (called when a command starts on an output folder) removes those whose process is gone,
never another live process's. A pid alone does not name a process for long (pids wrap, at 32,768 in many
containers), so a temp whose pid now belongs to a process that started at another time is stale too.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TMP_MARK = ".steplens-tmp"
_TMP = re.compile(r"^\..+\.(\d+)(?:-(\d+))?\.[a-z0-9_]+" + re.escape(TMP_MARK))  # names before `start`: pid only


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path.parent, path.stem, path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc/<pid>/stat, field 22); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # the fields after the command name's ")" start at field 3
    except (IndexError, ValueError):
        return None


def _owner() -> str:
    """This process as a temp file names it: `<pid>-<start>`, or `<pid>` where the start time is unknown."""
    pid = os.getpid()
    start = _start_ticks(pid)
    return f"{pid}" if start is None else f"{pid}-{start}"


def _writer_alive(pid: int, start: int | None) -> bool:
    """Whether the process that wrote a temp file still runs: its pid is alive and, where the name and /proc tell
    both, that pid's process started when the writer did (not a later process given the same pid)."""
    if not _alive(pid):
        return False
    now = None if start is None else _start_ticks(pid)
    return now is None or now == start


def temp_file(folder: Path, stem: str, suffix: str = "") -> tuple[int, str]:
    """A new temporary file in `folder` named as `clean_stale_temps` knows it (its writer's pid and start time):
    (open descriptor, path), as tempfile.mkstemp."""
    return tempfile.mkstemp(dir=folder, prefix=f".{stem}.{_owner()}.", suffix=f"{TMP_MARK}{suffix}")


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
        if m and p.is_file() and not _writer_alive(int(m.group(1)), None if m.group(2) is None else int(m.group(2))):
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


IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
               b"BM": "BMP"}
LOSSY = ("JPEG", "MPO")  # formats whose pixels are not the frame they were saved from


def image_kind(path: Path) -> str | None:
    """The image format a file holds by its first bytes (PNG, JPEG, GIF, BMP, WEBP), whatever its name; None for
    none of those."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in IMAGE_MAGIC.items() if head.startswith(magic)), None)


def read_png(path: Path) -> np.ndarray:
    """An 8-bit RGB image, read by its content (not its name): a lossy JPEG under a .png name is refused by name,
    its pixels being no exact frame (steplens reads sizes and palettes back from exact pixels)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    kind = image_kind(path)
    if kind in LOSSY and path.suffix.lower() == ".png":
        raise ValueError(f"{path} holds a {kind} image, not a PNG (by its content): a lossy copy whose pixels are "
                         f"not the frame's; save the original frame as PNG")
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


def write_mp4(path: Path, frames: np.ndarray, fps: float = 4) -> None:
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
    check_video_file(path)
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


def check_video_file(path: Path) -> None:
    """Refuse, by name, a video file that holds an image (a PNG or JPEG saved under a video's name: ffmpeg would read
    it as a one-frame video)."""
    kind = image_kind(path) if Path(path).is_file() else None
    if kind is not None:
        raise ValueError(f"{path} is not a readable video: it holds a {kind} image (by its content)")


def count_frames(path: Path) -> int:
    """Frames of a video file (decoded, so a truncated file is caught); ValueError naming it if unreadable."""
    import imageio.v2 as iio2

    path = Path(path)
    check_video_file(path)
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


@contextmanager
def folder_lock(folder: Path):
    """An exclusive lock on `folder` itself (flock on the directory, made if missing; no file is added), held for the
    block: writers of one folder (two commands, or the ranks of one torchrun) check and claim its configuration one
    at a time. Released when the block ends or the process dies."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def read_text(path: Path) -> str:
    """A text file as users save it: UTF-8 (with or without a BOM) or UTF-16 with its BOM; another encoding (Latin-1,
    UTF-16 without a BOM) is refused naming the file and the first byte that is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start}: "
                         f"{e.reason}); save it as UTF-8 (or UTF-16 with its byte-order mark)") from None


def read_config(path: Path) -> dict:
    """An output folder's recorded configuration (a JSON object), refused by name where unreadable."""
    import json

    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable configuration (JSON): {e}; delete it or use another --out") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a configuration (a JSON object); delete it or use another --out")
    return saved


def config_diff(saved: dict, given: dict) -> str:
    """'field: saved X, given Y; ...' for every top-level field in which two recorded configurations differ."""
    keys = list(dict.fromkeys([*saved, *given]))
    return "; ".join(f"{k}: saved {json.dumps(saved.get(k), default=str)}, given {json.dumps(given.get(k), default=str)}"
                     for k in keys if saved.get(k) != given.get(k))


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes in data[start:end]."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < head or start + size > end:
            return
        yield kind, start + head, start + size
        start += size


def _mp4_fps(data: bytes) -> float | None:
    """The frame rate of an MP4's first video track from its header (mdhd timescale / the commonest stts delta),
    read in-process (no ffmpeg); None where the file does not say it that way."""
    def child(start, end, kind):
        return next(((a, b) for k, a, b in _boxes(data, start, end) if k == kind), None)

    moov = child(0, len(data), b"moov")
    for kind, a, b in _boxes(data, *moov) if moov else ():
        if kind != b"trak":
            continue
        mdia = child(a, b, b"mdia")
        hdlr = mdia and child(*mdia, b"hdlr")
        if not hdlr or data[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        mdhd = child(*mdia, b"mdhd")
        version = data[mdhd[0]]
        timescale = struct.unpack(">I", data[mdhd[0] + (20 if version == 1 else 12):][:4])[0]
        stbl = (minf := child(*mdia, b"minf")) and child(*minf, b"stbl")
        stts = stbl and child(*stbl, b"stts")
        if not stts or not timescale:
            return None
        n = struct.unpack(">I", data[stts[0] + 4:stts[0] + 8])[0]
        entries = [struct.unpack(">II", data[stts[0] + 8 + 8 * i:stts[0] + 16 + 8 * i]) for i in range(n)]
        _, delta = max(entries, default=(0, 0))
        return timescale / delta if delta else None
    return None


def video_fps(path: Path) -> float | None:
    """The frame rate an MP4 file declares (its header, read in-process; else ffmpeg's reading), or None where it
    declares none; ValueError naming the file if it is not a readable video."""
    import imageio.v2 as iio2

    check_video_file(path)
    try:
        fps = _mp4_fps(Path(path).read_bytes())
    except (struct.error, IndexError, TypeError):
        fps = None
    if fps:
        return round(fps, 3)
    try:
        with iio2.get_reader(str(path), format="FFMPEG") as r:
            fps = r.get_meta_data().get("fps")
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path} is not a readable video (its frame rate is needed): {first}") from None
    return float(fps) if fps and math.isfinite(float(fps)) and fps > 0 else None
