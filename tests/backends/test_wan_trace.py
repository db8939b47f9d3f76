"""Tracing real (tiny, offline) diffusers Wan pipelines: the trace changes nothing, and what it records is right."""

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from steplens.presets import resolve  # noqa: E402
from steplens.backends import PipelineStep as WanStep, trace_pipeline, transformer_components  # noqa: E402
from steplens.backends.wan import decode_latents  # noqa: E402
from steplens.backends.wan.tiny import tiny_inputs, tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402

torch.set_num_threads(1)

BUILDERS = {"wan22": tiny_wan22_i2v, "wan21": tiny_wan21_i2v}
VARIANTS = [(m, s) for m in BUILDERS for s in ("euler", "unipc")]


def run(pipe, **kw):
    return pipe(**tiny_inputs(pipe, **kw)).frames


def assert_pristine(pipe):
    sched = pipe.scheduler
    assert "step" not in vars(sched)
    assert sched.step.__func__ is type(sched).step
    for module in transformer_components(pipe).values():
        assert "forward" not in vars(module)
        assert module.forward.__func__ is type(module).forward


@pytest.mark.parametrize("model,scheduler", VARIANTS)
def test_trace_changes_nothing(pipes, model, scheduler):
    pipe = pipes(model, scheduler)
    plain = run(pipe)
    with trace_pipeline(pipe) as tr:
        traced = run(pipe)
    assert torch.equal(plain, traced)  # bit for bit, decoded video
    assert not torch.equal(plain, run(pipe, seed=1))  # the output does depend on the seed
    assert_pristine(pipe)
    assert len(tr.steps) == 4 and [s.i for s in tr.steps] == [0, 1, 2, 3]
    assert all(isinstance(s, WanStep) and s.calls == 2 for s in tr.steps)  # CFG: cond + uncond
    pipe.scheduler.set_timesteps(4)
    assert [s.t for s in tr.steps] == pipe.scheduler.timesteps.tolist()
    assert [s.sigma for s in tr.steps] == pipe.scheduler.sigmas[:-1].tolist()
    assert tr.steps[-1].sigma_next == 0.0
    assert tr.decoded == {}  # nothing decoded unless asked
    for s in tr.steps:  # x0_hat = x_s - sigma v, whether computed here (Euler) or by the scheduler (UniPC)
        assert s.x0_source == ("x-sigma*v" if scheduler == "euler" else "scheduler")
        torch.testing.assert_close(s.x0, s.x - s.sigma * s.v, rtol=0, atol=1e-5)


@pytest.mark.parametrize("model", ["wan22", "wan21"])
def test_euler_steps_and_final_latent(pipes, model):
    pipe = pipes(model, "euler")
    with trace_pipeline(pipe, branches=True) as tr:
        final = run(pipe, output_type="latent")
    steps = tr.steps
    assert torch.equal(steps[-1].x0, final)  # sigma_next = 0: the last Euler step lands on x0_hat exactly
    for s in steps:
        assert torch.equal(s.x0, s.x - torch.tensor(s.sigma) * s.v)
        cond, uncond = s.branches  # v is the guided velocity handed to scheduler.step
        torch.testing.assert_close(s.v, uncond + 5.0 * (cond - uncond), rtol=0, atol=1e-5)
    for a, b in zip(steps, steps[1:]):  # x_s recorded is the latent the next step starts from
        torch.testing.assert_close(b.x, a.x + (a.sigma_next - a.sigma) * a.v, rtol=0, atol=1e-5)
    assert (steps[0].x0 - steps[-1].x0).abs().max() > 1e-3  # x0_hat moves along the steps


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_experts_follow_boundary(pipes, scheduler):
    pipe = pipes("wan22", scheduler)
    with trace_pipeline(pipe) as tr:
        run(pipe, output_type="latent")
    pipe.scheduler.set_timesteps(4)
    boundary = pipe.config.boundary_ratio * pipe.scheduler.config.num_train_timesteps
    expected = ["transformer" if t >= boundary else "transformer_2" for t in pipe.scheduler.timesteps.tolist()]
    assert set(expected) == {"transformer", "transformer_2"}  # the schedule does cross the boundary
    assert [s.expert for s in tr.steps] == expected


def test_wan21_single_expert_with_image_encoder(pipes):
    pipe = pipes("wan21", "unipc")
    assert pipe.image_encoder is not None and pipe.transformer_2 is None
    with trace_pipeline(pipe) as tr:
        run(pipe, output_type="latent")
    assert [s.expert for s in tr.steps] == ["transformer"] * 4


class Boom(Exception):
    pass


def test_restored_after_exception_and_existing_wrappers_kept(pipes):
    pipe = pipes("wan22", "euler")
    reference = run(pipe, output_type="latent")

    def boom(pipe_, i, t, kwargs):
        if i == 1:
            raise Boom("stop")
        return kwargs

    with pytest.raises(Boom):
        with trace_pipeline(pipe, decode_steps=[0]) as tr:
            pipe(**tiny_inputs(pipe, output_type="latent"), callback_on_step_end=boom)
    assert_pristine(pipe)
    assert len(tr.steps) == 2 and tr.decoded == {}  # recorded up to the failure, nothing decoded
    assert torch.equal(run(pipe, output_type="latent"), reference)  # no state left behind

    # an instance-level forward already there (e.g. accelerate's offload hook) is wrapped, then put back
    t2 = pipe.transformer_2
    calls = []

    def hooked(*args, **kwargs):
        calls.append(1)
        return type(t2).forward(t2, *args, **kwargs)

    t2.forward = hooked
    try:
        with trace_pipeline(pipe) as tr:
            run(pipe, output_type="latent")
        assert vars(t2)["forward"] is hooked
        assert len(calls) == 2 * sum(s.expert == "transformer_2" for s in tr.steps) > 0
    finally:
        del t2.forward
    assert_pristine(pipe)


def test_decode_steps(pipes):
    pipe = pipes("wan22", "euler")
    video = run(pipe, output_type="pt")
    with trace_pipeline(pipe, decode_steps=[0, -1]) as tr:
        traced = run(pipe, output_type="pt")
    assert torch.equal(video, traced)
    assert sorted(tr.decoded) == [0, 3]  # only the chosen steps
    assert tr.decoded[3].shape == video.shape
    assert (tr.decoded[3] - video).abs().max() <= 1e-5
    assert (tr.decoded[0] - video).abs().max() > 1e-4  # an early x0_hat is another video
    np_video = decode_latents(pipe, tr.steps[-1].x0, output_type="np")
    assert abs(np_video - video.permute(0, 1, 3, 4, 2).numpy()).max() <= 1e-5

    with pytest.raises(IndexError):
        with trace_pipeline(pipe, decode_steps=[4]):
            run(pipe, output_type="latent")
    assert_pristine(pipe)
    with pytest.raises(TypeError):
        trace_pipeline(pipe, decode_steps=[1.5])


def test_decode_streams_to_disk_and_tiles(pipes, tmp_path):
    from steplens.io.files import read_mp4

    pipe = pipes("wan22", "euler")
    with trace_pipeline(pipe, decode_steps=[1, -1], decode_dir=tmp_path, tiled=True) as tr:
        video = run(pipe, output_type="np")
    assert not pipe.vae.use_tiling  # tiling was switched on for the decode only
    assert sorted(tr.decoded) == [1, 3]
    paths = tr.decoded[3]
    assert [p.name for p in paths] == ["run0_step003_0.mp4"]
    frames = read_mp4(paths[0])  # (T, H, W, 3) uint8, lossy H.264
    assert frames.shape == (video.shape[1], *video.shape[2:4], 3)
    assert abs(frames.astype(float) / 255 - video[0]).mean() < 0.05


def test_tiny_builders_deterministic_and_rng_neutral():
    state = torch.random.get_rng_state()
    a, b, c = tiny_wan22_i2v(seed=0), tiny_wan22_i2v(seed=0), tiny_wan22_i2v(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    sa, sb, sc = (p.transformer_2.state_dict() for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not torch.equal(sa["proj_out.weight"], a.transformer.state_dict()["proj_out.weight"])  # two experts


def test_the_viewer_labels_each_step_with_its_expert(pipes, tmp_path):
    """A two-expert Wan2.2 trace records which expert ran each step; the viewer's data and grid carry it."""
    import json

    from steplens.backends.wan import WanPipelineModel
    from steplens.reports.traces import write_trace
    from steplens.reports.viewer import trace_viewer
    from steplens.tasks import get_task
    from steplens.trace import trace

    model = WanPipelineModel(pipes("wan22"))
    s = get_task("maze").sample(0, 3, 2, idx=0)
    tr = trace(model, [s], [0], sampling=resolve(model, steps=4))[0]
    assert tr.experts[0] == "transformer" and tr.experts[-1] == "transformer_2"
    geometry = write_trace(tr, tmp_path)["viewer"]
    assert json.loads((tmp_path / "metrics.json").read_text())["experts"] == tr.experts
    html = trace_viewer(".", geometry, tr.sigmas, tr.metrics, tr.experts, s.name)
    assert '"experts": ["transformer", ' in html and (tmp_path / "steps.png").is_file()


def test_negative_steps_and_keyerrors_that_list_what_was_recorded(pipes):
    """tr.decoded[-1] and hooks.get(point, -1) are the last step; a missing step names the recorded ones."""
    import pytest
    import torch

    from steplens.backends import trace_pipeline
    from steplens.backends.wan import WanPipelineModel
    from steplens.backends.wan.tiny import tiny_inputs
    from steplens.hooks import Hooks

    pipe = pipes("wan22")
    hooks = Hooks(WanPipelineModel(pipe), num_steps=4).record("blocks.1", reduce="energy")
    with trace_pipeline(pipe, decode_steps=[0, -1], hooks=hooks) as tr:
        pipe(**{**tiny_inputs(pipe), "num_inference_steps": 4})
    assert torch.equal(torch.as_tensor(tr.decoded[-1]), torch.as_tensor(tr.decoded[3])) and -1 in tr.decoded
    with pytest.raises(KeyError, match=r"decoded steps: \[0, 3\]"):
        tr.decoded[1]
    assert torch.equal(hooks.get("blocks.1", -1), hooks.get("blocks.1", 3))
    with pytest.raises(KeyError, match=r"recorded steps of 'blocks.1': \[0, 1, 2, 3\]"):
        hooks.get("blocks.1", 7)
