"""The study's experiments as plug-ins: the contract (`contract`), the registry, and steplens's own probes (one
module each). Code outside this package uses only what is exported here and the contract."""

from __future__ import annotations

from .contract import Claim, Probe, ProbeRun, StudyPart, check_probe
from .registry import get_probe, probe_names, probes, register_probe

__all__ = ["Claim", "Probe", "ProbeRun", "StudyPart", "check_probe", "get_probe", "probe_names", "probes",
           "register_probe"]


def __getattr__(name: str):
    if name in ("NAMES", "AVAILABLE"):  # the names, as the registry lists them (older callers)
        return tuple(probe_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
