"""Search shows its work (issue 31, item 4): every decision of best-of-n, early-beam and smc records each
particle's verifier score, whether the verifier separated the candidates, whether the declared tie rule (lowest
particle index) decided, and the pick; a verifier that scores every candidate alike is visible as such (it returns
particle 0, the one seed's video, and says so), on the tiny embedded model (a real network, no mocks)."""

import numpy as np
import pytest
import torch

from steplens.presets import resolve
from steplens.methods.search import TIE_RULE, SearchConfig, search
from steplens.tasks import Score, get_task, register_verifier

STEPS = 6


class Flat:
    """A plug-in verifier that scores every candidate alike (a no-op judge)."""
    name = "test-flat"

    def verify(self, video, sample):
        return Score(score=0.5, success=False)


class Brightest:
    """Reads pixels only: the brighter the last frame, the better."""
    name = "test-brightest"

    def verify(self, video, sample):
        s = float(np.asarray(video)[-1].mean() / 255)
        return Score(score=s, success=s > 0.5)


register_verifier("test-flat", Flat)
register_verifier("test-brightest", Brightest)

CONFIGS = [dict(method="best-of-n", n=3), dict(method="early-beam", n=3, k=1, m=1),
           dict(method="early-beam", n=4, k=1, m=2, steps=[3]), dict(method="smc", n=3, steps=[1, 3])]


def _last_kind(c):
    return "keep" if c["method"] == "early-beam" and c["m"] == 1 else "pick"


def samples(n=2):
    return [get_task("maze").sample(i, 3, 3) for i in range(n)]


@pytest.mark.parametrize("c", CONFIGS)
def test_a_verifier_that_scores_everything_alike_is_visible(tiny_model, c):
    b, seeds = samples(), [10, 11]
    res = search(tiny_model, b, seeds, SearchConfig(verifier="test-flat", **c), sampling=resolve(tiny_model, steps=STEPS))
    one_seed = tiny_model.generate(b, seeds, sampling=resolve(tiny_model, steps=STEPS))
    assert res.chosen == [0, 0]  # the tie rule: the lowest particle index, member 0 = the one seed's noise
    torch.testing.assert_close(res.latents, one_seed, rtol=0, atol=1e-5)
    for i in range(len(b)):
        ds = res.decisions[i]
        assert ds, c  # every choice among two or more candidates is recorded
        for d in ds:
            assert len(d["scores"]) == len(d["members"]) >= 2 and set(d["scores"]) == {0.5}
            assert d["separated"] is False
        last = ds[-1]  # the pick (early-beam with one beam kept: the keep, nothing is left to pick from after it)
        assert last["kind"] == _last_kind(c) and last["tied"] and last["chosen"][0] == 0
        ties = sum(d["tied"] for d in ds)
        assert ties == len([d for d in ds if d["kind"] != "resample"]) >= 1  # every keep / pick fell to the rule
    assert "lowest particle index" in TIE_RULE


@pytest.mark.parametrize("c", CONFIGS)
def test_a_verifier_that_separates_records_its_scores_and_pick(tiny_model, c):
    b, seeds = samples(), [10, 11]
    res = search(tiny_model, b, seeds, SearchConfig(verifier="test-brightest", **c), sampling=resolve(tiny_model, steps=STEPS))
    for i in range(len(b)):
        ds = res.decisions[i]
        assert all(d["separated"] for d in ds) and not any(d["tied"] for d in ds)
        pick = ds[-1]
        best = int(np.argmax(pick["scores"]))
        assert pick["kind"] == _last_kind(c) and pick["chosen"] == [best]
        assert res.chosen[i] == pick["members"][best]
        if pick["kind"] == "pick":  # the verifier's score of the chosen final video
            assert res.scores[i].score == pytest.approx(pick["scores"][best])
        for d in ds:
            if d["kind"] == "keep":  # the m best go on
                top = sorted(range(len(d["scores"])), key=lambda j: (-d["scores"][j], j))[:len(d["chosen"])]
                assert sorted(top) == sorted(d["chosen"])
            if d["kind"] == "resample":  # parents drawn with multiplicity, as many as particles
                assert len(d["chosen"]) == len(d["scores"])


def test_ties_at_the_boundary_only_count():
    """A keep decision is tied when the last kept and the first dropped score alike; the pick of the best among
    [0.9, 0.2, 0.2] is separated and not tied."""
    from steplens.methods.search import decision

    assert decision("pick", 5, [0, 1, 2], [0.9, 0.2, 0.2], [0]) == {
        "step": 5, "kind": "pick", "members": [0, 1, 2], "scores": [0.9, 0.2, 0.2], "chosen": [0],
        "separated": True, "tied": False}
    assert decision("keep", 1, [0, 1, 2], [0.9, 0.2, 0.2], [0, 1])["tied"] is True
    assert decision("keep", 1, [0, 1, 2, 3], [0.9, 0.9, 0.2, 0.1], [0, 1])["tied"] is False
    assert decision("pick", 5, [0, 1], [0.3, 0.3], [0])["separated"] is False
    assert decision("resample", 1, [0, 1], [0.3, 0.3], [0, 1])["tied"] is False  # drawn by weight: no rule used


def test_chain_records_each_links_decisions(tiny_model):
    b = samples()
    res = search(tiny_model, b, [1, 2], SearchConfig(method="chain", inner="best-of-n", n=2, links=2,
                                                      verifier="test-flat"), sampling=resolve(tiny_model, steps=STEPS))
    for i in range(len(b)):
        links = [d["link"] for d in res.decisions[i]]
        assert links and links == list(range(len(links))) and all(d["tied"] for d in res.decisions[i])
    assert len(res.links) == 2  # the flat verifier accepts nothing: both links ran
