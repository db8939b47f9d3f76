"""Maze generator and renderer: perfect mazes, shortest paths, determinism, colours, bad input.

Every structural property is checked with this file's own BFS / union-find, not the generator's code.
"""

from __future__ import annotations

import re
from collections import deque

import numpy as np
import pytest

from steplens.tasks import get_task
from steplens.tasks.maze import (
    BLACK,
    GREEN,
    MAX_SIZE,
    MIN_SIZE,
    ORANGE,
    RED,
    WHITE,
    check_size,
    generate_maze,
    render_maze,
    render_video,
)

SIZES = list(range(MIN_SIZE, MAX_SIZE + 1))
SEEDS = range(30)


# --- independent helpers -----------------------------------------------------------------------


def px(cell) -> tuple[int, int]:
    return (2 * int(cell[0]) + 1, 2 * int(cell[1]) + 1)


def bfs_map(free: np.ndarray, a) -> dict:
    """Number of 4-moves from pixel a to every reachable free pixel."""
    h, w = free.shape
    dist = {a: 0}
    q = deque([a])
    while q:
        r, c = q.popleft()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and free[nr, nc] and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                q.append((nr, nc))
    return dist


def bfs_dist(free: np.ndarray, a, b) -> int | None:
    """Number of 4-moves from pixel a to pixel b over free pixels, None if unreachable."""
    return bfs_map(free, a).get(b)


class UnionFind:
    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


def colour_mask(img: np.ndarray, colour) -> np.ndarray:
    return np.all(img == np.array(colour, dtype=np.uint8), axis=-1)


def key(maze):
    return (maze.free.tobytes(), tuple(maze.start), tuple(maze.goal))


# --- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_maze_is_perfect(n):
    side = 2 * n + 1
    cells = [(r, c) for r in range(n) for c in range(n)]
    for seed in SEEDS:
        m = generate_maze(seed, n)
        free = np.asarray(m.free)
        assert free.shape == (side, side) and free.dtype == bool
        assert m.n == n and m.size_px == side

        # border and (even, even) pixels are walls; every cell pixel is free
        assert not free[0].any() and not free[-1].any() and not free[:, 0].any() and not free[:, -1].any()
        assert not free[::2, ::2].any()
        assert free[1::2, 1::2].all()

        # every other free pixel is a passage between two horizontally or vertically adjacent cells
        uf = UnionFind(cells)
        passages = 0
        cycles = 0
        for r, c in zip(*np.nonzero(free)):
            r, c = int(r), int(c)
            if r % 2 == 1 and c % 2 == 1:
                continue  # a cell
            passages += 1
            if r % 2 == 1:  # (odd, even): joins the cells left and right of it
                a, b = ((r - 1) // 2, (c - 2) // 2), ((r - 1) // 2, c // 2)
            else:  # (even, odd): joins the cells above and below it
                a, b = ((r - 2) // 2, (c - 1) // 2), (r // 2, (c - 1) // 2)
            assert a in uf.parent and b in uf.parent, f"seed {seed}: passage {(r, c)} leads outside the grid"
            if not uf.union(a, b):
                cycles += 1
        assert passages == n * n - 1, f"seed {seed}: {passages} passages"
        assert cycles == 0, f"seed {seed}: maze has a cycle"
        assert len({uf.find(x) for x in cells}) == 1, f"seed {seed}: cells not all connected"


@pytest.mark.parametrize("n", SIZES)
def test_path_is_a_shortest_path(n):
    for seed in SEEDS:
        m = generate_maze(seed, n)
        free = np.asarray(m.free)
        path = [tuple(int(v) for v in p) for p in m.path_pixels()]
        s, g = px(m.start), px(m.goal)
        assert path[0] == s and path[-1] == g
        assert len(set(path)) == len(path), f"seed {seed}: path revisits a pixel"
        assert all(free[p] for p in path), f"seed {seed}: path touches a wall"
        for (r0, c0), (r1, c1) in zip(path, path[1:]):
            assert abs(r0 - r1) + abs(c0 - c1) == 1, f"seed {seed}: {(r0, c0)} -> {(r1, c1)} is not a 4-step"
        d = bfs_dist(free, s, g)
        assert d is not None and len(path) - 1 == d, f"seed {seed}: path has {len(path) - 1} moves, BFS {d}"


@pytest.mark.parametrize("n", SIZES)
def test_start_goal_and_metadata(n):
    for seed in SEEDS:
        m = generate_maze(seed, n)
        assert tuple(m.start) != tuple(m.goal)
        for cell in (m.start, m.goal):
            assert 0 <= cell[0] < n and 0 <= cell[1] < n
        meta = m.metadata()
        assert meta["seed"] == seed and meta["n"] == n
        assert list(meta["start"]) == list(m.start) and list(meta["goal"]) == list(m.goal)
        moves = bfs_dist(np.asarray(m.free), px(m.start), px(m.goal))
        assert moves % 2 == 0  # cell to cell is always an even number of pixel moves
        assert meta["shortest_path_length"] == moves // 2  # cells moved
        assert len(m.path_pixels()) == 2 * meta["shortest_path_length"] + 1


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_same_seed_same_maze(n):
    for seed in (0, 1, 7, 12345):
        a, b = generate_maze(seed, n), generate_maze(seed, n)
        assert np.array_equal(a.free, b.free)
        assert tuple(a.start) == tuple(b.start) and tuple(a.goal) == tuple(b.goal)
        assert np.array_equal(render_video(a), render_video(b))


@pytest.mark.parametrize("n", SIZES)
def test_different_seeds_mostly_differ(n):
    mazes = [generate_maze(seed, n) for seed in range(40)]
    distinct = {key(m) for m in mazes}
    assert len(distinct) >= 36, f"only {len(distinct)} distinct mazes out of 40 seeds"
    # the wall layout itself also varies with the seed (3x3 has few layouts a depth-first carve favours)
    layouts = len({m.free.tobytes() for m in mazes})
    assert layouts >= (20 if n == 3 else 35), f"only {layouts} distinct wall layouts out of 40 seeds"


def test_task_registry_generates_the_same_maze():
    task = get_task("maze")
    a, b = task.generate(3, 6), generate_maze(3, 6)
    assert key(a) == key(b)
    assert np.array_equal(task.first_frame(a), render_maze(b))
    with pytest.raises(ValueError, match="nope"):
        get_task("nope")


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_render_maze_colours(n):
    for seed in range(5):
        m = generate_maze(seed, n)
        img = render_maze(m)
        side = 2 * n + 1
        assert img.shape == (side, side, 3) and img.dtype == np.uint8
        free = np.asarray(m.free)
        s, g = px(m.start), px(m.goal)
        assert colour_mask(img, BLACK)[~free].all()
        assert colour_mask(img, BLACK).sum() == (~free).sum()
        assert tuple(img[s]) == GREEN and tuple(img[g]) == RED
        assert colour_mask(img, GREEN).sum() == 1 and colour_mask(img, RED).sum() == 1
        white = colour_mask(img, WHITE)
        expected_white = free.copy()
        expected_white[s] = expected_white[g] = False
        assert np.array_equal(white, expected_white)
        assert not colour_mask(img, ORANGE).any()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("frames", [2, 3, 5, 9, 40])
def test_render_video_draws_the_path_progressively(n, frames):
    for seed in range(4):
        m = generate_maze(seed, n)
        video = render_video(m, frames)
        side = 2 * n + 1
        assert video.shape == (frames, side, side, 3) and video.dtype == np.uint8
        assert np.array_equal(video[0], render_maze(m))
        s, g = px(m.start), px(m.goal)

        # independent inner path: the BFS-shortest path is unique in a perfect maze, so the set of
        # pixels strictly between start and goal is: free, not an endpoint, dist(s,p)+dist(p,g)=d
        free = np.asarray(m.free)
        from_s, from_g = bfs_map(free, s), bfs_map(free, g)
        d = from_s[g]
        inner = {p for p in from_s if p not in (s, g) and from_s[p] + from_g[p] == d}
        assert len(inner) == d - 1

        orange = [colour_mask(f, ORANGE) for f in video]
        assert not orange[0].any()
        assert {(int(r), int(c)) for r, c in zip(*np.nonzero(orange[-1]))} == inner
        counts = [int(o.sum()) for o in orange]
        assert counts == sorted(counts), f"seed {seed}: orange count decreases: {counts}"
        for t in range(1, frames):
            assert (orange[t] >= orange[t - 1]).all(), "an orange pixel disappears"
        for t, f in enumerate(video):
            assert tuple(f[s]) == GREEN and tuple(f[g]) == RED, f"frame {t} lost start/goal colour"
            # only path pixels change: walls stay black, off-path free pixels stay white
            changed = np.any(f != video[0], axis=-1)
            assert np.array_equal(changed, orange[t])
        # each frame's orange pixels are a prefix of the path grown from the start
        path = m.path_pixels()[1:-1]
        for t in range(1, frames):
            k = counts[t]
            assert {tuple(p) for p in path[:k]} == {(int(r), int(c)) for r, c in zip(*np.nonzero(orange[t]))}


def test_render_video_with_explicit_path():
    m = generate_maze(2, 5)
    path = m.path_pixels()
    assert np.array_equal(render_video(m, 4, path=path), render_video(m, 4))


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [MIN_SIZE - 1, 0, -3, MAX_SIZE + 1, 100, 5.0, 4.5, "5", None])
def test_generate_maze_rejects_bad_size(bad):
    with pytest.raises(ValueError) as e:
        generate_maze(0, bad)
    msg = str(e.value)
    assert repr(bad) in msg, msg
    rest = msg.replace(repr(bad), "")  # the allowed range, named apart from the bad value
    assert re.search(rf"\b{MIN_SIZE}\b.*\b{MAX_SIZE}\b", rest), msg
    with pytest.raises(ValueError):
        check_size(bad)


@pytest.mark.parametrize("good", [MIN_SIZE, MAX_SIZE, np.int64(5)])
def test_check_size_accepts_allowed_sizes(good):
    assert check_size(good) == int(good)
    assert generate_maze(1, good).n == int(good)


@pytest.mark.parametrize("bad", [1, 0, -2, 2.5, "3"])
def test_render_video_rejects_bad_frame_count(bad):
    m = generate_maze(0, 5)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        render_video(m, bad)
