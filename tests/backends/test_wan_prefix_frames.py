"""K leading frames given to Wan image-to-video (issue 35): the pipeline's own condition at K = 1, bit for bit; K > 1
changes the result, traced == untraced, a batch of two samples given different K, TI2V refused."""

import pytest
import torch

pytest.importorskip("diffusers")

from steplens.presets import resolve  # noqa: E402
from steplens.backends.wan.model import WanPipelineModel  # noqa: E402
from steplens.tasks import continue_from_frames, draw, get_task  # noqa: E402

pytestmark = pytest.mark.wan
STEPS = 3


def maze(seed=0):
    return draw(get_task("maze"), seed, "test", 3, 4, idx=seed)


def test_k1_condition_is_the_pipelines_own(pipes):
    from steplens.backends.wan.prefix import prefix_condition

    pipe = pipes("wan22")
    model = WanPipelineModel(pipe)
    s = maze()
    images, generators, kw = model.call_inputs([s], [3], steps=STEPS)
    pre = pipe.video_processor.preprocess(images[0], height=kw["height"], width=kw["width"]).to(torch.float32)
    _, own = pipe.prepare_latents(pre, 1, 16, kw["height"], kw["width"], kw["num_frames"], torch.float32, "cpu",
                                  torch.Generator().manual_seed(3))
    assert torch.equal(prefix_condition(pipe, [pre], kw["num_frames"], torch.float32, "cpu"), own)


def test_k_frames_change_the_video_and_tracing_changes_nothing(pipes):
    model = WanPipelineModel(pipes("wan22"))
    s = maze()
    two = continue_from_frames(s, s.ground_truth, 2)
    plain = model.generate([s], [5], sampling=resolve(model, steps=STEPS))
    given = model.generate([two], [5], sampling=resolve(model, steps=STEPS))
    assert given.shape == plain.shape and not torch.equal(given, plain)
    seen = []
    traced = model.generate([two], [5], sampling=resolve(model, steps=STEPS), callback=seen.append)
    assert torch.equal(traced, given) and len(seen) == STEPS
    # K = 1 through continue_from_frames is the plain call
    assert torch.equal(model.generate([continue_from_frames(s, s.ground_truth, 1)], [5], sampling=resolve(model, steps=STEPS)), plain)


def test_what_cannot_be_given_is_refused():
    from steplens.backends.wan.tiny import tiny_wan22_ti2v

    s = maze()
    ti2v = WanPipelineModel(tiny_wan22_ti2v())
    with pytest.raises(ValueError, match="not supported yet"):
        ti2v.generate([continue_from_frames(s, s.ground_truth, 2)], [0], sampling=resolve(ti2v, steps=2))


def test_backtrack_runs_on_wan22(pipes):
    """Backtracking along time on the tiny Wan2.2 pipeline: generations recorded, each a full run (NFE per sample
    and CFG branch = steps x generations)."""
    from steplens.methods.search import SearchConfig, search

    model = WanPipelineModel(pipes("wan22"))
    samples = [maze(s) for s in range(2)]
    res = search(model, samples, [0, 1], SearchConfig(method="backtrack", n=2, verifier="checker"), sampling=resolve(model, steps=STEPS, guidance=1.0))
    gens = sum(len(h) for h in res.backtracks)
    assert 2 <= gens <= 4 and res.nfe.nfe == STEPS * gens
    for hist in res.backtracks:
        assert hist[0]["known"] == 1 and all(len(h["checks"]) == 4 for h in hist)
