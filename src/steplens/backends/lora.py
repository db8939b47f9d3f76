"""LoRAs on a pipeline's transformers: 'PATH[:SCALE]' specs, safetensors files, loading through diffusers.

    done = load_loras(pipe, [("transformer", "a.safetensors:0.8", "--lora")], convert=my_format_to_diffusers)

Loaded with safetensors only (never a pickle), through diffusers' `load_lora_weights` (needs peft, in the `wan`
extra); a LoRA that matches no layer of its transformer is refused with its keys named, and one that matches only
some (another model's, another block count) with the unmatched layers named (unmatched="allow",
--allow-unmatched-lora, applies the matching ones). A path may hold ':' (an existing file is taken whole). A backend gives `convert`
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
        if sep and head and not tail.startswith(("/", "\\")) and not Path(text).is_file():  # a file may hold ':'
            try:
                scale = float(tail)
                path = head
            except ValueError:
                if Path(head).is_file():  # PATH:SCALE with a SCALE that is no number
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


UNMATCHED = ("refuse", "allow")
PAIRS = (("lora_A", "lora_B"), ("lora_down", "lora_up"))  # the two halves of a layer's update, in each key style


def check_pairs(path, sd: dict, option: str = "--lora") -> None:
    """Refuse, naming them, keys of one half of a layer's update (lora_A / lora_down) without the other half."""
    keys = set(sd)
    for one, other in PAIRS:
        for a, b in ((one, other), (other, one)):
            lone = sorted(k for k in keys if f".{a}." in k and k.replace(f".{a}.", f".{b}.") not in keys)
            if lone:
                raise ValueError(f"{option} {path}: {len(lone)} key(s) of {a} without their {b} (e.g. {lone[0]} has "
                                 f"no {b}): an incomplete or damaged LoRA file")


def unmatched_layers(pipe, comp: str, converted: dict) -> tuple[list[str], int]:
    """(the LoRA's layers that name no module of `pipe.comp`, how many layers it has), by the names diffusers' own
    LoRA loader gives them (`pipe.lora_state_dict`: every key format converted to `transformer.<module>.lora_A...`)."""
    got = pipe.lora_state_dict({k: v.clone() for k, v in converted.items()})  # its converter scales some in place
    sd = got[0] if isinstance(got, tuple) else got
    layers = list(dict.fromkeys(k.split(".lora_")[0] for k in sd if ".lora_" in k))
    modules = dict(getattr(pipe, comp).named_modules())
    strip = [p + "." for p in ("transformer", getattr(pipe, "transformer_name", "transformer"))]
    names = [next((n[len(p):] for p in strip if n.startswith(p)), n) for n in layers]
    return [n for n in names if n not in modules], len(names)


def load_loras(pipe, specs: list[tuple[str, object, str]], convert: Callable[[dict], tuple[str, dict]],
               load_kwargs: Callable[[str], dict] = lambda component: {}, unmatched: str = "refuse") -> dict:
    """Load each (component, 'PATH[:SCALE]', option) into `pipe` and set the scales; returns {component: (path,
    scale, format, layers)}. A LoRA some of whose layers name no module of its component is refused with those
    layers named (`unmatched="allow"`: the matching layers are applied; one matching none is always refused)."""
    if unmatched not in UNMATCHED:
        raise ValueError(f"unmatched={unmatched!r}: allowed {', '.join(UNMATCHED)}")
    if not specs:
        return {}
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ImportError("LoRAs need peft: pip install peft") from None
    done, names, weights = {}, [], []
    for comp, spec, option in specs:
        path, scale = parse_spec(spec, option)
        sd = read_lora(path)
        check_pairs(path, sd, option)
        try:
            fmt, converted = convert(sd)
        except ValueError as e:  # keys of no format the backend reads: named with the file
            raise ValueError(f"{option} {path}: {e}") from None
        name = f"steplens_{comp}"
        try:
            missing, total = unmatched_layers(pipe, comp, converted)
        except (ValueError, KeyError, RuntimeError):  # diffusers' converter refuses it: named by load_lora_weights
            missing, total = [], 0
        if missing and len(missing) < total and unmatched == "refuse":
            raise ValueError(f"{option} {path}: {len(missing)} of its {total} layers match no layer of {comp} "
                             f"({', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''}, as diffusers names "
                             f"them; e.g. {comp} has {_example(pipe, comp)}): a LoRA for another model or version? "
                             f"--allow-unmatched-lora applies the {total - len(missing)} matching layers alone")
        try:
            pipe.load_lora_weights(converted, adapter_name=name, **load_kwargs(comp))
        except (ValueError, KeyError, RuntimeError, IndexError, TypeError) as e:
            raise ValueError(f"{option} {path}: could not load it into {comp}: {type(e).__name__}: {e}") from None
        layers = lora_layers(getattr(pipe, comp), name)
        if layers == 0:
            raise ValueError(f"{option} {path}: its keys match no layer of {comp} (e.g. {sorted(sd)[:3]})")
        done[comp] = (str(path), scale, fmt, layers)
        names.append(name)
        weights.append(scale)
    pipe.set_adapters(names, adapter_weights=weights)
    return done


def _example(pipe, comp: str) -> str:
    """A few of the component's linear layers, by name (what a LoRA's layers should name)."""
    names = [n for n, m in getattr(pipe, comp).named_modules() if isinstance(m, torch.nn.Linear)]
    return ", ".join(names[:2]) + (f" ... ({len(names)} linear layers)" if len(names) > 2 else "")
