"""A task sample as the models and scorers see it, and its folder in the VBVR-Bench layout.

<root>/<task>/<idx:05d>/first_frame.png, final_frame.png, ground_truth.mp4, prompt.txt, metadata.json
PNG/MP4 are written at the native size times an integer upscale (nearest neighbour).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_write_text, read_png, write_mp4, write_png
from ..video import upscale

DEFAULT_UPSCALE = 16  # 5x5 mazes (11 px) become 176 px: visible, and a multiple of 16 for MP4


@dataclass
class Sample:
    task: str
    first_frame: np.ndarray  # (H, W, 3) uint8, native size
    prompt: str
    frames: int
    meta: dict = field(default_factory=dict)
    ground_truth: np.ndarray | None = None  # (T, H, W, 3) uint8, native size
    idx: int | None = None

    @property
    def size_px(self) -> int:
        return self.first_frame.shape[0]


def write_sample(root: Path, s: Sample, scale: int = DEFAULT_UPSCALE, fps: int = 4) -> Path:
    """Write one sample folder; each file appears whole (atomic writes)."""
    if s.idx is None or s.ground_truth is None:
        raise ValueError("a sample needs an index and a ground-truth video to be written")
    d = Path(root) / s.task / f"{s.idx:05d}"
    d.mkdir(parents=True, exist_ok=True)
    write_png(d / "first_frame.png", upscale(s.first_frame, scale))
    write_png(d / "final_frame.png", upscale(s.ground_truth[-1], scale))
    write_mp4(d / "ground_truth.mp4", upscale(s.ground_truth, scale), fps=fps)
    atomic_write_text(d / "prompt.txt", s.prompt + "\n")
    atomic_write_text(d / "metadata.json", json.dumps({**s.meta, "frames": s.frames, "upscale": scale}, indent=2))
    return d


def sample_dirs(root: Path) -> list[Path]:
    """Every sample folder (one holding first_frame.png) under root, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    found = sorted(p.parent for p in root.rglob("first_frame.png"))
    if not found:
        raise FileNotFoundError(f"no sample folders (with first_frame.png) under {root}")
    return found


def read_sample(d: Path, frames: int | None = None) -> Sample:
    """Read a sample folder back at native size; the task is the parent folder's name."""
    from .grid import COLOURS, native_labels

    d = Path(d)
    img = read_png(d / "first_frame.png")
    try:
        labels, _ = native_labels(img)
    except ValueError as e:
        raise ValueError(f"{d / 'first_frame.png'}: {e}") from None
    native = COLOURS[labels].astype(np.uint8)
    meta = json.loads((d / "metadata.json").read_text()) if (d / "metadata.json").exists() else {}
    prompt = (d / "prompt.txt").read_text().strip() if (d / "prompt.txt").exists() else ""
    t = frames or int(meta.get("frames", 0)) or None
    if t is None:
        raise ValueError(f"{d}: no frame count (metadata.json has no 'frames'); pass one explicitly")
    idx = int(d.name) if d.name.isdigit() else None
    return Sample(task=d.parent.name, first_frame=native, prompt=prompt, frames=t, meta=meta, idx=idx)
