"""The diffusers LTX-2 image-to-video backend on a tiny offline LTX2ImageToVideoPipeline (real diffusers classes,
random weights, no mocks): tracing and hooks change nothing, hooks see the right step / sigma / CFG branch, latent
and x0 edits do what they claim (checked against independent mechanisms), generate is the plain pipeline call bit
for bit, decode is the pipeline's video, and the probes, compare and the ensemble run end to end."""

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "LTX2ImageToVideoPipeline"):
    pytest.skip("this diffusers has no LTX-2", allow_module_level=True)

from PIL import Image  # noqa: E402

from steplens.backends import attach, trace_pipeline as trace_ltx2  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel, denormalize, load_ltx2_model, pack, unpack  # noqa: E402
from steplens.backends.ltx2.tiny import TEXT_DIM, tiny_inputs, tiny_ltx2_i2v  # noqa: E402
from steplens.backends.patches import InstancePatches  # noqa: E402
from steplens.backends.prompts import HashedPromptEmbeds  # noqa: E402
from steplens.context import current  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402
from steplens.io.video import upscale  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

pytestmark = pytest.mark.wan
torch.set_num_threads(1)

MAZE = get_task("maze")
STEPS, CFG = 3, 3.0


@pytest.fixture(scope="module")
def pipe():
    return tiny_ltx2_i2v(seed=0)


def run(pipe, **kw):
    """(video latents, audio latents) of a plain call with tiny_inputs (CFG on, output_type latent)."""
    return pipe(**tiny_inputs(pipe, **kw), return_dict=False)


def maze(seed, n=3, frames=3):
    return MAZE.sample(seed, n, frames)


def assert_pristine(pipe):
    sched = pipe.scheduler
    assert not {"step", "set_timesteps", "__deepcopy__"} & set(vars(sched))
    assert not {"prepare_latents", "_pack_latents", "_denormalize_latents"} & set(vars(pipe))
    assert "forward" not in vars(pipe.transformer) and "cache_context" not in vars(pipe.transformer)
    assert all(len(b._forward_hooks) == 0 for b in pipe.transformer.transformer_blocks)
    assert current() is None


# -- tracing and hooks --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("guidance", [CFG, 1.0])
def test_trace_and_records_change_nothing(pipe, guidance):
    video, audio = run(pipe, guidance_scale=guidance)
    model = LTX2PipelineModel(pipe)
    hooks = Hooks(model, STEPS).record(model.block_names + ["latent", "v", "x0"])
    with trace_ltx2(pipe, decode_steps=[-1], hooks=hooks, branches=True) as tr:
        v2, a2 = run(pipe, guidance_scale=guidance)
    assert torch.equal(video, v2) and torch.equal(audio, a2)  # video and audio, bit for bit
    assert_pristine(pipe)
    assert [s.i for s in tr.steps] == list(range(STEPS))
    assert [s.sigma for s in tr.steps] == pipe.scheduler.sigmas[:-1].tolist()
    assert tr.steps[-1].sigma_next == 0.0 and tr.steps[-1].sigma == pytest.approx(0.1)  # LTX-2's shift_terminal
    assert tr.audio_scheduler is not pipe.scheduler and "step" not in vars(tr.audio_scheduler)
    last = tr.steps[-1]
    assert last.x0.shape == (1, 4, 3, 2, 2)  # 17 frames of 64 px: 3 latent frames of 2x2 tokens
    assert torch.equal(denormalize(pipe, last.x0), video)  # x0_hat of the last step is the final latent
    for s in tr.steps:
        assert torch.equal(s.x[:, :, :1], tr.steps[0].x[:, :, :1])  # frame 0: the clean image latent, held
        assert torch.equal(s.x0[:, :, :1], s.x[:, :, :1]) and not s.v[:, :, :1].any()
        assert torch.equal(s.x0[:, :, 1:], s.x[:, :, 1:] - torch.tensor(s.sigma) * s.v[:, :, 1:])
        assert torch.equal(hooks.get("latent", s.i), s.x) and torch.equal(hooks.get("x0", s.i), s.x0)
        assert torch.equal(hooks.get("v", s.i), s.v)
        assert s.calls == 1 and len(s.branches) == 1  # CFG is one forward on [uncond; cond]
        assert s.branches[0].shape[0] == (2 if guidance > 1 else 1)
    branches = {k[2] for k in hooks.records if k[0] == "blocks.1"}
    assert branches == ({"uncond", "cond"} if guidance > 1 else {"cond"})
    assert hooks.get("blocks.1", 0, "cond", "transformer").shape == (1, 12, 16)  # (B, T*h*w tokens, D)
    assert tr.decoded[STEPS - 1].shape == (1, 17, 3, 64, 64)


def test_hooks_see_step_sigma_and_branch(pipe):
    model = LTX2PipelineModel(pipe)
    seen = []

    def spy(t, ctx):
        seen.append((ctx.step, ctx.sigma, ctx.branches, ctx.expert, t.shape[0]))
        return t

    hooks = Hooks(model, STEPS).edit("blocks.0", spy).record("blocks.0", steps=[0])
    run(pipe)  # sets the scheduler's sigmas
    sigmas = pipe.scheduler.sigmas.tolist()
    with attach(pipe, hooks):
        run(pipe)
    # one forward per step holding both CFG branches, uncond rows first; the hook gets one branch at a time
    assert seen == [(k, sigmas[k], ("uncond", "cond"), "transformer", 1) for k in range(STEPS) for _ in range(2)]
    # the branch names are right: the cond rows are the positive prompt's (the same as a CFG-off run at step 0)
    solo = Hooks(model, STEPS).record("blocks.0", steps=[0])
    with attach(pipe, solo):
        run(pipe, guidance_scale=1.0)
    cond, uncond = hooks.get("blocks.0", 0, "cond"), hooks.get("blocks.0", 0, "uncond")
    torch.testing.assert_close(cond, solo.get("blocks.0", 0, "cond"), rtol=0, atol=1e-5)
    assert (uncond - cond).abs().max() > 1e-3
    assert_pristine(pipe)


def test_stg_and_modality_forwards_are_their_own_branches(pipe):
    """With LTX-2's extra guidance on, each step runs three forwards: [uncond; cond], "stg", "modality"."""
    extra = dict(stg_scale=1.0, audio_stg_scale=1.0, spatio_temporal_guidance_blocks=[1], modality_scale=2.0,
                 audio_modality_scale=2.0)
    plain = pipe(**{**tiny_inputs(pipe), **extra}, return_dict=False)
    model = LTX2PipelineModel(pipe)
    hooks = Hooks(model, STEPS).record(["blocks.1", "x0"])
    with trace_ltx2(pipe, hooks=hooks) as tr:
        got = pipe(**{**tiny_inputs(pipe), **extra}, return_dict=False)
    assert torch.equal(plain[0], got[0]) and torch.equal(plain[1], got[1])
    assert {k[2] for k in hooks.records if k[0] == "blocks.1"} == {"uncond", "cond", "stg", "modality"}
    assert [s.calls for s in tr.steps] == [3] * STEPS
    assert torch.equal(denormalize(pipe, tr.steps[-1].x0), plain[0])
    assert_pristine(pipe)


def test_identity_edits_change_nothing(pipe):
    video, audio = run(pipe)
    model = LTX2PipelineModel(pipe)
    hooks = Hooks(model).edit(model.block_names + ["latent", "v", "x0"], fn=lambda t, ctx: t)
    hooks.edit(["blocks.1", "latent", "x0"], fn=lambda t, ctx: t.clone())
    with attach(pipe, hooks):
        v2, a2 = run(pipe)
    assert torch.equal(video, v2) and torch.equal(audio, a2)
    assert_pristine(pipe)


def test_latent_edit_is_the_pipeline_started_from_it(pipe):
    """A latent edit at step 1 = the pipeline whose latents a callback_on_step_end replaced after step 0."""
    model = LTX2PipelineModel(pipe)
    with trace_ltx2(pipe) as tr0:
        run(pipe)
    x1 = tr0.steps[1].x
    z = x1 + 0.3 * torch.randn(x1.shape, generator=torch.Generator().manual_seed(5))  # every frame, frame 0 too
    grid = tuple(x1.shape[2:])

    def callback(p, i, t, kw):
        return {"latents": pack(p, z.clone())} if i == 0 else {}

    ref_video, ref_audio = pipe(**tiny_inputs(pipe), callback_on_step_end=callback, return_dict=False)
    hooks = Hooks(model, STEPS).edit("latent", steps=[1], fn=lambda t, ctx: z.clone())
    with trace_ltx2(pipe, hooks=hooks) as tr:
        video, audio = run(pipe)
    assert torch.equal(video, ref_video) and torch.equal(audio, ref_audio)  # bit for bit, audio included
    assert torch.equal(tr.steps[0].x, tr0.steps[0].x) and torch.equal(tr.steps[0].x0, tr0.steps[0].x0)
    assert torch.equal(tr.steps[1].x, z)
    assert torch.equal(tr.steps[2].x[:, :, :1], z[:, :, :1])  # the edited frame 0 stays
    assert not torch.equal(video, run(pipe)[0])
    assert unpack(pipe, pack(pipe, z), grid).equal(z)
    # and at step 0: the pipeline whose prepare_latents gave these latents
    patches = InstancePatches()

    def wrap(original):
        def prepare_latents(*args, **kwargs):
            latents, mask = original(*args, **kwargs)
            return pack(pipe, z.clone()), mask

        return prepare_latents

    patches.patch(pipe, "prepare_latents", wrap)
    try:
        ref0 = run(pipe)
    finally:
        patches.restore()
    with attach(pipe, Hooks(model).edit("latent", steps=[0], fn=lambda t, ctx: z.clone())):
        got0 = run(pipe)
    assert torch.equal(got0[0], ref0[0]) and torch.equal(got0[1], ref0[1])
    assert_pristine(pipe)


def test_x0_edit(pipe):
    model = LTX2PipelineModel(pipe)
    with trace_ltx2(pipe) as tr0:
        run(pipe)
    w = torch.randn(tr0.steps[0].x.shape, generator=torch.Generator().manual_seed(3))
    # at the last step the output is exactly the edited x0_hat, frame 0 included
    with trace_ltx2(pipe, hooks=Hooks(model).edit("x0", steps=[STEPS - 1], fn=lambda t, ctx: w.clone())) as tr:
        video, _ = run(pipe)
    assert torch.equal(video, denormalize(pipe, w)) and torch.equal(tr.steps[-1].x0, w)
    assert torch.equal(tr.steps[-1].x, tr0.steps[-1].x)  # the step's x_s is untouched
    # at step 1: the scheduler gets v = (x - w) / sigma; the next latent is Euler's step toward w, frame 0 is w's
    with trace_ltx2(pipe, hooks=Hooks(model).edit("x0", steps=[1], fn=lambda t, ctx: w.clone())) as tr:
        run(pipe)
    s1, s2 = tr.steps[1], tr.steps[2]
    sig, sig_next = pipe.scheduler.sigmas[1], pipe.scheduler.sigmas[2]
    v = (s1.x[:, :, 1:] - w[:, :, 1:]) / sig
    assert torch.equal(s1.x, tr0.steps[1].x) and torch.equal(s1.x0, w) and torch.equal(s1.v[:, :, 1:], v)
    assert torch.equal(s2.x[:, :, 1:], s1.x[:, :, 1:] + (sig_next - sig) * v)
    assert torch.equal(s2.x[:, :, :1], w[:, :, :1])
    # a v edit that moves frame 0 is refused; one that leaves it is taken
    with pytest.raises(ValueError, match="changed latent frame 0"):
        with attach(pipe, Hooks(model).edit("v", steps=[0], fn=lambda t, ctx: t + 1)):
            run(pipe)
    assert_pristine(pipe)

    def double(t, ctx):
        out = t.clone()
        out[:, :, 1:] *= 2
        return out

    with trace_ltx2(pipe, hooks=Hooks(model).edit("v", steps=[0], fn=double)) as tr:
        run(pipe)
    assert torch.equal(tr.steps[0].v, double(tr0.steps[0].v, None))
    assert torch.equal(tr.steps[1].x[:, :, 1:], tr0.steps[0].x[:, :, 1:]
                       + (pipe.scheduler.sigmas[1] - pipe.scheduler.sigmas[0]) * tr.steps[0].v[:, :, 1:])


# -- the steplens model --------------------------------------------------------------------------------------------
def direct(pipe, samples, seeds, guidance=CFG, steps=STEPS, frames=3, output_type="latent", scheduler=None):
    """The plain pipeline call, spelled out: the maze upscaled x32 (nearest), hashed prompt embeddings with an
    all-ones mask, 8 (frames - 1) + 1 video frames, one CPU generator per row, STG / modality / rescale off."""
    text = HashedPromptEmbeds(TEXT_DIM)
    n = len(samples)
    images = [Image.fromarray(upscale(s.first_frame, 32)) for s in samples]
    emb = text([s.prompt for s in samples])
    mask = torch.ones(emb.shape[:2], dtype=torch.long)
    kw = dict(image=images[0] if n == 1 else images, prompt_embeds=emb, prompt_attention_mask=mask,
              height=32 * samples[0].size_px, width=32 * samples[0].size_px, num_frames=8 * (frames - 1) + 1,
              num_inference_steps=steps, guidance_scale=guidance, audio_guidance_scale=guidance,
              guidance_rescale=0.0, audio_guidance_rescale=0.0, stg_scale=0.0, audio_stg_scale=0.0,
              modality_scale=1.0, audio_modality_scale=1.0, image_crf=0, output_type=output_type,
              generator=torch.Generator().manual_seed(seeds[0]) if n == 1 else
              [torch.Generator().manual_seed(x) for x in seeds])
    if guidance > 1:
        kw.update(negative_prompt_embeds=text([""] * n), negative_prompt_attention_mask=mask)
    original = pipe.scheduler
    pipe.scheduler = scheduler or original
    try:
        return pipe(**kw, return_dict=False)[0]
    finally:
        pipe.scheduler = original


def test_generate_is_the_pipeline_call_bit_for_bit(pipe):
    model = LTX2PipelineModel(pipe)
    s = maze(4)
    lat = model.generate([s], [7], steps=STEPS, guidance=CFG)
    assert lat.shape == (1, 4, 3, 7, 7)  # 7x7 maze -> 224 px -> 7x7 tokens, one latent frame per sample frame
    assert torch.equal(denormalize(pipe, lat), direct(pipe, [s], [7]))
    assert torch.equal(denormalize(pipe, model.generate([s], [7], steps=STEPS, guidance=1.0)),
                       direct(pipe, [s], [7], guidance=1.0))
    # a batch (an ensemble's members, or different samples) is one pipeline call with a list of images
    s2 = maze(5)
    both = model.generate([s, s2], [7, 8], steps=STEPS, guidance=CFG)
    assert torch.equal(denormalize(pipe, both), direct(pipe, [s, s2], [7, 8]))
    torch.testing.assert_close(both[0], lat[0], rtol=0, atol=1e-4)  # row 0 is the single call up to rounding
    # a fixed shift replaces LTX-2's dynamic one for the call only
    original = pipe.scheduler
    shifted = model.generate([s], [7], steps=STEPS, shift=3.0, guidance=CFG)
    assert pipe.scheduler is original and original.config.use_dynamic_shifting
    fixed = type(original).from_config(original.config, use_dynamic_shifting=False, shift=3.0)
    assert torch.equal(denormalize(pipe, shifted), direct(pipe, [s], [7], scheduler=fixed))
    assert not torch.equal(shifted, lat)
    assert torch.equal(model.generate([s], [7], steps=STEPS, shift=float("nan"), guidance=CFG), lat)
    # pipeline_inputs is the same call
    assert torch.equal(pipe(**model.pipeline_inputs(s, 7, steps=STEPS, guidance=CFG), return_dict=False)[0],
                       denormalize(pipe, lat))
    assert_pristine(pipe)


def test_decode_is_the_pipeline_video(pipe):
    model = LTX2PipelineModel(pipe)
    s = maze(5)
    lat = model.generate([s], [3], steps=STEPS, guidance=CFG)
    own = direct(pipe, [s], [3], output_type="pt")  # (B, T, C, H, W) in [0, 1]
    video = model.decode_video(lat)
    assert video.shape == (1, 3, 17, 224, 224)
    assert torch.equal((video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4), own)
    px = model.decode(lat)
    assert px.shape == (1, 3, 3, 7, 7)
    assert torch.equal(px, torch.nn.functional.avg_pool3d(video[:, :, ::8], (1, 32, 32)))


def test_callback_and_hooks_in_generate(pipe):
    model = LTX2PipelineModel(pipe)
    samples, seeds = [maze(0), maze(1)], [0, 1]
    plain = model.generate(samples, seeds, steps=STEPS, guidance=CFG)
    steps = []
    hooks = Hooks(model, STEPS).record("blocks.1", reduce="energy").record("x0")
    lat = model.generate(samples, seeds, steps=STEPS, guidance=CFG, callback=steps.append, hooks=hooks)
    assert torch.equal(lat, plain)
    assert [st.i for st in steps] == list(range(STEPS)) and torch.equal(steps[-1].x0, lat)
    grid = model.token_grid(lat.shape)
    assert grid == (3, 7, 7)
    for k, st in enumerate(steps):
        assert torch.equal(hooks.get("x0", k), st.x0)
        for branch in ("cond", "uncond"):
            assert hooks.get("blocks.1", k, branch).reshape(2, *grid).shape == (2, *grid)
    assert_pristine(pipe)


def test_geometry_and_errors(pipe):
    m = LTX2PipelineModel(pipe)
    assert m.spatial_multiple == (32, 32) and m.pixel_scale(7, 7) == 32 and m.pixel_scale(8, 16) == 4
    assert m.video_frames(3) == 17 and m.frames_from_video(121) == 16
    assert m.latent_shape([maze(0)], 3) == (1, 4, 3, 7, 7)
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[1, 1:4] = True
    assert torch.equal(m.token_mask(mask), mask)  # tokens are maze pixels
    assert m.modules()["transformer"].get_submodule("blocks.1") is pipe.transformer.transformer_blocks[1]
    assert m.block_names == ["blocks.0", "blocks.1"] and m.experts == ["transformer"]
    d = m.sampling_defaults()
    assert d["steps"] == 30 and d["guidance"] == 3.0 and np.isnan(d["shift"])
    m.configure_sampling(scheduler="FlowMatchEulerDiscreteScheduler", negative_prompt="blurry")
    assert m.negative_prompt == "blurry"
    with pytest.raises(ValueError, match="height, width: not supported yet for LTX-2"):
        m.configure_sampling(height=64, width=64)
    with pytest.raises(ValueError, match="only for guidance > 1"):
        m.generate([maze(0)], [0], steps=2, guidance=0.5)
    with pytest.raises(ValueError, match="2 seeds given for 1 samples"):
        m.generate([maze(0)], [0, 1], steps=2)
    with pytest.raises(ValueError, match="shift must be a number > 0"):
        m.generate([maze(0)], [0], steps=2, shift=-1.0)
    with pytest.raises(ValueError, match="LTX-2's connectors expect 64"):
        LTX2PipelineModel(pipe, prompt_embeds=HashedPromptEmbeds(8)).generate([maze(0)], [0], steps=2)
    with pytest.raises(ValueError, match="needs stg_blocks"):
        LTX2PipelineModel(pipe, stg_scale=1.0)
    with pytest.raises(ValueError, match="not on this pipeline"):
        attach(pipe, Hooks(LTX2PipelineModel(tiny_ltx2_i2v(seed=1))))
    from diffusers import DDIMScheduler

    original = pipe.scheduler
    pipe.scheduler = DDIMScheduler()
    try:
        with pytest.raises(TypeError, match="supports FlowMatchEulerDiscreteScheduler"):
            m.generate([maze(0)], [0], steps=2)
    finally:
        pipe.scheduler = original
    with pytest.raises(TypeError, match="does not support the pipeline class"):
        LTX2PipelineModel(object())


@pytest.mark.filterwarnings("ignore:.* has no text encoder")
def test_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "ltx2")
    model = load_ltx2_model(str(tmp_path / "ltx2"))
    assert model.name == f"wan:{tmp_path / 'ltx2'}" and model.prompt_source == "hashed"
    mine, back = pipe.transformer.state_dict(), model.pipe.transformer.state_dict()
    assert mine.keys() == back.keys() and all(torch.equal(mine[k], back[k]) for k in mine)
    s = maze(2)
    assert torch.equal(denormalize(model.pipe, model.generate([s], [1], steps=2, guidance=CFG)),
                       direct(model.pipe, [s], [1], steps=2))
    with pytest.raises(ValueError, match="LTX-2 has one transformer"):
        load_ltx2_model(str(tmp_path / "ltx2"), lora_2="x.safetensors")
    with pytest.raises(ValueError, match="not supported yet for LTX-2"):
        load_ltx2_model(str(tmp_path / "ltx2"), lora="x.safetensors")
    index = json.loads((tmp_path / "ltx2" / "model_index.json").read_text())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model_index.json").write_text(json.dumps({**index, "_class_name": "LTX2Pipeline"}))
    with pytest.raises(ValueError, match="holds a LTX2Pipeline; steplens' LTX-2 backend supports"):
        load_ltx2_model(str(tmp_path / "other"))
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_ltx2_model(str(tmp_path / "missing"))


# -- experiments ---------------------------------------------------------------------------------------------------
def test_experiments_run(pipe):
    from steplens.methods.ensemble import EnsembleConfig, ensemble_hooks, generate_ensemble, member_seeds
    from steplens.probes.compare import run_methods
    from steplens.trace import trace

    model = LTX2PipelineModel(pipe)
    tr = trace(model, [maze(3, frames=2)], [3], steps=2, guidance=CFG)[0]
    assert tr.x0.shape == (2, 3, 2, 7, 7) and len(tr.metrics) == 2 and tr.output.shape == (3, 2, 7, 7)
    got = run_methods(model, [maze(0, frames=2), maze(1, frames=2)], [0, 1], ["single", "ensemble", "vote"], 2, 2, 3.0)
    assert {k: len(v) for k, v in got.items()} == {"single": 2, "ensemble": 2, "vote": 2}
    # the ensemble's averaging acts: the averaged block output is the same in both members; averaging x0_hat at the
    # last step makes their outputs identical
    s = [maze(0, frames=2)]
    cfg = EnsembleConfig(n_seeds=2, target="block", blocks=[0], steps=[0, 1])
    hooks = ensemble_hooks(model, cfg, 2).record("blocks.0")  # recorded after the averaging edit
    with hooks:
        model.generate(s * 2, member_seeds([0], 2), steps=2, guidance=1.0, hooks=hooks)
    for k in range(2):
        rec = hooks.get("blocks.0", k)
        assert torch.equal(rec[0], rec[1])
    lat = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1]), steps=2, guidance=1.0)
    assert torch.equal(lat[0, 0], lat[0, 1])
    off = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1], alpha=0.0), steps=2,
                            guidance=1.0)
    assert not torch.equal(off[0, 0], off[0, 1])
    assert_pristine(pipe)


def test_update_edits_reach_the_blocks(pipe):
    """LTX-2 calls its blocks by keyword: an edit on="update" still sees the block's input (hidden_states)."""
    model = LTX2PipelineModel(pipe)
    block = pipe.transformer.transformer_blocks[1]
    inputs = []
    handle = block.register_forward_pre_hook(lambda m, a, kw: inputs.append(kw["hidden_states"]), with_kwargs=True)
    try:
        skip = Hooks(model).edit("blocks.1", fn=lambda d, ctx: torch.zeros_like(d), steps=[1], on="update")
        with attach(pipe, skip):
            got = run(pipe, guidance_scale=1.0)[0]
        inputs.clear()
        same = Hooks(model).edit("blocks.1", fn=lambda t, ctx: inputs[-1].clone(), steps=[1])
        with attach(pipe, same):
            ref = run(pipe, guidance_scale=1.0)[0]
    finally:
        handle.remove()
    assert torch.equal(got, ref) and not torch.equal(got, run(pipe, guidance_scale=1.0)[0])


@pytest.mark.parametrize("probe", ["noise", "propagation", "energy", "swap", "sweep", "behaviours"])
def test_every_probe_runs_on_ltx2(pipe, probe, tmp_path):
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings

    model = LTX2PipelineModel(pipe)
    s = ProbeSettings(count=1, steps=2, size=3, frames=2, batch=1)
    if probe == "swap":  # the task the swap probe generates when none is named
        s = s.model_copy(update={"task": get_probe("swap").default_task()})
    kw = {"sweep": {"frames": (2,), "steps": (2, 3)}, "noise": {"mix_strengths": ()}}.get(probe, {})
    res = get_probe(probe).run(model, tmp_path, s, progress=False, **kw)
    assert res["table"] and (tmp_path / "results.json").exists()
    assert_pristine(pipe)
    with pytest.raises(ValueError, match="undefined for one step"):  # LTX-2's shift_terminal needs >= 2 steps
        model.generate([maze(0)], [0], steps=1)


def test_the_cli_takes_an_ltx2_folder(pipe, tmp_path):
    """`--model wan:DIR` (or diffusers:DIR) dispatches on model_index.json: an LTX-2 folder runs through the CLI
    with its own sampling settings (dynamic shift kept: shift null in the config); vbvr is refused by name."""
    from typer.testing import CliRunner

    from steplens.cli import app
    from steplens.presets import resolve

    pipe.save_pretrained(tmp_path / "ltx2")
    spec = f"diffusers:{tmp_path / 'ltx2'}"
    r = CliRunner().invoke(app, ["probe", "energy", "--model", spec, "--count", "1", "--size", "3", "--frames", "2",
                                 "--steps", "2", "--out", str(tmp_path / "energy")])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "energy" / "results.json").read_text())["config"]
    assert config["sampling"]["steps"] == 2 and config["shift"] is None and config["sampling"]["sources"]["steps"] == "option"
    r = CliRunner().invoke(app, ["eval", "--model", spec, "--preset", "vbvr", "--count", "1"])
    assert r.exit_code == 2 and "applies to Wan pipelines" in " ".join(r.output.split()), r.output
    model = load_ltx2_model(str(tmp_path / "ltx2"))
    sp = resolve(model, None)
    assert sp.shift is None and sp.steps == model.sampling_defaults()["steps"]
