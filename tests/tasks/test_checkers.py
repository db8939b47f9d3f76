"""Verifiers of declared strength: the `checker` (validity rules, nothing solved) beside the `task` solver."""

from __future__ import annotations

import numpy as np
import pytest

from steplens.presets import resolve
from steplens.tasks import draw, get_task, get_verifier, strip_sample
from steplens.tasks.checker import strength_of
from steplens.tasks.grid import COLOURS, GOAL, PATH, START, WALL, native_labels

FAMILIES = ["maze", "maze-two-goals", "maze-loops", "tictactoe", "reappear", "symmetry", "symmetry-open"]


def test_every_builtin_verifier_declares_its_strength():
    from steplens.tasks import verifier_strength

    got = {n: strength_of(get_verifier(n)) for n in ("checker", "task", "solver", "consensus")}
    assert got == {n: verifier_strength(n) for n in got}  # declared on the factory, read without building it
    assert got["checker"] == "checker" and got["task"] == got["solver"] == "solver" and got["consensus"] == "consensus"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_checker_accepts_right_answers_refuses_none_and_reads_only_test_time_inputs(family):
    task, checker = get_task(family), get_verifier("checker")
    for seed in range(6):
        s = draw(task, seed, "test")
        right = checker.verify(s.ground_truth, s)
        assert right.success and right.score == 1.0
        assert checker.verify(s.ground_truth, strip_sample(s)).to_dict() == right.to_dict()
        still = checker.verify(np.repeat(s.first_frame[None], 2, 0), strip_sample(s))
        assert not still.success and still.score < 0.5


def test_the_reappear_checker_does_not_know_where_the_object_comes_out():
    """The object drawn whole past the wall, two pixels further on than it should be: the solver (which reads the
    speed and solves the motion) refuses it, the checker accepts it: it is weaker, and says so."""
    from steplens.tasks.reappear import GREY, _base, _draw, Scene

    task = get_task("reappear")
    for seed in range(40):
        s = draw(task, seed, "test")
        m = s.meta
        sc = Scene(m["colour"], m["shape"], m["row"], m["x0"], m["speed"], tuple(m["occluder"]))
        x = m["end_x"] + 2
        if x + 3 <= 32:
            break
    img = _base(sc)
    _draw(img, sc, x)
    img[1:-1, sc.occ[0]: sc.occ[1]] = GREY
    video = np.stack([s.first_frame, img])
    video_s = strip_sample(s)
    assert get_verifier("checker").verify(video, video_s).success
    assert not get_verifier("task").verify(video, video_s).success


def _dead_end_start(seed_from: int = 0):
    """A maze whose start opens onto a cell off the shortest path, and a frame drawing a path into it."""
    task = get_task("maze")
    for seed in range(seed_from, seed_from + 200):
        s = draw(task, seed, "test")
        ref, _ = native_labels(s.first_frame)
        start = tuple(int(v) for v in np.argwhere(ref == START)[0])
        on_path = {tuple(p) for p in np.argwhere(native_labels(s.final_frame)[0] == PATH)}
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            door, cell = (start[0] + dr, start[1] + dc), (start[0] + 2 * dr, start[1] + 2 * dc)
            if (0 <= cell[0] < ref.shape[0] and 0 <= cell[1] < ref.shape[1] and ref[door] != WALL
                    and door not in on_path and ref[cell] not in (GOAL,)):
                labels = ref.copy()
                labels[door] = labels[cell] = PATH
                return s, COLOURS[labels].astype(np.uint8), len(on_path)
    raise AssertionError("no maze with a dead end next to its start")


def test_a_checker_chain_link_keeps_a_prefix_into_a_dead_end_the_solver_would_not():
    s, frame, _ = _dead_end_start()
    task = get_task("maze")
    solver_next = task.continue_from(s, frame)
    checker_next = task.continue_from(s, frame, strength="checker")
    assert solver_next.meta["prefix_pixels"] == 0  # off the shortest path: nothing verified
    assert checker_next.meta["prefix_pixels"] == 2 and checker_next.meta["prefix_strength"] == "checker"
    with pytest.raises(ValueError, match="strength 'oracle'"):
        task.continue_from(s, frame, strength="oracle")


@pytest.mark.parametrize("family", ["symmetry", "symmetry-open"])
def test_symmetry_refuses_blended_off_palette_cells(family):
    """A hidden cell filled half in its colour and half in another (a blend the nearest colour used to pass) is
    wrong; a right answer with mild noise (as a lossy video leaves) is still right."""
    from steplens.tasks import get_scorer
    from steplens.tasks.symmetry import COLOURS as SYM

    task, scorer = get_task(family), get_scorer("symmetry")
    s = draw(task, 3, "test")
    first, last = s.first_frame, s.final_frame.copy()
    hidden = np.argwhere((np.abs(first.astype(int) - 128).sum(-1) < 10))  # grey pixels of frame 0
    r, c = hidden[0]
    r0, c0 = 1 + 2 * ((r - 1) // 2), 1 + 2 * ((c - 1) // 2)
    colour = last[r0, c0].astype(int)
    other = next(x for x in SYM.astype(int) if np.abs(x - colour).sum() > 200)
    blended = last.copy()
    blended[r0: r0 + 2, c0: c0 + 2] = ((colour + other) // 2).astype(np.uint8)
    noisy = np.clip(last.astype(int) + np.random.default_rng(0).integers(-12, 13, last.shape), 0, 255).astype(np.uint8)
    assert scorer.score(np.stack([first, last]), s).success
    assert scorer.score(np.stack([first, noisy]), s).success
    got = scorer.score(np.stack([first, blended]), s)
    assert not got.success and got.details["blended_cells"] == 1


def test_a_chain_with_the_checker_keeps_only_what_the_checker_vouches_for_and_reports_the_last_links_share():
    """chain on 7x7 mazes with a shipped model: with `checker` every link after the first starts where the checker's
    prefix ends (recorded as such); each row gives the share of its final answer the last link drew."""
    from steplens.methods.search import SearchConfig, search_rows
    from steplens.models.load import load_model
    from steplens.tasks import Scorers

    model = load_model("tiny-maze")
    samples = [draw(get_task("maze"), s, "test", 7, 4, idx=s) for s in range(6)]
    cfg = SearchConfig(method="chain", n=1, links=3, verifier="checker")
    rows = search_rows(model, samples, cfg, Scorers(), sampling=resolve(model, steps=6))
    assert all(0 < r["last_link_share"] <= 1 for r in rows)
    assert any(r["links"] == 1 and r["last_link_share"] == 1.0 for r in rows) or any(r["links"] > 1 for r in rows)
    for r in rows:
        if r["links"] == 1:
            assert r["last_link_share"] == 1.0
