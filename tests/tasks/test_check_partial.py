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


def test_a_family_that_cannot_judge_single_frames_says_so():
    s = get_task("tictactoe").sample(1)
    assert not callable(getattr(find_task("tictactoe"), "check_partial", None))
    assert partial_checks(s.ground_truth, s) is None
