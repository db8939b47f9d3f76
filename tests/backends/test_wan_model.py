"""A diffusers Wan pipeline as a steplens model (real tiny offline pipelines, no mocks), beyond the shared backend
tests on Wan2.2 (test_wan22.py): generate is the pipeline call bit for bit on Wan2.1 and UniPC too, sample i depends
only on seeds[i], decode is Wan2.1's video, the CLI runs eval, trace and probe on `wan:DIR`, the steplens Euler loop
on the pipeline's transformers is the pipeline bit for bit."""

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from steplens.presets import Sampling, resolve  # noqa: E402
from steplens.backends.prompts import HashedPromptEmbeds  # noqa: E402
from steplens.backends.wan import WanPipelineModel  # noqa: E402
from steplens.backends.wan.sampler import WanTransformerModel  # noqa: E402
from steplens.backends.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402
from steplens.cli import app  # noqa: E402
from steplens.hooks import Hooks  # noqa: E402
from steplens.io.video import upscale  # noqa: E402
from steplens.models.load import load_model  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

torch.set_num_threads(1)

BUILDERS = {"wan22": tiny_wan22_i2v, "wan21": tiny_wan21_i2v,
            "wan22-unipc": lambda seed: tiny_wan22_i2v(seed=seed, scheduler="unipc")}
MAZE = get_task("maze")
FRAMES, STEPS, CFG = 3, 4, 5.0


@pytest.fixture(scope="module")
def pipes():
    out = {}
    for name, build in BUILDERS.items():
        pipe = build(seed=0)
        pipe.set_progress_bar_config(disable=True)
        out[name] = pipe
    return out


def maze(seed, n=3, frames=FRAMES):
    return MAZE.sample(seed, n, frames)


def direct(pipe, samples, seeds, guidance=CFG, steps=STEPS, frames=FRAMES, output_type="latent"):
    """The plain pipeline call, spelled out: one image (the maze upscaled x16, nearest), the hashed prompt
    embeddings, 4 (frames - 1) + 1 video frames, one CPU generator per row."""
    s = samples[0]
    assert all(x is s for x in samples)  # the pipeline conditions a call on one image
    text = HashedPromptEmbeds(pipe.transformer.config.text_dim)
    kw = dict(image=Image.fromarray(upscale(s.first_frame, 16)), prompt_embeds=text([s.prompt] * len(samples)),
              height=16 * s.size_px, width=16 * s.size_px, num_frames=4 * (frames - 1) + 1,
              num_inference_steps=steps, guidance_scale=guidance, output_type=output_type,
              generator=[torch.Generator().manual_seed(x) for x in seeds])
    if guidance > 1:
        kw["negative_prompt_embeds"] = text([""] * len(samples))
    return pipe(**kw).frames


def flow_shift(scheduler) -> float:
    return scheduler.shift if hasattr(scheduler, "shift") else scheduler.config.flow_shift


@pytest.mark.parametrize("variant", ["wan21", "wan22-unipc"])  # wan22 (Euler): test_wan22.py
def test_generate_is_the_pipeline_call_bit_for_bit(pipes, variant):
    pipe = pipes[variant]
    model = WanPipelineModel(pipe)
    s = maze(4)
    lat = model.generate([s], [7], sampling=resolve(model, steps=STEPS, shift=3.0, guidance=CFG))
    assert lat.shape == (1, 16, FRAMES, 14, 14)  # 7x7 maze -> 112 px -> 14x14 latent, one latent frame per frame
    assert torch.equal(lat, direct(pipe, [s], [7]))
    # the same image twice with two seeds (an ensemble's members) is one plain pipeline batch
    assert torch.equal(model.generate([s, s], [7, 8], sampling=resolve(model, steps=STEPS, guidance=CFG)), direct(pipe, [s, s], [7, 8]))
    # CFG off
    assert torch.equal(model.generate([s], [7], sampling=resolve(model, steps=STEPS, guidance=1.0)), direct(pipe, [s], [7], guidance=1.0))
    # another shift: the scheduler is swapped for the call only
    original = pipe.scheduler
    shifted = model.generate([s], [7], sampling=resolve(model, steps=STEPS, shift=5.0, guidance=CFG))
    assert pipe.scheduler is original and flow_shift(original) == 3.0
    assert not torch.equal(shifted, lat)
    try:
        pipe.scheduler = type(original).from_config(original.config, **{
            "shift" if hasattr(original, "shift") else "flow_shift": 5.0})
        assert flow_shift(pipe.scheduler) == 5.0
        assert torch.equal(shifted, direct(pipe, [s], [7]))
    finally:
        pipe.scheduler = original


def test_sample_i_depends_only_on_seed_i(pipes):
    model = WanPipelineModel(pipes["wan22"])
    s0, s1, s2 = maze(0), maze(1), maze(2)
    a = model.generate([s0, s1], [10, 11], sampling=resolve(model, steps=STEPS, guidance=CFG))
    b = model.generate([s0, s2], [10, 12], sampling=resolve(model, steps=STEPS, guidance=CFG))
    c = model.generate([s0, s1], [10, 99], sampling=resolve(model, steps=STEPS, guidance=CFG))
    assert torch.equal(a[0], b[0]) and torch.equal(a[0], c[0])  # same sample and seed, same batch size: identical
    assert not torch.equal(a[1], c[1]) and not torch.equal(a[1], b[1])
    alone = model.generate([s0], [10], sampling=resolve(model, steps=STEPS, guidance=CFG))[0]
    torch.testing.assert_close(alone, a[0], rtol=0, atol=1e-4)  # a batch of one: float rounding only
    swapped = model.generate([s1, s0], [11, 10], sampling=resolve(model, steps=STEPS, guidance=CFG))
    torch.testing.assert_close(swapped[1], a[0], rtol=0, atol=1e-4)


def test_decode_is_the_pipeline_video(pipes):
    pipe = pipes["wan21"]
    model = WanPipelineModel(pipe)
    s = maze(5)
    lat = model.generate([s], [3], sampling=resolve(model, steps=STEPS, guidance=CFG))
    own = direct(pipe, [s], [3], output_type="pt")  # (B, T, C, H, W) in [0, 1], as the pipeline post-processes
    video = model.decode_video(lat)  # (B, C, T, H, W) in [-1, 1]
    assert video.shape == (1, 3, 9, 112, 112)
    assert torch.equal((video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4), own)
    px = model.decode(lat)  # one frame per sample frame (video frames 0, 4, 8), 16x16 blocks averaged: native size
    assert px.shape == (1, 3, FRAMES, 7, 7)
    assert torch.equal(px, torch.nn.functional.avg_pool3d(video[:, :, ::4], (1, 16, 16)))


def test_geometry():
    pipe = tiny_wan22_i2v(seed=0)
    m = WanPipelineModel(pipe)
    assert m.spatial_multiple == (16, 16) and m.pixel_scale(7, 7) == 16 and m.pixel_scale(8, 12) == 4
    assert m.video_frames(5) == 17 and m.latent_shape([maze(0, 5)], 5) == (1, 16, 5, 22, 22)
    assert WanPipelineModel(pipe, min_size=200).pixel_scale(11, 11) == 32
    with pytest.raises(ValueError, match="not multiples of"):
        WanPipelineModel(pipe, scale=3).pixel_scale(7, 7)
    with pytest.raises(ValueError, match="only for guidance > 1"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=1, guidance=0.5))
    with pytest.raises(ValueError, match="2 seeds given for 1 samples"):
        m.generate([maze(0)], [0, 1], sampling=resolve(m, steps=1))
    from diffusers import DDIMScheduler

    pipe.scheduler = DDIMScheduler()
    with pytest.raises(TypeError, match="does not trace or hook the scheduler DDIMScheduler"):
        m.generate([maze(0)], [0], sampling=resolve(m, steps=1))
    with pytest.raises(TypeError, match="cannot set the flow shift of a DDIMScheduler"):
        m.applied(Sampling("pipeline", 1, 5.0, 1.0)).__enter__()


@pytest.mark.parametrize("variant", ["wan22", "wan21"])
def test_steplens_euler_on_the_transformers_is_the_pipeline(pipes, variant):
    model = WanPipelineModel(pipes[variant])
    adapter = WanTransformerModel(model)
    samples, seeds = [maze(0), maze(1)], [5, 6]
    for guidance, shift in ((CFG, 3.0), (1.0, 5.0)):
        ref = model.generate(samples, seeds, sampling=resolve(model, steps=STEPS, shift=shift, guidance=guidance))
        assert torch.equal(adapter.generate(samples, seeds, sampling=resolve(adapter, steps=STEPS, shift=shift, guidance=guidance)), ref)
    # block hooks see the same thing on both loops (one forward per CFG branch, the same expert)
    h_pipe = Hooks(model, STEPS).record("blocks.1", reduce="energy")
    h_ours = Hooks(adapter, STEPS).record("blocks.1", reduce="energy")
    model.generate(samples, seeds, sampling=resolve(model, steps=STEPS, guidance=CFG), hooks=h_pipe)
    with h_ours:
        adapter.generate(samples, seeds, sampling=resolve(adapter, steps=STEPS, guidance=CFG), hooks=h_ours)
    assert set(h_ours.records) == set(h_pipe.records) and len(h_pipe.records) == 2 * STEPS
    assert all(torch.equal(h_ours.records[k], h_pipe.records[k]) for k in h_pipe.records)


def test_text_encoder_prompts_are_the_pipeline_call():
    """With a text encoder (a tiny UMT5 and a word-level tokenizer, built offline) the prompts go through the
    pipeline's own encode_prompt. Its prompt cleaning needs ftfy, as for the real Wan."""
    pytest.importorskip("ftfy")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    words = sorted({w for s in (maze(0).prompt, "red wall") for w in s.split()})
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                              num_heads=2, relative_attention_num_buckets=8)).eval()
    pipe = tiny_wan22_i2v(seed=0)
    pipe.set_progress_bar_config(disable=True)
    pipe.register_modules(text_encoder=encoder, tokenizer=tokenizer)
    model = WanPipelineModel(pipe, max_sequence_length=16, negative_prompt="red wall")
    assert model.prompt_source == "text_encoder"
    s = maze(0)
    lat = model.generate([s], [1], sampling=resolve(model, steps=3, guidance=CFG))
    assert torch.equal(lat, pipe(image=Image.fromarray(upscale(s.first_frame, 16)), prompt=s.prompt,
                                 negative_prompt="red wall", max_sequence_length=16, height=112, width=112,
                                 num_frames=4 * (FRAMES - 1) + 1, num_inference_steps=3, guidance_scale=CFG,
                                 generator=torch.Generator().manual_seed(1), output_type="latent").frames)
    assert torch.equal(WanTransformerModel(model).generate([s], [1], sampling=resolve(WanTransformerModel(model), steps=3, guidance=CFG)), lat)


# -- loading wan:DIR, and the CLI ---------------------------------------------------------------------------------
runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def saved(pipes, tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    for name in ("wan22", "wan21"):
        pipes[name].save_pretrained(root / name)
    return root


@pytest.mark.filterwarnings("ignore:wan.* has no text encoder")
def test_load_round_trip_and_dtype(pipes, saved):
    for name in ("wan22", "wan21"):
        model = load_model(f"wan:{saved / name}")
        assert model.name == f"wan:{saved / name}" and model.prompt_source == "hashed"
        for component in ("transformer", "vae"):
            mine, back = getattr(pipes[name], component).state_dict(), getattr(model.pipe, component).state_dict()
            assert mine.keys() == back.keys() and all(torch.equal(mine[k], back[k]) for k in mine)
        s = maze(2)
        lat = model.generate([s], [1], sampling=resolve(model, steps=2, guidance=CFG))
        assert torch.equal(lat, direct(model.pipe, [s], [1], steps=2))
        # the same weights at other addresses: float rounding may differ (SIMD alignment), nothing more
        torch.testing.assert_close(lat, WanPipelineModel(pipes[name]).generate([s], [1], sampling=resolve(WanPipelineModel(pipes[name]), steps=2, guidance=CFG)),
                                   rtol=0, atol=1e-4)
    half = load_model(f"wan:{saved / 'wan21'}", dtype="bfloat16")
    p = half.pipe
    assert p.transformer.dtype == torch.bfloat16 and p.vae.dtype == torch.float32 and p.image_encoder.dtype == torch.float32
    assert torch.isfinite(half.generate([maze(2)], [1], sampling=resolve(half, steps=2, guidance=CFG)).float()).all()


@pytest.mark.filterwarnings("ignore:wan.* has no text encoder")
def test_cli_round_trip(saved, tmp_path):
    r = cli("eval", "--model", f"wan:{saved / 'wan22'}", "--count", 2, "--size", 3, "--steps", 2, "--frames", 2,
            "--out", tmp_path / "ev")
    assert r.exit_code == 0 and "95% CI" in r.output, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["n"] == 2 and res["model"] == f"wan:{saved / 'wan22'}"

    r = cli("trace", "--model", f"wan:{saved / 'wan21'}", "--seed", 3, "--size", 3, "--steps", 2, "--frames", 2,
            "--guidance", 2.0, "--out", tmp_path / "tr")
    assert r.exit_code == 0 and "trace written" in r.output, r.output
    metrics = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert len(metrics["per_step"]) == 2 and (tmp_path / "tr" / "grid.png").is_file()

    r = cli("probe", "noise", "--model", f"wan:{saved / 'wan22'}", "--count", 2, "--steps", 2, "--size", 3,
            "--frames", 2, "--frame-noise", "every-step", "--out", tmp_path / "pn")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "pn" / "results.json").read_text())
    assert {row["condition"] for row in res["table"]} >= {"clean", "step 0", "step 1", "frame 0", "frame 1"}
    assert all(row["n"] == 2 for row in res["table"])


def test_clear_errors(saved, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    index = json.loads((saved / "wan22" / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
    with pytest.raises(ValueError, match="holds a WanPipeline; steplens' Wan backend supports WanImageToVideoPipeline"):
        load_model(f"wan:{other}")
    # the hub's Wan2.2-TI2V-5B index (WanPipeline, expand_timesteps) passes the check; here its weights are missing
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline", "expand_timesteps": True}))
    with pytest.raises(ValueError, match="could not load the Wan pipeline from"):
        load_model(f"wan:{other}")
    (other / "model_index.json").unlink()
    with pytest.raises(FileNotFoundError, match="no model_index.json"):
        load_model(f"wan:{other}")
    shutil.rmtree(other)
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_model(f"wan:{other}")

    wan = f"wan:{saved / 'wan22'}"
    for args, message in [
        (("--model", wan, "--dtype", "float8"), "unknown dtype 'float8'; allowed: float32, bfloat16, float16"),
        (("--model", wan, "--offload", "disk"), "unknown offload 'disk'; allowed: none, model, sequential"),
        (("--model", wan, "--offload", "model"), "pass an accelerator device"),
        (("--model", "tiny-maze", "--dtype", "bfloat16"), "runs in float32; --dtype bfloat16 applies to diffusers:PATH"),
        (("--model", f"wan:{other}"), "folder not found"),
    ]:
        r = cli("eval", "--count", 1, *args)
        assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output
