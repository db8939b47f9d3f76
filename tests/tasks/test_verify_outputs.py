"""A verifier plug-in's outputs are checked (issue 31, item 6): a NaN, infinite or out-of-range score, a return
that is not a `Score`, a wrong number of scores, or an exception is a clear error naming the plug-in and the sample,
never a raw traceback and never ranked."""

import numpy as np
import pytest

from steplens.presets import resolve
from steplens.tasks import Score, get_task, register_verifier, strip_sample, verify_many


def _plugin(name, result):
    class Bad:
        def verify(self, video, sample):
            if isinstance(result, BaseException):
                raise result
            return result
    Bad.name = name
    return Bad


BAD = {"test-nan": (Score(score=float("nan"), success=True), "score nan"),
       "test-inf": (Score(score=float("inf"), success=True), "score inf"),
       "test-high": (Score(score=1.5, success=True), "score 1.5"),
       "test-low": (Score(score=-0.25, success=False), "score -0.25"),
       "test-float": (0.7, "returned a float"),
       "test-dict": ({"score": 0.7, "success": True}, "returned a dict"),
       "test-str-score": (Score(score="0.7", success=True), "score '0.7'"),
       "test-success": (Score(score=0.7, success="yes"), "success 'yes'"),
       "test-raises": (RuntimeError("the judge's server is down"), "RuntimeError: the judge's server is down"),
       "test-zero": (ZeroDivisionError("division by zero"), "ZeroDivisionError")}
for _name, (_result, _) in BAD.items():
    register_verifier(_name, _plugin(_name, _result))


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_plugin_output_names_the_plugin_and_the_sample(name):
    from steplens.tasks import get_verifier

    s = strip_sample(get_task("maze").sample(0, 3, 3, idx=0))
    video = np.zeros((3, 5, 5, 3), np.uint8)
    with pytest.raises(ValueError) as e:
        verify_many(get_verifier(name), [video, video], s)
    msg = str(e.value)
    assert f"verifier {name!r}" in msg and s.name in msg and BAD[name][1] in msg, msg
    assert "Score" in msg or "raised" in msg, msg


class Short:
    name = "test-short"

    def verify(self, video, sample):
        return Score(score=0.5, success=False)

    def verify_many(self, videos, sample):
        return [Score(score=0.5, success=False)]


register_verifier("test-short", Short)


def test_a_group_verifier_returning_too_few_scores_is_named():
    from steplens.tasks import get_verifier

    s = strip_sample(get_task("maze").sample(0, 3, 3, idx=0))
    video = np.zeros((3, 5, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"verifier 'test-short' returned 1 scores? for 3 videos of sample maze/0"):
        verify_many(get_verifier("test-short"), [video] * 3, s)


def test_good_outputs_pass_unchanged():
    from steplens.tasks import get_verifier

    full = get_task("maze").sample(0, 3, 3, idx=0)
    s = strip_sample(full)
    video = np.zeros((3, 5, 5, 3), np.uint8)
    got = verify_many(get_verifier("test-short"), [video], s)  # one video, one score: fine
    assert got == [Score(score=0.5, success=False)]
    assert verify_many(get_verifier("consensus"), [full.ground_truth, full.ground_truth], s)[0].score == 1.0


def test_a_bad_plugin_in_a_search_stops_it_with_the_name(tiny_model):
    from steplens.methods.search import SearchConfig, search

    b = [get_task("maze").sample(i, 3, 3, idx=i) for i in range(2)]
    with pytest.raises(ValueError, match=r"verifier 'test-nan' .*sample maze/0.*score nan"):
        search(tiny_model, b, [1, 2], SearchConfig(method="best-of-n", n=2, verifier="test-nan"), sampling=resolve(tiny_model, steps=3))


class _NoBuild:
    name = "test-nobuild"

    def __init__(self):
        raise OSError("weights not found: /models/judge")


class _BadCheck:
    name = "test-badcheck"

    def check_task(self, task):
        raise AttributeError("'NoneType' object has no attribute 'palette'")

    def verify(self, video, sample):
        return Score(score=0.5, success=False)


register_verifier("test-nobuild", _NoBuild)
register_verifier("test-badcheck", _BadCheck)


def test_a_plugin_that_cannot_be_built_or_checked_is_named():
    from steplens.methods.search import SearchConfig, check_search
    from steplens.tasks import get_verifier

    with pytest.raises(ValueError, match=r"verifier 'test-nobuild' could not be built: OSError: weights not found"):
        get_verifier("test-nobuild")
    with pytest.raises(ValueError, match=r"verifier 'test-badcheck' raised AttributeError checking task 'maze'"):
        check_search(SearchConfig(verifier="test-badcheck"), 4, ["maze"])
    with pytest.raises(ValueError, match=r"verifier 'test-badcheck' raised AttributeError checking task 'maze'"):
        check_search(SearchConfig(verifier="test-badcheck"), 4, (), [get_task("maze").sample(0, 3, 3, idx=0)])
