"""Resolving a --model spec: a shipped name, a weights/checkpoint file, or a diffusers Wan folder."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_weights
from .dit import DiTConfig, VideoDiT
from .wrap import EmbeddedModel

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = {"tiny-maze": "tiny-maze.safetensors"}


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / SHIPPED[name]


def load_model(spec: str, device: str = "cpu"):
    """`tiny-maze` (shipped weights), `PATH.safetensors` (weights or training checkpoint) or `wan:PATH`."""
    if spec.startswith("wan:"):
        raise ValueError(f"model {spec!r}: the diffusers Wan backend is not available in this version; "
                         f"use one of: {', '.join(SHIPPED)}, or a .safetensors file")
    if spec in SHIPPED:
        path, name = shipped_path(spec), spec
    elif spec.endswith(".safetensors") or Path(spec).is_file():
        path, name = Path(spec), Path(spec).stem
    else:
        raise ValueError(f"unknown model {spec!r}; available: {', '.join(SHIPPED)}, a .safetensors weights "
                         f"or checkpoint file, or wan:PATH")
    state, arch, info = load_weights(path)
    net = VideoDiT(DiTConfig.from_dict(arch))
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights file {path} does not match its architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return EmbeddedModel(net, device=device, name=name, info=info)
