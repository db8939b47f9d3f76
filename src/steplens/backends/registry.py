"""The registry of diffusers backends: the pipeline classes steplens loads, traces and hooks, and who does it.

A backend is its model class (a `steplens.backends.model.PipelineModel` subclass) naming the diffusers pipeline
classes it takes (`pipeline_classes`, the `_class_name` of a folder's model_index.json). Backends register through
the entry-point group `steplens.backends` (see pyproject.toml), steplens' own (Wan, LTX-2, HunyuanVideo-1.5)
like any other package's; a value is a model class or a list of them.
"""

from __future__ import annotations

from ..io.plugins import load_group

GROUP = "steplens.backends"
# Ours, in case the installed metadata predates an entry point (an editable install not yet refreshed).
BUILTIN = ["steplens.backends.wan:WanPipelineModel", "steplens.backends.ltx2:LTX2PipelineModel",
           "steplens.backends.hunyuan15:HunyuanVideo15Model"]
_BACKENDS: dict[str, type] = {}  # pipeline class name -> the backend's model class
_LOADED = False


def register_backend(model_cls) -> None:
    """Add a backend (a PipelineModel subclass); a pipeline class already taken by another backend is refused."""
    for attr in ("backend", "family", "pipeline_classes", "loop_class"):
        if not getattr(model_cls, attr, None):
            raise TypeError(f"backend {model_cls!r} lacks {attr!r} (see steplens.backends.model.PipelineModel)")
    for name in model_cls.pipeline_classes:
        if name in _BACKENDS and _BACKENDS[name] is not model_cls:
            raise ValueError(f"pipeline class {name!r} is registered twice ({_BACKENDS[name].__name__}, "
                             f"{model_cls.__name__})")
        _BACKENDS[name] = model_cls


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for _, obj in load_group(GROUP, BUILTIN):
        for cls in obj if isinstance(obj, (list, tuple)) else [obj]:
            register_backend(cls)


def backends() -> dict[str, type]:
    """{pipeline class name: backend model class} of every registered backend."""
    _load()
    return dict(_BACKENDS)


def supported() -> str:
    """The pipeline classes steplens supports, for messages: 'A (family), B (family)'."""
    return ", ".join(f"{k} ({v.family})" for k, v in sorted(backends().items()))


def backend_named(name: str):
    """The backend whose `backend` name (e.g. "wan", "ltx2") is `name`."""
    for cls in backends().values():
        if cls.backend == name:
            return cls
    raise ValueError(f"unknown backend {name!r}; registered: {', '.join(sorted({c.backend for c in _BACKENDS.values()}))}")


def backend_for(pipe):
    """The backend model class of a pipeline object (its class or a base class registered); refuses others."""
    known = backends()
    for klass in type(pipe).__mro__:
        if klass.__name__ in known:
            return known[klass.__name__]
    raise TypeError(f"steplens does not trace the pipeline class {type(pipe).__name__}; supported: "
                    f"{', '.join(sorted(known))}")


def backend_for_config(config: dict):
    """The backend that loads a folder with this model_index.json (each asked through `class_for`), or None."""
    for cls in dict.fromkeys(backends().values()):
        if cls.class_for(config) in cls.pipeline_classes:
            return cls
    return None
