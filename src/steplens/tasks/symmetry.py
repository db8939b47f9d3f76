"""Symmetry completion (superposition): a pattern mirrored about its vertical axis, its right half hidden; the
answer draws the mirror image. `symmetry-open` also hides a few mirrored pairs on both sides: any colour that
keeps them mirrored is right, so early x0_hat can hold several candidate completions at once.

Picture (native pixels): an n x n grid of 2 x 2-pixel cells inside a one-pixel black border (2n + 1 pixels a
side, so the embedded model's patches are the cells); cells red, green, blue, yellow or white; hidden cells
grey. Frame 0 hides them; later frames fill the hidden columns from the axis outwards; the last frame is whole.

Difficulty knob `size`: n, the cells per side (4..10, even; default 6). Scorer `symmetry`: success when no
cell is grey, every cell visible in frame 0 is kept, and every right-half cell equals its mirror in a palette
colour (a cell whose mean lies over BLEND_TOL from its colour is a blend of two, and wrong); the score is
then 1, else 0.9 times the fraction of hidden cells that are right (0 when nothing was filled in).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .contract import Candidate, Score
from .rules import RuleBasedScorer
from .sample import Sample

CELL = 2
COLOURS = np.array([[255, 0, 0], [0, 200, 0], [0, 0, 255], [230, 200, 0], [255, 255, 255]], np.uint8)
GREY, BLACK = np.array([128, 128, 128], np.uint8), np.array([0, 0, 0], np.uint8)
PALETTE = np.concatenate([COLOURS, GREY[None], BLACK[None]])
HIDDEN = len(COLOURS)  # label of grey
MIN_N, MAX_N, DEFAULT_N = 4, 10, 6
DEFAULT_FRAMES = 3
PROMPT = "complete the pattern: the right half mirrors the left half"


def render(cells: np.ndarray) -> np.ndarray:
    """(n, n) colour labels (HIDDEN for grey) -> the (2n + 1)^2 RGB picture."""
    n = cells.shape[0]
    img = np.empty((2 * n + 1, 2 * n + 1, 3), np.uint8)
    img[:] = BLACK
    img[1:, 1:] = PALETTE[cells].repeat(CELL, 0).repeat(CELL, 1)
    return img


BLEND_TOL = 48.0  # RGB distance of a cell's mean from its palette colour above which it is a blend, not a colour


def cell_means(frame: np.ndarray, n: int) -> np.ndarray:
    return frame[1:, 1:].astype(np.float32).reshape(n, CELL, n, CELL, 3).mean(axis=(1, 3))


def read_cells(frame: np.ndarray, n: int) -> np.ndarray:
    """A native frame back to (n, n) labels by the nearest palette colour of each cell's mean."""
    from ..regions import snap

    return snap(cell_means(frame, n), PALETTE)


def off_palette(frame: np.ndarray, n: int, labels: np.ndarray) -> np.ndarray:
    """(n, n) bool: cells whose mean lies further than BLEND_TOL from the palette colour they were read as (a blend
    of two colours, e.g. half red half yellow, which the nearest colour would otherwise pass)."""
    return np.sqrt(((cell_means(frame, n) - PALETTE[labels].astype(np.float32)) ** 2).sum(-1)) > BLEND_TOL


def _native(frame: np.ndarray, side: int) -> np.ndarray:
    from ..regions import downscale

    h, w = frame.shape[:2]
    if h != w or h % side:
        raise ValueError(f"a symmetry frame here is {side}x{side} pixels or an integer upscale, got {w}x{h}")
    return downscale(frame, h // side)


@dataclass(frozen=True)
class SymmetryTask:
    name: str = "symmetry"
    open_pairs: int = 0  # mirrored pairs hidden on both sides (several right answers)
    aliases: tuple[str, ...] = ()
    default_size: int = DEFAULT_N
    sizes: tuple[int, int] = (MIN_N, MAX_N)
    default_frames: int = DEFAULT_FRAMES
    scorer: str = "symmetry"

    @property
    def palette(self) -> np.ndarray:
        return PALETTE

    def cells(self, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(the whole pattern, the pattern as frame 0 shows it)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not MIN_N <= n <= MAX_N or n % 2:
            raise ValueError(f"{self.name} size must be an even integer from {MIN_N} to {MAX_N} cells, got {n!r}")
        rng = np.random.default_rng([int(n), int(seed), self.open_pairs, 7])  # deterministic by seed
        left = rng.integers(0, len(COLOURS), (n, n // 2))
        full = np.concatenate([left, left[:, ::-1]], axis=1)
        shown = full.copy()
        shown[:, n // 2:] = HIDDEN
        if self.open_pairs:
            spots = random.Random(f"symmetry-open-{n}-{seed}").sample(range(n * (n // 2)), self.open_pairs)
            for k in spots:
                r, c = divmod(k, n // 2)
                shown[r, c] = HIDDEN
        return full, shown

    def sample(self, seed: int, size: int | None = None, frames: int | None = None, idx: int | None = None) -> Sample:
        from ..io.video import check_frames

        n = self.default_size if size is None else size
        frames = check_frames(self.default_frames if frames is None else frames)
        full, shown = self.cells(seed, n)
        video = []
        for t in range(frames):
            k = round((n // 2) * t / (frames - 1))  # columns revealed from the axis outwards
            cur = shown.copy()
            cols = list(range(n // 2, n // 2 + k)) + list(range(n // 2 - k, n // 2))
            cur[:, cols] = full[:, cols]
            video.append(render(cur if t < frames - 1 else full))
        meta = {"task": self.name, "seed": int(seed), "n": int(n), "open_pairs": self.open_pairs}
        return Sample(task=self.name, first_frame=video[0], prompt=PROMPT, frames=frames, meta=meta,
                      ground_truth=np.stack(video), idx=idx, seed=int(seed),
                      key=None if idx is None else f"{self.name}/{idx:05d}")

    def answer_region(self, sample: Sample) -> np.ndarray:
        """Every hidden cell (the right half, and the open pairs)."""
        n = (sample.first_frame.shape[0] - 1) // 2
        hidden = read_cells(sample.first_frame, n) == HIDDEN
        region = np.zeros(sample.first_frame.shape[:2], bool)
        region[1:, 1:] = hidden.repeat(CELL, 0).repeat(CELL, 1)
        return region

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """The verifier (no answer read): the `symmetry` scorer's own rules, which read only the first frame (the
        visible half is the answer's mirror; an open pair is right in any colour that keeps it mirrored): the same
        score and success, by construction."""
        return SymmetryScorer().score(video, sample)

    def check(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker: here validity is the answer (every hidden cell mirrors its visible twin, an open pair any
        colour that keeps it mirrored, nothing visible changed), so it is the verifier's rule; said, not hidden."""
        out = self.verify(video, sample)
        out.details["strength"] = "checker (the same rule as the solver: validity is the answer)"
        return out

    def check_partial(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker on a video not over yet (its last frame): every cell visible in frame 0 is kept, and every
        hidden cell filled so far in a palette colour mirrors its twin where the twin shows a colour (a twin still
        grey: not yet judged). A cell still grey, or a blend of two colours (a cell fading in), is not judged yet."""
        side = sample.first_frame.shape[0]
        n = (side - 1) // 2
        first = read_cells(_native(sample.first_frame, side), n)
        px = _native(np.asarray(video)[-1], side)
        cells = read_cells(px, n)
        shown = (cells < len(COLOURS)) & ~off_palette(px, n, cells)  # a colour, drawn crisply
        hidden = first == HIDDEN
        kept = bool((cells[~hidden] == first[~hidden]).all())
        twin, twin_shown = cells[:, ::-1], shown[:, ::-1]
        wrong = hidden & shown & twin_shown & (cells != twin)
        ok = kept and not wrong.any()
        return Score(score=float(ok), success=bool(ok), details={"visible_kept": kept, "wrong_cells": int(wrong.sum()),
                                                                 "strength": "checker", "partial": True})

    def candidates(self, sample: Sample) -> list[Candidate]:
        """symmetry-open: the first open pair (a hidden left-half cell and its mirror, in reading order) in each
        colour, the rest as the ground truth: all right answers (any colour keeps the pair mirrored), so early
        x0_hat can hold several at once. [] for plain symmetry (one answer) or without a ground truth."""
        if not self.open_pairs or sample.final_frame is None:
            return []
        n = (sample.first_frame.shape[0] - 1) // 2
        shown, full = read_cells(sample.first_frame, n), read_cells(sample.final_frame, n)
        left = np.argwhere(shown[:, : n // 2] == HIDDEN)
        if not len(left):
            return []
        r, c = (int(x) for x in left[0])
        names = ("red", "green", "blue", "yellow", "white")
        out = []
        for k, name in enumerate(names):
            cells = full.copy()
            cells[r, c] = cells[r, n - 1 - c] = k
            out.append(Candidate(f"cells ({r + 1}, {c + 1}) and ({r + 1}, {n - c}) {name}", render(cells)))
        return out


class SymmetryScorer(RuleBasedScorer):
    name = "symmetry"
    tasks = ("symmetry", "symmetry-open")

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        side = sample.first_frame.shape[0]
        n = (side - 1) // 2
        first = read_cells(_native(sample.first_frame, side), n)
        last_px = _native(np.asarray(video)[-1], side)
        last = read_cells(last_px, n)
        blended = off_palette(last_px, n, last)
        hidden = first == HIDDEN
        kept = bool((last[~hidden] == first[~hidden]).all())
        mirrored = last == last[:, ::-1]
        filled = last != HIDDEN
        right = hidden & mirrored & filled & (last < len(COLOURS)) & ~blended
        ok = kept and bool(right[hidden].all())
        frac = float(right[hidden].mean()) if hidden.any() else 1.0
        changed = bool((last[hidden] != HIDDEN).any())
        s = 1.0 if ok else (0.9 * frac * kept if changed else 0.0)
        return Score(score=float(s), success=ok, details={"hidden_right": frac, "visible_kept": kept,
                                                          "blended_cells": int((blended & hidden).sum())})


TASKS = [SymmetryTask(), SymmetryTask(name="symmetry-open", open_pairs=3)]
SCORERS = {"symmetry": SymmetryScorer}
