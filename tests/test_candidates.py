"""Tasks that list their right answers (the `candidates` hook) and the superposition metric on x0_hat:
non-negative weights of each answer in x0_hat's final frame (steplens.cos.candidate_strengths)."""

import numpy as np
import pytest

from steplens import cos
from steplens.tasks import candidates, generator_task

FAMILIES = [("tictactoe", 3), ("maze-loops", 5), ("maze-two-goals", 5), ("maze", 5), ("reappear", 7)]


@pytest.mark.parametrize("name,size", FAMILIES)
def test_ground_truth_is_one_candidate_alone(name, size):
    for seed in range(4):
        s = generator_task(name).sample(seed, size, None, idx=0)
        c = candidates(s)
        assert c and all(x.shape == s.first_frame.shape and x.dtype == np.uint8 for x in c)
        assert len({x.tobytes() for x in c}) == len(c)  # distinct answers
        st = cos.candidate_strengths(s.final_frame, s.first_frame, c)
        drawn = [i for i, x in enumerate(c) if np.array_equal(x, s.final_frame)]
        assert len(drawn) == 1, name  # the ground truth is one of the listed answers
        assert st[drawn[0]] == pytest.approx(1.0, abs=1e-6)
        assert all(x == pytest.approx(0.0, abs=1e-6) for i, x in enumerate(st) if i != drawn[0])
        assert cos.candidate_strengths(s.first_frame, s.first_frame, c) == [0.0] * len(c)


def test_several_right_answers_and_superposition():
    s = generator_task("tictactoe").sample(0, 3, None, idx=0)
    assert len(candidates(s)) == 3  # size = number of winning moves
    loops = generator_task("maze-loops").sample(1, 6, None, idx=0)
    assert 2 <= len(candidates(loops)) <= 8 and len(candidates(loops)) <= loops.meta["shortest_paths"]
    c = candidates(s)
    mix = (0.6 * c[0].astype(float) + 0.3 * c[1].astype(float) + 0.1 * s.first_frame.astype(float))
    st = cos.candidate_strengths(mix, s.first_frame, c)
    assert st == pytest.approx([0.6, 0.3, 0.0], abs=1e-6)


def test_behaviours_count_candidates_and_the_winner():
    s = generator_task("tictactoe").sample(2, 2, None, idx=0)
    c = [x.astype(float) for x in candidates(s)]
    first = s.first_frame.astype(float)
    # x0_hat's final frame over 4 steps: both answers at half, then one grows, then it alone
    frames = [0.5 * c[0] + 0.5 * c[1], 0.7 * c[0] + 0.3 * c[1], 0.9 * c[0] + 0.1 * first, c[0]]
    metrics = [{"success": i >= 2, "on_target": 1, "off_branches": 0, "static_ok": True,
                "candidate_strengths": cos.candidate_strengths(f, s.first_frame, candidates(s))} for i, f in
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
