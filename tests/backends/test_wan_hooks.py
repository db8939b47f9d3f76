"""steplens.hooks.Hooks on real (tiny, offline) diffusers Wan pipelines: records change nothing, hooks fire on the
right expert / step / CFG branch, edits of x_s and x0_hat reach the scheduler, everything is put back."""

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from steplens.context import current  # noqa: E402
from steplens.hooks import SAMPLER_POINTS, Hooks  # noqa: E402
from steplens.backends import attach, trace_pipeline, transformer_components  # noqa: E402
from steplens.backends.wan import WanPipelineModel  # noqa: E402
from steplens.backends.wan.tiny import make_scheduler, tiny_inputs, tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402

torch.set_num_threads(1)

BUILDERS = {"wan22": tiny_wan22_i2v, "wan21": tiny_wan21_i2v}
GUIDANCE = 5.0  # tiny_inputs' default: CFG on


def run(pipe, **kw):
    return pipe(**tiny_inputs(pipe, **kw)).frames


def assert_pristine(pipe):
    """No wrapper, no module hook, no step context left behind."""
    for attr in ("step", "set_timesteps"):
        assert attr not in vars(pipe.scheduler)
    assert "prepare_latents" not in vars(pipe)
    for module in transformer_components(pipe).values():
        assert "forward" not in vars(module) and "cache_context" not in vars(module)
        assert all(len(b._forward_hooks) == 0 for b in module.blocks)
    assert current() is None


def expected_experts(pipe, steps=4):
    """The component the pipeline runs at each step, from the scheduler's timesteps and boundary_ratio."""
    pipe.scheduler.set_timesteps(steps)
    ratio = pipe.config.boundary_ratio
    if ratio is None:
        return ["transformer"] * steps
    boundary = ratio * pipe.scheduler.config.num_train_timesteps
    return ["transformer" if t >= boundary else "transformer_2" for t in pipe.scheduler.timesteps.tolist()]


@pytest.mark.parametrize("model,scheduler", [("wan22", "euler"), ("wan22", "unipc"), ("wan21", "unipc")])
def test_records_change_nothing_and_match_the_trace(pipes, model, scheduler):
    pipe = pipes(model, scheduler)
    plain = run(pipe)  # decoded video
    wan = WanPipelineModel(pipe)
    hooks = Hooks(wan, num_steps=4).record(wan.block_names + ["latent", "x0"])
    hooks.record(wan.block_names[-1], reduce="energy", label="e")
    with trace_pipeline(pipe, hooks=hooks) as tr:
        hooked = run(pipe)
    assert torch.equal(plain, hooked)  # bit for bit
    assert_pristine(pipe)
    experts = expected_experts(pipe)
    blocks = {(b, k, br, experts[k]) for b in wan.block_names for k in range(4) for br in ("cond", "uncond")}
    sampler = {(p, k, "cond", None) for p in ("latent", "x0") for k in range(4)}
    energy = {(f"{wan.block_names[-1]}:e", k, br, experts[k]) for k in range(4) for br in ("cond", "uncond")}
    assert set(hooks.records) == blocks | sampler | energy
    for s in tr.steps:  # x_s is the latent handed to the scheduler, x0_hat = x_s - sigma v as the scheduler has it
        assert torch.equal(hooks.get("latent", s.i), s.x)
        torch.testing.assert_close(hooks.get("x0", s.i), s.x0, rtol=0, atol=1e-6)
    # the latent of step 0 is the float32 latent the pipeline drew
    assert hooks.get("latent", 0).dtype == torch.float32 and hooks.get("latent", 0).shape[1] == 16


@pytest.mark.parametrize("model,scheduler", [("wan22", "unipc"), ("wan21", "euler")])  # wan22 Euler: test_wan22.py
def test_identity_edits_change_nothing(pipes, model, scheduler):
    pipe = pipes(model, scheduler)
    plain = run(pipe, output_type="latent")
    wan = WanPipelineModel(pipe)
    hooks = Hooks(wan).edit(wan.block_names + ["latent", "x0"], fn=lambda t, ctx: t)
    hooks.edit(["blocks.1", "latent", "x0"], fn=lambda t, ctx: t.clone())
    with attach(pipe, hooks):
        edited = run(pipe, output_type="latent")
    assert torch.equal(plain, edited)
    assert_pristine(pipe)


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_hooks_fire_on_the_expected_expert_step_and_branch(pipes, scheduler):
    pipe = pipes("wan22", scheduler)
    experts = expected_experts(pipe)
    assert set(experts) == {"transformer", "transformer_2"}  # the schedule does cross the boundary
    sigmas = pipe.scheduler.sigmas[:-1].tolist()
    wan = WanPipelineModel(pipe)
    seen = []

    def log(t, ctx):
        seen.append((ctx.step, ctx.branches, ctx.expert, ctx.sigma))
        return t

    hooks = Hooks(wan).record("blocks.0", reduce="norm").edit("blocks.1", fn=log)
    with attach(pipe, hooks):
        run(pipe, output_type="latent")
    assert seen == [(k, (br,), experts[k], sigmas[k]) for k in range(4) for br in ("cond", "uncond")]
    for k in range(4):
        cond, uncond = hooks.get("blocks.0", k, "cond", experts[k]), hooks.get("blocks.0", k, "uncond", experts[k])
        assert cond.shape == (1,) and not torch.equal(cond, uncond)  # batch 1 per branch, two different forwards

    # expert- and branch-specific selections, as a probe would write them
    low = Hooks(wan).record("blocks.1", steps=[0, 3], branch="uncond", expert="transformer_2")
    low.record("blocks.0", expert="transformer", label="high")
    with attach(pipe, low):
        run(pipe, output_type="latent")
    high_steps = [k for k in range(4) if experts[k] == "transformer"]
    high = {("blocks.0:high", k, br, "transformer") for k in high_steps for br in ("cond", "uncond")}
    assert set(low.records) == {("blocks.1", 3, "uncond", "transformer_2")} | high

    # CFG off: one forward per step, the cond branch only
    solo = Hooks(wan).record("blocks.0", reduce="norm")
    with attach(pipe, solo):
        run(pipe, output_type="latent", guidance_scale=1.0)
    assert sorted(solo.records) == sorted(("blocks.0", k, "cond", experts[k]) for k in range(4))
    key = ("blocks.0", 0, "cond", experts[0])
    torch.testing.assert_close(solo.get(*key), hooks.get(*key))


def _head(transformer, hidden, t, prompt, latent_shape):
    """WanTransformer3DModel.forward after its blocks: norm_out shifted/scaled by the timestep, proj_out, unpatchify."""
    b, _, f, h, w = latent_shape
    temb = transformer.condition_embedder(torch.tensor([t], dtype=torch.float32).expand(b), prompt, None)[0]
    shift, scale = (transformer.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
    x = (transformer.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
    x = transformer.proj_out(x)
    pt, ph, pw = transformer.config.patch_size
    x = x.reshape(b, f // pt, h // ph, w // pw, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def test_last_block_record_through_the_head_gives_the_branch_output(pipes):
    pipe = pipes("wan22", "euler")
    wan = WanPipelineModel(pipe)
    last = wan.block_names[-1]
    experts = expected_experts(pipe)
    hooks = Hooks(wan).record(last, steps=[0, 3])
    inputs = tiny_inputs(pipe, output_type="latent")
    prompts = {"cond": inputs["prompt_embeds"], "uncond": inputs["negative_prompt_embeds"]}
    with trace_pipeline(pipe, hooks=hooks, branches=True) as tr:
        pipe(**inputs)
    assert experts[0] != experts[3]  # one step per expert
    for k in (0, 3):
        step, module = tr.steps[k], getattr(pipe, experts[k])
        outs = dict(zip(("cond", "uncond"), step.branches))  # the transformer outputs, in call order
        for br in ("cond", "uncond"):
            rec = hooks.get(last, k, br, experts[k])
            head = _head(module, rec, step.t, prompts[br], step.x.shape)
            torch.testing.assert_close(head, outs[br], rtol=0, atol=1e-5)
        other = _head(module, hooks.get(last, k, "cond", experts[k]), step.t, prompts["cond"], step.x.shape)
        assert (other - outs["uncond"]).abs().max() > 1e-3  # the check tells the branches apart


def _inputs_seen(pipe):
    """The hidden_states each transformer call really embedded (a forward pre-hook on its patch embedding)."""
    seen, handles = [], []
    for module in transformer_components(pipe).values():
        handles.append(module.patch_embedding.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone())))
    return seen, handles


@pytest.mark.parametrize("k", [0, 2])
def test_latent_edit_reaches_the_transformer_and_the_scheduler(pipes, k):
    pipe = pipes("wan22", "euler")
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    shape = tr0.steps[0].x.shape
    value = torch.zeros(shape) if k else torch.randn(shape, generator=torch.Generator().manual_seed(7))
    hooks = Hooks(WanPipelineModel(pipe)).record("latent").edit("latent", steps=[k], fn=lambda t, ctx: value.clone())
    seen, handles = _inputs_seen(pipe)
    try:
        run(pipe, output_type="latent")
        plain_seen = seen.copy()
        seen.clear()
        with trace_pipeline(pipe, hooks=hooks) as tr:
            edited = run(pipe, output_type="latent")
    finally:
        for h in handles:
            h.remove()
    assert_pristine(pipe)
    assert not torch.equal(plain, edited)
    for j in range(k):  # steps before the edit: unchanged
        assert torch.equal(tr.steps[j].x, tr0.steps[j].x) and torch.equal(tr.steps[j].x0, tr0.steps[j].x0)
    assert torch.equal(hooks.get("latent", k), tr0.steps[k].x)  # recorded before the edit (record added first)
    assert torch.equal(tr.steps[k].x, value)  # the scheduler steps from the edited latent
    assert len(seen) == len(plain_seen) == 8
    for call in range(2 * k):
        assert torch.equal(seen[call], plain_seen[call])
    for call in (2 * k, 2 * k + 1):  # both CFG forwards of step k embed the edited latent, the condition untouched
        assert torch.equal(seen[call][:, :16], value)
        assert torch.equal(seen[call][:, 16:], plain_seen[call][:, 16:])
    a, b = tr.steps[k], tr.steps[k + 1]  # Euler from the edited latent
    torch.testing.assert_close(b.x, a.x + (a.sigma_next - a.sigma) * a.v, rtol=0, atol=1e-6)


def test_latent_edit_restarts_unipc(pipes):
    pipe = pipes("wan22", "unipc")
    k = 2
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    value = torch.randn(tr0.steps[0].x.shape, generator=torch.Generator().manual_seed(3))
    hooks = Hooks(WanPipelineModel(pipe)).replace("latent", value, steps=[k])
    with trace_pipeline(pipe, hooks=hooks) as tr:
        edited = run(pipe, output_type="latent")
    assert not torch.equal(plain, edited)
    for j in range(k):
        assert torch.equal(tr.steps[j].x0, tr0.steps[j].x0)
    assert torch.equal(tr.steps[k].x, value)
    # no corrector and a first-order predictor at the edited step: the Euler step from the edited latent ...
    a, b = tr.steps[k], tr.steps[k + 1]
    torch.testing.assert_close(b.x, a.x + (a.sigma_next - a.sigma) * a.v, rtol=0, atol=1e-5)
    # ... which is not what UniPC does unedited (corrector + second order), so the check can fail
    a0, b0 = tr0.steps[k], tr0.steps[k + 1]
    assert (b0.x - (a0.x + (a0.sigma_next - a0.sigma) * a0.v)).abs().max() > 1e-4


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_x0_edit_reaches_the_scheduler(pipes, scheduler):
    pipe = pipes("wan22", scheduler)
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    hooks = Hooks(WanPipelineModel(pipe)).edit("x0", steps=[1], fn=lambda t, ctx: torch.zeros_like(t))
    with trace_pipeline(pipe, hooks=hooks) as tr:
        edited = run(pipe, output_type="latent")
    assert not torch.equal(plain, edited)
    assert torch.equal(tr.steps[0].x0, tr0.steps[0].x0) and torch.equal(tr.steps[1].x, tr0.steps[1].x)
    s = tr.steps[1]
    assert s.x0.abs().max() <= 1e-5  # the scheduler's own x0_hat (UniPC: its history) is the edited one
    torch.testing.assert_close(s.v, s.x / s.sigma, rtol=0, atol=1e-5)  # v = (x_s - 0) / sigma
    if scheduler == "euler":
        torch.testing.assert_close(tr.steps[2].x, s.x + (s.sigma_next - s.sigma) * s.v, rtol=0, atol=1e-6)


def test_x0_edit_at_the_last_euler_step_is_the_output_exactly(pipes):
    """As on LTX-2 (the core loop's after_step): an x0 edit at the step to sigma 0 lands on x0' bit for bit, and the
    trace records x0' itself (the Euler update x - sigma (x - x0') / sigma equals it only up to rounding)."""
    pipe = pipes("wan22", "euler")
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    target = torch.randn(plain.shape, generator=torch.Generator().manual_seed(7))
    last = len(tr0.steps) - 1
    with trace_pipeline(pipe, hooks=Hooks(WanPipelineModel(pipe)).edit("x0", steps=[last],
                                                                        fn=lambda t, ctx: target.clone())) as tr:
        out = run(pipe, output_type="latent")
    assert torch.equal(out, target) and torch.equal(tr.steps[-1].x0, target)
    assert torch.equal(tr.steps[-1].x, tr0.steps[-1].x)
    torch.testing.assert_close(tr.steps[-1].v, (tr0.steps[-1].x - target) / tr0.steps[-1].sigma, rtol=0, atol=1e-6)
    assert_pristine(pipe)


class Boom(Exception):
    pass


def test_everything_removed_after_an_exception_inside_a_block(pipes):
    pipe = pipes("wan22", "euler")
    reference = run(pipe, output_type="latent")
    wan = WanPipelineModel(pipe)

    def boom(t, ctx):
        raise Boom(f"step {ctx.step}")

    hooks = Hooks(wan).record(wan.block_names).edit("latent", fn=lambda t, ctx: t + 1).edit("blocks.1", boom, steps=[2])
    with pytest.raises(Boom, match="step 2"):
        with attach(pipe, hooks):
            assert all(len(b._forward_hooks) == 1 for m in wan.modules().values() for b in m.blocks)
            run(pipe, output_type="latent")
    assert_pristine(pipe)
    assert {k[1] for k in hooks.records} == {0, 1, 2}  # it did run up to the failing block
    assert torch.equal(run(pipe, output_type="latent"), reference)  # no state left in the pipeline or scheduler

    # `with hooks:` (as the probes do) plus attach: block hooks registered once, removed by `with hooks`
    calls = []
    counting = Hooks(wan).edit("blocks.0", fn=lambda t, ctx: calls.append(ctx.step) or t)
    with pytest.raises(Boom):
        with counting, attach(pipe, counting):
            run(pipe, output_type="latent")
            raise Boom("after the run")
    assert calls == [0, 0, 1, 1, 2, 2, 3, 3]  # two CFG forwards per step, each hooked once
    assert_pristine(pipe)
    assert torch.equal(wan.run(counting, **tiny_inputs(pipe, output_type="latent")).frames, reference)
    assert_pristine(pipe)


def test_clear_errors(pipes):
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline

    p22, p21 = pipes("wan22"), pipes("wan21")
    parts = dict(p22.components, boundary_ratio=p22.config.boundary_ratio)

    t2v = WanPipeline(tokenizer=None, text_encoder=None, vae=p22.vae, scheduler=p22.scheduler,
                      transformer=p22.transformer)
    with pytest.raises(TypeError, match="pipeline class WanPipeline; supported: WanImageToVideoPipeline"):
        WanPipelineModel(t2v)
    with pytest.raises(TypeError, match="pipeline class WanTransformer3DModel"):
        attach(p22.transformer, Hooks(WanPipelineModel(p22)))
    bare = WanImageToVideoPipeline(**{**parts, "transformer": None, "transformer_2": None})
    with pytest.raises(ValueError, match="has no transformer"):  # (expand_timesteps=True, TI2V-5B: test_wan_ti2v.py)
        WanPipelineModel(bare)

    dpm = WanImageToVideoPipeline(**{**parts, "scheduler": DPMSolverMultistepScheduler()})
    with pytest.raises(TypeError, match=r"scheduler DPMSolverMultistepScheduler \(it needs flow matching.*\); "
                                        "supported: FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler"):
        attach(dpm, Hooks(WanPipelineModel(dpm)).record("blocks.0"))
    eps = WanImageToVideoPipeline(**{**parts, "scheduler": UniPCMultistepScheduler()})
    with pytest.raises(ValueError, match="prediction_type='epsilon'.*needs 'flow_prediction'"):
        attach(eps, Hooks(WanPipelineModel(eps)))
    assert type(make_scheduler("unipc")).__name__ == "UniPCMultistepScheduler"  # the hub's Wan config is fine

    one = Hooks(WanPipelineModel(p21), num_steps=4)
    with pytest.raises(ValueError, match=r"unknown hook point 'blocks.9'.*blocks.0 … blocks.1 \(2 blocks\)"):
        one.record("blocks.9")
    with pytest.raises(ValueError, match="expert 'transformer_2' is not in this model; it has transformer$"):
        one.record("blocks.0", expert="transformer_2")
    with pytest.raises(ValueError, match="point 'latent' belongs to the sampler"):
        Hooks(WanPipelineModel(p22)).record("latent", expert="transformer")
    with pytest.raises(ValueError, match="not on this pipeline's transformers"):
        attach(p21, Hooks(WanPipelineModel(p22)))

    late = Hooks(WanPipelineModel(p22)).record("blocks.0", steps=[7])
    with pytest.raises(ValueError, match="asks for step 7, but this pipeline call runs 4 steps"):
        with attach(p22, late):
            run(p22, output_type="latent")
    assert_pristine(p22)
    with pytest.raises(ValueError, match="made for num_steps=4, but this pipeline call runs 3 steps"):
        with attach(p21, one):
            run(p21, output_type="latent", steps=3)
    assert_pristine(p21)

    hooks = Hooks(WanPipelineModel(p22)).record("blocks.0")
    with attach(p22, hooks):
        with pytest.raises(RuntimeError, match="already attached"):
            with attach(p22, hooks):
                pass
    assert_pristine(p22)


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])  # UniPC keeps float32 latents at every step
def test_bf16_experts_see_the_pipelines_float32_latent(scheduler):
    pipe = tiny_wan22_i2v(seed=0, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    for module in transformer_components(pipe).values():
        module.to(torch.bfloat16)
    plain = run(pipe, output_type="latent")
    wan = WanPipelineModel(pipe)
    hooks = Hooks(wan).record(["latent", "x0", "blocks.1"])
    with trace_pipeline(pipe, hooks=hooks) as tr:
        hooked = run(pipe, output_type="latent")
    assert torch.equal(plain, hooked)
    assert hooks.get("blocks.1", 0, "cond", "transformer").dtype == torch.bfloat16
    for s in tr.steps:  # x_s as the pipeline holds it (float32 at step 0), not its bf16 copy in the transformer input
        assert torch.equal(hooks.get("latent", s.i), s.x)
    assert tr.steps[0].x.dtype == torch.float32
    if scheduler == "unipc":
        assert all(s.x.dtype == torch.float32 for s in tr.steps)
    value = torch.randn(tr.steps[0].x.shape, generator=torch.Generator().manual_seed(5))
    edit = Hooks(wan).replace("latent", value, steps=[0])
    with trace_pipeline(pipe, hooks=edit) as tr:
        run(pipe, output_type="latent")
    assert torch.equal(tr.steps[0].x, value)  # the scheduler gets the float32 edit, not a bf16 rounding of it


def test_latent_follows_a_callback_that_replaces_the_latents(pipes):
    pipe = pipes("wan22", "euler")
    hooks = Hooks(WanPipelineModel(pipe)).record("latent")

    def zero_after_step_1(pipe_, i, t, kwargs):
        return {"latents": torch.zeros_like(kwargs["latents"])} if i == 1 else kwargs

    with trace_pipeline(pipe, hooks=hooks) as tr:
        pipe(**tiny_inputs(pipe, output_type="latent"), callback_on_step_end=zero_after_step_1)
    assert torch.count_nonzero(hooks.get("latent", 2)) == 0 and torch.equal(hooks.get("latent", 2), tr.steps[2].x)
    assert torch.equal(hooks.get("latent", 3), tr.steps[3].x)
    assert_pristine(pipe)


@pytest.mark.skipif("v" not in SAMPLER_POINTS, reason="this Hooks has no `v` point")
def test_velocity_point_is_the_guided_velocity(pipes):
    pipe = pipes("wan22", "euler")
    plain = run(pipe, output_type="latent")
    hooks = Hooks(WanPipelineModel(pipe)).record("v").edit("v", fn=lambda t, ctx: t)
    with trace_pipeline(pipe, hooks=hooks) as tr:
        hooked = run(pipe, output_type="latent")
    assert torch.equal(plain, hooked)
    for s in tr.steps:
        assert torch.equal(hooks.get("v", s.i), s.v)
    half = Hooks(WanPipelineModel(pipe)).edit("v", steps=[1], fn=lambda t, ctx: 0.5 * t)
    with trace_pipeline(pipe, hooks=half) as tr2:
        run(pipe, output_type="latent")
    torch.testing.assert_close(tr2.steps[1].v, 0.5 * tr.steps[1].v, rtol=0, atol=1e-5)
