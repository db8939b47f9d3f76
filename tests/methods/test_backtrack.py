"""Backtracking along time: generate, judge frame by frame, regenerate from the last verified prefix."""

from __future__ import annotations

import pytest

from steplens.presets import resolve
from steplens.methods.search import SearchConfig, search, search_rows
from steplens.tasks import Scorers, draw, get_task


@pytest.fixture(scope="module")
def frames_model():
    """tiny-maze, its weights told they were trained with frame prefixes: a real model that continues given frames
    (it was not trained for it, which is what backtracking's bookkeeping needs, not its solve rate)."""
    from steplens.models.load import load_model

    m = load_model("tiny-maze")
    m.info = {**m.info, "train_config": {**(m.info.get("train_config") or {}), "prefix": {"1": 0.5, "2": 0.5}}}
    return m


def test_each_generation_starts_from_the_frames_before_the_last_failure(frames_model):
    samples = [draw(get_task("maze"), s, "test", 7, 6, idx=s) for s in range(8)]
    cfg = SearchConfig(method="backtrack", n=3, verifier="checker")
    res = search(frames_model, samples, [s.seed for s in samples], cfg, sampling=resolve(frames_model, steps=6))
    assert len(res.backtracks) == len(samples)
    total = 0
    moved = 0
    for hist in res.backtracks:
        total += len(hist)
        assert 1 <= len(hist) <= 3 and hist[0]["known"] == 1
        for a, b in zip(hist, hist[1:]):
            assert not a["accepted"]
            want = len(a["checks"]) - 1 if a["first_failure"] is None else a["first_failure"]
            assert b["known"] == (want if want > a["known"] else a["known"])
            moved += b["known"] > a["known"]
            assert all(b["checks"][:b["known"]])  # the kept frames pass the rules (they did before)
        if hist[-1]["accepted"]:
            assert all(h["accepted"] is False for h in hist[:-1])
    assert res.nfe.nfe == 6 * total  # every generation a full run, none after acceptance
    assert moved >= 1  # some generation kept a prefix (else nothing was tested)


def test_rows_record_the_generations(frames_model):
    samples = [draw(get_task("maze"), s, "test", 6, 5, idx=s) for s in range(3)]
    rows = search_rows(frames_model, samples, SearchConfig(method="backtrack", n=2, verifier="checker"), Scorers(),
                       sampling=resolve(frames_model, steps=4))
    for r in rows:
        assert 1 <= r["generations"] <= 2 and r["kept_frames"] >= 1 and len(r["first_failures"]) == r["generations"]
        assert r["nfe"] > 0


def test_what_backtracking_cannot_do_is_refused_before_any_forward(frames_model):
    from steplens.methods.search import check_search
    from steplens.models.load import load_model

    from builders import whole_only_task

    with whole_only_task() as name, pytest.raises(ValueError, match=f"task '{name}' cannot judge single frames"):
        check_search(SearchConfig(method="backtrack", n=2, verifier="checker"), 4, tasks=[name])
    for verifier in ("task", "solver", "consensus"):  # each judges a finished video; the checker reads frame rules
        with pytest.raises(ValueError, match=f"verifier '{verifier}' cannot judge single frames .* verifiers that "
                                             f"can: checker"):
            check_search(SearchConfig(method="backtrack", n=2, verifier=verifier), 4, tasks=["maze"])
    plain = load_model("tiny-maze")
    s = draw(get_task("maze"), 0, "test", 5, 5, idx=0)
    with pytest.raises(ValueError, match="trained on first frames only"):
        search(plain, [s], [0], SearchConfig(method="backtrack", n=2, verifier="checker"), sampling=resolve(plain, steps=2))


def _cli(*args):
    from typer.testing import CliRunner

    from steplens.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_bad_backtracking_is_named_on_the_command_line_and_nothing_is_written(tmp_path, loads):
    r = _cli("eval", "--search", "backtrack", "--particles", 2, "--verifier", "consensus", "--task", "reappear",
             "--count", 2, "--steps", 3)
    assert r.exit_code == 2 and "verifier 'consensus' cannot judge single frames" in r.output and not loads
    r = _cli("compare", "--budget", 2, "--search-methods", "backtrack", "--verifier", "checker", "--count", 2,
             "--steps", 3, "--methods", "single", "--out", tmp_path / "cmp")
    assert r.exit_code == 2 and "trained on first frames only" in r.output and not (tmp_path / "cmp").exists()


def test_every_search_method_names_the_axis_it_searches_along():
    """The equal-compute tables and compare's budget plot group methods by axis (seeds, steps, time, task restart):
    a new method must say which, or it would drop out of the axes' verdicts."""
    from steplens.methods.search import AXIS, METHODS

    assert set(AXIS) == set(METHODS)
    assert AXIS["backtrack"] == "time" and {AXIS["early-beam"], AXIS["smc"]} == {"steps"}
