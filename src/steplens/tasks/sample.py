"""A task sample as the models and scorers see it, and writing it as a folder (the VBVR-Bench sample layout).

<root>/<task>/<idx:05d>/first_frame.png, final_frame.png, ground_truth.mp4, prompt.txt, metadata.json
PNG/MP4 are written at the native size times an integer upscale (nearest neighbour). Reading folders back
(either layout, with filters) is `steplens.tasks.folders`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..io.files import atomic_write_text, write_mp4, write_png
from ..io.video import upscale

DEFAULT_UPSCALE = 16  # 5x5 mazes (11 px) become 176 px: visible, and a multiple of 16 for MP4


@dataclass
class Sample:
    task: str
    first_frame: np.ndarray  # (H, W, 3) uint8, native size
    prompt: str
    frames: int | None  # frames to generate (the model's count); None: from video_frames, mapped by the model
    meta: dict = field(default_factory=dict)
    ground_truth: np.ndarray | None = None  # (T, H, W, 3) uint8, native size
    idx: int | None = None
    key: str | None = None  # where it lives: "<task>/<idx>" or "<split>/<task>/<idx>"; outputs mirror it
    seed: int | None = None  # noise seed (a generated sample: its generator seed)
    final: np.ndarray | None = None  # (H, W, 3) uint8 final frame of the ground truth, when no video is held
    dir: Path | None = None  # the sample folder it was read from
    scale: int = 1  # integer upscale of its files on disk
    video_frames: int | None = None  # frames of its ground_truth.mp4
    # why steplens's own task checks, scorer and drawing hooks do not apply (a folder sample that is not steplens's
    # drawing, e.g. VBVR-Bench's rendered frames): it is taken as it is; None: they apply
    foreign: str | None = None
    # the K >= 1 leading clean frames the model is given ((K, H, W, 3) uint8, native size; frame 0 = first_frame):
    # a frame-prefix sample (`steplens.prefix.continue_from_frames`); None: the first frame alone (K = 1)
    prefix: np.ndarray | None = None

    @property
    def known_frames(self) -> int:
        """K: the clean leading frames the model is given (1: image-to-video)."""
        return 1 if self.prefix is None else int(len(self.prefix))

    @property
    def size_px(self) -> int:
        return self.first_frame.shape[0]

    @property
    def final_frame(self) -> np.ndarray | None:
        """The ground truth's final frame at the native size, if known."""
        if self.ground_truth is not None:
            return self.ground_truth[-1]
        return self.final

    @property
    def name(self) -> str:
        """How the sample is named in messages and tables."""
        return self.key or f"{self.task}/{self.idx}"


def continue_from_frames(sample: Sample, frames: np.ndarray, k: int) -> Sample:
    """The same sample, its model given the first `k` frames of `frames` ((T, H, W, 3) uint8 at the sample's native
    size or an integer upscale; T >= k): the rest is generated. Task-free: it needs nothing from the task, and the
    answer (ground truth, scorer) is unchanged. k = 1 keeps frame 0 of `frames` as the first frame."""
    from ..regions import downscale

    frames = np.asarray(frames)
    total = sample.frames or (len(sample.ground_truth) if sample.ground_truth is not None else None)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k = {k!r}: the leading frames given must be a whole number >= 1")
    if total is not None and k >= total:
        raise ValueError(f"k = {k}: {sample.name} has {total} frames; k must leave at least one to generate "
                         f"(1..{total - 1})")
    if frames.ndim != 4 or len(frames) < k:
        raise ValueError(f"k = {k}: need a (T, H, W, 3) video of at least {k} frames, got shape {frames.shape}")
    h, w = sample.first_frame.shape[:2]
    fh, fw = frames.shape[1:3]
    if fh % h or fw % w or fh // h != fw // w:
        raise ValueError(f"frames of {fw}x{fh} pixels are not {sample.name}'s {w}x{h} or an integer upscale of it")
    native = np.stack([downscale(f, fh // h) for f in frames[:k]]).astype(np.uint8)
    meta = {**sample.meta, "prefix_frames": int(k)}
    return replace(sample, first_frame=native[0], prefix=native if k > 1 else None, meta=meta)


def write_sample(root: Path, s: Sample, scale: int = DEFAULT_UPSCALE, fps: int = 4, metadata: bool = True,
                 rel: str | None = None) -> Path:
    """Write one sample folder (`root/<rel or task/idx:05d>/`); each file appears whole (atomic writes).

    metadata=False leaves out metadata.json, as VBVR-Bench's released samples do."""
    if s.idx is None or s.ground_truth is None:
        raise ValueError("a sample needs an index and a ground-truth video to be written")
    d = Path(root) / (rel or f"{s.task}/{s.idx:05d}")
    d.mkdir(parents=True, exist_ok=True)
    write_png(d / "first_frame.png", upscale(s.first_frame, scale))
    write_png(d / "final_frame.png", upscale(s.ground_truth[-1], scale))
    write_mp4(d / "ground_truth.mp4", upscale(s.ground_truth, scale), fps=fps)
    atomic_write_text(d / "prompt.txt", s.prompt + "\n")
    if metadata:
        atomic_write_text(d / "metadata.json", json.dumps({**s.meta, "frames": s.frames, "upscale": scale}, indent=2))
    return d
