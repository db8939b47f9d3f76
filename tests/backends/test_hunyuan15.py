"""The HunyuanVideo-1.5 image-to-video backend on a tiny offline HunyuanVideo15ImageToVideoPipeline (real diffusers
classes, random weights, no text encoders, no mocks): tracing and hooks change nothing, hooks see the right step /
sigma / CFG branch, latent and x0 edits do what they claim (checked against the pipeline's own `latents` and
`sigmas` arguments), generate is the plain pipeline call bit for bit, decode is the pipeline's video, and the
probes, compare, the ensemble and the CLI run end to end."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "HunyuanVideo15ImageToVideoPipeline"):
    pytest.skip("this diffusers has no HunyuanVideo-1.5", allow_module_level=True)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from steplens.backends import HashedPromptEmbeds, attach, trace_pipeline  # noqa: E402
from steplens.backends.hunyuan15 import HunyuanVideo15Model, decode_latents  # noqa: E402
from steplens.backends.tiny.hunyuan15 import GLYPH_DIM, TEXT_DIM, tiny_hunyuan15_i2v  # noqa: E402
from steplens.context import current  # noqa: E402
from steplens.contract import check_model  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402
from steplens.io.video import upscale  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

pytestmark = pytest.mark.wan
torch.set_num_threads(1)

MAZE = get_task("maze")
STEPS, CFG, GLYPH = 3, 6.0, 4  # GLYPH: tokens of the (masked) glyph stream, short to keep the tests fast


@pytest.fixture(scope="module")
def pipe():
    return tiny_hunyuan15_i2v(seed=0)


def maze(seed, n=3, frames=3):
    return MAZE.sample(seed, n, frames)


def hunyuan(pipe, **kw):
    return HunyuanVideo15Model(pipe, glyph_length=GLYPH, **kw)


def direct(pipe, samples, seeds, guidance=CFG, steps=STEPS, frames=3, k=4, output_type="latent", scheduler=None,
           **extra):
    """The plain pipeline call, spelled out: one image (the maze upscaled xk, nearest) at its own size (the bucket
    of target_size = its side), hashed prompt embeddings with an all-ones mask, an empty glyph stream, 2 (frames - 1)
    + 1 video frames, one CPU generator per row, the guider at `guidance`."""
    text = HashedPromptEmbeds(TEXT_DIM)
    n = len(samples)
    side = k * samples[0].size_px
    glyph, glyph_mask = torch.zeros(n, GLYPH, GLYPH_DIM), torch.zeros(n, GLYPH, dtype=torch.long)
    emb = text([s.prompt for s in samples])
    mask = torch.ones(emb.shape[:2], dtype=torch.long)
    kw = dict(image=Image.fromarray(upscale(samples[0].first_frame, k)), prompt_embeds=emb, prompt_embeds_mask=mask,
              prompt_embeds_2=glyph, prompt_embeds_mask_2=glyph_mask, num_frames=pipe.vae_scale_factor_temporal
              * (frames - 1) + 1, num_inference_steps=steps, output_type=output_type, return_dict=False,
              generator=[torch.Generator().manual_seed(x) for x in seeds])
    if guidance > 1:
        kw.update(negative_prompt_embeds=text([""] * n), negative_prompt_embeds_mask=mask,
                  negative_prompt_embeds_2=glyph, negative_prompt_embeds_mask_2=glyph_mask)
    kw.update(extra)
    saved = pipe.scheduler, pipe.guider, pipe.target_size
    pipe.scheduler = scheduler or saved[0]
    pipe.guider, pipe.target_size = saved[1].new(guidance_scale=guidance), side
    try:
        return pipe(**kw)[0]
    finally:
        pipe.scheduler, pipe.guider, pipe.target_size = saved


def assert_pristine(pipe):
    assert not {"step", "set_timesteps"} & set(vars(pipe.scheduler))
    assert not {"prepare_latents", "encode_image", "prepare_cond_latents_and_mask"} & set(vars(pipe))
    assert "calculate_default_height_width" not in vars(pipe.video_processor)
    assert "forward" not in vars(pipe.transformer)  # diffusers' cache_context leaves an empty HookRegistry
    assert not getattr(getattr(pipe.transformer, "_diffusers_hook", None), "hooks", None)
    assert all(len(b._forward_hooks) == 0 for b in pipe.transformer.transformer_blocks)
    assert pipe.guider.guidance_scale == CFG and current() is None


# -- the loop: tracing and hooks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("guidance", [CFG, 1.0])
def test_trace_and_records_change_nothing(pipe, guidance):
    s = maze(0)
    out = direct(pipe, [s], [0], guidance=guidance)
    model = hunyuan(pipe)
    hooks = Hooks(model, STEPS).record(model.block_names + ["latent", "v", "x0"])
    with trace_pipeline(pipe, decode_steps=[-1], hooks=hooks, branches=True) as tr:
        again = direct(pipe, [s], [0], guidance=guidance)
    assert torch.equal(out, again)  # bit for bit
    assert_pristine(pipe)
    assert [st.i for st in tr.steps] == list(range(STEPS))
    assert [st.sigma for st in tr.steps] == pipe.scheduler.sigmas[:-1].tolist() and tr.steps[-1].sigma_next == 0
    assert tr.steps[0].sigma == 1.0 and tr.steps[1].sigma == pytest.approx(5 * (2 / 3) / (1 + 4 * (2 / 3)))  # shift 5
    assert torch.equal(tr.steps[-1].x0, out)  # x0_hat of the last step is the final latent
    assert out.shape == (1, 4, 3, 7, 7)  # a 7x7 maze x4 = 28 px -> 7x7 tokens, 5 video frames -> 3 latent frames
    for st in tr.steps:
        assert torch.equal(st.x0, st.x - torch.tensor(st.sigma) * st.v)
        assert torch.equal(hooks.get("latent", st.i), st.x) and torch.equal(hooks.get("x0", st.i), st.x0)
        assert torch.equal(hooks.get("v", st.i), st.v)
        assert st.calls == len(st.branches) == (2 if guidance > 1 else 1)  # one forward per CFG branch
        if guidance > 1:  # the guider's CFG of the two forwards, cond first
            cond, uncond = st.branches
            torch.testing.assert_close(st.v, uncond + guidance * (cond - uncond), rtol=0, atol=1e-5)
    assert {k[2] for k in hooks.records if k[0] == "blocks.1"} == ({"cond", "uncond"} if guidance > 1 else {"cond"})
    assert hooks.get("blocks.1", 0, "cond", "transformer").shape == (1, 3 * 7 * 7, 16)  # (B, T*h*w tokens, D)
    assert tr.decoded[STEPS - 1].shape == (1, 5, 3, 28, 28)


def test_hooks_see_step_sigma_and_branch(pipe):
    model = hunyuan(pipe)
    seen = []

    def spy(t, ctx):
        seen.append((ctx.step, ctx.sigma, ctx.branches, ctx.expert, t.shape[0]))
        return t

    s = maze(1)
    hooks = Hooks(model, STEPS).edit("blocks.0", spy).record("blocks.0", steps=[0])
    with attach(pipe, hooks):
        direct(pipe, [s], [1])
    sigmas = pipe.scheduler.sigmas.tolist()
    # two forwards per step, cond first (the guider's "pred_cond", then "pred_uncond"), one branch each
    assert seen == [(k, sigmas[k], (b,), "transformer", 1) for k in range(STEPS) for b in ("cond", "uncond")]
    solo = Hooks(model, STEPS).record("blocks.0", steps=[0])
    with attach(pipe, solo):
        direct(pipe, [s], [1], guidance=1.0)
    cond, uncond = hooks.get("blocks.0", 0, "cond"), hooks.get("blocks.0", 0, "uncond")
    assert torch.equal(cond, solo.get("blocks.0", 0, "cond"))  # the cond branch is the positive prompt's
    assert (uncond - cond).abs().max() > 1e-3
    with pytest.raises(ValueError, match="not on this pipeline"):
        attach(pipe, Hooks(hunyuan(tiny_hunyuan15_i2v(seed=1))))
    assert_pristine(pipe)


def test_edits(pipe):
    """Identity edits change nothing; a latent edit at step k is the pipeline started there from that latent (its
    `latents` and the tail of its `sigmas`); an x0 edit hands the scheduler v = (x - x0') / sigma."""
    model = hunyuan(pipe)
    s = maze(2)
    with trace_pipeline(pipe) as tr0:
        out = direct(pipe, [s], [2])
    ident = Hooks(model).edit(model.block_names + ["latent", "v", "x0"], fn=lambda t, ctx: t)
    ident.edit(["blocks.1", "latent", "x0"], fn=lambda t, ctx: t.clone())
    with attach(pipe, ident):
        assert torch.equal(direct(pipe, [s], [2]), out)
    z = tr0.steps[1].x + 0.3 * torch.randn(tr0.steps[1].x.shape, generator=torch.Generator().manual_seed(5))
    unshifted = np.linspace(1.0, 0.0, STEPS + 1)[:-1]
    for k in (0, 1):
        with trace_pipeline(pipe, hooks=Hooks(model).edit("latent", steps=[k], fn=lambda t, ctx: z.clone())) as tr:
            got = direct(pipe, [s], [2])
        ref = direct(pipe, [s], [2], latents=z.clone(), sigmas=list(unshifted[k:]), num_inference_steps=None)
        assert torch.equal(got, ref) and torch.equal(tr.steps[k].x, z) and not torch.equal(got, out)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    with trace_pipeline(pipe, hooks=Hooks(model).edit("x0", steps=[STEPS - 1], fn=lambda t, ctx: w.clone())) as tr:
        got = direct(pipe, [s], [2])
    # Euler to sigma 0 lands on x0' (up to the rounding of x - sigma (x - x0') / sigma, as for Wan)
    torch.testing.assert_close(got, w, rtol=0, atol=1e-6)
    torch.testing.assert_close(tr.steps[-1].x0, w, rtol=0, atol=1e-6)
    assert torch.equal(got, w) and torch.equal(tr.steps[-1].x0, w)  # the core loop lands on x0' itself (as LTX-2)
    assert torch.equal(tr.steps[-1].x, tr0.steps[-1].x)
    with trace_pipeline(pipe, hooks=Hooks(model).edit("x0", steps=[1], fn=lambda t, ctx: w.clone())) as tr:
        direct(pipe, [s], [2])
    s1, s2 = tr.steps[1], tr.steps[2]
    sig, sig_next = pipe.scheduler.sigmas[1], pipe.scheduler.sigmas[2]
    assert torch.equal(s1.v, (s1.x - w) / sig) and torch.equal(s2.x, s1.x + (sig_next - sig) * s1.v)
    assert_pristine(pipe)


# -- the steplens model --------------------------------------------------------------------------------------------
def test_generate_is_the_pipeline_call_bit_for_bit(pipe):
    model = hunyuan(pipe)
    check_model(model)
    s, s2 = maze(4), maze(5)
    lat = model.generate([s], [7], steps=STEPS, guidance=CFG)
    assert torch.equal(lat, direct(pipe, [s], [7]))
    assert torch.equal(model.generate([s], [7], steps=STEPS, guidance=1.0), direct(pipe, [s], [7], guidance=1.0))
    # one image, several seeds (an ensemble's members): the plain call with a list of generators
    assert torch.equal(model.generate([s, s], [7, 8], steps=STEPS), direct(pipe, [s, s], [7, 8]))
    # different images in one call: each row is its single call up to the rounding of batched matmuls
    both = model.generate([s, s2], [7, 8], steps=STEPS)
    torch.testing.assert_close(both[0], lat[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(both[1], model.generate([s2], [8], steps=STEPS)[0], rtol=0, atol=1e-4)
    # a shift replaces the scheduler's for the call only
    original = pipe.scheduler
    shifted = model.generate([s], [7], steps=STEPS, shift=3.0)
    assert pipe.scheduler is original and not torch.equal(shifted, lat)
    assert torch.equal(shifted, direct(pipe, [s], [7], scheduler=type(original).from_config(original.config,
                                                                                             shift=3.0)))
    # steps / guidance default to the pipeline's (50 steps, the guider's 6), shift to the scheduler's 5
    d = model.sampling_defaults()
    assert (d["steps"], d["guidance"], d["shift"]) == (50, CFG, 5.0)
    assert_pristine(pipe)


def test_decode_is_the_pipeline_video(pipe):
    model = hunyuan(pipe)
    s = maze(5)
    lat = model.generate([s], [3], steps=STEPS)
    own = direct(pipe, [s], [3], output_type="pt")  # (B, T, C, H, W) in [0, 1]
    video = model.decode_video(lat)
    assert video.shape == (1, 3, 5, 28, 28)
    assert torch.equal((video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4), own)
    assert torch.equal(model.decode(lat), torch.nn.functional.avg_pool3d(video[:, :, ::2], (1, 4, 4)))
    assert torch.equal(decode_latents(pipe, lat, "pt"), own)


def test_real_geometry():
    """The real VAE factors (16x in space, 4x in time): one token per 16 x 16 pixels, one latent frame per 4 video
    frames, and generate is still the plain call."""
    pipe = tiny_hunyuan15_i2v(seed=0, real_geometry=True)
    model = hunyuan(pipe)
    assert model.spatial_multiple == model.token_pixels == (16, 16) and model.patch_size == (1, 1, 1)
    assert model.pixel_scale(7, 7) == 16 and model.video_frames(2) == 5 and model.frames_from_video(121) == 31
    s = maze(0, frames=2)
    assert model.latent_shape([s], 2) == (1, 4, 2, 7, 7)
    lat = model.generate([s], [0], steps=2, frames=2)
    assert torch.equal(lat, direct(pipe, [s], [0], steps=2, frames=2, k=16))
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[1, 1:4] = True
    assert torch.equal(model.token_mask(mask), mask)  # tokens are maze pixels
    assert model.decode(lat).shape == (1, 3, 2, 7, 7)


def test_callback_hooks_and_settings(pipe):
    model = hunyuan(pipe)
    samples, seeds = [maze(0), maze(1)], [0, 1]
    plain = model.generate(samples, seeds, steps=STEPS)
    steps = []
    hooks = Hooks(model, STEPS).record("blocks.1", reduce="energy").record("x0")
    assert torch.equal(model.generate(samples, seeds, steps=STEPS, callback=steps.append, hooks=hooks), plain)
    assert [st.i for st in steps] == list(range(STEPS)) and torch.equal(steps[-1].x0, plain)
    grid = model.token_grid(plain.shape)
    assert grid == (3, 7, 7)
    for k, st in enumerate(steps):
        assert torch.equal(hooks.get("x0", k), st.x0)
        for branch in ("cond", "uncond"):
            assert hooks.get("blocks.1", k, branch).reshape(2, *grid).shape == (2, *grid)
    assert model.modules()["transformer"].get_submodule("blocks.1") is pipe.transformer.transformer_blocks[1]
    assert model.block_names == ["blocks.0", "blocks.1"] and model.experts == ["transformer"]
    m = hunyuan(pipe)
    m.configure_sampling(scheduler="FlowMatchEulerDiscreteScheduler", negative_prompt="blurry")
    assert m.negative_prompt == "blurry"
    with pytest.raises(ValueError, match="height, width: not supported for HunyuanVideo-1.5"):
        m.configure_sampling(height=64, width=64)
    with pytest.raises(ValueError, match="runs its own FlowMatchEulerDiscreteScheduler"):
        m.configure_sampling(scheduler="euler2")
    with pytest.raises(ValueError, match="only for guidance > 1"):
        m.generate([maze(0)], [0], steps=2, guidance=0.5)
    with pytest.raises(ValueError, match="2 seeds given for 1 samples"):
        m.generate([maze(0)], [0, 1], steps=2)
    with pytest.raises(ValueError, match="expects text_embed_dim 16"):
        hunyuan(pipe, prompt_embeds=HashedPromptEmbeds(8)).generate([maze(0)], [0], steps=2)
    with pytest.raises(ValueError, match="glyph_length must be an integer >= 1"):
        HunyuanVideo15Model(pipe, glyph_length=0)
    from diffusers import DDIMScheduler

    original = pipe.scheduler
    pipe.scheduler = DDIMScheduler()
    try:
        with pytest.raises(TypeError, match="supports FlowMatchEulerDiscreteScheduler"):
            m.generate([maze(0)], [0], steps=2)
    finally:
        pipe.scheduler = original
    with pytest.raises(TypeError, match="does not support the pipeline class"):
        HunyuanVideo15Model(object())
    assert_pristine(pipe)


# -- experiments ---------------------------------------------------------------------------------------------------
def test_experiments_run(pipe):
    from steplens.methods.ensemble import EnsembleConfig, ensemble_hooks, generate_ensemble, member_seeds
    from steplens.probes.compare import run_methods
    from steplens.trace import trace

    model = hunyuan(pipe)
    tr = trace(model, [maze(3, frames=2)], [3], steps=2, guidance=CFG)[0]
    assert tr.x0.shape == (2, 3, 2, 7, 7) and len(tr.metrics) == 2 and tr.output.shape == (3, 2, 7, 7)
    got = run_methods(model, [maze(0, frames=2), maze(1, frames=2)], [0, 1], ["single", "ensemble", "vote"], 2, 2, 5.0)
    assert {k: len(v) for k, v in got.items()} == {"single": 2, "ensemble": 2, "vote": 2}
    # the ensemble's averaging acts on the members of one call: the averaged block output is the same in both
    s = [maze(0, frames=2)]
    cfg = EnsembleConfig(n_seeds=2, target="block", blocks=[0], steps=[0, 1])
    hooks = ensemble_hooks(model, cfg, 2).record("blocks.0")  # recorded after the averaging edit
    with hooks:
        model.generate(s * 2, member_seeds([0], 2), steps=2, guidance=1.0, hooks=hooks)
    for k in range(2):
        rec = hooks.get("blocks.0", k)
        assert torch.equal(rec[0], rec[1])
    lat = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1]), steps=2, guidance=1.0)
    torch.testing.assert_close(lat[0, 0], lat[0, 1], rtol=0, atol=1e-5)  # x0_hat averaged at the last step (as Wan)
    off = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1], alpha=0.0), steps=2,
                            guidance=1.0)
    assert (off[0, 0] - off[0, 1]).abs().max() > 1e-2
    assert_pristine(pipe)


@pytest.mark.parametrize("probe", ["noise", "propagation", "energy", "swap", "sweep", "behaviours"])
def test_every_probe_runs_on_hunyuan15(pipe, probe, tmp_path):
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings

    model = hunyuan(pipe)
    s = ProbeSettings(count=1, steps=2, size=3, frames=2, batch=1)
    if probe == "swap":  # the task the swap probe generates when none is named
        s = s.model_copy(update={"task": get_probe("swap").default_task()})
    kw = {"sweep": {"frames": (2,), "steps": (2, 3)}, "noise": {"mix_strengths": ()}}.get(probe, {})
    res = get_probe(probe).run(model, tmp_path, s, progress=False, **kw)
    assert res["table"] and (tmp_path / "results.json").exists()
    assert_pristine(pipe)


@pytest.mark.filterwarnings("ignore:.*has no text encoder")
def test_a_saved_folder_loads_and_runs_through_the_cli(pipe, tmp_path):
    """save_pretrained -> `--model wan:DIR` dispatches on model_index.json to this backend (entry point)."""
    import json

    from typer.testing import CliRunner

    from steplens.backends import backends, load_pipeline_model
    from steplens.cli import app

    assert backends()["HunyuanVideo15ImageToVideoPipeline"] is HunyuanVideo15Model
    pipe.save_pretrained(tmp_path / "hy")
    with pytest.warns(UserWarning, match="has no text encoder"):
        assert isinstance(load_pipeline_model(f"wan:{tmp_path / 'hy'}"), HunyuanVideo15Model)
    with pytest.warns(UserWarning, match="has no text encoder"):
        model = HunyuanVideo15Model.load(str(tmp_path / "hy"), glyph_length=GLYPH)
    assert model.prompt_source == "hashed" and model.name == f"wan:{tmp_path / 'hy'}"
    with pytest.warns(UserWarning, match="has no text encoder"):  # the registry's load path takes model options
        opts = load_pipeline_model(f"wan:{tmp_path / 'hy'}", glyph_length=GLYPH, scale=8, min_size=None)
    assert (opts.glyph_length, opts.scale) == (GLYPH, 8) and isinstance(opts, HunyuanVideo15Model)
    s = maze(2)
    assert torch.equal(model.generate([s], [1], steps=2), direct(model.pipe, [s], [1], steps=2))
    r = CliRunner().invoke(app, ["probe", "energy", "--model", f"wan:{tmp_path / 'hy'}", "--count", "1", "--size", "3",
                                 "--frames", "2", "--steps", "2", "--out", str(tmp_path / "energy")])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "energy" / "results.json").read_text())["config"]
    assert config["sampling"]["steps"] == 2 and config["shift"] == 5.0
