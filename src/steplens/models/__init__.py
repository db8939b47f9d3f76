"""The embedded model family: named architectures, shipped weights, loading and saving."""

from __future__ import annotations

from .codec import BorderCodec
from .dit import DiTCond, DiTConfig, VideoDiT

# Named architectures. "tiny-maze" is the shipped embedded model; "test" is for unit tests.
ARCHS: dict[str, DiTConfig] = {
    "tiny-maze": DiTConfig(dim=128, depth=8, heads=4, ffn_mult=3.0),
    "small": DiTConfig(dim=192, depth=12, heads=6, ffn_mult=3.0),
    "test": DiTConfig(dim=32, depth=2, heads=2, ffn_mult=2.0, text_dim=16, freq_dim=32),
}


def get_arch(name: str) -> DiTConfig:
    if name not in ARCHS:
        raise ValueError(f"unknown model architecture {name!r}; available: {', '.join(ARCHS)}")
    return ARCHS[name]


__all__ = ["ARCHS", "BorderCodec", "DiTCond", "DiTConfig", "VideoDiT", "get_arch"]
