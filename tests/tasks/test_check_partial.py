"""The per-frame checker (issue 35): a frame of a video that is not over yet, judged by the rules a user can apply
by looking (the `check_partial` task hook); the time of first error reads it."""

import numpy as np
import pytest

from steplens.tasks import find_task, get_task, partial_checks


@pytest.mark.parametrize("name", ["maze", "maze-two-goals", "maze-loops"])
def test_a_ground_truth_maze_video_passes_at_every_frame(name):
    s = get_task(name).sample(3, size=4, frames=6)
    got = partial_checks(s.ground_truth, s)
    assert got == [True] * 6, got


def _walls_and_free(s):
    from steplens.tasks.grid import WALL, native_labels  # test-side reading of the drawing

    ref, _ = native_labels(s.first_frame)
    return np.argwhere(ref == WALL), ref


def test_a_maze_frame_rejected_from_the_frame_that_breaks_a_rule():
    s = get_task("maze").sample(5, size=4, frames=6)
    video = s.ground_truth.copy()
    walls, ref = _walls_and_free(s)
    inner = [w for w in walls if 0 < w[0] < ref.shape[0] - 1 and 0 < w[1] < ref.shape[1] - 1]
    r, c = inner[0]
    orange = video[-1][tuple(np.argwhere((video[-1] != s.first_frame).any(-1))[0])]
    for t in range(3, 6):  # from frame 3 on, an orange pixel on an inner wall
        video[t][r, c] = orange
    assert partial_checks(video, s) == [True, True, True, False, False, False]


def test_a_detached_stroke_is_rejected_and_the_last_frame_is_judged_whole():
    s = get_task("maze").sample(7, size=6, frames=10)
    gt = s.ground_truth
    drawn = np.argwhere((gt[-1] != s.first_frame).any(-1))
    first_drawn = np.argwhere((gt[1] != s.first_frame).any(-1))
    away = [p for p in drawn if np.abs(first_drawn - p).sum(1).min() > 2]  # far from where the path leaves the start
    video = np.repeat(s.first_frame[None], 5, 0)
    video[1] = gt[1]
    video[2][tuple(away[0])] = gt[-1][tuple(away[0])]  # a stroke not joined to the start
    assert partial_checks(video, s) == [True, True, False, True, False]  # last frame: nothing reaches the goal


@pytest.fixture
def whole_only():
    from builders import whole_only_task

    with whole_only_task() as name:
        yield name


def test_a_family_that_cannot_judge_single_frames_says_so(whole_only):
    s = get_task(whole_only).sample(1, size=4, frames=4)
    assert s.task == whole_only
    assert not callable(getattr(find_task(whole_only), "check_partial", None))
    assert partial_checks(s.ground_truth, s) is None


@pytest.mark.parametrize("size, frames", [(1, 3), (2, 4), (3, 7)])
def test_a_tictactoe_video_passes_at_every_frame_and_is_rejected_from_the_frame_that_breaks_a_rule(size, frames):
    from steplens.tasks.tictactoe import RED, X_PIXELS, cell_origin, read_board, winner

    for seed in range(20):
        s = get_task("tictactoe").sample(seed, size=size, frames=frames)
        assert partial_checks(s.ground_truth, s) == [True] * frames, seed
    board = read_board(s.first_frame)
    losing = next(c for c in ((r, c) for r in range(4) for c in range(4))
                  if c not in board and winner({**board, c: "X"}) is None)
    # an X started in a cell that does not win, from frame 1 on (the right X drawn too at the end; the last frame is
    # judged whole by `check`, which reads a third of an X as no mark)
    video = s.ground_truth.copy()
    r0, c0 = cell_origin(losing)
    for t in range(1, frames):
        for dr, dc in X_PIXELS[:3]:
            video[t, r0 + dr, c0 + dc] = RED
    assert partial_checks(video, s)[:-1] == [True] + [False] * (frames - 2)
    # an O of the board erased from frame 2 on
    video = s.ground_truth.copy()
    o = next(c for c, m in board.items() if m == "O")
    r0, c0 = cell_origin(o)
    video[2:, r0:r0 + 5, c0:c0 + 5] = 255
    assert partial_checks(video, s) == [True, True] + [False] * (frames - 2)
    # a stroke in blue (an O being drawn) where the X goes
    video = s.ground_truth.copy()
    drawn = (video[1] != s.first_frame).any(-1)
    video[1][drawn] = [0, 0, 255]
    assert partial_checks(video, s)[:2] == [True, False]


@pytest.mark.parametrize("size, frames", [(3, 4), (7, 4), (11, 8)])
def test_a_reappear_video_passes_at_every_frame_and_is_rejected_from_the_frame_that_breaks_a_rule(size, frames):
    from steplens.tasks.reappear import COLOURS, GREY, read_scene

    for seed in range(20):
        s = get_task("reappear").sample(seed, size=size, frames=frames)
        assert partial_checks(s.ground_truth, s) == [True] * frames, seed
    scene = read_scene(s.first_frame, frames)
    colour = np.array(COLOURS[scene["colour"]], np.uint8)
    white = np.array([255, 255, 255], np.uint8)

    def moved_back(frame):  # the object drawn one pixel left of where frame 0 has it, in its shape
        out = frame.copy()
        out[(np.abs(out.astype(int) - colour.astype(int)).sum(-1) < 120)] = white
        box = (s.first_frame.astype(int) - colour.astype(int))
        solid = np.argwhere(np.abs(box).sum(-1) < 120)
        for r, c in solid:
            out[r, c - 1] = colour
        return out

    video = s.ground_truth.copy()
    video[1] = moved_back(video[1])
    assert partial_checks(video, s)[:2] == [True, False]
    # the occluder erased from frame 2 on
    video = s.ground_truth.copy()
    a, b = scene["occluder"]
    video[2:, 1:-1, a:b] = white
    got = partial_checks(video, s)
    assert got == [True, True] + [False] * (frames - 2) and not (video[2:, 1:-1, a:b] == GREY).any()
    # a second object of its colour (drawn twice) in frame 1
    video = s.ground_truth.copy()
    video[1][1, 1:3] = colour
    assert partial_checks(video, s)[:2] == [True, False]


@pytest.mark.parametrize("name", ["symmetry", "symmetry-open"])
def test_a_symmetry_video_is_judged_frame_by_frame(name):
    s = get_task(name).sample(4, size=6, frames=5)
    assert partial_checks(s.ground_truth, s) == [True] * 5
    video = s.ground_truth.copy()
    grey = np.array([128, 128, 128])
    # frame 2 fills a right-half cell next to the axis (row r, col 3) with a colour its mirror (col 2, visible in
    # frame 0) does not have
    r = next(r for r in range(6) if tuple(s.first_frame[1 + 2 * r, 1 + 2 * 2]) != tuple(grey))
    mirror = s.first_frame[1 + 2 * r, 1 + 2 * 2]
    wrong = np.array([0, 0, 255] if tuple(mirror) != (0, 0, 255) else [255, 0, 0], np.uint8)
    for t in (2, 3):
        video[t][1 + 2 * r:3 + 2 * r, 1 + 2 * 3:1 + 2 * 4] = wrong
    assert partial_checks(video, s)[:4] == [True, True, False, False]
    # a visible cell changed is wrong from the frame it changes
    video = s.ground_truth.copy()
    video[1][1:3, 1:3] = wrong if tuple(video[1][1, 1]) != tuple(wrong) else [255, 255, 255]
    assert partial_checks(video, s)[:2] == [True, False]


def test_a_maze_path_that_turns_into_a_dead_end_is_rejected_there():
    """In a perfect maze a path that turns off the solution can no longer reach the goal without crossing itself: the
    checker sees it by looking (the goal unreachable from the tip through open pixels the path has not used), no
    distances."""
    from steplens.tasks.grid import GOAL, START, WALL, native_labels
    from steplens.tasks.maze import ORANGE, shortest_pixel_path

    def branch(seed):  # a maze whose solution passes a junction after its first pixels: (sample, path, i, q)
        s = get_task("maze").sample(seed, size=6, frames=4)
        ref, _ = native_labels(s.first_frame)
        free = ref != WALL
        path = shortest_pixel_path(free, tuple(np.argwhere(ref == START)[0]), tuple(np.argwhere(ref == GOAL)[0]))
        on = set(path)
        return next(((s, path, i, q) for i, p in enumerate(path[2:-1], 2)
                     for q in ((p[0] + 1, p[1]), (p[0] - 1, p[1]), (p[0], p[1] + 1), (p[0], p[1] - 1))
                     if free[q] and q not in on), None)

    s, path, i, q = next(b for b in map(branch, range(100)) if b is not None)
    good = s.first_frame.copy()
    for p in path[1:i + 1]:
        good[p] = ORANGE
    bad = good.copy()
    bad[q] = ORANGE
    video = np.stack([s.first_frame, good, bad, bad])
    assert partial_checks(video, s) == [True, True, False, False]
