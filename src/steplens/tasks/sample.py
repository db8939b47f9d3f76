"""A task sample as the models and scorers see it, and writing it as a folder (the VBVR-Bench sample layout).

<root>/<task>/<idx:05d>/first_frame.png, final_frame.png, ground_truth.mp4, prompt.txt, metadata.json
PNG/MP4 are written at the native size times an integer upscale (nearest neighbour). Reading folders back
(either layout, with filters) is `steplens.tasks.folders`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
