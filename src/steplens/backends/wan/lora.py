"""LoRAs on a Wan pipeline as users hold them: DiffSynth, original Wan / ComfyUI, or diffusers key formats.

    apply_loras(pipe, lora="high_noise_lora.safetensors:1.0", lora_2="low_noise_lora.safetensors")

`lora` goes into the first (or only) transformer, `lora_2` into Wan2.2's `transformer_2`. Formats, found from
the keys:
- DiffSynth (VBVR-Wan2.2-diffsynth): `blocks.0.self_attn.q.lora_A.default.weight` -> `.default` dropped and
  `diffusion_model.` prefixed, then as the original format;
- original Wan / ComfyUI: `diffusion_model.blocks.0.self_attn.q.lora_A.weight` (or `lora_down` / `lora_up`, with
  an optional `.alpha`): converted by diffusers' own Wan LoRA loader (W += alpha/rank · up @ down). The distilled
  Wan2.2 LoRAs users hold are this format: Wan2.2-Lightning (`high_noise_model.safetensors`,
  `low_noise_model.safetensors`) and LightX2V (`..._high_noise_lora_rank64_lightx2v_4step_...`), rank 64, one
  file per expert (`--lora` high noise, `--lora-2` low noise; sample them with `--preset distilled`);
- diffusers: `transformer.blocks.0.attn1.to_q.lora_A.weight`.
Loaded by steplens.backends.lora (safetensors only, diffusers' `load_lora_weights`, peft); a LoRA that matches no
layer of its transformer is refused with its keys named, one that matches only some with the others named.
"""

from __future__ import annotations

from ..lora import COMPONENTS, load_loras, parse_spec, read_lora  # noqa: F401  (parse_spec, read_lora: its API)

FORMATS = ("diffsynth", "original", "diffusers")


def detect(keys) -> str:
    keys = list(keys)
    kohya = [k for k in keys if k.startswith("lora_unet_")]
    if kohya:
        raise ValueError(f"Kohya-style keys (e.g. {kohya[0]}): steplens reads DiffSynth, original Wan / ComfyUI and "
                         f"diffusers LoRA keys; rename them to the original format (lora_unet_blocks_0_self_attn_q -> "
                         f"diffusion_model.blocks.0.self_attn.q, e.g. diffusion_model.blocks.0.self_attn.q.lora_down."
                         f"weight), as ComfyUI's converters do")
    if any(".default." in k for k in keys):
        return "diffsynth"
    if any(k.startswith("diffusion_model.") or ".lora_down." in k for k in keys):
        return "original"
    if any(k.startswith("transformer.") or ".attn1." in k or ".attn2." in k for k in keys):
        return "diffusers"
    raise ValueError(f"unrecognised LoRA keys (e.g. {keys[:3]}): expected DiffSynth (blocks.i.self_attn.q.lora_A."
                     f"default.weight), original Wan / ComfyUI (diffusion_model.…) or diffusers (transformer.…) keys")


def to_diffusers_input(sd: dict) -> dict:
    """What diffusers' Wan LoRA loader takes: DiffSynth keys renamed to the original format; others unchanged."""
    if detect(sd) == "diffsynth":
        return {"diffusion_model." + k.replace(".default", ""): v for k, v in sd.items()}
    return dict(sd)


def apply_loras(pipe, lora=None, lora_2=None, unmatched: str = "refuse") -> dict:
    """Load the LoRAs into `pipe` and set their scales; returns {component: (path, scale, format, layers)}.
    unmatched="allow": a LoRA some of whose layers match no module is applied on those that match (refused by
    default, with the unmatched layers named)."""
    specs = [(COMPONENTS[o], s, o) for s, o in ((lora, "--lora"), (lora_2, "--lora-2")) if s is not None]
    if lora_2 is not None and getattr(pipe, "transformer_2", None) is None:
        raise ValueError("--lora-2 is for Wan2.2's second expert (transformer_2); this pipeline has one transformer")
    return load_loras(pipe, specs, lambda sd: (detect(sd), to_diffusers_input(sd)),
                      lambda comp: {"load_into_transformer_2": comp == "transformer_2"}, unmatched=unmatched)
