"""Verifier plug-ins (steplens.tasks.verify): registered at run time or through the `steplens.verifiers` entry point
group of another package, and picked up by name; bad names refused with the list."""

import textwrap

import numpy as np
import pytest

from steplens.tasks import (Sample, Score, get_task, get_verifier, register_verifier, strip_sample, verifier_names,
                            verify as V, verify_many)


@pytest.fixture
def fresh_verifiers(monkeypatch):
    """The verifier registry reloaded from scratch (entry points included) for this test only."""
    monkeypatch.setattr(V, "_VERIFIERS", {})
    monkeypatch.setattr(V, "_LOADED", False)


class Changed:
    """A stand-in judge: accepts a video whose last frame differs from the first frame anywhere."""

    name = "changed"

    def verify(self, video, sample):
        d = float((np.asarray(video)[-1] != sample.first_frame).any(-1).mean())
        return Score(score=d, success=d > 0, details={})


def test_a_verifier_registered_at_run_time_is_picked_up_by_name(fresh_verifiers):
    register_verifier("changed", Changed)
    assert {"changed", "task", "consensus"} <= set(verifier_names())
    s = get_task("maze").sample(0)
    v = get_verifier("changed")
    assert v.verify(s.ground_truth, strip_sample(s)).success
    assert not v.verify(s.ground_truth[:1], strip_sample(s)).success
    with pytest.raises(ValueError, match="registered twice"):
        register_verifier("changed", lambda: Changed())


def test_a_plugin_package_registers_a_verifier_through_entry_points(tmp_path, monkeypatch, fresh_verifiers):
    # a stand-in for a VLM judge: it sees the prompt and the first frame only, answers with a probability
    (tmp_path / "myjudge.py").write_text(textwrap.dedent('''
        import numpy as np
        from steplens.tasks import Score

        class Judge:
            """Says yes when the last frame holds pixels of a colour the first frame lacks and the prompt asks to
            draw something."""
            name = "judge"
            def __init__(self, threshold=0.5):
                self.threshold = threshold
                self.calls = 0
            def check_task(self, task):
                return None  # reads pixels and words: any task
            def verify(self, video, sample):
                self.calls += 1
                first = {tuple(c) for c in sample.first_frame.reshape(-1, 3)}
                last = np.asarray(video)[-1]
                h = last.shape[0] // sample.first_frame.shape[0]
                new = [tuple(c) for c in last[::h, ::h].reshape(-1, 3) if tuple(c) not in first]
                p = min(1.0, len(new) / 4) if "draw" in sample.prompt else 0.0
                return Score(score=p, success=p >= self.threshold, details={"new_pixels": len(new)})
    '''))
    dist = tmp_path / "myjudge-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myjudge\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[steplens.verifiers]\nvlm-judge = myjudge:Judge\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"vlm-judge", "task", "consensus"} <= set(verifier_names())
    v = get_verifier("vlm-judge")
    s = get_task("maze").sample(3)
    bare = strip_sample(s)
    assert v.verify(s.ground_truth.repeat(2, 1).repeat(2, 2), bare).success
    assert not v.verify(s.ground_truth[:1], bare).success
    assert [o.success for o in verify_many(v, [s.ground_truth, s.ground_truth[:1]], bare)] == [True, False]
    assert v.calls == 4


def test_an_unknown_verifier_lists_every_name_and_the_task_verifier_names_tasks_without_a_hook():
    with pytest.raises(ValueError) as e:
        get_verifier("oracle")
    for name in verifier_names():
        assert name in str(e.value)
    assert "steplens.verifiers" in str(e.value)
    v = get_verifier("task")
    with pytest.raises(ValueError, match="no verify hook; tasks with one: .*maze"):
        v.check_task("no-such-task")
    foreign = Sample(task="maze", first_frame=np.zeros((11, 11, 3), np.uint8), prompt="p", frames=2,
                     foreign="VBVR-Bench's rendered frames")
    with pytest.raises(ValueError, match="not drawn by steplens.*VLM judge"):
        v.verify(np.zeros((2, 11, 11, 3), np.uint8), foreign)


def test_consensus_needs_two_answers_and_frames_of_the_sample_size():
    s = get_task("maze").sample(0)
    v = get_verifier("consensus")
    with pytest.raises(ValueError, match="two or more"):
        verify_many(v, [s.ground_truth], s)
    with pytest.raises(ValueError, match="not the first frame's 11x11 or an integer upscale"):
        verify_many(v, [s.ground_truth, np.zeros((2, 15, 15, 3), np.uint8)], s)
    with pytest.raises(ValueError, match="threshold"):
        V.ConsensusVerifier(threshold=2.0)
