"""LoRAs on a pipeline's transformers: 'PATH[:SCALE]' specs, safetensors files, loading through diffusers.

    done = load_loras(pipe, [("transformer", "a.safetensors:0.8", "--lora")], convert=my_format_to_diffusers)

Loaded with safetensors only (never a pickle), through diffusers' `load_lora_weights` (needs peft, in the `wan`
extra); a LoRA that matches no layer of its transformer is refused with its keys named. A backend gives `convert`
(its key formats -> what its diffusers LoRA loader takes; returns (format name, state dict)) and, where the loader
needs them, keyword arguments per component (Wan2.2: load_into_transformer_2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

COMPONENTS = {"--lora": "transformer", "--lora-2": "transformer_2"}  # the option -> the transformer it goes into


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


def lora_layers(module: torch.nn.Module, adapter: str) -> int:
    """How many layers of `module` carry the LoRA adapter `adapter`."""
    return sum(1 for m in module.modules() if hasattr(m, "lora_A") and adapter in getattr(m, "lora_A", {}))


def load_loras(pipe, specs: list[tuple[str, object, str]], convert: Callable[[dict], tuple[str, dict]],
               load_kwargs: Callable[[str], dict] = lambda component: {}) -> dict:
    """Load each (component, 'PATH[:SCALE]', option) into `pipe` and set the scales; returns {component: (path,
    scale, format, layers)}."""
    if not specs:
        return {}
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ImportError("LoRAs need peft: pip install 'steplens[wan]' (or pip install peft)") from None
    done, names, weights = {}, [], []
    for comp, spec, option in specs:
        path, scale = parse_spec(spec, option)
        sd = read_lora(path)
        fmt, converted = convert(sd)
        name = f"steplens_{comp}"
        try:
            pipe.load_lora_weights(converted, adapter_name=name, **load_kwargs(comp))
        except (ValueError, KeyError, RuntimeError) as e:
            raise ValueError(f"{option} {path}: could not load it into {comp}: {e}") from None
        layers = lora_layers(getattr(pipe, comp), name)
        if layers == 0:
            raise ValueError(f"{option} {path}: its keys match no layer of {comp} (e.g. {sorted(sd)[:3]})")
        done[comp] = (str(path), scale, fmt, layers)
        names.append(name)
        weights.append(scale)
    pipe.set_adapters(names, adapter_weights=weights)
    return done
