"""Frame-prefix adapters (steplens.models.adapter): a LoRA on frozen weights, on only when given K > 1 frames."""

import pytest
import torch

from steplens.models.dit import DiTCond
from steplens.models.load import load_model
from steplens.models.weights import load_weights, save_weights
from steplens.training.train import TrainConfig, Trainer, draw_batch

CFG = dict(arch="test", batch=4, sizes={3: 1.0}, frames={3: 1.0, 4: 1.0}, warmup=1, eval_every=0, ckpt_every=2,
           lr=3e-2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny base (4 steps), then an adapter trained on it for 4 steps at K = 2: (base file, adapter file, run)."""
    tmp = tmp_path_factory.mktemp("adapter")
    base = Trainer(TrainConfig(**CFG, steps=4), tmp / "base")
    base.run(progress=False)
    w = tmp / "base.safetensors"
    save_weights(w, base.ema, base.model.cfg.to_dict(), dtype=torch.float32)
    cfg = TrainConfig(**CFG, steps=4, init=str(w), prefix={2: 1.0}, adapter={"rank": 4, "alpha": 4.0})
    run = Trainer(cfg, tmp / "adapter")
    run.run(progress=False)
    out = tmp / "adapter.safetensors"
    state, arch, info = load_weights(run.out / "checkpoint.safetensors")
    save_weights(out, run.ema, arch, info, dtype=torch.float32)
    return w, out, run


def _inputs(k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 4, 8, 8, generator=g)
    first = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    prefix = torch.rand(2, 3, k, 8, 8, generator=g) * 2 - 1 if k > 1 else None
    if prefix is not None:
        prefix[:, :, 0] = first
    return x, torch.tensor([0.7, 0.3]), DiTCond(first, torch.randint(1, 20, (2, 6), generator=g), prefix)


def test_the_adapted_model_is_its_base_bit_for_bit_at_k1_and_differs_at_k2(trained):
    base_file, adapter_file, _ = trained
    base, adapted = load_model(str(base_file)), load_model(str(adapter_file))
    with torch.no_grad():
        x, s, cond = _inputs(1)
        assert torch.equal(base.velocity(x, s, cond), adapted.velocity(x, s, cond))
        x, s, cond = _inputs(2)
        moved = (base.velocity(x, s, cond) - adapted.velocity(x, s, cond)).abs().max()
        assert moved > 1e-4, moved
        x, s, cond = _inputs(1, seed=1)  # back to K = 1 after a K = 2 call: off again
        assert torch.equal(base.velocity(x, s, cond), adapted.velocity(x, s, cond))
    assert adapted.prefix_trained == 2 and base.prefix_trained == 1


def test_hooks_on_blocks_fire_on_the_adapted_model_at_either_k(trained):
    _, adapter_file, _ = trained
    model = load_model(str(adapter_file))
    assert model.block_names == ["blocks.0", "blocks.1"]
    seen = []
    handle = model.net.get_submodule("blocks.1").register_forward_hook(lambda m, a, o: seen.append(o.shape))
    with torch.no_grad():
        for k in (1, 2):
            model.velocity(*_inputs(k))
    handle.remove()
    assert len(seen) == 2


def test_adapter_training_moves_only_the_adapter_and_resumes_where_it_stopped(trained, tmp_path):
    base_file, _, run = trained
    base_state, _, _ = load_weights(base_file)
    state = run.model.state_dict()
    lora = [k for k in state if ".lora_" in k]
    assert lora and any(state[k].abs().max() > 0 for k in lora if "lora_B" in k)  # B starts at 0: it learnt
    for k, v in state.items():  # the base, under peft's base_layer names where wrapped, is the init exactly
        if ".lora_" not in k:
            assert torch.equal(v, base_state[k.replace(".base_layer", "")]), k
    cfg = run.cfg
    whole = Trainer(cfg.model_copy(update={"steps": 4}), tmp_path / "whole")
    whole.run(progress=False)
    part = Trainer(cfg.model_copy(update={"steps": 4}), tmp_path / "part")
    part.run(until=2, progress=False)
    part = Trainer(cfg.model_copy(update={"steps": 4}), tmp_path / "part")
    assert part.step == 2
    part.run(progress=False)
    assert all(torch.equal(v, part.model.state_dict()[k]) for k, v in whole.model.state_dict().items())
    x0, eps, sigma, cond = draw_batch(cfg, 0, run.codec)
    assert cond.prefix is not None and cond.prefix.shape[2] == 2  # an adapter run draws K > 1 only


@pytest.mark.parametrize("kw, message", [
    ({"adapter": {}, "prefix": {2: 1.0}}, "an adapter trains on frozen weights: give them as `init`"),
    ({"adapter": {}, "prefix": {2: 1.0}, "init": "tiny-reasoner", "anchor": "tiny-reasoner"},
     "nothing to anchor"),
    ({"adapter": {}, "prefix": {1: 0.5, 2: 0.5}, "init": "tiny-reasoner"}, "give K = 1 the weight 0"),
    ({"adapter": {}, "prefix": {3: 1.0}, "init": "tiny-reasoner", "frames": {3: 1.0}},
     "a 3-frame batch has no K below 3"),
    ({"prefix": {2: 1.0}}, "with K = 1 among them"),
    ({"adapter": {"rank": 0}, "prefix": {2: 1.0}, "init": "tiny-reasoner"}, "adapter.rank must be >= 1, got 0"),
    ({"adapter": {"gate": "always"}, "prefix": {2: 1.0}, "init": "tiny-reasoner"}, "the one gate is 'prefix'"),
    ({"adapter": {"ranks": 4}, "prefix": {2: 1.0}, "init": "tiny-reasoner"}, "ranks"),
])
def test_adapter_configs_that_cannot_train_are_named(kw, message):
    with pytest.raises(ValueError) as e:
        TrainConfig(**{"arch": "test", "frames": {3: 1.0, 4: 1.0}, **kw})
    assert message in str(e.value), str(e.value)


def test_targets_that_match_no_layer_are_refused(tmp_path):
    from steplens.models import VideoDiT, get_arch
    from steplens.models.adapter import add_adapter

    with pytest.raises(ValueError, match="matches no layer"):
        add_adapter(VideoDiT(get_arch("test")), {"targets": r"nothing\.here"})


def test_a_malformed_targets_expression_is_named():
    with pytest.raises(ValueError, match=r"adapter.targets '\(blocks' is not a regular expression"):
        TrainConfig(arch="test", frames={3: 1.0}, prefix={2: 1.0}, init="tiny-reasoner", adapter={"targets": "(blocks"})


def test_distilling_from_an_adapter_is_refused_naming_its_base(trained, tmp_path):
    """An adapter is its init at K = 1 bit for bit: a student distils that, from the init itself."""
    from steplens.training.distill import DistillConfig, Distiller

    base_file, adapter_file, _ = trained
    cfg = DistillConfig(arch="test", batch=4, sizes={3: 1.0}, frames={2: 1.0, 3: 1.0}, warmup=2, eval_every=0,
                        teacher_steps=4, student_steps=2, eval_teacher=False, teacher=str(adapter_file), steps=1)
    with pytest.raises(ValueError, match=f"frame-prefix adapter on other weights .*{base_file.name}"):
        Distiller(cfg, tmp_path / "d")


def test_a_frame_prefix_run_evaluates_itself_given_k_frames(trained, tmp_path):
    """The periodic evaluation of a run that learns K > 1 also gives its model the first K frames of the validation
    samples (it crashed: the model it built knew no training config, so it refused K > 1 as image-to-video only),
    at the smallest K and at the largest that leaves frames to generate (the shipped adapter lost symmetry only at
    K = T - 1, which its evaluation never looked at)."""
    base_file, _, run = trained
    cfg = run.cfg.model_copy(update={"eval_every": 2, "eval_count": 2, "eval_frames": 4, "steps": 2,
                                     "prefix": {2: 0.5, 3: 0.5}})
    tr = Trainer(cfg, tmp_path / "evaluated")
    assert tr.eval_prefixes() == [2, 3]
    tr.run(progress=False)
    import json

    rec = [json.loads(x) for x in (tmp_path / "evaluated" / "log.jsonl").read_text().splitlines()][-1]
    assert rec["eval_prefix"] == 2 and rec["eval_prefixes"] == [2, 3]
    assert 0.0 <= rec["eval_solve_rate_k2_maze"] <= 1.0 and 0.0 <= rec["eval_solve_rate_k3_maze"] <= 1.0
    assert "eval_solve_rate_maze" not in rec  # an adapter is its init at K = 1: nothing to measure there
    # one K trained, or none below the evaluated frame count: that K alone, or nothing
    assert Trainer(cfg.model_copy(update={"prefix": {2: 1.0}}), tmp_path / "one").eval_prefixes() == [2]
    assert Trainer(cfg.model_copy(update={"eval_frames": 2}), tmp_path / "none").eval_prefixes() == []
