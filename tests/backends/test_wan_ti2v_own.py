"""What only Wan2.2-TI2V-5B has, beyond the shared backend tests (test_wan_ti2v.py): x0_hat has the clean image
latent in frame 0 and is the pipeline's output at the last step (Euler and UniPC), steplens' Euler on the
transformer is the pipeline bit for bit, latent and x0 edits do what they claim, hooks fire where they say, a batch
of different samples keeps each its image latent, the ensemble and compare run."""

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from families import WanTI2V, maze  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.backends import attach, trace_pipeline  # noqa: E402
from steplens.backends.wan import WanPipelineModel, WanTransformerModel  # noqa: E402
from steplens.backends.wan.tiny import tiny_inputs, tiny_wan22_ti2v  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402

F = WanTI2V()
STEPS, CFG, FRAMES = F.steps, F.cfg, 3
inputs, run, image_latent, assert_pristine = F.inputs, F.run, F.image_latent, F.assert_pristine


@pytest.fixture(scope="module")
def pipes(family_pipes):
    """The shared Euler pipeline (built once per run) and a UniPC one."""
    unipc = F.build(seed=0, scheduler="unipc")
    unipc.set_progress_bar_config(disable=True)
    return {"euler": family_pipes(F), "unipc": unipc}


def _inputs_seen(pipe):
    """The hidden_states each transformer call really embedded (a forward pre-hook on its patch embedding)."""
    seen = []
    handle = pipe.transformer.patch_embedding.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    return seen, handle


# -- the tiny model ---------------------------------------------------------------------------------------------
def test_tiny_ti2v_builder_and_geometry():
    state = torch.random.get_rng_state()
    a, b, c = tiny_wan22_ti2v(seed=0), tiny_wan22_ti2v(seed=0), tiny_wan22_ti2v(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    sa, sb, sc = (p.transformer.state_dict() for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.expand_timesteps and a.transformer_2 is None and a.image_encoder is None
    vae = a.vae.config
    assert vae.z_dim == 48 and vae.is_residual and vae.patch_size == 2 and a.vae_scale_factor_spatial == 16
    assert len(vae.latents_mean) == len(vae.latents_std) == 48
    assert a.transformer.config.in_channels == a.transformer.config.out_channels == 48

    m = WanPipelineModel(a)  # accepted, one expert
    assert m.experts == ["transformer"] and m.spatial_multiple == (32, 32)
    assert m.pixel_scale(7, 7) == 32 and m.pixel_scale(8, 12) == 8
    assert m.video_frames(5) == 17 and m.latent_shape([maze(0, frames=5)], 5) == (1, 48, 5, 14, 14)
    assert m.token_grid((1, 48, 5, 14, 14)) == (5, 7, 7)
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[1, 1:4] = True
    assert torch.equal(m.token_mask(mask), mask)  # one token per maze pixel
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny_inputs(a, height=48, width=48)


# -- tracing ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_trace_changes_nothing_and_x0_has_the_image_latent(pipes, scheduler):
    pipe = pipes[scheduler]
    plain = run(pipe)  # decoded video
    with trace_pipeline(pipe, decode_steps=[-1]) as tr:
        traced = run(pipe)
    assert torch.equal(plain, traced)  # bit for bit
    assert not torch.equal(plain, run(pipe, seed=1))
    assert_pristine(pipe)
    assert len(tr.steps) == STEPS and all(s.calls == 2 and s.expert == "transformer" for s in tr.steps)
    cond = image_latent(pipe, inputs(pipe))
    for s in tr.steps:
        raw = s.x - s.sigma * s.v
        assert torch.equal(s.x0[:, :, :1], cond)  # frame 0 of x0_hat: the clean image latent
        assert not torch.equal(raw[:, :, :1], cond) and not torch.equal(s.x[:, :, :1], cond)  # x_s: the pipeline's
        torch.testing.assert_close(s.x0[:, :, 1:], raw[:, :, 1:], rtol=0, atol=1e-5)
    final = run(pipe, output_type="latent")
    assert torch.equal(tr.steps[-1].x0, final)  # x0_hat of the last step is the pipeline's output, bit for bit
    assert torch.equal(final[:, :, :1], cond)
    assert (tr.decoded[-1] - plain).abs().max() <= 1e-5


def test_euler_steps_are_the_pipeline_update(pipes):
    pipe = pipes["euler"]
    with trace_pipeline(pipe, branches=True) as tr:
        run(pipe, output_type="latent")
    for s in tr.steps:
        cond, uncond = s.branches
        torch.testing.assert_close(s.v, uncond + CFG * (cond - uncond), rtol=0, atol=1e-5)
    for a, b in zip(tr.steps, tr.steps[1:]):  # every frame of the pipeline's latents is updated, frame 0 included
        torch.testing.assert_close(b.x, a.x + (a.sigma_next - a.sigma) * a.v, rtol=0, atol=1e-6)
    assert (tr.steps[0].x0 - tr.steps[-1].x0)[:, :, 1:].abs().max() > 1e-3


# -- the steplens model -----------------------------------------------------------------------------------------
def test_a_batch_of_different_samples_keeps_each_its_image_latent(pipes):
    pipe = pipes["euler"]
    model = WanPipelineModel(pipe)
    # a batch of different samples: per-sample condition rows, one first-frame mask
    s0, s1 = maze(0), maze(1)
    both = model.generate([s0, s1], [10, 11], sampling=resolve(model, steps=STEPS, shift=3.0, guidance=CFG))
    torch.testing.assert_close(both[1], model.generate([s1], [11], sampling=resolve(model, steps=STEPS, shift=3.0, guidance=CFG))[0],
                               rtol=0, atol=1e-4)
    images, gens, kw = model.call_inputs([s0, s1], [10, 11], FRAMES, STEPS, CFG)
    with model._per_sample_steps(images, [s0.prompt, s1.prompt], gens):
        pre = pipe.video_processor.preprocess(images[0], height=kw["height"], width=kw["width"])
        x, cond, mask = pipe.prepare_latents(pre, 2, 48, kw["height"], kw["width"], kw["num_frames"], torch.float32,
                                             torch.device("cpu"), gens)
    assert x.shape == (2, 48, FRAMES, 14, 14) and cond.shape == (2, 48, 1, 14, 14)
    assert mask.shape == (1, 1, FRAMES, 14, 14)  # kept once, as the pipeline's own
    assert not torch.equal(cond[0], cond[1])  # each sample's own image
    assert torch.equal(both[:, :, :1], cond)  # the output's first latent frame is each sample's image latent


def test_steplens_euler_on_the_transformer_is_the_pipeline(pipes):
    model = WanPipelineModel(pipes["euler"])
    adapter = WanTransformerModel(model)
    samples, seeds = [maze(0), maze(1)], [5, 6]
    for guidance, shift in ((CFG, 3.0), (1.0, 5.0)):
        ref = model.generate(samples, seeds, sampling=resolve(model, steps=STEPS, shift=shift, guidance=guidance))
        assert torch.equal(adapter.generate(samples, seeds, sampling=resolve(adapter, steps=STEPS, shift=shift, guidance=guidance)), ref)
    _, cond, _ = adapter.prepare(samples, seeds, FRAMES, CFG)
    assert cond.condition.shape == (2, 48, 1, 14, 14) and torch.equal(ref[:, :, :1], cond.condition)

    # the transformer gets the same per-token timesteps on both loops: 0 on frame 0's tokens, t elsewhere
    timesteps = {"pipe": [], "ours": []}
    for name, m in (("pipe", model), ("ours", adapter)):
        h = model.transformer.register_forward_pre_hook(
            lambda mod, args, kw, name=name: timesteps[name].append(kw["timestep"].clone()), with_kwargs=True)
        try:
            m.generate(samples, seeds, sampling=resolve(m, steps=STEPS, shift=3.0, guidance=CFG))
        finally:
            h.remove()
    assert len(timesteps["pipe"]) == len(timesteps["ours"]) == 2 * STEPS
    assert all(torch.equal(a, b) for a, b in zip(timesteps["pipe"], timesteps["ours"]))
    first = timesteps["ours"][0]
    assert first.shape == (2, FRAMES * 49) and bool((first[:, :49] == 0).all()) and bool((first[:, 49:] > 900).all())

    # block hooks, the x0 point and callbacks see the same on both loops; x0_hat's frame 0 is the image latent
    h_pipe = Hooks(model, STEPS).record("blocks.1", reduce="energy").record("x0")
    h_ours = Hooks(adapter, STEPS).record("blocks.1", reduce="energy").record("x0")
    got = {"pipe": [], "ours": []}
    out_pipe = model.generate(samples, seeds, sampling=resolve(model, steps=STEPS, shift=3.0, guidance=CFG), callback=got["pipe"].append,
                              hooks=h_pipe)
    with h_ours:
        out_ours = adapter.generate(samples, seeds, sampling=resolve(adapter, steps=STEPS, shift=3.0, guidance=CFG), callback=got["ours"].append,
                                    hooks=h_ours)
    assert torch.equal(out_pipe, out_ours)
    assert set(h_ours.records) == set(h_pipe.records) and len(h_pipe.records) == 3 * STEPS
    blocks = [k for k in h_pipe.records if k[0] == "blocks.1"]
    assert all(torch.equal(h_ours.records[k], h_pipe.records[k]) for k in blocks)
    for k in range(STEPS):
        a, b = got["pipe"][k], got["ours"][k]
        assert torch.equal(a.x0[:, :, :1], cond.condition) and torch.equal(b.x0[:, :, :1], cond.condition)
        torch.testing.assert_close(b.x0, a.x0, rtol=0, atol=1e-6)
        torch.testing.assert_close(h_ours.get("x0", k), h_pipe.get("x0", k), rtol=0, atol=1e-6)
        assert torch.equal(h_pipe.get("x0", k), a.x0)
    assert torch.equal(got["ours"][-1].x0, out_ours) and torch.equal(got["pipe"][-1].x0, out_pipe)

    # an x0 edit does the same on both loops
    def zero_x0(m):
        return Hooks(m, STEPS).edit("x0", steps=[1], fn=lambda t, ctx: torch.zeros_like(t))

    e_pipe = model.generate(samples, seeds, sampling=resolve(model, steps=STEPS, shift=3.0, guidance=CFG), hooks=zero_x0(model))
    e_ours = adapter.generate(samples, seeds, sampling=resolve(adapter, steps=STEPS, shift=3.0, guidance=CFG), hooks=zero_x0(adapter))
    assert not torch.equal(e_pipe, out_pipe)
    torch.testing.assert_close(e_ours, e_pipe, rtol=0, atol=1e-5)
    assert torch.equal(e_ours[:, :, :1], cond.condition)


# -- hooks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_records_and_identity_edits_change_nothing(pipes, scheduler):
    pipe = pipes[scheduler]
    plain = run(pipe, output_type="latent")
    wan = WanPipelineModel(pipe)
    hooks = Hooks(wan, num_steps=STEPS).record(wan.block_names + ["latent", "x0"])
    hooks.edit(wan.block_names + ["latent", "x0"], fn=lambda t, ctx: t)
    hooks.edit(["blocks.1", "latent", "x0"], fn=lambda t, ctx: t.clone())
    with trace_pipeline(pipe, hooks=hooks) as tr:
        hooked = run(pipe, output_type="latent")
    assert torch.equal(plain, hooked)
    assert_pristine(pipe)
    for s in tr.steps:  # `latent` is the pipeline's latents (not the transformer's input), x0 the trace's x0_hat
        assert torch.equal(hooks.get("latent", s.i), s.x)
        torch.testing.assert_close(hooks.get("x0", s.i), s.x0, rtol=0, atol=1e-6)
    assert hooks.get("latent", 0).dtype == torch.float32 and hooks.get("latent", 0).shape == plain.shape


@pytest.mark.filterwarnings("ignore:There are modules in WanTransformer3DModel")
def test_bf16_transformer_sees_the_pipelines_latent():
    """A bf16 transformer gets mix(latents) in bf16; the `latent` point is still the pipeline's latents."""
    pipe = tiny_wan22_ti2v(seed=0)
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.to(torch.bfloat16)
    plain = run(pipe, output_type="latent")
    hooks = Hooks(WanPipelineModel(pipe)).record(["latent", "x0", "blocks.1"])
    with trace_pipeline(pipe, hooks=hooks) as tr:
        hooked = run(pipe, output_type="latent")
    assert torch.equal(plain, hooked)
    assert hooks.get("blocks.1", 0).dtype == torch.bfloat16
    assert [s.x.dtype for s in tr.steps] == [torch.float32] + [torch.bfloat16] * (STEPS - 1)  # as Euler returns them
    for s in tr.steps:
        assert torch.equal(hooks.get("latent", s.i), s.x)
    assert torch.equal(plain[:, :, :1], image_latent(pipe, inputs(pipe)))


def test_hooks_fire_on_the_right_step_and_branch(pipes):
    pipe = pipes["euler"]
    pipe.scheduler.set_timesteps(STEPS)
    sigmas = pipe.scheduler.sigmas[:-1].tolist()
    wan = WanPipelineModel(pipe)
    seen = []

    def log(t, ctx):
        seen.append((ctx.step, ctx.branches, ctx.expert, ctx.sigma, tuple(t.shape)))
        return t

    hooks = Hooks(wan).record("blocks.0", reduce="norm").record("blocks.1", steps=[0, 3], branch="uncond")
    hooks.edit("blocks.1", fn=log)
    with attach(pipe, hooks):
        run(pipe, output_type="latent")
    assert_pristine(pipe)
    tokens, dim = 2 * 2 * 2, 24  # 2 latent frames x 2x2 tokens, 2 heads x 12
    assert seen == [(k, (br,), "transformer", sigmas[k], (1, tokens, dim)) for k in range(STEPS)
                    for br in ("cond", "uncond")]
    every = {("blocks.0", k, br, "transformer") for k in range(STEPS) for br in ("cond", "uncond")}
    assert set(hooks.records) == every | {("blocks.1", k, "uncond", "transformer") for k in (0, 3)}
    for k in range(STEPS):
        assert not torch.equal(hooks.get("blocks.0", k, "cond"), hooks.get("blocks.0", k, "uncond"))
    assert hooks.get("blocks.1", 3, "uncond").shape == (1, tokens, dim)

    solo = Hooks(wan).record("blocks.0", reduce="norm")  # CFG off: one forward per step, the cond branch
    with attach(pipe, solo):
        run(pipe, output_type="latent", guidance_scale=1.0)
    assert sorted(solo.records) == sorted(("blocks.0", k, "cond", "transformer") for k in range(STEPS))


@pytest.mark.parametrize("k", [0, 2])
def test_latent_edit_enters_the_transformer_mixed_and_reaches_the_scheduler(pipes, k):
    pipe = pipes["euler"]
    cond = image_latent(pipe, inputs(pipe))
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    value = torch.randn(plain.shape, generator=torch.Generator().manual_seed(7))
    hooks = Hooks(WanPipelineModel(pipe)).record("latent").edit("latent", steps=[k], fn=lambda t, ctx: value.clone())
    seen, handle = _inputs_seen(pipe)
    try:
        run(pipe, output_type="latent")
        plain_seen = seen.copy()
        seen.clear()
        with trace_pipeline(pipe, hooks=hooks) as tr:
            edited = run(pipe, output_type="latent")
    finally:
        handle.remove()
    assert_pristine(pipe)
    assert not torch.equal(plain, edited) and torch.equal(edited[:, :, :1], cond)
    for j in range(k):
        assert torch.equal(tr.steps[j].x, tr0.steps[j].x) and torch.equal(tr.steps[j].x0, tr0.steps[j].x0)
    rec = hooks.get("latent", k)  # recorded before the edit: the pipeline's latents, frame 0 not replaced
    assert torch.equal(rec, tr0.steps[k].x) and not torch.equal(rec[:, :, :1], cond)
    assert torch.equal(tr.steps[k].x, value)  # the scheduler steps from the edited latent, frame 0 included
    assert len(seen) == len(plain_seen) == 2 * STEPS
    for call in range(2 * k):
        assert torch.equal(seen[call], plain_seen[call])
    for call in range(2 * STEPS):  # the transformer's first frame is always the image latent
        assert torch.equal(seen[call][:, :, :1], cond)
    for call in (2 * k, 2 * k + 1):  # both CFG forwards of step k: (1 - m) c + m x_s'
        assert torch.equal(seen[call][:, :, 1:], value[:, :, 1:])
    a, b = tr.steps[k], tr.steps[k + 1]
    torch.testing.assert_close(b.x, a.x + (a.sigma_next - a.sigma) * a.v, rtol=0, atol=1e-6)


def test_latent_edit_of_frame_0_alone_changes_nothing(pipes):
    """Frame 0 of the pipeline's latents never reaches the transformer nor the output (Euler keeps no history)."""
    pipe = pipes["euler"]
    plain = run(pipe, output_type="latent")

    def zero_frame_0(t, ctx):
        return torch.cat([torch.zeros_like(t[:, :, :1]), t[:, :, 1:]], dim=2)

    hooks = Hooks(WanPipelineModel(pipe)).edit("latent", steps=[1, 2], fn=zero_frame_0)
    with trace_pipeline(pipe, hooks=hooks) as tr:
        edited = run(pipe, output_type="latent")
    assert torch.count_nonzero(tr.steps[1].x[:, :, 0]) == 0  # the edit did reach the scheduler
    assert torch.equal(edited, plain)


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_x0_edit_at_the_last_step_is_the_output(pipes, scheduler):
    pipe = pipes[scheduler]
    cond = image_latent(pipe, inputs(pipe))
    with trace_pipeline(pipe) as tr0:
        plain = run(pipe, output_type="latent")
    target = torch.randn(plain.shape, generator=torch.Generator().manual_seed(11))
    last = STEPS - 1
    hooks = Hooks(WanPipelineModel(pipe)).record("x0").edit("x0", steps=[last], fn=lambda t, ctx: target.clone())
    with trace_pipeline(pipe, hooks=hooks) as tr:
        out = run(pipe, output_type="latent")
    assert_pristine(pipe)
    rec = hooks.get("x0", last)  # what the edit got: x0_hat with the image latent in frame 0
    assert torch.equal(rec[:, :, :1], cond)
    torch.testing.assert_close(rec, tr0.steps[last].x0, rtol=0, atol=1e-6)
    for j in range(last):
        assert torch.equal(tr.steps[j].x0, tr0.steps[j].x0)
    assert torch.equal(out[:, :, :1], cond)  # frame 0: the image latent, whatever the edit put there
    torch.testing.assert_close(out[:, :, 1:], target[:, :, 1:], rtol=0, atol=1e-5)  # the rest: the edited x0_hat
    assert torch.equal(tr.steps[-1].x0, out)
    assert (out - plain)[:, :, 1:].abs().max() > 0.1


# -- the experiments --------------------------------------------------------------------------------------------
def test_trace_ensemble_and_compare_run_on_ti2v(pipes, tmp_path):
    from steplens.experiments.grid import ExperimentSettings
    from steplens.methods.ensemble import EnsembleConfig, generate_ensemble
    from steplens.probes.compare import METHODS, compare
    from steplens.trace import trace

    model = WanPipelineModel(pipes["euler"])
    s0, s1 = maze(0, frames=2), maze(1, frames=2)
    tr = trace(model, [s0], [3], sampling=resolve(model, steps=2, guidance=CFG))[0]
    assert tr.x0.shape == (2, 3, 2, 7, 7) and len(tr.metrics) == 2 and tr.output.shape == (3, 2, 7, 7)

    one = generate_ensemble(model, [s0], [4], EnsembleConfig(n_seeds=1), sampling=resolve(model, steps=2, shift=3.0, guidance=CFG))
    assert torch.equal(one[:, 0], model.generate([s0], [4], sampling=resolve(model, steps=2, shift=3.0, guidance=CFG)))  # plain sampling
    apart = generate_ensemble(model, [s0, s1], [4, 5], EnsembleConfig(n_seeds=2, alpha=0.0), sampling=resolve(model, steps=2, shift=3.0))
    assert apart.shape == (2, 2, 48, 2, 14, 14) and (apart[:, 0] - apart[:, 1]).abs().max() > 1e-2
    assert torch.equal(apart[:, 0, :, :1], apart[:, 1, :, :1])  # members share the image latent
    joined = generate_ensemble(model, [s0], [4], EnsembleConfig(n_seeds=2, target="x0", steps=[0, 1]), sampling=resolve(model, steps=2, shift=3.0))
    torch.testing.assert_close(joined[0, 0], joined[0, 1], rtol=0, atol=1e-5)  # x0_hat averaged to the end
    blocks = generate_ensemble(model, [s0], [4], EnsembleConfig(n_seeds=2, target="block"), sampling=resolve(model, steps=2, shift=3.0))
    assert torch.isfinite(blocks).all() and not torch.equal(blocks[0, 1], apart[0, 1])

    res = compare(model, tmp_path / "cmp", ExperimentSettings(count=2, size=3, frames=2, steps=2, batch=2),
                  n_list=(2,), methods=METHODS, progress=False)
    assert {r["method"] for r in res["table"]} == set(METHODS)
    assert all(r["samples"] == 2 and 0 <= r["solve_rate"] <= 1 for r in res["table"])
    assert {r["n_seeds"] for r in res["table"]} == {1, 2} and (tmp_path / "cmp" / "results.json").exists()
