"""LoRAs on the tiny Wan2.2 pipeline in each key format: scale 0 is the base output bit for bit, scale 1 equals
weights merged by hand (W + s * alpha/r * B A); the CLI round trip with --lora and --lora-2; bad LoRAs named."""

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from steplens.presets import resolve  # noqa: E402
from steplens.cli import app  # noqa: E402
from steplens.backends.wan.lora import apply_loras  # noqa: E402
from steplens.backends.wan.tiny import tiny_inputs, tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402

R = 2


def _ab(layer, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(R, layer.in_features, generator=g) * 0.5, torch.randn(layer.out_features, R, generator=g) * 0.5


def lora_file(tmp_path, fmt, a, b, alpha=None, name="l"):
    keys = {"diffusers": ("transformer.blocks.0.attn1.to_q.lora_A.weight", "transformer.blocks.0.attn1.to_q.lora_B.weight"),
            "diffsynth": ("blocks.0.self_attn.q.lora_A.default.weight", "blocks.0.self_attn.q.lora_B.default.weight"),
            "original": ("diffusion_model.blocks.0.self_attn.q.lora_down.weight",
                         "diffusion_model.blocks.0.self_attn.q.lora_up.weight")}[fmt]
    sd = {keys[0]: a.contiguous(), keys[1]: b.contiguous()}
    if alpha is not None:
        sd["diffusion_model.blocks.0.self_attn.q.alpha"] = torch.tensor(float(alpha))
    path = tmp_path / f"{name}-{fmt}.safetensors"
    save_file(sd, str(path))
    return path


def latents(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe(**{**tiny_inputs(pipe), "num_inference_steps": 3, "output_type": "latent"}).frames


@pytest.fixture(scope="module")
def base():
    return latents(tiny_wan22_i2v(seed=0))


@pytest.mark.parametrize("fmt", ["diffusers", "diffsynth", "original"])
def test_every_format_scale_0_is_the_base_and_scale_1_the_hand_merge(tmp_path, base, fmt):
    q = tiny_wan22_i2v(seed=0).transformer.blocks[0].attn1.to_q
    a, b = _ab(q, 1)
    path = lora_file(tmp_path, fmt, a, b)
    p = tiny_wan22_i2v(seed=0)
    info = apply_loras(p, lora=f"{path}:0")
    assert info["transformer"][2] == fmt and info["transformer"][3] == 1
    assert torch.equal(latents(p), base)
    for scale in (1.0, 0.5):
        p = tiny_wan22_i2v(seed=0)
        apply_loras(p, lora=(path, scale))
        ref = tiny_wan22_i2v(seed=0)
        with torch.no_grad():
            ref.transformer.blocks[0].attn1.to_q.weight += scale * (b @ a)
        torch.testing.assert_close(latents(p), latents(ref), rtol=0, atol=1e-5)


def test_alpha_scales_the_update_and_lora_2_goes_into_the_second_expert(tmp_path):
    t1, t2 = tiny_wan22_i2v(seed=0).transformer, tiny_wan22_i2v(seed=0).transformer_2
    a, b = _ab(t1.blocks[0].attn1.to_q, 2)
    a2, b2 = _ab(t2.blocks[0].attn1.to_q, 3)
    one = lora_file(tmp_path, "original", a, b, alpha=1.0, name="one")  # alpha 1, rank 2: B A / 2
    two = lora_file(tmp_path, "diffsynth", a2, b2, name="two")
    p = tiny_wan22_i2v(seed=0)
    info = apply_loras(p, lora=str(one), lora_2=f"{two}:0.7")
    assert set(info) == {"transformer", "transformer_2"}
    ref = tiny_wan22_i2v(seed=0)
    with torch.no_grad():
        ref.transformer.blocks[0].attn1.to_q.weight += (1.0 / R) * (b @ a)
        ref.transformer_2.blocks[0].attn1.to_q.weight += 0.7 * (b2 @ a2)
    torch.testing.assert_close(latents(p), latents(ref), rtol=0, atol=1e-5)


def test_cli_round_trip_and_bad_loras_are_named(tmp_path):
    wan = tmp_path / "wan"
    tiny_wan22_i2v(seed=0).save_pretrained(wan)
    t = tiny_wan22_i2v(seed=0)
    one = lora_file(tmp_path, "diffsynth", *_ab(t.transformer.blocks[0].attn1.to_q, 4), name="one")
    two = lora_file(tmp_path, "diffusers", *_ab(t.transformer_2.blocks[0].attn1.to_q, 5), name="two")
    run = CliRunner()
    args = ["eval", "--model", f"wan:{wan}", "--count", "1", "--size", "3", "--frames", "2", "--steps", "2"]
    r = run.invoke(app, args + ["--lora", f"{one}:0.8", "--lora-2", str(two)])
    assert r.exit_code == 0 and "solved" in r.output, r.output
    wrong = tmp_path / "wrong.safetensors"
    save_file({"transformer.nothing.here.lora_A.weight": torch.zeros(2, 4),
               "transformer.nothing.here.lora_B.weight": torch.zeros(4, 2)}, str(wrong))
    for extra, msg in ((["--lora", str(wrong)], "wrong.safetensors"),
                       (["--lora", f"{one}:big"], "the scale after ':' must be a number, got 'big'"),
                       (["--lora", str(tmp_path / "none.safetensors")], "LoRA file not found")):
        r = run.invoke(app, args + extra)
        assert r.exit_code == 2 and msg in " ".join(r.output.split()), r.output
    r = run.invoke(app, ["eval", "--count", "1", "--lora", str(one)])
    assert r.exit_code == 2 and "apply to diffusers:PATH pipelines" in r.output
    wan21 = tmp_path / "wan21"
    tiny_wan21_i2v(seed=0).save_pretrained(wan21)
    r = run.invoke(app, ["eval", "--model", f"wan:{wan21}", "--count", "1", "--lora-2", str(two)])
    assert r.exit_code == 2 and "--lora-2 is for Wan2.2's second expert" in r.output, r.output


def test_a_lora_with_unmatched_keys_is_refused_naming_them_unless_allowed(tmp_path):
    """A LoRA of which only some layers exist in its transformer (another model's, a wrong block count) is refused
    with the unmatched layers named, before it is applied; --allow-unmatched-lora applies the matched ones."""
    t = tiny_wan22_i2v(seed=0)
    a, b = _ab(t.transformer.blocks[0].attn1.to_q, 6)
    for fmt, pat in (("diffsynth", "blocks.{i}.self_attn.q.lora_{x}.default.weight"),
                     ("diffusers", "transformer.blocks.{i}.attn1.to_q.lora_{x}.weight")):
        path = tmp_path / f"partial-{fmt}.safetensors"
        save_file({pat.format(i=i, x=x): (a if x == "A" else b).clone() for i in (0, 7) for x in "AB"},
                  str(path))
        with pytest.raises(ValueError) as e:
            apply_loras(tiny_wan22_i2v(seed=0), str(path))
        msg = str(e.value)
        assert str(path) in msg and "1 of its 2 layers" in msg and "blocks.7.attn1.to_q" in msg, msg
        assert "blocks.0.attn1.to_q" not in msg.split("e.g.")[0] and "--allow-unmatched-lora" in msg, msg
        pipe = tiny_wan22_i2v(seed=0)
        done = apply_loras(pipe, str(path), unmatched="allow")
        assert done["transformer"][3] == 1  # the matched layer applied
    wan = tmp_path / "wan"
    t.save_pretrained(wan)
    args = ["eval", "--model", f"wan:{wan}", "--count", "1", "--size", "3", "--frames", "2", "--steps", "1",
            "--lora", str(path)]
    r = CliRunner().invoke(app, args)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "blocks.7.attn1.to_q" in text and "Traceback" not in r.output, text
    r = CliRunner().invoke(app, args + ["--allow-unmatched-lora"])
    assert r.exit_code == 0, r.output


def test_a_lora_path_with_a_colon_is_the_file(tmp_path):
    t = tiny_wan22_i2v(seed=0)
    one = lora_file(tmp_path, "diffsynth", *_ab(t.transformer.blocks[0].attn1.to_q, 4), name="run:2026-12-02")
    from steplens.backends.lora import parse_spec

    assert parse_spec(str(one)) == (one, 1.0)
    assert parse_spec(f"{one}:0.5") == (one, 0.5)
    with pytest.raises(FileNotFoundError) as e:
        parse_spec(str(tmp_path / "run:x.safetensors"))
    assert "run:x.safetensors" in str(e.value) and "not found" in str(e.value)
    assert apply_loras(tiny_wan22_i2v(seed=0), str(one))["transformer"][:2] == (str(one), 1.0)


def test_a_nan_lora_stops_the_pipeline_run_naming_the_step(tmp_path):
    """Issue 22's battery: a NaN LoRA wrote an all-NaN video, scored it and exited 0. Every pipeline step's latent
    and guided velocity are checked, as the embedded sampler's are: the run stops at the step, nothing written."""
    t = tiny_wan22_i2v(seed=0)
    a, b = _ab(t.transformer.blocks[0].attn1.to_q, 4)
    nan = lora_file(tmp_path, "diffsynth", a, b.fill_(float("nan")), name="nan")
    wan = tmp_path / "wan"
    t.save_pretrained(wan)
    data = tmp_path / "data"
    from steplens.tasks import get_task, write_sample

    write_sample(data, get_task("maze").sample(0, 3, 2, idx=0), scale=2)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", "--model", f"wan:{wan}", "--data", str(data), "--out", str(out), "--steps",
                                 "2", "--lora", str(nan)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "non-finite values (NaN/inf) at step 0" in text and "Traceback" not in r.output, text
    assert not list(out.rglob("*.mp4")) and not list(out.rglob("*.png"))
    from steplens.models.load import load_model

    m = load_model(f"wan:{wan}", lora=str(nan))
    with pytest.raises(FloatingPointError, match="at step 0"):
        m.generate([get_task("maze").sample(0, 3, 2)], [0], sampling=resolve(m, steps=2))


def test_unpaired_and_kohya_loras_are_named(tmp_path):
    """Issue 22's battery: lora_A without lora_B gave an IndexError, Kohya-style keys a bare KeyError."""
    from steplens.backends.lora import read_lora  # noqa: F401  (the file is read as safetensors first)

    t = tiny_wan22_i2v(seed=0)
    q = t.transformer.blocks[0].attn1.to_q
    cases = {
        "only-a": ({"blocks.0.self_attn.q.lora_A.default.weight": torch.randn(2, q.in_features)},
                   ["blocks.0.self_attn.q.lora_A.default.weight", "has no lora_B"]),
        "only-down": ({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(2, q.in_features)},
                      ["diffusion_model.blocks.0.self_attn.q.lora_down.weight", "has no lora_up"]),
        "kohya": ({"lora_unet_blocks_0_self_attn_q.lora_down.weight": torch.randn(2, q.in_features),
                   "lora_unet_blocks_0_self_attn_q.lora_up.weight": torch.randn(q.out_features, 2)},
                  ["kohya.safetensors", "Kohya", "lora_unet_blocks_0_self_attn_q", "diffusion_model.blocks.0.self_attn.q"]),
    }
    for name, (sd, must) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(sd, str(path))
        with pytest.raises(ValueError) as e:
            apply_loras(tiny_wan22_i2v(seed=0), str(path))
        for m in [str(path), *must]:
            assert m in str(e.value), (name, str(e.value))
