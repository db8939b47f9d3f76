"""K leading frames given to HunyuanVideo-1.5 image-to-video (issue 35): its condition is a latent and a mask per latent
frame, so K frames are its own mechanism: K = 1 is the pipeline's condition bit for bit, K > 1 changes the video and
tracing changes nothing."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
if not hasattr(diffusers, "HunyuanVideo15ImageToVideoPipeline"):
    pytest.skip("this diffusers has no HunyuanVideo-1.5", allow_module_level=True)

from families import Hunyuan15  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.backends.hunyuan15 import prefix_condition  # noqa: E402
from steplens.tasks import continue_from_frames, draw, get_task  # noqa: E402

pytestmark = pytest.mark.wan
F = Hunyuan15()
STEPS = 2


@pytest.fixture(scope="module")
def pipe(family_pipes):
    return family_pipes(F)


def maze(seed=0):
    return draw(get_task("maze"), seed, "test", 3, 3, idx=seed)


def test_k1_condition_is_the_pipelines_own(pipe):
    model = F.model(pipe)
    s = maze()
    images, _, kw = model.call_inputs([s], [3], steps=STEPS)
    h, w = kw["height"], kw["width"]
    image = pipe.video_processor.resize(images[0], height=h, width=w, resize_mode="crop")
    lat = torch.zeros(1, model.latent_channels, 3, h // model.vae_spatial, w // model.vae_spatial)
    own = pipe.prepare_cond_latents_and_mask(lat, image, 1, h, w, torch.float32, "cpu")
    mine = prefix_condition(pipe, [image], h, w, lat, torch.float32, "cpu")
    assert torch.equal(mine[0], own[0]) and torch.equal(mine[1], own[1])


def test_k_frames_change_the_video_and_tracing_changes_nothing(pipe):
    model = F.model(pipe)
    s = maze()
    two = continue_from_frames(s, s.ground_truth, 2)
    plain = model.generate([s], [5], sampling=resolve(model, steps=STEPS, guidance=F.cfg))
    given = model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=F.cfg))
    assert given.shape == plain.shape and not torch.equal(given, plain)
    seen = []
    assert torch.equal(model.generate([two], [5], sampling=resolve(model, steps=STEPS, guidance=F.cfg), callback=seen.append), given)
    assert len(seen) == STEPS
    assert torch.equal(model.generate([continue_from_frames(s, s.ground_truth, 1)], [5], sampling=resolve(model, steps=STEPS,
                                      guidance=F.cfg)), plain)


def test_a_backend_without_frame_conditioning_refuses_k_frames_before_its_pipeline_runs(pipe):
    """A plug-in backend that builds no K-frame condition keeps the core's refusal: never the first frame alone in
    silence."""
    from steplens.backends.hunyuan15 import HunyuanVideo15Model
    from steplens.backends.prefix import UNSUPPORTED
    from steplens.methods.backtrack import check_backtrack
    from steplens.tape import forwards

    class FirstFrameOnly(HunyuanVideo15Model):
        prefix_why = UNSUPPORTED

    model = FirstFrameOnly(pipe, glyph_length=F.glyph)
    s = maze()
    why = "cannot be given K = 2 leading frames: its steplens backend gives its pipeline the first frame only"
    with forwards(model) as c, pytest.raises(ValueError, match=why):
        model.generate([continue_from_frames(s, s.ground_truth, 2)], [5], sampling=resolve(model, steps=STEPS, guidance=F.cfg))
    assert c.nfe == 0 and model.prefix_trained == 1
    with pytest.raises(ValueError, match="backtrack regenerates from a verified prefix of frames, and model .* cannot "
                                         "be given leading frames: its steplens backend"):
        check_backtrack(model, ["maze"], "checker")
