"""The study's experiments, one module each: `run(model, out, settings)` and `report_section(...)`."""

from __future__ import annotations

from importlib import import_module

NAMES = ("noise", "propagation", "energy", "swap", "sweep", "behaviours")
AVAILABLE = NAMES


def get_probe(name: str):
    if name not in AVAILABLE:
        raise ValueError(f"unknown probe {name!r}; available: {', '.join(AVAILABLE)}")
    return import_module(f"{__name__}.{name}")
