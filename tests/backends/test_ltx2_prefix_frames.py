"""K leading frames given to LTX-2 image-to-video (issue 35): K = 1 is the pipeline's own first-frame latent and the
plain call, bit for bit; with K > 1 the given latent frames are held at every step as the pipeline holds frame 0,
traced == untraced, hooks attached before the call see the same, rows of a batch take their own K, and an edit of
the given frames is refused."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
if not hasattr(diffusers, "LTX2ImageToVideoPipeline"):
    pytest.skip("this diffusers has no LTX-2", allow_module_level=True)

from families import LTX2  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.backends import attach  # noqa: E402
from steplens.backends.ltx2 import LTX2PipelineModel  # noqa: E402
from steplens.backends.ltx2.prefix import prefix_latents  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402
from steplens.tasks import continue_from_frames, draw, get_task  # noqa: E402

pytestmark = pytest.mark.wan
F = LTX2()
STEPS, CFG = 3, 3.0


@pytest.fixture(scope="module")
def pipe(family_pipes):
    return family_pipes(F)


def maze(seed=0):
    return draw(get_task("maze"), seed, "test", 3, 4, idx=seed)


def given_latents(model, sample):
    """The K given frames' latents, encoded here from the sample's frames as the pipeline encodes its image."""
    pipe = model.pipe
    _, _, kw = model.call_inputs([sample], [0], steps=STEPS)
    images = model.prefix_images([sample], kw["height"], kw["width"])[0]
    frames = [pipe.video_processor.preprocess(f, height=kw["height"], width=kw["width"]) for f in images]
    return prefix_latents(pipe, frames, torch.float32)


def test_k1_is_the_pipelines_own_first_frame_latent_and_the_plain_call(pipe):
    model = LTX2PipelineModel(pipe)
    s = maze()
    images, _, kw = model.call_inputs([s], [3], steps=STEPS)
    image = pipe.video_processor.preprocess(images[0], height=kw["height"], width=kw["width"])
    packed, _ = pipe.prepare_latents(image, 1, model.latent_channels, kw["height"], kw["width"], kw["num_frames"], 0.0,
                                     torch.float32, "cpu", [torch.Generator().manual_seed(3)])
    t = (kw["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1
    own = type(pipe)._unpack_latents(packed, t, kw["height"] // 32, kw["width"] // 32, 1, 1)[:, :, :1]
    assert torch.equal(prefix_latents(pipe, [image], torch.float32), own)
    plain = model.generate([s], [5], sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert torch.equal(model.generate([continue_from_frames(s, s.ground_truth, 1)], [5], sampling=resolve(model, steps=STEPS, guidance=CFG)),
                       plain)


def test_k_frames_are_held_and_tracing_changes_nothing(pipe):
    model = LTX2PipelineModel(pipe)
    s = maze()
    two = continue_from_frames(s, s.ground_truth, 2)
    plain = model.generate([s], [5], sampling=resolve(model, steps=STEPS, guidance=CFG))
    given = model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert given.shape == plain.shape and not torch.equal(given[:, :, 2:], plain[:, :, 2:])
    head = given_latents(model, two)
    assert head.shape[2] == 2 and torch.equal(given[:, :, :2], head)  # latent frames 0 and 1: the given frames
    seen = []
    traced = model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=CFG), callback=seen.append)
    assert torch.equal(traced, given) and len(seen) == STEPS
    for st in seen:  # held: x_s = x0_hat = the given latent, v = 0; the frames after them move
        assert torch.equal(st.x[:, :, :2], head) and torch.equal(st.x0[:, :, :2], head)
        assert not st.v[:, :, :2].any() and st.v[:, :, 2:].abs().max() > 0
    # hooks attached before the call wrap the pipeline first: the same conditioning, the same video
    hooks = Hooks(model, STEPS).record("x0", steps=[0])
    with attach(pipe, hooks):
        assert torch.equal(model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=CFG)), given)
    assert torch.equal(next(iter(hooks.records.values()))[:, :, :2], head)


def test_rows_of_a_batch_take_their_own_k(pipe):
    model = LTX2PipelineModel(pipe)
    a, b = maze(0), maze(1)
    three = continue_from_frames(b, b.ground_truth, 3)
    batch = model.generate([a, three], [5, 6], sampling=resolve(model, steps=STEPS, guidance=CFG))
    alone = [model.generate([a], [5], sampling=resolve(model, steps=STEPS, guidance=CFG)), model.generate([three], [6], sampling=resolve(model, steps=STEPS,
                                                                                  guidance=CFG))]
    for row, single in zip(batch, alone):  # up to the rounding of batched matmuls
        torch.testing.assert_close(row[None], single, rtol=0, atol=1e-5)
    assert torch.equal(batch[1:, :, :3], given_latents(model, three))


def test_what_cannot_be_given_is_refused(pipe):
    model = LTX2PipelineModel(pipe)
    s = maze()
    two = continue_from_frames(s, s.ground_truth, 2)
    with pytest.raises(ValueError, match="given leading latent frames"):
        with attach(pipe, Hooks(model).edit("x0", steps=[0], fn=lambda t, ctx: t + 1)):
            model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=CFG))
    with pytest.raises(ValueError, match="K must be at least 1 and below the video's 2 frames"):
        model.generate([two], [5], frames=2, sampling=resolve(model, steps=STEPS, guidance=CFG))  # the call's frames: none left to generate
    with pytest.raises(ValueError, match="plain pipeline call conditions on the first frame alone"):
        model.pipeline_inputs(two, 5, steps=STEPS)
