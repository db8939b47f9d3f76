"""Maze scorer: ground truth passes at every scale, hand-built wrong answers fail and say why, bad input is refused."""

from __future__ import annotations

import re
from collections import deque

import numpy as np
import pytest

from steplens.io.video import upscale
from steplens.tasks import get_task
from steplens.tasks.grid import FREE, GOAL, PATH, START, WALL
from steplens.tasks.maze import BLACK, MAX_SIZE, MIN_SIZE, ORANGE, WHITE, generate_maze, render_video
from steplens.tasks.maze_score import WEIGHTS, MazeScore, score_frame, score_labels

SIZES = list(range(MIN_SIZE, MAX_SIZE + 1))
SCALES = [1, 2, 3, 8, 16]


# --- independent helpers -----------------------------------------------------------------------


def px(cell) -> tuple[int, int]:
    return (2 * int(cell[0]) + 1, 2 * int(cell[1]) + 1)


def nbrs(p, side):
    r, c = p
    for q in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
        if 0 <= q[0] < side and 0 <= q[1] < side:
            yield q


def bfs_path(free: np.ndarray, a, b) -> list:
    """This file's own BFS: a shortest 4-connected free-pixel path from a to b, both ends included."""
    prev = {a: None}
    q = deque([a])
    while q:
        p = q.popleft()
        for nb in nbrs(p, free.shape[0]):
            if free[nb] and nb not in prev:
                prev[nb] = p
                q.append(nb)
    assert b in prev
    out, p = [], b
    while p is not None:
        out.append(p)
        p = prev[p]
    return out[::-1]


class Case:
    """A maze with its native first frame, ground-truth last frame and independently computed path."""

    def __init__(self, seed: int, n: int):
        self.maze = generate_maze(seed, n)
        self.video = render_video(self.maze, 5)
        self.first, self.last = self.video[0], self.video[-1]
        self.free = np.asarray(self.maze.free)
        self.side = 2 * n + 1
        self.s, self.g = px(self.maze.start), px(self.maze.goal)
        self.path = bfs_path(self.free, self.s, self.g)
        self.inner = self.path[1:-1]

    def frame_with(self, orange) -> np.ndarray:
        """The first frame with the given pixels painted orange."""
        f = self.first.copy()
        for p in orange:
            f[p] = ORANGE
        return f


def cases(pred, per_size=2, seeds=range(60)):
    """Up to `per_size` (n, seed) cases per maze size whose maze satisfies `pred`."""
    out = []
    for n in SIZES:
        found = 0
        for seed in seeds:
            c = Case(seed, n)
            if pred(c):
                out.append(c)
                found += 1
                if found == per_size:
                    break
    assert len(out) >= len(SIZES), "too few mazes fit the case"
    return out


def assert_perfect(sc: MazeScore, c: Case):
    assert isinstance(sc, MazeScore)
    assert sc.success is True and sc.shortest is True and sc.score == 1.0, sc
    d = sc.details
    assert d["path_pixels"] == len(c.inner)
    assert d["shortest_length"] == len(c.path)
    assert d["path_on_walls"] == 0 and d["components"] == 1 and d["simple_path"] is True
    assert tuple(d["start"]) == c.s and tuple(d["goal"]) == c.g


def assert_wrong(sc: MazeScore):
    assert sc.success is False and sc.shortest is False, sc
    assert 0.0 <= sc.score < 1.0, sc


def both_ways(frame: np.ndarray, first: np.ndarray, k: int = 1):
    """Score with and without the first frame, at scale k."""
    return [score_frame(upscale(frame, k), upscale(first, k)), score_frame(upscale(frame, k))]


# --- ground truth ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("k", SCALES)
def test_ground_truth_scores_one(n, k):
    for seed in (0, 1):
        c = Case(seed, n)
        frame, first = upscale(c.last, k), upscale(c.first, k)
        assert frame.shape == (c.side * k, c.side * k, 3)
        assert_perfect(score_frame(frame, first), c)
        assert_perfect(score_frame(frame), c)
        assert score_frame(frame).details["endpoints_kept"] is True


def test_task_registry_scores_ground_truth():
    task = get_task("maze")
    item = task.generate(4, 7)
    video = task.video(item)
    sc = task.score(upscale(video[-1], 8), upscale(task.first_frame(item), 8))
    assert sc.success and sc.shortest and sc.score == 1.0
    assert sc.to_dict()["success"] is True and sc.to_dict()["details"]["components"] == 1


def test_intermediate_ground_truth_frames_are_not_answers():
    for c in cases(lambda c: len(c.inner) >= 3):
        for t in range(len(c.video) - 1):
            for sc in both_ways(c.video[t], c.first):
                assert_wrong(sc)


# --- wrong answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4])
def test_static_first_frame_fails(k):
    for c in cases(lambda c: True):
        for sc in both_ways(c.first, c.first, k):
            assert_wrong(sc)
            assert sc.details["path_pixels"] == 0
            # a frame without any path pixel scores at most the walls term
            assert sc.score <= WEIGHTS["walls_kept"]


@pytest.mark.parametrize("k", [1, 4])
def test_broken_path_fails(k):
    for c in cases(lambda c: len(c.inner) >= 3):
        mid = len(c.inner) // 2
        frame = c.frame_with(c.inner[:mid] + c.inner[mid + 1:])
        for sc in both_ways(frame, c.first, k):
            assert_wrong(sc)
            assert sc.details["path_pixels"] == len(c.inner) - 1
            assert sc.details["components"] == 2  # start half and goal half
            assert sc.details["path_on_walls"] == 0


def _branch_pixel(c: Case):
    """A free pixel off the path, 4-adjacent to an inner path pixel."""
    on = set(c.path)
    for p in c.inner:
        for q in nbrs(p, c.side):
            if c.free[q] and q not in on:
                return q
    return None


@pytest.mark.parametrize("k", [1, 4])
def test_branching_path_fails(k):
    for c in cases(lambda c: _branch_pixel(c) is not None):
        q = _branch_pixel(c)
        for sc in both_ways(c.frame_with(c.inner + [q]), c.first, k):
            assert_wrong(sc)
            assert sc.details["simple_path"] is False
            assert sc.details["components"] == 1
            assert sc.details["path_on_walls"] == 0


def _stray_pixel(c: Case):
    """A free pixel not on the path and not 4-adjacent to any path pixel (endpoints included)."""
    near = set(c.path)
    for p in c.path:
        near.update(nbrs(p, c.side))
    for r, col in zip(*np.nonzero(c.free)):
        if (int(r), int(col)) not in near:
            return (int(r), int(col))
    return None


@pytest.mark.parametrize("k", [1, 4])
def test_stray_orange_pixel_fails(k):
    for c in cases(lambda c: _stray_pixel(c) is not None):
        for sc in both_ways(c.frame_with(c.inner + [_stray_pixel(c)]), c.first, k):
            assert_wrong(sc)
            assert sc.details["components"] == 2
            assert sc.details["simple_path"] is False


def _wall_beside_path(c: Case, corner: bool | None = None):
    """A wall pixel 4-adjacent to an inner path pixel, off the border; corner=True/False: an (even, even)
    wall corner / a wall between two cells; None: either."""
    for p in c.inner:
        for q in nbrs(p, c.side):
            is_corner = q[0] % 2 == 0 and q[1] % 2 == 0
            if (not c.free[q] and 0 < q[0] < c.side - 1 and 0 < q[1] < c.side - 1
                    and (corner is None or corner == is_corner)):
                return q
    return None


@pytest.mark.parametrize("k", [1, 4])
def test_orange_on_a_wall_beside_the_path_fails(k):
    for c in cases(lambda c: _wall_beside_path(c) is not None):
        frame = c.frame_with(c.inner + [_wall_beside_path(c)])
        sc = score_frame(upscale(frame, k), upscale(c.first, k))
        assert_wrong(sc)
        assert sc.details["path_on_walls"] == 1
        assert sc.details["off_walls"] < 1.0


@pytest.mark.parametrize("k", [1, 4])
def test_orange_on_a_wall_between_cells_fails_without_first_frame(k):
    # without the first frame the orange wall pixel reads as free, but it still makes a branch
    for c in cases(lambda c: _wall_beside_path(c, corner=False) is not None):
        sc = score_frame(upscale(c.frame_with(c.inner + [_wall_beside_path(c, corner=False)]), k))
        assert_wrong(sc)
        assert sc.details["simple_path"] is False


@pytest.mark.parametrize("n", [4, 5, MAX_SIZE])
def test_orange_on_a_wall_corner_fails_without_first_frame(n):
    found = 0
    for seed in range(20):
        c = Case(seed, n)
        w = _wall_beside_path(c, corner=True)
        if w is None:
            continue
        found += 1
        sc = score_frame(c.frame_with(c.inner + [w]))
        assert_wrong(sc)
        assert sc.details["simple_path"] is False
    assert found >= 3


def test_orange_on_a_wall_corner_fails_without_first_frame_3x3():
    found = 0
    for seed in range(20):
        c = Case(seed, 3)
        w = _wall_beside_path(c, corner=True)
        if w is None:
            continue
        found += 1
        assert_wrong(score_frame(c.frame_with(c.inner + [w])))
    assert found >= 3


def _detached_ring(c: Case):
    """The 8 pixels around an interior wall corner, none on or 4-adjacent to the path."""
    near = set(c.path)
    for p in c.path:
        near.update(nbrs(p, c.side))
    for r in range(2, c.side - 2, 2):
        for col in range(2, c.side - 2, 2):
            ring = [(r + dr, col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
            if not near.intersection(ring):
                return ring
    return None


@pytest.mark.parametrize("k", [1, 4])
def test_path_plus_detached_loop_fails(k):
    # every orange pixel has two orange neighbours and the ends one: only the component count catches it
    for c in cases(lambda c: _detached_ring(c) is not None):
        ring = _detached_ring(c)
        frame = c.frame_with(c.inner + ring)
        sc = score_frame(upscale(frame, k))
        assert_wrong(sc)
        assert sc.details["components"] == 2 and sc.details["simple_path"] is True
        assert sc.details["path_on_walls"] == 0  # walls read from the frame: orange counts as free
        sc = score_frame(upscale(frame, k), upscale(c.first, k))
        assert_wrong(sc)
        # a perfect maze has no cycle, so the loop must lie partly on walls
        assert sc.details["path_on_walls"] == sum(not c.free[p] for p in ring) > 0


def _l_path(c: Case) -> list:
    """Start -> along the start row to the goal column -> along that column to the goal (pixels)."""
    (r1, c1), (r2, c2) = c.s, c.g
    step_c = 1 if c2 >= c1 else -1
    step_r = 1 if r2 >= r1 else -1
    out = [(r1, x) for x in range(c1, c2 + step_c, step_c)]
    out += [(y, c2) for y in range(r1 + step_r, r2 + step_r, step_r)]
    return out


@pytest.mark.parametrize("k", [1, 4])
def test_path_through_walls_fails(k):
    # when the maze path is longer than the Manhattan distance, the straight L-shaped path must cross
    # walls (otherwise it would be a shorter path through the maze)
    for c in cases(lambda c: len(c.path) > len(_l_path(c))):
        lp = _l_path(c)
        assert lp[0] == c.s and lp[-1] == c.g and len(set(lp)) == len(lp)
        on_walls = sum(not c.free[p] for p in lp[1:-1])
        assert on_walls > 0
        sc = score_frame(upscale(c.frame_with(lp[1:-1]), k), upscale(c.first, k))
        assert_wrong(sc)
        d = sc.details
        assert d["path_on_walls"] == on_walls
        assert d["components"] == 1 and d["simple_path"] is True  # its only fault is the walls
        assert d["off_walls"] == pytest.approx(1 - on_walls / (len(lp) - 2))


@pytest.mark.parametrize("k", [1, 4])
def test_path_reaching_start_only_fails(k):
    for c in cases(lambda c: len(c.inner) >= 2):
        part = c.inner[: len(c.inner) // 2]
        for sc in both_ways(c.frame_with(part), c.first, k):
            assert_wrong(sc)
            assert sc.details["components"] == 2  # start + partial path, and the lone goal
            assert sc.details["reaches_ends"] == 0.5


def test_shortest_flag_on_an_open_room():
    # score_labels on a hand-made label grid with no inner walls, where a detour is a valid simple path
    ref = np.full((7, 7), WALL)
    ref[1:-1, 1:-1] = FREE
    ref[1, 1], ref[1, 5] = START, GOAL
    straight = ref.copy()
    straight[1, 2:5] = PATH
    sc = score_labels(straight, ref)
    assert sc.success and sc.shortest and sc.score == 1.0
    assert sc.details["shortest_length"] == 5

    detour = ref.copy()
    for p in [(2, 1), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (2, 5)]:
        detour[p] = PATH
    sc = score_labels(detour, ref)
    assert sc.success is True and sc.shortest is False and sc.score == 1.0
    assert sc.details["path_pixels"] == 7 and sc.details["shortest_length"] == 5

    with pytest.raises(ValueError):
        score_labels(straight[:-1], ref)


# --- lossy input -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [MIN_SIZE, 5, MAX_SIZE])
def test_noisy_upscaled_ground_truth_still_succeeds(n):
    rng = np.random.default_rng(1234 + n)

    def noisy(img):
        big = upscale(img, 16).astype(np.float64)
        return np.clip(big + rng.normal(0.0, 20.0, big.shape), 0, 255).astype(np.uint8)

    for seed in range(3):
        c = Case(seed, n)
        frame = noisy(c.last)
        assert np.abs(frame.astype(int) - upscale(c.last, 16).astype(int)).max() > 40  # really lossy
        for sc in (score_frame(frame), score_frame(frame, upscale(c.first, 16)), score_frame(frame, noisy(c.first))):
            assert_perfect(sc, c)
        # and the noisy static first frame still fails
        assert_wrong(score_frame(noisy(c.first), upscale(c.first, 16)))


# --- bad input ---------------------------------------------------------------------------------


def _size_named(msg: str, h: int, w: int) -> bool:
    return f"{w}x{h}" in msg or f"{h}x{w}" in msg


@pytest.mark.parametrize("shape", [(10, 10), (12, 13), (13, 12), (12, 12), (5, 5), (23, 23), (11, 22)])
def test_wrong_image_size_is_refused(shape):
    h, w = shape
    img = np.zeros((h, w, 3), dtype=np.uint8)
    with pytest.raises(ValueError) as e:
        score_frame(img)
    msg = str(e.value)
    assert "not a maze frame" in msg and _size_named(msg, h, w), msg

    good = Case(0, 5).first
    with pytest.raises(ValueError) as e:
        score_frame(good, img)  # as the first frame
    assert "not a maze frame" in str(e.value) and _size_named(str(e.value), h, w), str(e.value)


def _non_mazes():
    noise = np.random.default_rng(7).integers(0, 256, (11, 11, 3), dtype=np.uint8)
    white = np.full((11, 11, 3), WHITE, dtype=np.uint8)
    return {"noise": noise, "white": white, "white_x4": upscale(white, 4), "noise_x3": upscale(noise, 3)}


@pytest.mark.parametrize("name", ["noise", "white", "white_x4", "noise_x3"])
def test_non_maze_image_is_refused(name):
    img = _non_mazes()[name]
    h, w = img.shape[:2]
    answer = Case(0, 5).last
    for call in (lambda: score_frame(img), lambda: score_frame(upscale(answer, h // 11), img)):
        with pytest.raises(ValueError) as e:
            call()
        msg = str(e.value)
        assert "not a maze frame" in msg and _size_named(msg, h, w), msg


def test_all_black_image_is_refused_naming_its_size():
    img = np.zeros((11, 11, 3), dtype=np.uint8)
    img[:] = BLACK
    with pytest.raises(ValueError) as e:
        score_frame(img)
    msg = str(e.value)
    assert "not a maze frame" in msg and _size_named(msg, 11, 11), msg


def test_all_black_image_is_refused():
    with pytest.raises(ValueError, match="not a maze"):
        score_frame(np.zeros((11, 11, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="not a maze"):
        score_frame(Case(0, 5).last, np.zeros((11, 11, 3), dtype=np.uint8))


@pytest.mark.parametrize("frame_n, first_n, k", [(6, 5, 1), (5, 6, 1), (3, 9, 1), (5, 6, 2), (4, 3, 1)])
def test_frame_and_first_frame_of_different_sizes_are_refused(frame_n, first_n, k):
    frame = upscale(Case(0, frame_n).last, k)
    first = upscale(Case(0, first_n).first, k)
    assert frame.shape != first.shape
    with pytest.raises(ValueError):
        score_frame(frame, first)


def test_non_square_frame_with_valid_first_frame_is_refused():
    c = Case(0, 5)
    frame = np.concatenate([c.last, c.last[:1]], axis=0)  # 12 x 11
    with pytest.raises(ValueError, match="not a maze frame"):
        score_frame(frame, c.first)
