"""What only LTX-2 has, beyond the shared backend tests (test_ltx2.py): STG and modality forwards as their own
branches, a latent edit checked against the pipeline's own callback and prepare_latents, v edits that must leave frame
0, keyword-called blocks, its geometry, errors and load refusals."""

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "LTX2ImageToVideoPipeline"):
    pytest.skip("this diffusers has no LTX-2", allow_module_level=True)

from families import LTX2, maze  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.backends import attach, trace_pipeline as trace_ltx2  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel, denormalize, load_ltx2_model, pack, unpack  # noqa: E402
from steplens.backends.ltx2.tiny import tiny_inputs  # noqa: E402
from steplens.backends.patches import InstancePatches  # noqa: E402
from steplens.backends.prompts import HashedPromptEmbeds  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402

F = LTX2()
STEPS, run, assert_pristine = F.steps, F.run, F.assert_pristine


@pytest.fixture(scope="module")
def pipe(family_pipes):
    return family_pipes(F)


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


def test_v_edits_must_leave_frame_0(pipe):
    """A v edit that moves frame 0 (the clean image latent) is refused; one that leaves it is taken and stepped."""
    model = LTX2PipelineModel(pipe)
    with trace_ltx2(pipe) as tr0:
        run(pipe)
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


def test_geometry_and_errors(pipe):
    m = LTX2PipelineModel(pipe)
    assert m.spatial_multiple == (32, 32) and m.pixel_scale(7, 7) == 32 and m.pixel_scale(8, 16) == 4
    assert m.video_frames(3) == 17 and m.frames_from_video(121) == 16
    assert m.latent_shape([maze(0)], 3) == (1, 4, 3, 7, 7)
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[1, 1:4] = True
    assert torch.equal(m.token_mask(mask), mask)  # tokens are maze pixels
    d = m.sampling_defaults()
    assert d["steps"] == 30 and d["guidance"] == 3.0 and np.isnan(d["shift"])
    with m.applied(resolve(m, negative_prompt="blurry")):
        assert m.negative_prompt == "blurry"
    with pytest.raises(ValueError, match="height, width: not supported yet for LTX-2"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=2, height=64, width=64))
    with pytest.raises(ValueError, match="only for guidance > 1"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=2, guidance=0.5))
    with pytest.raises(ValueError, match="2 seeds given for 1 samples"):
        m.generate([maze(0)], [0, 1], sampling=resolve(m, steps=2))
    with pytest.raises(ValueError, match="shift must be a number > 0"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=2, shift=-1.0))
    with pytest.raises(ValueError, match="LTX-2's connectors expect 64"):
        LTX2PipelineModel(pipe, prompt_embeds=HashedPromptEmbeds(8)).generate([maze(0)], [0], sampling=resolve(LTX2PipelineModel(pipe, prompt_embeds=HashedPromptEmbeds(8)), steps=2))
    with pytest.raises(ValueError, match="needs stg_blocks"):
        LTX2PipelineModel(pipe, stg_scale=1.0)
    with pytest.raises(ValueError, match="undefined for one step"):  # LTX-2's shift_terminal needs >= 2 steps
        m.generate([maze(0)], [0], sampling=resolve(m, steps=1))
    from diffusers import DDIMScheduler

    original = pipe.scheduler
    pipe.scheduler = DDIMScheduler()
    try:
        with pytest.raises(TypeError, match="supports FlowMatchEulerDiscreteScheduler"):
            m.generate([maze(0)], [0], sampling=resolve(m, steps=2))
    finally:
        pipe.scheduler = original
    with pytest.raises(TypeError, match="does not support the pipeline class"):
        LTX2PipelineModel(object())
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


@pytest.mark.filterwarnings("ignore:.* has no text encoder")
def test_load_refusals(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "ltx2")
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
