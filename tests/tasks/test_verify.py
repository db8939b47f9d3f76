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


def test_consensus_ranks_the_answer_most_particles_draw_first_and_a_copy_of_the_first_frame_last():
    t = get_task("tictactoe")
    s = next(t.sample(seed, size=2) for seed in range(50))
    right, other = t.candidates(s)[:2]
    first = s.first_frame
    videos = [np.stack([first, right.frame]), np.stack([first, right.frame]), np.stack([first, right.frame]),
              np.stack([first, other.frame]), np.stack([first, first])]
    v = get_verifier("consensus")
    out = verify_many(v, videos, strip_sample(s))
    assert [o.success for o in out] == [True, True, True, False, False]
    assert out[0].score > out[3].score > out[4].score == 0.0
    # frames at an integer upscale read the same
    up = verify_many(v, [np.asarray(x).repeat(4, 1).repeat(4, 2) for x in videos], strip_sample(s))
    assert [o.score for o in up] == pytest.approx([o.score for o in out])
    with pytest.raises(ValueError, match="several answers"):
        v.verify(videos[0], s)


@pytest.mark.parametrize("name", ["maze", "tictactoe", "symmetry-open", "reappear"])
def test_consensus_gives_the_same_scores_on_the_stripped_sample(name):
    t = get_task(name)
    videos = [t.sample(seed).ground_truth for seed in range(4)]  # other samples' answers: partial agreement
    s = t.sample(0)
    videos.append(np.repeat(s.first_frame[None], s.frames, 0))
    v = get_verifier("consensus")
    full, bare = verify_many(v, videos, s), verify_many(v, videos, strip_sample(s))
    assert [(o.score, o.success, o.details) for o in full] == [(o.score, o.success, o.details) for o in bare]
    assert full[-1].score == 0.0 and 0 < full[0].score < 1
