import numpy as np
import pytest
import torch

from steplens.presets import resolve
from steplens.methods.ensemble import (EnsembleConfig, consensus_index, default_blocks, default_steps,
                                       generate_ensemble, majority_vote, member_seeds)
from steplens.tasks import get_task


def _samples(k=2):
    return [get_task("maze").sample(s, 3, 3) for s in range(k)]


def test_defaults_scale_the_study_choice():
    assert default_blocks(40) == list(range(20, 30))
    assert default_blocks(8) == [4, 5]
    assert default_steps(20) == [0, 1, 2] and default_steps(50) == list(range(8)) and default_steps(2) == [0]


def test_n1_ensemble_equals_plain_sampling_bit_for_bit(tiny_model):
    smp = _samples()
    plain = tiny_model.generate(smp, [0, 1], sampling=resolve(tiny_model, steps=4))
    for target in ("block", "update", "latent", "x0", "v"):
        ens = generate_ensemble(tiny_model, smp, [0, 1], EnsembleConfig(n_seeds=1, target=target), sampling=resolve(tiny_model, steps=4))
        assert torch.equal(ens[:, 0], plain), target


def test_alpha0_equals_plain_n_seed_sampling(tiny_model):
    smp = _samples()
    rep = [s for s in smp for _ in range(3)]
    plain = tiny_model.generate(rep, member_seeds([0, 1], 3), sampling=resolve(tiny_model, steps=4)).reshape(2, 3, 3, 3, 6, 6)
    for target in ("block", "update", "v"):
        ens = generate_ensemble(tiny_model, smp, [0, 1], EnsembleConfig(n_seeds=3, alpha=0.0, target=target), sampling=resolve(tiny_model, steps=4))
        assert torch.equal(ens, plain), target


def test_averaging_makes_members_agree_and_alpha_interpolates(tiny_model):
    smp = _samples(1)
    spread = {}
    for alpha in (0.0, 0.5, 1.0):
        cfg = EnsembleConfig(n_seeds=4, alpha=alpha, target="x0", steps=[0, 1, 2, 3])
        ens = generate_ensemble(tiny_model, smp, [5], cfg, sampling=resolve(tiny_model, steps=4))
        spread[alpha] = ens.std(dim=1).mean().item()
    assert spread[1.0] < 1e-5 < spread[0.5] < spread[0.0]  # x0 averaged at the last step: one answer


def test_residual_stream_averaging_over_a_range_equals_its_first_block(tiny_model):
    smp = _samples(1)
    a = generate_ensemble(tiny_model, smp, [3], EnsembleConfig(n_seeds=3, blocks=[0, 1], steps=[0, 1]), sampling=resolve(tiny_model, steps=4))
    b = generate_ensemble(tiny_model, smp, [3], EnsembleConfig(n_seeds=3, blocks=[0], steps=[0, 1]), sampling=resolve(tiny_model, steps=4))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # averaging each block's own update instead keeps the streams apart: blocks 0..1 differ from block 0
    c = generate_ensemble(tiny_model, smp, [3], EnsembleConfig(n_seeds=3, target="update", blocks=[0, 1],
                                                               steps=[0, 1]), sampling=resolve(tiny_model, steps=4))
    d = generate_ensemble(tiny_model, smp, [3], EnsembleConfig(n_seeds=3, target="update", blocks=[0],
                                                               steps=[0, 1]), sampling=resolve(tiny_model, steps=4))
    assert not torch.allclose(c, d, atol=1e-4)


def test_selection_rules_pick_what_they_claim():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5, (7, 7))
    members = np.stack([base.copy() for _ in range(4)])
    members[0, :3] = (base[:3] + 1) % 5     # member 0 disagrees on 3 rows
    members[1, 3:4] = (base[3:4] + 2) % 5   # member 1 on 1 row that no other member changes
    members[3, :2] = (base[:2] + 3) % 5     # member 3 on 2 rows; member 2 is the base itself
    labels = members[None]
    assert consensus_index(labels).tolist() == [2]
    vote = majority_vote(labels)
    assert np.array_equal(vote[0], base)  # every pixel: at least 2 of 4 members keep the base label, others split
    tie = np.array([[[[1]], [[3]]]])      # two members, one pixel each: ties go to the lowest label
    assert majority_vote(tie)[0, 0, 0] == 1
    # float frames: the member with the smallest summed squared distance to the others (here the median one)
    pixels = np.array([[[0.0, 0.0], [0.9, 1.0], [0.5, 0.4], [0.2, 0.3]]])  # (B=1, N=4, 2 pixels)
    assert consensus_index(pixels).tolist() == [2]


@pytest.mark.parametrize("kw, msg", [
    ({"n_seeds": 0}, "n_seeds must be >= 1, got 0"),
    ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
    ({"alpha": -0.1}, r"alpha must be in \[0, 1\], got -0.1"),
])
def test_bad_config_is_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EnsembleConfig(**kw)


def test_blocks_and_steps_out_of_range(tiny_model):
    with pytest.raises(ValueError, match="block 5 out of range: the model has blocks 0..1"):
        generate_ensemble(tiny_model, _samples(1), [0], EnsembleConfig(blocks=[1, 5]), sampling=resolve(tiny_model, steps=4))
    with pytest.raises(ValueError, match="step 9 out of range.*0..3"):
        generate_ensemble(tiny_model, _samples(1), [0], EnsembleConfig(steps=[9]), sampling=resolve(tiny_model, steps=4))


@pytest.mark.slow
def test_compare_methods_on_the_shipped_model_share_runs_and_respect_the_oracle_bound():
    from steplens.models.load import load_model
    from steplens.probes.compare import METHODS, run_methods

    model = load_model("tiny-maze")
    smp = [get_task("maze").sample(s, 6, 4) for s in range(8)]   # 6x6: the size the model misses most
    seeds = list(range(8))
    every = run_methods(model, smp, seeds, list(METHODS), n=2, sampling=resolve(model, steps=8, shift=3.0))
    assert list(every) == list(METHODS) and all(len(v) == 8 for v in every.values())
    alone = {m: run_methods(model, smp, seeds, [m], n=2, sampling=resolve(model, steps=8, shift=3.0))[m] for m in ("ensemble-vote", "vote")}
    # the same answers whether a method runs alone or beside the others sharing its runs; a run shared by several
    # methods is counted (`nfe`) on the first that reads it, each method's own cost is `method_nfe`
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("nfe", "nfe_without_reuse")} for r in rows]  # noqa
    assert strip(alone["ensemble-vote"]) == strip(every["ensemble-vote"]) and strip(alone["vote"]) == strip(every["vote"])
    assert all(r["nfe"] == r["method_nfe"] for m in alone for r in alone[m])  # alone, nothing is shared
    # the oracle takes any correct member: it succeeds wherever one seed (member 0's noise) or the consensus pick does
    for i in range(8):
        ok = {m: every[m][i]["success"] for m in ("best-oracle", "single", "best-consensus")}
        assert ok["best-oracle"] >= ok["single"] and ok["best-oracle"] >= ok["best-consensus"]
        assert every["best-oracle"][i]["score"] >= max(every["single"][i]["score"], every["best-consensus"][i]["score"])


def test_paired_comparisons_align_samples_by_index():
    from steplens.probes.compare import head_to_head, method_table, versus

    rows = [{"condition": "single N=1", "sample": i, "success": ok} for i, ok in enumerate([1, 0, 0, 1])]
    rows += [{"condition": "vote N=2", "sample": i, "success": ok} for i, ok in reversed(list(enumerate([1, 1, 0, 1])))]
    rows += [{"condition": "ensemble N=2", "sample": i, "success": 1} for i in (3, 1, 2, 0)]
    v = versus(rows, ("ensemble", 2), ("vote", 2))
    assert v["samples"] == 4 and v["delta"] == 0.25 and v["delta_ci_low"] <= 0.25 <= v["delta_ci_high"]
    jobs = [("single", 1), ("vote", 2), ("ensemble", 2)]
    table = method_table(rows, jobs)
    assert [t["solve_rate"] for t in table] == [0.5, 0.75, 1.0]
    assert [t["delta_vs_single"] for t in table] == [0.0, 0.25, 0.5]
    assert [(h["method"], h["versus"], h["delta"]) for h in head_to_head(rows, jobs)] == [("ensemble", "vote", 0.25)]
    with pytest.raises(ValueError, match="no sample ran both ensemble N=3 and vote N=2"):
        versus(rows, ("ensemble", 3), ("vote", 2))
