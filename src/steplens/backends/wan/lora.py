"""LoRAs on a Wan pipeline as users hold them: DiffSynth, original Wan / ComfyUI, or diffusers key formats.

    apply_loras(pipe, lora="high_noise_lora.safetensors:1.0", lora_2="low_noise_lora.safetensors")

`lora` goes into the first (or only) transformer, `lora_2` into Wan2.2's `transformer_2`. Formats, found from
the keys:
- DiffSynth (VBVR-Wan2.2-diffsynth): `blocks.0.self_attn.q.lora_A.default.weight` -> `.default` dropped and
  `diffusion_model.` prefixed, then as the original format;
- original Wan / ComfyUI: `diffusion_model.blocks.0.self_attn.q.lora_A.weight` (or `lora_down` / `lora_up`, with
  an optional `.alpha`): converted by diffusers' own Wan LoRA loader;
- diffusers: `transformer.blocks.0.attn1.to_q.lora_A.weight`.
Loaded with safetensors only (never a pickle), through diffusers' `load_lora_weights` (needs peft, in the `wan`
extra). A LoRA that matches no layer of its transformer is refused with its keys named.
"""

from __future__ import annotations

from pathlib import Path

import torch

FORMATS = ("diffsynth", "original", "diffusers")


def parse_spec(spec, option: str = "--lora") -> tuple[Path, float]:
    """'PATH[:SCALE]' (or a (path, scale) pair) -> (path, scale)."""
    if isinstance(spec, (tuple, list)):
        path, scale = spec
    else:
        text = str(spec)
        path, scale = text, 1.0
        head, sep, tail = text.rpartition(":")
        if sep and head and not tail.startswith(("/", "\\")):
            try:
                scale = float(tail)
                path = head
            except ValueError:
                raise ValueError(f"{option} {text!r}: the scale after ':' must be a number, got {tail!r}") from None
    import math

    if not math.isfinite(float(scale)):
        raise ValueError(f"{option} {spec!r}: the scale must be a finite number, got {scale}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: LoRA file not found")
    return path, float(scale)


def read_lora(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"LoRA file {path} is not a readable safetensors file: {e}") from None


def detect(keys) -> str:
    keys = list(keys)
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


def _lora_layers(module: torch.nn.Module, adapter: str) -> int:
    return sum(1 for m in module.modules() if hasattr(m, "lora_A") and adapter in getattr(m, "lora_A", {}))


def apply_loras(pipe, lora=None, lora_2=None) -> dict:
    """Load the LoRAs into `pipe` and set their scales; returns {component: (path, scale, format, layers)}."""
    specs = [(c, s, o) for c, s, o in (("transformer", lora, "--lora"), ("transformer_2", lora_2, "--lora-2"))
             if s is not None]
    if not specs:
        return {}
    if lora_2 is not None and getattr(pipe, "transformer_2", None) is None:
        raise ValueError("--lora-2 is for Wan2.2's second expert (transformer_2); this pipeline has one transformer")
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ImportError("LoRAs need peft: pip install 'steplens[wan]' (or pip install peft)") from None
    done, names, weights = {}, [], []
    for comp, spec, option in specs:
        path, scale = parse_spec(spec, option)
        sd = read_lora(path)
        fmt = detect(sd)
        name = f"steplens_{comp}"
        try:
            pipe.load_lora_weights(to_diffusers_input(sd), adapter_name=name,
                                   load_into_transformer_2=comp == "transformer_2")
        except (ValueError, KeyError, RuntimeError) as e:
            raise ValueError(f"{option} {path}: could not load it into {comp}: {e}") from None
        layers = _lora_layers(getattr(pipe, comp), name)
        if layers == 0:
            raise ValueError(f"{option} {path}: its keys match no layer of {comp} (e.g. {sorted(sd)[:3]})")
        done[comp] = (str(path), scale, fmt, layers)
        names.append(name)
        weights.append(scale)
    pipe.set_adapters(names, adapter_weights=weights)
    return done
