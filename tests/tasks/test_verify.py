"""Verifiers that never see the answer (steplens.tasks.verify): the registry, stripped samples, the task hooks."""

import numpy as np
import pytest

from steplens.tasks import Sample, get_task, get_verifier, strip_sample, verifier_names, verify_many


def test_strip_sample_keeps_what_a_user_has_and_drops_the_answer():
    s = get_task("maze").sample(3, idx=3)
    st = strip_sample(s)
    assert st.ground_truth is None and st.final_frame is None and st.dir is None and st.seed is None
    assert st.meta == {"task": "maze", "n": 5}
    assert st.prompt == s.prompt and st.frames == s.frames and st.key == s.key
    assert (st.first_frame == s.first_frame).all()


@pytest.mark.parametrize("seed", range(20))
def test_the_maze_verifier_accepts_the_ground_truth_and_refuses_the_first_frame(seed):
    s = get_task("maze").sample(seed, size=3 + seed % 5)
    v = get_verifier("task")
    assert v.verify(s.ground_truth, strip_sample(s)).success
    assert v.verify(s.ground_truth, strip_sample(s)).score == 1.0
    bad = v.verify(s.ground_truth[:1], strip_sample(s))
    assert not bad.success and bad.score < 0.5


def test_an_unknown_verifier_is_refused_with_the_names():
    with pytest.raises(ValueError, match=r"unknown verifier 'nope'; available: .*task"):
        get_verifier("nope")
    assert "task" in verifier_names()


def test_verify_many_falls_back_to_verify_one_by_one():
    s = get_task("maze").sample(1)
    out = verify_many(get_verifier("task"), [s.ground_truth, s.ground_truth[:1]], strip_sample(s))
    assert [o.success for o in out] == [True, False]
