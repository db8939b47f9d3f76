"""Procedural reasoning tasks with rule-based scorers. `get_task(name)` returns one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import maze as _maze
from .maze_score import MazeScore, score_frame
from .sample import Sample


@dataclass(frozen=True)
class MazeTask:
    """Plain maze: draw the shortest path from the green start to the red goal."""

    name: str = "maze"
    default_size: int = _maze.DEFAULT_SIZE
    default_frames: int = _maze.DEFAULT_FRAMES
    sizes: tuple[int, int] = (_maze.MIN_SIZE, _maze.MAX_SIZE)

    def generate(self, seed: int, n: int | None = None) -> _maze.Maze:
        return _maze.generate_maze(seed, self.default_size if n is None else n)

    def video(self, item: _maze.Maze, frames: int | None = None) -> np.ndarray:
        return _maze.render_video(item, self.default_frames if frames is None else frames)

    def first_frame(self, item: _maze.Maze) -> np.ndarray:
        return _maze.render_maze(item)

    def sample(self, seed: int, n: int | None = None, frames: int | None = None, idx: int | None = None) -> Sample:
        """The sample of `seed`: first frame, prompt, ground truth and metadata."""
        item = self.generate(seed, n)
        gt = self.video(item, frames)
        return Sample(task=self.name, first_frame=gt[0], prompt=item.prompt, frames=len(gt),
                      meta=item.metadata(), ground_truth=gt, idx=idx)

    def score(self, frame: np.ndarray, first_frame: np.ndarray | None = None) -> MazeScore:
        return score_frame(frame, first_frame)


TASKS = {"maze": MazeTask()}


def get_task(name: str):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "MazeTask", "Sample", "get_task"]
