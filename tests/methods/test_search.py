"""Search methods (steplens.methods.search) on the tiny embedded model (a real network, no mocks): NFE exactly as the
arithmetic says; early-beam keeping every particle is best-of-n; the chosen particle's final latents are an
unstopped run of its seed (replay is exact), also through re-noised branches; deterministic by seed; bad
configurations named before any model work."""

import numpy as np
import pytest
import torch

from steplens.presets import resolve
from steplens.methods.ensemble import member_seeds
from steplens.methods.search import SearchConfig, _renoise_hooks, check_search, config_for_budget, search, search_nfe
from steplens.tasks import Score, get_task, register_verifier, strip_sample

STEPS = 6


class Bright:
    """A plug-in verifier for the tests: the brighter the last frame, the better (reads pixels only)."""
    name = "test-bright"

    def verify(self, video, sample):
        s = float(np.asarray(video)[-1].mean() / 255)
        return Score(score=s, success=s > 0.5)


register_verifier("test-bright", Bright)


def samples(n=2):
    return [get_task("maze").sample(i, 3, 3) for i in range(n)]


def cfg(**kw):
    return SearchConfig(verifier="test-bright", **kw)


@pytest.mark.parametrize("guidance", [1.0, 2.0])
@pytest.mark.parametrize("c, per_sample", [
    (dict(method="best-of-n", n=3), 3 * STEPS),
    (dict(method="early-beam", n=3, k=1, m=1), 3 * 2 + 1 * (STEPS - 2)),
    (dict(method="early-beam", n=4, k=1, m=2, steps=[3]), 4 * 2 + 4 * 2 + 2 * (STEPS - 4)),
    (dict(method="smc", n=3, steps=[1, 3]), 3 * STEPS),
])
def test_nfe_is_the_arithmetic(tiny_model, c, per_sample, guidance):
    b = samples()
    res = search(tiny_model, b, [10, 11], cfg(**c), sampling=resolve(tiny_model, steps=STEPS, guidance=guidance))
    branches = 2 if guidance != 1.0 else 1
    assert res.nfe.nfe == len(b) * branches * per_sample
    assert search_nfe(cfg(**c), STEPS) == per_sample
    assert res.latents.shape[0] == len(b)


def test_early_beam_keeping_every_particle_is_best_of_n(tiny_model):
    b = samples()
    bon = search(tiny_model, b, [3, 4], cfg(method="best-of-n", n=3), sampling=resolve(tiny_model, steps=STEPS))
    eb = search(tiny_model, b, [3, 4], cfg(method="early-beam", n=3, k=2, m=3), sampling=resolve(tiny_model, steps=STEPS))
    for i in range(len(b)):
        assert torch.equal(bon.finals[i], eb.finals[i])
    assert bon.chosen == eb.chosen and torch.equal(bon.latents, eb.latents)
    assert eb.nfe.nfe == bon.nfe.nfe and eb.nfe.replayed == 2 * 3 * 3  # the prefix replayed, not recomputed


def test_the_chosen_particle_is_an_unstopped_run_of_its_seed(tiny_model):
    b, seeds = samples(), [3, 4]
    res = search(tiny_model, b, seeds, cfg(method="early-beam", n=4, k=1, m=1), sampling=resolve(tiny_model, steps=STEPS))
    every = member_seeds(seeds, 4)
    for i in range(len(b)):
        seed = every[4 * i + res.chosen[i]]
        alone = tiny_model.generate([b[i]], [seed], sampling=resolve(tiny_model, steps=STEPS))[0]
        torch.testing.assert_close(res.latents[i], alone, rtol=0, atol=1e-5)  # only the batch size differs
    # the verifier picked the brightest x̂0 at step 1: its score is the best of that stage
    for i, parts in enumerate(res.stages[0]["particles"]):
        assert res.chosen[i] == max(parts, key=lambda p: (p[1], -p[0]))[0]


@pytest.mark.parametrize("c", [dict(method="early-beam", n=4, k=1, m=2, steps=[3]),
                               dict(method="smc", n=3, steps=[1, 3], lam=50.0)])
def test_re_noised_branches_replay_exactly(tiny_model, c):
    """Each survivor (re-noised or not) equals a fresh run of its lineage: its seed and its re-noisings, no tape."""
    b = samples(1)
    res = search(tiny_model, b, [5], cfg(**c), sampling=resolve(tiny_model, steps=STEPS))
    assert any(p.renoise for p in res.survivors)  # some branch was re-noised
    for j, p in enumerate(res.survivors):
        h = _renoise_hooks(tiny_model, [p], STEPS)
        if h is None:
            fresh = tiny_model.generate(b, [p.seed], sampling=resolve(tiny_model, steps=STEPS))
        else:
            with h:
                fresh = tiny_model.generate(b, [p.seed], sampling=resolve(tiny_model, steps=STEPS), hooks=h)
        torch.testing.assert_close(res.finals[0][j], fresh[0], rtol=0, atol=1e-5)
    members = [m for m, _ in res.stages[-1]["particles"][0]]
    assert len(members) == len(res.survivors)


@pytest.mark.parametrize("c", [dict(method="best-of-n", n=2), dict(method="early-beam", n=3, k=1, m=1, steps=[3]),
                               dict(method="smc", n=3, steps=[2])])
def test_deterministic_by_seed(tiny_model, c):
    b = samples()
    one = search(tiny_model, b, [7, 8], cfg(**c), sampling=resolve(tiny_model, steps=STEPS))
    two = search(tiny_model, b, [7, 8], cfg(**c), sampling=resolve(tiny_model, steps=STEPS))
    other = search(tiny_model, b, [9, 8], cfg(**c), sampling=resolve(tiny_model, steps=STEPS))
    assert torch.equal(one.latents, two.latents) and one.chosen == two.chosen
    assert not torch.equal(one.latents[0], other.latents[0]) and torch.equal(one.latents[1], other.latents[1])


def test_the_task_verifier_reads_stripped_samples_only(tiny_model):
    res = search(tiny_model, samples(), [1, 2], SearchConfig(method="early-beam", n=2, k=1, m=1, verifier="task"),
                 sampling=resolve(tiny_model, steps=STEPS))
    assert len(res.scores) == 2 and all(0 <= s.score <= 1 for s in res.scores)


def test_a_search_with_the_consensus_group_verifier(tiny_model):
    """consensus (steplens.tasks) judges the particles of a sample together; a lone particle is not judged by it."""
    b = samples()
    res = search(tiny_model, b, [1, 2], SearchConfig(method="early-beam", n=3, k=1, m=1, verifier="consensus"),
                 sampling=resolve(tiny_model, steps=STEPS))
    assert all(0 <= score <= 1 for _, score in res.stages[0]["particles"][0])
    assert all(s.details == {"alone": True} and not s.success for s in res.scores)  # one beam left at the end
    bon = search(tiny_model, b, [1, 2], SearchConfig(method="best-of-n", n=3, verifier="consensus"), sampling=resolve(tiny_model, steps=STEPS))
    assert bon.scores[0].details != {"alone": True}


def test_bad_configurations_are_named():
    with pytest.raises(ValueError, match=r"unknown verifier 'nope'; available: .*consensus.*task"):
        SearchConfig(verifier="nope")
    with pytest.raises(ValueError, match=r"beams wider than the particles: keep m = 5 of n = 4"):
        SearchConfig(method="early-beam", n=4, m=5)
    with pytest.raises(ValueError, match=r"unknown search method 'beam'; available: best-of-n, early-beam"):
        SearchConfig(method="beam")
    with pytest.raises(ValueError, match=r"smc needs resampling steps"):
        SearchConfig(method="smc")
    with pytest.raises(ValueError, match=r"budget 0.5: below one plain run"):
        config_for_budget(SearchConfig(), 0.5, STEPS)
    with pytest.raises(ValueError, match=r"chain needs a task with a continue_from hook; task 'tictactoe' has none"):
        check_search(SearchConfig(method="chain"), STEPS, ["tictactoe"])
    with pytest.raises(ValueError, match=r"beam step k = 5: must be below the last step \(5\)"):
        check_search(SearchConfig(method="early-beam", k=5), STEPS)
    with pytest.raises(ValueError, match=r"branching step 1: must lie after k = 2"):
        check_search(SearchConfig(method="early-beam", k=2, steps=[1]), STEPS)


def test_budget_sizes_the_particles():
    assert config_for_budget(SearchConfig(n=1), 4, 20).n == 4
    eb = config_for_budget(SearchConfig(method="early-beam", k=2, m=1), 2, 20)
    assert search_nfe(eb, 20) <= 40 < search_nfe(eb.model_copy(update={"n": eb.n + 1}), 20)
    assert eb.n == (40 - 17) // 3
    with pytest.raises(ValueError, match="early-beam with m = 4 needs at least"):
        config_for_budget(SearchConfig(method="early-beam", k=2, m=4, n=4), 1, 20)


class Accept:
    name = "test-accept"

    def verify(self, video, sample):
        return Score(score=1.0, success=True)


register_verifier("test-accept", Accept)


@pytest.mark.parametrize("inner, per_link", [("best-of-n", 2 * STEPS), ("early-beam", 2 * 2 + 1 * (STEPS - 2))])
def test_chain_links_generations_until_the_verifier_accepts(tiny_model, inner, per_link):
    """The random network draws no valid path: the task verifier refuses every link, so the chain runs all its
    links, each a searched generation of the sample continue_from made; NFE summed. A verifier that accepts stops it
    after one."""
    b = samples()
    c = SearchConfig(method="chain", inner=inner, n=2, k=1, m=1, links=3, verifier="task")
    res = search(tiny_model, b, [1, 2], c, sampling=resolve(tiny_model, steps=STEPS))
    assert [len(x["samples"]) for x in res.links] == [2, 2, 2] and not any(a for x in res.links for a in x["accepted"])
    assert res.nfe.nfe == 3 * len(b) * per_link
    assert all(s.meta.get("continued_from") for s in res.final_samples)
    assert res.latents.shape[0] == 2
    again = search(tiny_model, b, [1, 2], c, sampling=resolve(tiny_model, steps=STEPS))
    assert torch.equal(res.latents, again.latents)
    once = search(tiny_model, b, [1, 2], c.model_copy(update={"verifier": "test-accept"}), sampling=resolve(tiny_model, steps=STEPS))
    assert len(once.links) == 1 and once.nfe.nfe == len(b) * per_link and once.final_samples == b
