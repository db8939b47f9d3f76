"""Tasks that list their right answers (the `candidates` hook) and the superposition metric on x0_hat:
non-negative weights of each answer in x0_hat's final frame (steplens.cos.candidate_strengths)."""

import numpy as np
import pytest

from steplens import cos
from steplens.tasks import candidates, generator_task, get_scorer

FAMILIES = [("tictactoe", 3), ("maze-loops", 5), ("maze-two-goals", 5), ("maze", 5), ("reappear", 7),
            ("symmetry-open", 6)]


@pytest.mark.parametrize("name,size", FAMILIES)
def test_ground_truth_is_one_candidate_alone(name, size):
    for seed in range(4):
        s = generator_task(name).sample(seed, size, None, idx=0)
        listed = candidates(s)
        c = [x.frame for x in listed]
        assert c and all(x.shape == s.first_frame.shape and x.dtype == np.uint8 for x in c)
        assert len({x.tobytes() for x in c}) == len(c) and len({x.label for x in listed}) == len(c)  # distinct
        st = cos.candidate_strengths(s.final_frame, s.first_frame, c)
        drawn = [i for i, x in enumerate(c) if np.array_equal(x, s.final_frame)]
        assert len(drawn) == 1, name  # the ground truth is one of the listed answers, and a right one
        assert listed[drawn[0]].right
        scorer = get_scorer(generator_task(name).scorer)
        for x in listed:  # the task's own scorer agrees with what each candidate says of itself
            video = np.stack([s.first_frame] * (s.frames - 1) + [x.frame])  # the sample's length, this answer last
            assert scorer.score(video, s).success == x.right, (name, x.label)
        assert st[drawn[0]] == pytest.approx(1.0, abs=1e-6)
        assert all(x == pytest.approx(0.0, abs=1e-6) for i, x in enumerate(st) if i != drawn[0])
        assert cos.candidate_strengths(s.first_frame, s.first_frame, c) == [0.0] * len(c)


def test_several_right_answers_and_superposition():
    s = generator_task("tictactoe").sample(0, 3, None, idx=0)
    assert len(candidates(s)) == 3  # size = number of winning moves
    loops = generator_task("maze-loops").sample(1, 6, None, idx=0)
    assert 2 <= len(candidates(loops)) <= 8 and len(candidates(loops)) <= loops.meta["shortest_paths"]
    assert all(x.right for x in candidates(s) + candidates(loops))
    assert candidates(generator_task("symmetry").sample(0, 6, None, idx=0)) == []  # one answer: none listed
    c = [x.frame for x in candidates(s)]
    mix = (0.6 * c[0].astype(float) + 0.3 * c[1].astype(float) + 0.1 * s.first_frame.astype(float))
    st = cos.candidate_strengths(mix, s.first_frame, c)
    assert st == pytest.approx([0.6, 0.3, 0.0], abs=1e-6)


def test_behaviours_count_candidates_and_the_winner():
    s = generator_task("tictactoe").sample(2, 2, None, idx=0)
    c = [x.frame.astype(float) for x in candidates(s)]
    first = s.first_frame.astype(float)
    # x0_hat's final frame over 4 steps: both answers at half, then one grows, then it alone
    frames = [0.5 * c[0] + 0.5 * c[1], 0.7 * c[0] + 0.3 * c[1], 0.9 * c[0] + 0.1 * first, c[0]]
    metrics = [{"success": i >= 2, "on_target": 1, "off_branches": 0, "static_ok": True,
                "candidate_strengths": cos.candidate_strengths(f, s.first_frame, c)} for i, f in
               enumerate(frames)]
    for m in metrics:
        m["candidates_held"] = sum(x >= cos.HOLD for x in m["candidate_strengths"])
    b = cos.behaviours(metrics)
    assert (b["candidates"], b["early_candidates"], b["max_candidates"]) == (2, 2, 2)
    assert b["winner_step"] == 2 and b["winner"] == 0
    assert cos.candidate_behaviours([{k: v for k, v in m.items() if k != "candidate_strengths"} for m in metrics]) == {}


def test_nonnegative_weights_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=40)
    w = cos.nonnegative_weights(a, b)
    assert (w >= 0).all()
    grid = np.stack(np.meshgrid(*[np.linspace(0, 2, 41)] * 3), -1).reshape(-1, 3)
    best = min(np.linalg.norm(a @ g - b) for g in grid)
    assert np.linalg.norm(a @ w - b) <= best + 1e-9


def test_right_and_wrong_strengths_per_step():
    """Working memory on reappear: x0_hat's final frame in the wrong colour, then both, then the right object
    alone: the per-step right / wrong strengths and the step from which the right one wins."""
    s = generator_task("reappear").sample(3, 7, None, idx=0)
    listed = candidates(s)
    right = next(x for x in listed if x.right)
    wrong = next(x for x in listed if not x.right)
    assert sum(x.right for x in listed) == 1 and len(listed) == 8  # itself, 3 other colours, 4 other shapes
    finals = [wrong.frame, 0.5 * wrong.frame.astype(float) + 0.5 * right.frame, right.frame, right.frame]
    videos = np.stack([np.stack([s.first_frame] * (s.frames - 1) + [f]).astype(float) for f in finals])
    m = cos.step_metrics(videos, s, get_scorer("reappear"), np.ones(s.first_frame.shape[:2], bool), candidates=listed)
    assert [x["right_strength"] for x in m] == pytest.approx([0, 0.5, 1, 1], abs=1e-6)
    assert [x["wrong_strength"] for x in m] == pytest.approx([1, 0.5, 0, 0], abs=1e-6)
    assert [x["right_held"] for x in m] == [0, 1, 1, 1] and [x["success"] for x in m] == [False, False, True, True]
    b = cos.behaviours(m)
    assert (b["early_right"], b["right_step"], b["early_candidates"], b["max_candidates"]) == (0, 2, 1, 2)
