"""Every family's verify hook (steplens.tasks.verify, the `task` verifier) on many seeds: it reads nothing a user
lacks at test time (the same score on stripped samples), accepts the ground truth and every right answer, refuses a
copy of the first frame, and agrees with the family's scorer on right and on corrupted answers.

Run as a script for the agreement table: `python tests/tasks/test_verify_families.py [seeds]`."""

import json
import sys
from functools import lru_cache

import numpy as np
import pytest

from steplens.tasks import Scorers, get_task, get_verifier, strip_sample, tasks_with

FAMILIES = ["maze", "maze-two-goals", "maze-loops", "tictactoe", "symmetry", "symmetry-open", "reappear"]
SEEDS = 30


@lru_cache(maxsize=None)
def _sizes(name: str) -> tuple[int, ...]:
    t = get_task(name)
    out = []
    for k in range(t.sizes[0], t.sizes[1] + 1):
        try:
            t.sample(0, size=k)
            out.append(k)
        except ValueError:
            pass
    return tuple(out)


def _sample(name: str, seed: int):
    sizes = _sizes(name)
    return get_task(name).sample(seed, size=sizes[seed % len(sizes)], idx=seed)


def answers(s, rng) -> tuple[dict, dict]:
    """({name: video} of right answers, {name: video} of wrong or corrupted ones) for sample `s`; built here from
    the ground truth and the task's candidates (the test may read them; the verifier may not)."""
    first, gt = s.first_frame, s.ground_truth
    final = gt[-1]
    right = {"ground truth": gt, "ground truth x4": gt.repeat(4, 1).repeat(4, 2)}
    wrong = {"first frame": np.repeat(first[None], len(gt), 0),
             "flat grey": np.full_like(gt, 128)}
    for k, c in enumerate(get_task(s.task).candidates(s) if hasattr(get_task(s.task), "candidates") else []):
        video = gt.copy()
        video[-1] = c.frame  # the video's length matters (reappear: where the object is at the last frame)
        (right if c.right else wrong)[f"candidate {k}: {c.label}"] = video
    if len(gt) > 2:
        mid = gt.copy()
        mid[-1] = gt[len(gt) // 2]
        wrong["ends half drawn"] = mid
    other = _sample(s.task, s.idx + 1000) if s.idx is not None else None
    if other is not None and other.ground_truth.shape == gt.shape:
        wrong["another sample's answer"] = other.ground_truth
    changed = np.argwhere((final != first).any(-1))
    if len(changed):
        drop = gt.copy()
        p = tuple(changed[rng.integers(len(changed))])
        drop[-1][p] = first[p]
        wrong["one answer pixel dropped"] = drop
        stray = gt.copy()
        same = np.argwhere((final == first).all(-1)[1:-1, 1:-1]) + 1  # inside the border
        q = tuple(same[rng.integers(len(same))])
        stray[-1][q] = final[p]
        wrong["one stray answer pixel"] = stray
    return right, wrong


def agreement(name: str, seeds: int) -> dict:
    """How often the `task` verifier's success equals the scorer's, on right answers and on corrupted ones (some
    corruptions leave a right answer: one pixel of a 9-pixel X; `both_accept` names those kinds)."""
    v, scorers = get_verifier("task"), Scorers()
    rng = np.random.default_rng(0)
    rows = {"right": [], "corrupted": []}
    for seed in range(seeds):
        s = _sample(name, seed)
        st = strip_sample(s)
        right, wrong = answers(s, rng)
        for kind, group in (("right", right), ("corrupted", wrong)):
            for label, video in group.items():
                a, b = v.verify(video, st).success, scorers.score(video, s).success
                rows[kind].append((a, b, label))
    out = {}
    for kind, r in rows.items():
        out[kind] = {"answers": len(r), "agree": float(np.mean([a == b for a, b, _ in r])),
                     "verifier_accepts": float(np.mean([a for a, _, _ in r])),
                     "scorer_accepts": float(np.mean([b for _, b, _ in r])),
                     "disagree": sorted({lab.split(":")[0] for a, b, lab in r if a != b}),
                     "both_accept": sorted({lab.split(":")[0] for a, b, lab in r if a and b})}
    return out


def test_every_family_with_a_generator_and_a_verify_hook_is_tested_here():
    assert set(FAMILIES) == {n for n in tasks_with("verify")} & set(FAMILIES)
    assert set(FAMILIES) <= set(tasks_with("verify"))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_verifier_gives_the_same_score_on_the_stripped_sample(name):
    v = get_verifier("task")
    rng = np.random.default_rng(1)
    for seed in range(12):
        s = _sample(name, seed)
        st = strip_sample(s)
        right, wrong = answers(s, rng)
        for label, video in {**right, **wrong}.items():
            full, bare = v.verify(video, s), v.verify(video, st)
            assert (full.score, full.success) == (bare.score, bare.success), (name, seed, label)
            assert json.dumps(full.details, sort_keys=True, default=str) == json.dumps(bare.details, sort_keys=True,
                                                                                        default=str)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_verifier_accepts_the_ground_truth_and_refuses_the_first_frame_for_many_seeds(name):
    v = get_verifier("task")
    for seed in range(SEEDS):
        s = strip_sample(_sample(name, seed))
        full = _sample(name, seed)
        ok = v.verify(full.ground_truth, s)
        assert ok.success and ok.score == 1.0, (name, seed, ok)
        no = v.verify(np.repeat(s.first_frame[None], full.frames, 0), s)
        assert not no.success and no.score < 0.5, (name, seed, no)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_verifier_agrees_with_the_scorer_on_right_and_corrupted_answers(name):
    a = agreement(name, SEEDS)
    assert a["right"]["verifier_accepts"] == 1.0 and a["right"]["agree"] == 1.0, a
    assert a["corrupted"]["agree"] >= 0.95, a
    assert a["corrupted"]["scorer_accepts"] < 0.5  # the corruptions are mostly wrong: the test sees both outcomes


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for fam in FAMILIES:
        print(fam, json.dumps(agreement(fam, n)))
