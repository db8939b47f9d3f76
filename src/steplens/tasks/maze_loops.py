"""Mazes with loops: several shortest paths from start to goal, any of them is right.

A perfect maze with walls knocked down until start and goal are joined by at least two shortest paths: early
x0_hat can hold several candidate routes at once (multi-path exploration) before one wins. Drawn as `maze`
(walls black, start green, goal red, the path orange, growing frame by frame).

Difficulty knob `size`: n x n cells (4..9, default 6; larger mazes need more of the model's steps). Scorer
`maze-shortest`: success when the orange path is one simple 4-connected path from start to goal, off the walls,
and a shortest one; score 1 then, 0.5 for a valid path that is not shortest, else the maze scorer's partial
credit with its floor (a frame with no path, or a flat one, scores at most 0.05).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import numpy as np

from . import maze as _maze
from .contract import Candidate, Score
from .grid import COLOURS, native_labels
from .maze_score import GOAL, START, WALL, check_frame, check_partial_frame, continue_maze, score_frame, verify_frame
from .rules import RuleBasedScorer
from .sample import Sample

MIN_SIZE, DEFAULT_SIZE = 4, 6
PROMPT = _maze.maze_prompt("red")


def count_shortest(free: np.ndarray, a, b) -> tuple[int, np.ndarray]:
    """(number of shortest pixel paths from a to b, (H, W) bool of the pixels on any of them)."""
    def bfs(src):
        dist = np.full(free.shape, -1, int)
        ways = np.zeros(free.shape, np.int64)
        dist[src], ways[src] = 0, 1
        q = deque([src])
        while q:
            p = q.popleft()
            for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                n = (p[0] + d[0], p[1] + d[1])
                if 0 <= n[0] < free.shape[0] and 0 <= n[1] < free.shape[1] and free[n]:
                    if dist[n] < 0:
                        dist[n] = dist[p] + 1
                        q.append(n)
                    if dist[n] == dist[p] + 1:
                        ways[n] += ways[p]
        return dist, ways
    da, wa = bfs(a)
    db, _ = bfs(b)
    on = (da >= 0) & (db >= 0) & (da + db == da[b])
    return int(wa[b]), on


def generate(seed: int, n: int) -> tuple[_maze.Maze, list]:
    """A maze of n x n cells whose start and goal have >= 2 shortest paths; and the path the video draws."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not MIN_SIZE <= n <= _maze.MAX_SIZE:
        raise ValueError(f"maze-loops size must be an integer from {MIN_SIZE} to {_maze.MAX_SIZE} cells, got {n!r}")
    rng = random.Random(f"maze-loops-{n}-{seed}")
    while True:
        free = _maze.carve(n, rng)
        cells = [(r, c) for r in range(n) for c in range(n)]
        start, goal = rng.sample(cells, 2)
        if abs(start[0] - goal[0]) + abs(start[1] - goal[1]) < n // 2:
            continue  # too close to leave room for two routes
        walls = [(r, c) for r in range(1, 2 * n) for c in range(1, 2 * n) if (r + c) % 2 == 1 and not free[r, c]]
        rng.shuffle(walls)
        for w in walls[: max(2, n)]:  # knock down a few walls: loops
            free[w] = True
        a, b = _maze.cell_px(start), _maze.cell_px(goal)
        ways, _ = count_shortest(free, a, b)
        if ways >= 2:
            m = _maze.Maze(n=int(n), seed=int(seed), free=free, start=start, goal=goal)
            path = _maze.shortest_pixel_path(free, a, b)
            return m, path


def shortest_paths(free: np.ndarray, a, b, limit: int = 8) -> list[list]:
    """Up to `limit` shortest pixel paths from a to b (4-connected over free pixels), in a fixed order."""
    da, db = _maze.distances(free, a), _maze.distances(free, b)
    total = da[b]
    if total < 0:
        return []
    paths, stack = [], [[a]]
    while stack and len(paths) < limit:
        path = stack.pop()
        r, c = path[-1]
        if (r, c) == tuple(b):
            paths.append(path)
            continue
        for nr, nc in ((r, c - 1), (r, c + 1), (r - 1, c), (r + 1, c)):
            if (0 <= nr < free.shape[0] and 0 <= nc < free.shape[1] and da[nr, nc] == da[r, c] + 1
                    and db[nr, nc] == total - da[nr, nc]):
                stack.append(path + [(nr, nc)])
    return paths


@dataclass(frozen=True)
class MazeLoopsTask:
    name: str = "maze-loops"
    aliases: tuple[str, ...] = ()
    default_size: int = DEFAULT_SIZE
    sizes: tuple[int, int] = (MIN_SIZE, _maze.MAX_SIZE)
    default_frames: int = _maze.DEFAULT_FRAMES
    scorer: str = "maze-shortest"

    @property
    def palette(self) -> np.ndarray:
        return COLOURS.astype(np.uint8)

    def sample(self, seed: int, size: int | None = None, frames: int | None = None, idx: int | None = None) -> Sample:
        m, path = generate(seed, self.default_size if size is None else size)
        video = _maze.render_video(m, self.default_frames if frames is None else frames, path=path)
        ways, _ = count_shortest(m.free, _maze.cell_px(m.start), _maze.cell_px(m.goal))
        meta = {**m.metadata(), "task": self.name, "shortest_paths": ways}
        return Sample(task=self.name, first_frame=video[0], prompt=PROMPT, frames=len(video), meta=meta,
                      ground_truth=video, idx=idx, seed=int(seed), key=None if idx is None else f"{self.name}/{idx:05d}")

    def answer_region(self, sample: Sample) -> np.ndarray:
        """Every pixel on some shortest path (all right answers), start and goal included."""
        ref, _ = native_labels(sample.first_frame)
        start, goal = tuple(np.argwhere(ref == START)[0]), tuple(np.argwhere(ref == GOAL)[0])
        return count_shortest(ref != WALL, start, goal)[1]

    def candidates(self, sample: Sample) -> list[Candidate]:
        """Every right answer: each shortest path drawn (up to 8 of them)."""
        ref, _ = native_labels(sample.first_frame)
        start, goal = tuple(np.argwhere(ref == START)[0]), tuple(np.argwhere(ref == GOAL)[0])
        out = []
        for k, path in enumerate(shortest_paths(ref != WALL, start, goal)):
            frame = sample.first_frame.copy()
            for q in path[1:-1]:
                frame[q] = _maze.ORANGE
            out.append(Candidate(f"shortest path {k + 1}", frame))
        return out

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """The verifier (no answer read): success when the last frame's path is one of the shortest paths solved
        from the first frame (`maze_score.verify_frame`), as the `maze-shortest` scorer (which reads only the
        first frame too) decides; the score differs: a valid longer path 0.5 + 0.5 * shortest / its length (the
        scorer: 0.5), anything else half the maze scorer's partial credit (the scorer: up to 0.49)."""
        return verify_frame(np.asarray(video)[-1], sample.first_frame, GOAL)

    def check(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker (validity rules only, nothing solved): one simple connected path from the start to the goal,
        off the walls (`maze_score.check_frame`); unlike the verifier and the scorer it cannot tell a shortest path
        from a longer one (that needs the maze solved), so it accepts both."""
        return check_frame(np.asarray(video)[-1], sample.first_frame, GOAL)

    def check_partial(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker on a video not over yet, as the maze's (`maze_score.check_partial_frame`)."""
        return check_partial_frame(np.asarray(video)[-1], sample.first_frame, GOAL)

    def continue_from(self, sample: Sample, frame: np.ndarray, strength: str = "solver") -> Sample:
        """The next link of a chain, as the maze's: the start moves to the tip of the verified prefix (the part of
        the drawing that commits to one way, on a shortest path; `maze_score.continue_maze`); the walls stay. The
        new maze may have a single shortest path left: still a maze-loops sample for the scorer and the verifier."""
        return continue_maze(sample, frame, self.name, strength)

    def validate(self, sample: Sample) -> None:
        ref, _ = native_labels(sample.first_frame)
        if not (ref == START).any() or not (ref == GOAL).any():
            raise ValueError(f"{sample.name} is not a maze-loops first frame: no start (green) or goal (red) pixel")


class MazeShortestScorer(RuleBasedScorer):
    name = "maze-shortest"
    tasks = ("maze", "maze-loops")

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        s = score_frame(np.asarray(video)[-1], sample.first_frame)
        score = 1.0 if s.shortest else 0.5 if s.success else min(s.score, 0.49)
        return Score(score=float(score), success=bool(s.shortest), details={**s.details, "valid_path": s.success})


TASKS = [MazeLoopsTask()]
SCORERS = {"maze-shortest": MazeShortestScorer}
