"""The VBVR-Pro Wan checkpoints as users hold them (issue 34 item 6), in miniature on tiny configs of the same
diffusers classes: a DiffSynth LoRA release in the files it ships (a high/low-noise pair for Wan2.2-I2V-A14B, one
lora.safetensors for Wan2.1-I2V and Wan2.2-TI2V) loads into the right experts and equals the hand merge; a merged
release (a complete diffusers folder) loads and is that same model. The presets are data with their sources."""

import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from steplens.backends.wan.lora import apply_loras  # noqa: E402
from steplens.backends.wan.tiny import tiny_inputs, tiny_wan21_i2v, tiny_wan22_i2v, tiny_wan22_ti2v  # noqa: E402
from steplens.backends.wan.vbvr_pro import PRESETS, SETTINGS, unconfirmed  # noqa: E402

TINY = {"Wan-AI/Wan2.2-I2V-A14B": tiny_wan22_i2v, "Wan-AI/Wan2.1-I2V-14B-720P": tiny_wan21_i2v,
        "Wan-AI/Wan2.2-TI2V-5B": tiny_wan22_ti2v}
COMPONENT = {"lora": "transformer", "lora_2": "transformer_2"}


def latents(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe(**{**tiny_inputs(pipe), "num_inference_steps": 2, "output_type": "latent"}).frames


def shipped(folder, pipe, files, seed=1):
    """The release's LoRA files in DiffSynth's key format (rank 2 on block 0's self-attention query of each
    transformer it names); {option: (path, A, B)}."""
    out = {}
    for i, (opt, name) in enumerate(sorted(files.items())):
        q = getattr(pipe, COMPONENT[opt]).blocks[0].attn1.to_q
        g = torch.Generator().manual_seed(seed + i)
        a, b = torch.randn(2, q.in_features, generator=g) * 0.5, torch.randn(q.out_features, 2, generator=g) * 0.5
        save_file({"blocks.0.self_attn.q.lora_A.default.weight": a, "blocks.0.self_attn.q.lora_B.default.weight": b},
                  str(folder / name))
        out[opt] = (folder / name, a, b)
    return out


def test_every_preset_is_data_with_its_source_and_says_what_is_unconfirmed():
    assert len(PRESETS) == 8
    for name, p in PRESETS.items():
        assert set(SETTINGS) <= set(p) and p["source"].startswith("Video-Reason/VBVR-Pro ") and "@" in p["source"]
        assert p["format"] in ("diffusers", "diffsynth-lora", "diffusers+pipeline") and p["base"] in TINY
        assert (p["files"] is not None) == (p["format"] == "diffsynth-lora"), name
        assert set(unconfirmed(name)) == {k for k in SETTINGS if k not in p["confirmed"]}
    pair = PRESETS["vbvr-pro-wan2.2-i2v-a14b-diffsynth"]
    assert pair["files"] == {"lora": "high_noise_lora.safetensors", "lora_2": "low_noise_lora.safetensors"}
    assert pair["boundary"] == 0.9 and "boundary" not in unconfirmed("vbvr-pro-wan2.2-i2v-a14b-diffsynth")
    assert "shift" in unconfirmed("vbvr-pro-wan2.2-i2v-a14b")  # the checkpoint's own scheduler: not readable here


@pytest.mark.wan
@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p["format"] == "diffsynth-lora"])
def test_a_diffsynth_release_loads_in_the_files_it_ships_and_equals_the_hand_merge(tmp_path, name):
    p = PRESETS[name]
    build = TINY[p["base"]]
    pipe = build(seed=0)
    files = shipped(tmp_path, pipe, p["files"])
    info = apply_loras(pipe, **{opt: f"{path}:1" for opt, (path, _, _) in files.items()})
    assert {c: (v[2], v[3]) for c, v in info.items()} == {COMPONENT[o]: ("diffsynth", 1) for o in files}
    ref = build(seed=0)
    with torch.no_grad():  # W + B A in each transformer the release names (alpha 1, as VBVR-Pro loads them)
        for opt, (_, a, b) in files.items():
            getattr(ref, COMPONENT[opt]).blocks[0].attn1.to_q.weight += b @ a
    got, want = latents(pipe), latents(ref)
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, latents(build(seed=0)), atol=1e-4)


@pytest.mark.wan
@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p["format"] != "diffsynth-lora"])
def test_a_merged_release_is_a_diffusers_folder_that_loads_as_the_merged_model(tmp_path, name):
    import diffusers

    build = TINY[PRESETS[name]["base"]]
    pipe = build(seed=0)
    with torch.no_grad():  # a finetune merged into the weights, as the complete releases ship it
        pipe.transformer.blocks[0].attn1.to_q.weight += 0.5
    pipe.save_pretrained(tmp_path / "release")
    absent = {k: None for k, v in pipe.components.items() if v is None}  # the tiny pipelines carry no text encoder
    if pipe.components.get("image_encoder") is not None:  # the tiny CLIP has a projection head Wan2.1's class lacks:
        absent["image_encoder"] = pipe.image_encoder     # the transformer is what a release merges
    loaded = getattr(diffusers, type(pipe).__name__).from_pretrained(tmp_path / "release", **absent)
    assert type(loaded) is type(pipe)
    for c in ("transformer", "transformer_2"):
        if getattr(pipe, c, None) is not None:
            mine, theirs = getattr(pipe, c).state_dict(), getattr(loaded, c).state_dict()
            assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    got, base = latents(loaded), latents(build(seed=0))
    # the same model (up to the image processor's resaved float rounding) and not the base one
    assert (got - latents(pipe)).abs().max() < 1e-3 and (got - base).abs().max() > 5e-3
