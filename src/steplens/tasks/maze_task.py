"""The maze tasks as plug-ins: `maze` (green start to red goal) and `maze-two-goals` (the prompt names red or blue).

Difficulty knob: `size`, the maze's n x n cells (3..9; default 5). Several right answers: none (perfect mazes
have one shortest path). Scorer: `maze` (rule-based; prompt-aware for two goals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import maze as _maze
from .contract import Candidate, Score
from .grid import COLOURS, GOAL, GOAL2, START, WALL, native_labels
from .maze_score import (MazeScore, check_frame, check_partial_frame, continue_maze, goal_label, score_frame,
                         score_labels, verify_frame)
from .rules import RuleBasedScorer
from .sample import Sample


@dataclass(frozen=True)
class MazeTask:
    """Plain maze: draw the shortest path from the green start to the red goal.

    With two_goals: a red and a blue goal, and the prompt names the one to reach (perception before action).
    """

    name: str = "maze"
    two_goals: bool = False
    aliases: tuple[str, ...] = ()
    default_size: int = _maze.DEFAULT_SIZE
    default_frames: int = _maze.DEFAULT_FRAMES
    sizes: tuple[int, int] = (_maze.MIN_SIZE, _maze.MAX_SIZE)
    scorer: str = "maze"
    vbvr_name: str | None = None  # the VBVR-Bench task whose evaluator scores generated samples (`--scorer vbvr`)

    @property
    def palette(self) -> np.ndarray:
        """(K, 3) uint8: wall, free, start, goal, path, second goal."""
        return COLOURS.astype(np.uint8)

    # -- generator ---------------------------------------------------------------------------------------
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

    def sample(self, seed: int, size: int | None = None, frames: int | None = None, idx: int | None = None,
               target: str | None = None) -> Sample:
        """The sample of `seed`: first frame, prompt, ground truth and metadata (noise seed = `seed`)."""
        item = self.generate(seed, size, target)
        gt = self.video(item, frames)
        return Sample(task=self.name, first_frame=gt[0], prompt=item.prompt, frames=len(gt), meta=item.metadata(),
                      ground_truth=gt, idx=idx, seed=int(seed),
                      key=None if idx is None else f"{self.name}/{idx:05d}")

    # -- contract ----------------------------------------------------------------------------------------
    def answer_region(self, sample: Sample) -> np.ndarray:
        """The shortest path from the start to the goal the prompt names, both ends included."""
        ref, _ = native_labels(sample.first_frame)
        start = tuple(np.argwhere(ref == START)[0])
        goal = tuple(np.argwhere(ref == goal_label(sample.prompt))[0])
        m = np.zeros(ref.shape, dtype=bool)
        for p in _maze.shortest_pixel_path(ref != WALL, start, goal):
            m[p] = True
        return m

    def candidates(self, sample: Sample) -> list[Candidate]:
        """The answers x0_hat may weigh: the path to the goal the prompt names (right); on a two-goal maze also
        the path to the other goal (wrong: perception before action)."""
        ref, _ = native_labels(sample.first_frame)
        start = tuple(np.argwhere(ref == START)[0])
        goals = [goal_label(sample.prompt)] + ([GOAL2 if goal_label(sample.prompt) == GOAL else GOAL]
                                               if self.two_goals else [])
        out = []
        for g, right in zip(goals, (True, False)):
            where = np.argwhere(ref == g)
            if not len(where):
                continue
            frame = sample.first_frame.copy()
            for q in _maze.shortest_pixel_path(ref != WALL, start, tuple(where[0]))[1:-1]:
                frame[q] = _maze.ORANGE
            out.append(Candidate(f"path to the {'red' if g == GOAL else 'blue'} goal", frame, right))
        return out

    def validate(self, sample: Sample) -> None:
        where = f"{sample.dir / 'first_frame.png'}" if sample.dir else sample.name
        try:
            ref, _ = native_labels(sample.first_frame)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        need = {"start (green)": START, "goal (red)": GOAL}
        if goal_label(sample.prompt) == GOAL2:
            need["goal (blue), which the prompt names"] = GOAL2
        missing = [w for w, lab in need.items() if not (ref == lab).any()]
        if missing:
            raise ValueError(f"{where} is not a {self.name} first frame: it has no {' and no '.join(missing)} "
                             f"pixel (a greyscale or re-coloured image loses them)")

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """The verifier (no answer read): the last frame's path from the start to the goal the prompt names, its
        validity and its length against the shortest path solved from the first frame (`maze_score.verify_frame`).
        How it differs from the `maze` scorer: success also asks for a shortest path, which in a perfect maze
        every valid path is (the same decision); the score ranks a longer valid path above any invalid one."""
        return verify_frame(np.asarray(video)[-1], sample.first_frame, goal_label(sample.prompt))

    def check(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker (validity rules only, nothing solved): the last frame's path is one simple connected path
        from the start to the goal the prompt names, off the walls (`maze_score.check_frame`)."""
        return check_frame(np.asarray(video)[-1], sample.first_frame, goal_label(sample.prompt))

    def check_partial(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker on a video not over yet (its last frame, a frame t of a longer video): the path drawn so far
        is off the walls and one chain growing from the start, no fork (`maze_score.check_partial_frame`)."""
        return check_partial_frame(np.asarray(video)[-1], sample.first_frame, goal_label(sample.prompt))

    def continue_from(self, sample: Sample, frame: np.ndarray, strength: str = "solver") -> Sample:
        """The next link of a chain: the start moves to the tip of the verified prefix of the path drawn in
        `frame` (on a shortest path solved from the first frame, up to where the drawing forks; with
        `strength="checker"`, the connected unforked part off the walls, no distances); the walls stay. An
        ordinary sample of this task with a ground truth solved from there (`maze_score.continue_maze`)."""
        return continue_maze(sample, frame, self.name, strength)

    # -- convenience for Python users (steplens itself scores through the `maze` scorer) --------------------
    def score(self, frame: np.ndarray, first_frame: np.ndarray | None = None, prompt: str | None = None) -> MazeScore:
        """Score an RGB frame; the goal to reach is the one the prompt names (red by default)."""
        return score_frame(frame, first_frame, goal_label(prompt))

    def score_labels(self, labels: np.ndarray, first_frame: np.ndarray, prompt: str | None = None) -> MazeScore:
        """Score a native palette-label grid (e.g. a majority vote) against the first frame."""
        return score_labels(labels, native_labels(first_frame)[0], goal_label(prompt))


@dataclass(frozen=True)
class TwoGoalMazeTask(MazeTask):
    """A red and a blue goal; the prompt names the one to reach (perception before action). Its swap pair names
    the other goal."""

    name: str = "maze-two-goals"
    two_goals: bool = True

    def swap_pair(self, sample: Sample) -> Sample:
        """The same maze with the prompt naming the other goal (two-goal mazes only): the swap probe's pair."""
        from dataclasses import replace

        other = "red" if goal_label(sample.prompt) == GOAL2 else "blue"
        meta = {**sample.meta, "target": other} if sample.meta else {}
        gt = None
        if sample.ground_truth is not None and "seed" in sample.meta:
            gt = self.sample(sample.meta["seed"], sample.meta["n"], len(sample.ground_truth), target=other).ground_truth
        return replace(sample, prompt=_maze.maze_prompt(other), meta=meta, ground_truth=gt, final=None)


class MazeScorer(RuleBasedScorer):
    """Rule-based: the last frame's orange path joins the start to the goal the prompt names (red unless it
    says blue) as one simple 4-connected path off the walls. Score 1 on success; else partial credit weighted
    as VBVR-Bench's maze scorer (path off walls 0.45, reaching both ends 0.30, one component 0.20, walls kept
    0.05), floored: a frame with no path, or that does not read as a maze drawing (flat grey), scores at
    most 0.05. `details` has `shortest` and the parts."""

    name = "maze"
    tasks = ("maze", "maze-two-goals", "maze-loops")

    def score(self, video: np.ndarray, sample: Sample) -> MazeScore:
        out = score_frame(np.asarray(video)[-1], sample.first_frame, goal_label(sample.prompt))
        out.details["shortest"] = out.shortest
        return out


TASKS = [MazeTask(aliases=("maze_data-generator",), vbvr_name="O-39_maze_data-generator"),
         TwoGoalMazeTask()]
SCORERS = {"maze": MazeScorer}
