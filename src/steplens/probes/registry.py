"""The registry of probes: steplens's own and other packages' plug-ins, found through the entry-point group
`steplens.probes` (see steplens.probes.contract for what a probe is).

steplens registers its own probes there like any plug-in (pyproject.toml); `BUILTIN` names them again in case
the installed metadata predates one (an editable install not yet refreshed), and gives their order: steplens's
own first, in that order, then plug-ins by name.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

from ..io.plugins import resolve
from .contract import Probe, check_probe

GROUP = "steplens.probes"
BUILTIN = {"noise": "steplens.probes.noise:PROBE", "propagation": "steplens.probes.propagation:PROBE",
           "energy": "steplens.probes.energy:PROBE", "swap": "steplens.probes.swap:PROBE",
           "sweep": "steplens.probes.sweep:PROBE", "behaviours": "steplens.probes.behaviours:PROBE",
           "compare": "steplens.probes.compare:PROBE", "plan": "steplens.probes.plan:PROBE"}

_SPECS: dict[str, str] | None = None  # name -> "module:attribute", in the registry's order
_LOADERS: dict[str, object] = {}  # name -> the entry point (its load()), where one was installed
_PROBES: dict[str, Probe] = {}


def _specs() -> dict[str, str]:
    global _SPECS
    if _SPECS is None:
        found = {}
        for ep in entry_points(group=GROUP):
            if ep.name in found and found[ep.name] != ep.value:
                raise ValueError(f"probe name {ep.name!r} is registered twice: {found[ep.name]} and {ep.value}")
            found[ep.name] = ep.value
            _LOADERS[ep.name] = ep
        ours = {n: found.pop(n, v) for n, v in BUILTIN.items()}
        _SPECS = {**ours, **dict(sorted(found.items()))}
    return _SPECS


def probe_names() -> list[str]:
    """Every registered probe's name (none of them loaded): steplens's own, then plug-ins by name."""
    return list(_specs())


def register_probe(probe) -> None:
    """Add a probe at run time (a script, a test); a name already taken by another probe is refused."""
    check_probe(probe, f"probe {getattr(probe, 'name', probe)!r}")
    specs, taken = _specs(), _PROBES.get(probe.name)
    if taken is not probe and (taken is not None or probe.name in specs):
        raise ValueError(f"probe name {probe.name!r} is registered twice")
    specs[probe.name] = f"{type(probe).__module__}:{type(probe).__name__}"
    _PROBES[probe.name] = probe


def get_probe(name: str) -> Probe:
    """The probe registered as `name` (loaded on first use); an unknown name is refused with the list."""
    if name in _PROBES:
        return _PROBES[name]
    specs = _specs()
    if name not in specs:
        raise ValueError(f"unknown probe {name!r}; available: {', '.join(specs)} (plug-ins register through the "
                         f"{GROUP!r} entry point group)")
    spec = specs[name]
    ep = _LOADERS.get(name)
    obj = ep.load() if ep is not None else resolve(spec)
    if isinstance(obj, type):
        obj = obj()
    check_probe(obj, f"entry point {GROUP}:{name} = {spec}")
    if obj.name != name:
        raise ValueError(f"entry point {GROUP}:{name} = {spec} gives a probe named {obj.name!r}; register it under "
                         f"its own name")
    _PROBES[name] = obj
    return obj


def probes() -> list[Probe]:
    """Every registered probe, loaded, in the registry's order. A plug-in that fails to load is left out with a
    warning naming it (steplens's own are never left out: their failure is raised)."""
    out = []
    for name, spec in _specs().items():
        try:
            out.append(get_probe(name))
        except Exception as e:
            if spec.startswith("steplens."):
                raise
            warnings.warn(f"steplens: entry point {GROUP}:{name} = {spec} failed to load: {e}")
    return out


def _reset() -> None:
    """Forget what was found and loaded (tests that install a plug-in)."""
    global _SPECS
    _SPECS = None
    _LOADERS.clear()
    _PROBES.clear()


def claim_rules() -> dict[str, dict]:
    """{claim text: {"id", "rule", "protocol", "source"}} over every registered probe's claims: the rule each verdict
    follows, and whether it is the study's stated protocol or ours, with the source (for study.md and reports)."""
    out = {}
    for p in probes():
        for c in p.claims:
            out[c.text] = {"id": c.id, "probe": p.name, "rule": c.rule_text,
                           "protocol": {"study": "the study's", "ours": "ours"}.get(c.protocol, "not said"),
                           "source": c.source}
    return out
