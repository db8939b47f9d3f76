"""Procedural perfect mazes and their ground-truth solution videos.

A maze of n x n cells is drawn on a (2n+1) x (2n+1) pixel grid: cell (r, c) is pixel
(2r+1, 2c+1), the passage between two neighbouring cells is the pixel between them, every
other pixel is wall. Frame 0 of the video is the maze with a green start and a red goal;
later frames draw the shortest path (orange) from the start, progressively; the last frame
holds the whole path.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Palette (RGB, uint8). The scorer snaps pixels to these colours.
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
GREEN = (0, 255, 0)
RED = (255, 0, 0)
ORANGE = (255, 128, 0)
BLUE = (0, 0, 255)
PALETTE = {"wall": BLACK, "free": WHITE, "start": GREEN, "goal": RED, "path": ORANGE, "goal2": BLUE}

MIN_SIZE, MAX_SIZE = 3, 9
DEFAULT_SIZE = 5
DEFAULT_FRAMES = 4
MAZE_PROMPT = "draw the shortest path from the green start to the red goal without crossing any wall"
GOAL_COLOURS = {"red": RED, "blue": BLUE}


def maze_prompt(target: str = "red") -> str:
    return f"draw the shortest path from the green start to the {target} goal without crossing any wall"

Cell = tuple[int, int]


def check_size(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or not MIN_SIZE <= n <= MAX_SIZE:
        raise ValueError(f"maze size must be an integer from {MIN_SIZE} to {MAX_SIZE} cells, got {n!r}")
    return int(n)


def check_frames(frames: int) -> int:
    if not isinstance(frames, (int, np.integer)) or frames < 2:
        raise ValueError(f"a maze video needs at least 2 frames (the maze and the answer), got {frames!r}")
    return int(frames)


@dataclass
class Maze:
    """A perfect maze: `free` marks the open pixels of the (2n+1)^2 grid."""

    n: int
    seed: int
    free: np.ndarray  # (2n+1, 2n+1) bool
    start: Cell
    goal: Cell  # the red goal
    goal2: Cell | None = None  # the blue goal of a two-goal maze
    target: str = "red"  # which goal the prompt names
    extra: dict = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return maze_prompt(self.target)

    @property
    def target_cell(self) -> Cell:
        return self.goal if self.target == "red" else self.goal2

    @property
    def size_px(self) -> int:
        return 2 * self.n + 1

    def path_pixels(self, start: Cell | None = None, goal: Cell | None = None) -> list[Cell]:
        """The shortest pixel path from start to the target goal cell (or `goal`), both ends included."""
        return shortest_pixel_path(self.free, cell_px(start or self.start), cell_px(goal or self.target_cell))

    def metadata(self) -> dict:
        meta = {
            "task": "maze" if self.goal2 is None else "maze-two-goals",
            "seed": self.seed,
            "n": self.n,
            "start": list(self.start),
            "goal": list(self.goal),
            "shortest_path_length": len(self.path_pixels()) // 2,  # in cells moved
            **self.extra,
        }
        if self.goal2 is not None:
            meta.update(goal2=list(self.goal2), target=self.target)
        return meta


def cell_px(cell: Cell) -> Cell:
    return (2 * cell[0] + 1, 2 * cell[1] + 1)


def carve(n: int, rng: random.Random) -> np.ndarray:
    """Randomised depth-first search: a spanning tree of the n x n cell grid, i.e. a perfect maze."""
    free = np.zeros((2 * n + 1, 2 * n + 1), dtype=bool)
    seen = np.zeros((n, n), dtype=bool)
    stack = [(rng.randrange(n), rng.randrange(n))]
    seen[stack[0]] = True
    free[cell_px(stack[0])] = True
    while stack:
        r, c = stack[-1]
        nbrs = [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= r + dr < n and 0 <= c + dc < n and not seen[r + dr, c + dc]]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = rng.choice(nbrs)
        seen[nr, nc] = True
        free[cell_px((nr, nc))] = True
        free[r + nr + 1, c + nc + 1] = True  # the passage pixel between the two cells
        stack.append((nr, nc))
    return free


def distances(free: np.ndarray, src: Cell) -> np.ndarray:
    """(H, W) int: breadth-first steps from `src` over 4-connected free pixels; -1 where unreachable."""
    d = np.full(free.shape, -1, int)
    d[src] = 0
    queue = deque([src])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < free.shape[0] and 0 <= nc < free.shape[1] and free[nr, nc] and d[nr, nc] < 0:
                d[nr, nc] = d[r, c] + 1
                queue.append((nr, nc))
    return d


def shortest_pixel_path(free: np.ndarray, a: Cell, b: Cell) -> list[Cell]:
    """Breadth-first search over 4-connected free pixels; [] if b is unreachable."""
    prev = {a: None}
    queue = deque([a])
    while queue:
        p = queue.popleft()
        if p == b:
            break
        for q in ((p[0] - 1, p[1]), (p[0] + 1, p[1]), (p[0], p[1] - 1), (p[0], p[1] + 1)):
            if 0 <= q[0] < free.shape[0] and 0 <= q[1] < free.shape[1] and free[q] and q not in prev:
                prev[q] = p
                queue.append(q)
    if b not in prev:
        return []
    path, p = [], b
    while p is not None:
        path.append(p)
        p = prev[p]
    return path[::-1]


def generate_maze(seed: int, n: int = DEFAULT_SIZE) -> Maze:
    """A perfect n x n maze with distinct start and goal cells, deterministic by seed."""
    n = check_size(n)
    rng = random.Random(f"maze-{n}-{seed}")
    free = carve(n, rng)
    cells = [(r, c) for r in range(n) for c in range(n)]
    start, goal = rng.sample(cells, 2)
    return Maze(n=n, seed=int(seed), free=free, start=start, goal=goal)


def generate_two_goal_maze(seed: int, n: int = DEFAULT_SIZE, target: str | None = None) -> Maze:
    """A perfect maze with a red and a blue goal, neither on the way to the other; the prompt names one.

    The target is drawn from the seed unless given: the same maze with either prompt is a swap pair.
    """
    n = check_size(n)
    if target not in (None, *GOAL_COLOURS):
        raise ValueError(f"target must be one of {', '.join(GOAL_COLOURS)}, got {target!r}")
    rng = random.Random(f"maze2-{n}-{seed}")
    free = carve(n, rng)
    cells = [(r, c) for r in range(n) for c in range(n)]
    while True:
        start, red, blue = rng.sample(cells, 3)
        to_red = shortest_pixel_path(free, cell_px(start), cell_px(red))
        to_blue = shortest_pixel_path(free, cell_px(start), cell_px(blue))
        if cell_px(blue) not in to_red and cell_px(red) not in to_blue:
            break
    pick = rng.choice(sorted(GOAL_COLOURS))
    return Maze(n=n, seed=int(seed), free=free, start=start, goal=red, goal2=blue, target=target or pick)


def render_maze(maze: Maze) -> np.ndarray:
    """Frame 0: the maze, start and goal(s), (2n+1, 2n+1, 3) uint8."""
    img = np.zeros((maze.size_px, maze.size_px, 3), dtype=np.uint8)
    img[maze.free] = WHITE
    img[cell_px(maze.start)] = GREEN
    img[cell_px(maze.goal)] = RED
    if maze.goal2 is not None:
        img[cell_px(maze.goal2)] = BLUE
    return img


def render_video(maze: Maze, frames: int = DEFAULT_FRAMES, path: list[Cell] | None = None) -> np.ndarray:
    """The ground-truth video (frames, 2n+1, 2n+1, 3) uint8: the path grows from the start."""
    frames = check_frames(frames)
    base = render_maze(maze)
    inner = (path if path is not None else maze.path_pixels())[1:-1]
    video = np.repeat(base[None], frames, axis=0)
    for t in range(1, frames):
        shown = round(len(inner) * t / (frames - 1))
        for p in inner[:shown]:
            video[t][p] = ORANGE
    return video
