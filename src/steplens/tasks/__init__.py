"""Procedural reasoning tasks with rule-based scorers. `get_task(name)` returns one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import maze as _maze
from .grid import native_labels
from .maze_score import MazeScore, goal_label, score_frame, score_labels
from .sample import Sample


@dataclass(frozen=True)
class MazeTask:
    """Plain maze: draw the shortest path from the green start to the red goal.

    With two_goals: a red and a blue goal, and the prompt names the one to reach.
    """

    name: str = "maze"
    two_goals: bool = False
    default_size: int = _maze.DEFAULT_SIZE
    default_frames: int = _maze.DEFAULT_FRAMES
    sizes: tuple[int, int] = (_maze.MIN_SIZE, _maze.MAX_SIZE)

    def generate(self, seed: int, n: int | None = None, target: str | None = None) -> _maze.Maze:
        n = self.default_size if n is None else n
        if self.two_goals:
            return _maze.generate_two_goal_maze(seed, n, target)
        if target not in (None, "red"):
            raise ValueError(f"task {self.name!r} has one goal (red), got target {target!r}")
        return _maze.generate_maze(seed, n)

    def video(self, item: _maze.Maze, frames: int | None = None) -> np.ndarray:
        return _maze.render_video(item, self.default_frames if frames is None else frames)

    def first_frame(self, item: _maze.Maze) -> np.ndarray:
        return _maze.render_maze(item)

    def sample(self, seed: int, n: int | None = None, frames: int | None = None, idx: int | None = None,
               target: str | None = None) -> Sample:
        """The sample of `seed`: first frame, prompt, ground truth and metadata."""
        item = self.generate(seed, n, target)
        gt = self.video(item, frames)
        return Sample(task=self.name, first_frame=gt[0], prompt=item.prompt, frames=len(gt),
                      meta=item.metadata(), ground_truth=gt, idx=idx)

    def score(self, frame: np.ndarray, first_frame: np.ndarray | None = None, prompt: str | None = None) -> MazeScore:
        """Score an RGB frame; the goal to reach is the one the prompt names (red by default)."""
        return score_frame(frame, first_frame, goal_label(prompt))

    def score_labels(self, labels: np.ndarray, first_frame: np.ndarray, prompt: str | None = None) -> MazeScore:
        """Score a native palette-label grid (e.g. a majority vote) against the first frame."""
        return score_labels(labels, native_labels(first_frame)[0], goal_label(prompt))


TASKS = {"maze": MazeTask(), "maze-two-goals": MazeTask(name="maze-two-goals", two_goals=True)}


def get_task(name: str):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "MazeTask", "Sample", "get_task"]
