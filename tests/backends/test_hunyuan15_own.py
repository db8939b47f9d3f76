"""What only HunyuanVideo-1.5 has, beyond the shared backend tests (test_hunyuan15.py): a latent edit is the pipeline
started from that latent (its own `latents` and `sigmas` arguments), the real VAE geometry, its settings and errors."""

from dataclasses import replace
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "HunyuanVideo15ImageToVideoPipeline"):
    pytest.skip("this diffusers has no HunyuanVideo-1.5", allow_module_level=True)

import numpy as np  # noqa: E402

from families import Hunyuan15, maze  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.backends import HashedPromptEmbeds, trace_pipeline  # noqa: E402
from steplens.backends.hunyuan15 import HunyuanVideo15Model  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402

F = Hunyuan15()
STEPS = F.steps


@pytest.fixture(scope="module")
def pipe(family_pipes):
    return family_pipes(F)


def test_a_latent_edit_is_the_pipeline_started_from_that_latent(pipe):
    """A latent edit at step k is the pipeline started there from that latent (its `latents` and the tail of its
    `sigmas`)."""
    model = F.model(pipe)
    s = maze(2)
    with trace_pipeline(pipe) as tr0:
        out = F.direct(pipe, [s], [2])
    z = tr0.steps[1].x + 0.3 * torch.randn(tr0.steps[1].x.shape, generator=torch.Generator().manual_seed(5))
    unshifted = np.linspace(1.0, 0.0, STEPS + 1)[:-1]
    for k in (0, 1):
        with trace_pipeline(pipe, hooks=Hooks(model).edit("latent", steps=[k], fn=lambda t, ctx: z.clone())) as tr:
            got = F.direct(pipe, [s], [2])
        ref = F.direct(pipe, [s], [2], latents=z.clone(), sigmas=list(unshifted[k:]), num_inference_steps=None)
        assert torch.equal(got, ref) and torch.equal(tr.steps[k].x, z) and not torch.equal(got, out)
    F.assert_pristine(pipe)


def test_real_geometry():
    """The real VAE factors (16x in space, 4x in time): one token per 16 x 16 pixels, one latent frame per 4 video
    frames, and generate is still the plain call."""
    pipe = F.build(seed=0, real_geometry=True)
    model = F.model(pipe)
    assert model.spatial_multiple == model.token_pixels == (16, 16) and model.patch_size == (1, 1, 1)
    assert model.pixel_scale(7, 7) == 16 and model.video_frames(2) == 5 and model.frames_from_video(121) == 31
    s = maze(0, frames=2)
    assert model.latent_shape([s], 2) == (1, 4, 2, 7, 7)
    lat = model.generate([s], [0], sampling=resolve(model, steps=2), frames=2)
    assert torch.equal(lat, F.direct(pipe, [s], [0], steps=2, frames=2, k=16))
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[1, 1:4] = True
    assert torch.equal(model.token_mask(mask), mask)  # tokens are maze pixels
    assert model.decode(lat).shape == (1, 3, 2, 7, 7)


def test_settings_and_errors(pipe):
    m = F.model(pipe)
    with m.applied(resolve(m, negative_prompt="blurry")):
        assert m.negative_prompt == "blurry"
    with pytest.raises(ValueError, match="height, width: not supported for HunyuanVideo-1.5"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=2, height=64, width=64))
    with pytest.raises(ValueError, match="runs its own FlowMatchEulerDiscreteScheduler"):
        m.generate([maze(0)], [0], sampling=replace(resolve(m, steps=2), scheduler="euler2"))
    with pytest.raises(ValueError, match="only for guidance > 1"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=2, guidance=0.5))
    with pytest.raises(ValueError, match="2 seeds given for 1 samples"):
        m.generate([maze(0)], [0, 1], sampling=resolve(m, steps=2))
    with pytest.raises(ValueError, match="expects text_embed_dim 16"):
        F.model(pipe, prompt_embeds=HashedPromptEmbeds(8)).generate([maze(0)], [0], sampling=resolve(F.model(pipe, prompt_embeds=HashedPromptEmbeds(8)), steps=2))
    with pytest.raises(ValueError, match="glyph_length must be an integer >= 1"):
        HunyuanVideo15Model(pipe, glyph_length=0)
    from diffusers import DDIMScheduler

    original = pipe.scheduler
    pipe.scheduler = DDIMScheduler()
    try:
        with pytest.raises(TypeError, match="supports FlowMatchEulerDiscreteScheduler"):
            m.generate([maze(0)], [0], sampling=resolve(m, steps=2))
    finally:
        pipe.scheduler = original
    with pytest.raises(TypeError, match="does not support the pipeline class"):
        HunyuanVideo15Model(object())
    F.assert_pristine(pipe)
