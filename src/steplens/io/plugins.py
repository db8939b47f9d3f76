"""Plug-ins through entry points, loaded one way for every registry (tasks, scorers, backends, probes).

steplens registers its own plug-ins like any other package; `builtin` lists them too, in case the installed
metadata predates an entry point (an editable install not yet refreshed). A broken plug-in of another package is
skipped with a warning naming it; a broken one of steplens's own is an error.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points


def resolve(spec: str):
    """The object a "module:attribute" spec names."""
    mod, _, attr = spec.partition(":")
    return getattr(import_module(mod), attr)


def load_group(group: str, builtin=()) -> list[tuple[str, object]]:
    """[(entry-point name, loaded object)] of an entry-point group, then the built-ins its metadata lacks ("" as
    their name)."""
    specs = [(ep.name, ep.value, ep.load) for ep in entry_points(group=group)]
    seen = {v for _, v, _ in specs}
    specs += [("", v, lambda v=v: resolve(v)) for v in builtin if v not in seen]
    out = []
    for name, value, load in specs:
        try:
            out.append((name, load()))
        except Exception as e:
            if value.startswith("steplens."):
                raise
            import warnings  # a broken plug-in must not take steplens down; say which one

            warnings.warn(f"steplens: entry point {group}:{name} = {value} failed to load: {e}")
    return out
