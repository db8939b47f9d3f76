import pytest
import torch

from steplens.presets import resolve
from steplens.hooks import Hooks
from steplens.tasks import get_task


def _samples(k=2, n=3, frames=3):
    return [get_task("maze").sample(s, n, frames) for s in range(k)]


def _gen(model, hooks=None, steps=4, callback=None, guidance=1.0, seeds=(0, 1)):
    return model.generate(_samples(len(seeds)), list(seeds), sampling=resolve(model, steps=steps, guidance=guidance), hooks=hooks, callback=callback)


def test_latent_and_x0_records_equal_the_sampler_values(tiny_model):
    seen = []
    hooks = Hooks(tiny_model, num_steps=4).record(["latent", "x0"])
    with hooks:
        _gen(tiny_model, hooks, callback=seen.append)
    for info in seen:
        assert torch.equal(hooks.get("latent", info.i), info.x)
        assert torch.equal(hooks.get("x0", info.i), info.x0)


def test_last_block_record_gives_the_velocity_through_the_head(tiny_model):
    net, last = tiny_model.net, tiny_model.block_names[-1]
    seen = []
    hooks = Hooks(tiny_model).record(last, steps=[0, 2]).record(last, steps=[0, 2], reduce="energy", label="e")
    samples = _samples()
    cond = tiny_model.condition(samples)
    with hooks:
        tiny_model.generate(samples, [0, 1], sampling=resolve(tiny_model, steps=4), hooks=hooks, callback=seen.append)
    assert sorted(k[1] for k in hooks.records) == [0, 0, 2, 2]
    for step in (0, 2):
        info = seen[step]
        _, aux = net.embed(info.x, info.sigma, cond)
        full = hooks.records[(last, step, "cond", None)]
        torch.testing.assert_close(net.head(full, aux), info.v, rtol=0, atol=1e-6)
    # the energy reduction of the same point is the per-token L2 norm of the full state
        assert torch.equal(hooks.get(f"{last}:e", step), full.norm(dim=-1))


def test_reductions_match_direct_computation(tiny_model):
    name = "blocks.0"
    d = tiny_model.net.cfg.dim
    proj = torch.randn(d, 3)
    got = {}
    for how in ("full", "energy", "mean", "norm", proj):
        h = Hooks(tiny_model).record(name, steps=[1], reduce=how)
        with h:
            _gen(tiny_model, h)
        got[how if isinstance(how, str) else "proj"] = h.get(name, 1)
    full = got["full"]
    assert torch.equal(got["energy"], full.norm(dim=-1))
    assert torch.equal(got["mean"], full.mean(dim=1))
    assert torch.equal(got["norm"], full.flatten(1).norm(dim=1))
    torch.testing.assert_close(got["proj"], full @ proj)
    assert full.requires_grad is False


def test_identity_edits_leave_the_output_bit_identical(tiny_model):
    plain = _gen(tiny_model)
    hooks = Hooks(tiny_model)
    hooks.edit(tiny_model.block_names + ["latent", "x0"], fn=lambda t, ctx: t)
    hooks.edit("blocks.1", fn=lambda t, ctx: t.clone())
    with hooks:
        edited = _gen(tiny_model, hooks)
    assert torch.equal(plain, edited)


def test_edits_fire_only_at_the_chosen_steps(tiny_model):
    plain_steps, edited_steps = [], []
    _gen(tiny_model, callback=plain_steps.append)
    hooks = Hooks(tiny_model).edit("latent", steps=[2], fn=lambda t, ctx: torch.zeros_like(t))
    with hooks:
        _gen(tiny_model, hooks, callback=edited_steps.append)
    assert torch.equal(plain_steps[1].x0, edited_steps[1].x0)
    assert torch.count_nonzero(edited_steps[2].x) == 0
    assert not torch.equal(plain_steps[3].x, edited_steps[3].x)


def test_hooks_are_removed_after_an_exception(tiny_model):
    hooks = Hooks(tiny_model).record(tiny_model.block_names)
    with pytest.raises(RuntimeError, match="boom"):
        with hooks:
            assert all(len(b._forward_hooks) == 1 for b in tiny_model.net.blocks)
            raise RuntimeError("boom")
    assert all(len(b._forward_hooks) == 0 for b in tiny_model.net.blocks)


def test_cfg_branches_are_recorded_apart(tiny_model):
    hooks = Hooks(tiny_model).record("blocks.1", steps=[0])
    with hooks:
        _gen(tiny_model, hooks, guidance=3.0)
    cond, uncond = hooks.get("blocks.1", 0, "cond"), hooks.get("blocks.1", 0, "uncond")
    assert cond.shape == uncond.shape and cond.shape[0] == 2
    assert not torch.allclose(cond, uncond)
    solo = Hooks(tiny_model).record("blocks.1", steps=[0])
    with solo:
        _gen(tiny_model, solo)
    torch.testing.assert_close(solo.get("blocks.1", 0), cond, rtol=1e-5, atol=1e-5)
    only_uncond = Hooks(tiny_model).record("blocks.1", steps=[0], branch="uncond")
    with only_uncond:
        _gen(tiny_model, only_uncond, guidance=3.0)
    assert [k[2] for k in only_uncond.records] == ["uncond"]


def test_bad_hook_requests_are_named(tiny_model):
    h = Hooks(tiny_model, num_steps=4)
    with pytest.raises(ValueError, match=r"unknown hook point 'blocks.7'.*blocks.0 … blocks.1 \(2 blocks\)"):
        h.record("blocks.7")
    with pytest.raises(ValueError, match="step 4 out of range.*0..3"):
        h.record("latent", steps=[1, 4])
    with pytest.raises(ValueError, match="empty step selection"):
        h.record("blocks.0", steps=[])
    with pytest.raises(ValueError, match="expert 'transformer_2' is not in this model; it has one expert only"):
        h.record("blocks.0", expert="transformer_2")
    with pytest.raises(ValueError, match="unknown reduction 'median'"):
        h.record("blocks.0", reduce="median")
    bad = Hooks(tiny_model).edit("blocks.0", fn=lambda t, ctx: t[:, :1])
    with pytest.raises(ValueError, match="expected a tensor of shape"):
        with bad:
            _gen(tiny_model, bad)
    assert all(len(b._forward_hooks) == 0 for b in tiny_model.net.blocks)


def test_disk_sink_streams_records_and_reads_them_back(tiny_model, tmp_path):
    from steplens.hooks import DiskSink

    mem = Hooks(tiny_model).record(["blocks.1", "x0"], steps=[0, 3])
    with mem:
        _gen(tiny_model, mem)
    sink = DiskSink(tmp_path / "rec")
    disk = Hooks(tiny_model, sink=sink).record(["blocks.1", "x0"], steps=[0, 3])
    with disk:
        _gen(tiny_model, disk)
    assert disk.records == {} and len(sink.keys()) == len(mem.records) == 4
    for key, value in mem.records.items():
        assert torch.equal(sink.load(key), value)


def test_a_hook_step_outside_the_run_is_refused_naming_the_range(tiny_model):
    """Issue 22's battery: a hook at a step beyond the run never fired, silently. The embedded model refuses it as
    pipelines do (Hooks.check_run), and a negative step is refused when the hook is made."""
    for point in ("blocks.1", "latent", "x0"):
        h = Hooks(tiny_model).record(point, steps=[2, 6])
        with pytest.raises(ValueError, match=r"asks for step 6, but this .* runs 4 steps \(0\.\.3\)"):
            _gen(tiny_model, hooks=h, steps=4)
    h = Hooks(tiny_model, num_steps=5).record("blocks.1", steps=[1])
    with pytest.raises(ValueError, match="made for num_steps=5"):
        _gen(tiny_model, hooks=h, steps=4)
    with pytest.raises(ValueError, match=r"step -1 out of range for hook on 'blocks.1': steps are >= 0"):
        Hooks(tiny_model).record("blocks.1", steps=[-1, 2])
    h = Hooks(tiny_model).record("blocks.1", steps=[3])
    _gen(tiny_model, hooks=h, steps=4)  # the last step is in range
    assert h.get("blocks.1", 3) is not None
