import numpy as np
import pytest

from steplens.io.video import upscale
from steplens.tasks import get_task
from steplens.tasks.maze import BLUE, RED, cell_px, generate_two_goal_maze

TASK = get_task("maze-two-goals")


@pytest.mark.parametrize("n", [3, 5, 7])
def test_two_goal_mazes_have_separate_goals_off_each_others_path(n):
    targets = set()
    for seed in range(30):
        m = generate_two_goal_maze(seed, n)
        assert len({m.start, m.goal, m.goal2}) == 3
        assert cell_px(m.goal2) not in m.path_pixels(goal=m.goal)
        assert cell_px(m.goal) not in m.path_pixels(goal=m.goal2)
        img = TASK.first_frame(m)
        assert tuple(img[cell_px(m.goal)]) == RED and tuple(img[cell_px(m.goal2)]) == BLUE
        targets.add(m.target)
        assert m.target in m.prompt and m.metadata()["target"] == m.target
    assert targets == {"red", "blue"}


def test_same_maze_with_either_prompt_is_a_swap_pair():
    red = TASK.sample(4, 5, 4, target="red")
    blue = TASK.sample(4, 5, 4, target="blue")
    assert np.array_equal(red.first_frame, blue.first_frame)
    assert red.prompt != blue.prompt and "blue" in blue.prompt
    assert not np.array_equal(red.ground_truth[-1], blue.ground_truth[-1])
    for k in (1, 8):
        assert TASK.score(upscale(red.ground_truth[-1], k), upscale(red.first_frame, k), red.prompt).success
        assert not TASK.score(upscale(red.ground_truth[-1], k), upscale(red.first_frame, k), blue.prompt).success
        assert TASK.score(blue.ground_truth[-1], blue.first_frame, blue.prompt).success


def test_plain_maze_task_refuses_a_blue_target():
    with pytest.raises(ValueError, match="one goal \\(red\\), got target 'blue'"):
        get_task("maze").sample(0, 5, target="blue")
    with pytest.raises(ValueError, match="target must be one of red, blue, got 'green'"):
        TASK.sample(0, 5, target="green")
