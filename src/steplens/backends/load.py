"""Loading a diffusers pipeline folder (or hub id) as a steplens model, for `--model wan:PATH` / `diffusers:PATH`.

    model = load_pipeline_model("wan:runs/wan22-folder", device="cuda", dtype="bfloat16", offload="model")
    model = load_pipeline_model("wan:runs/hunyuan-folder", glyph_length=64, min_size=256)   # the model's options

The folder's model_index.json is read first and its `_class_name` picks the backend (steplens.backends.registry),
so a folder holding a pipeline no backend supports is refused, naming the supported ones, before any weights load.
PATH is a local folder written by `pipe.save_pretrained(PATH)` (or a hub id where the hub can be reached).

dtype: "float32" (the default, as diffusers loads), "bfloat16" or "float16" for the denoisers and text encoders;
the components a backend lists in `float32_components` (VAEs, image encoders, vocoders) stay float32.
offload: "none" (the whole pipeline on `device`), "model" (enable_model_cpu_offload: one component at a time on the
accelerator) or "sequential" (enable_sequential_cpu_offload: submodule by submodule, least memory, slowest); both
need accelerate and an accelerator device.
"""

from __future__ import annotations

import torch

from .checks import check_device, check_dtype, check_offload
from .registry import backend_for_config, backend_named, backends

PREFIX = "diffusers"  # --model diffusers:PATH: a diffusers pipeline folder; an adapter may declare aliases


def prefixes() -> dict[str, str | None]:
    """--model prefix -> the backend that words its refusals: `diffusers` (None: generic) and each adapter's aliases
    (`spec_aliases`, e.g. an older prefix its users wrote)."""
    return {PREFIX: None, **{a: cls.backend for cls in dict.fromkeys(backends().values()) for a in cls.spec_aliases}}


def is_pipeline_spec(spec) -> bool:
    """Whether a --model value names a diffusers pipeline folder (diffusers:PATH, or an adapter's alias)."""
    prefix, colon, _ = str(spec).partition(":")
    return bool(colon) and (prefix == PREFIX or prefix in prefixes())


def adapter_for_spec(spec: str):
    """(the adapter class, the model_index.json path) of a local pipeline folder `spec`, read without loading it;
    None where that cannot be read here (a hub id, a missing or malformed folder: the loader names those)."""
    import json
    from pathlib import Path

    index = Path(spec.partition(":")[2]).expanduser() / "model_index.json"
    try:
        cls = backend_for_config(json.loads(index.read_text()))
    except (OSError, ValueError):
        return None
    return None if cls is None else (cls, index)


def load_pipeline_model(spec: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                        offload: str | None = "none", lora=None, lora_2=None, lora_unmatched: str = "refuse",
                        **options):
    """`wan:PATH` or `diffusers:PATH` loaded by the backend of its model_index.json's class; `options` go to its
    model (e.g. HunyuanVideo-1.5's glyph_length, every backend's scale / min_size: its `model_options()`), refused by
    name before any weights load if that backend does not take them."""
    prefix, _, path = spec.partition(":")
    named = prefixes()
    if prefix not in named:
        raise ValueError(f"model {spec!r}: a diffusers pipeline is named {' or '.join(p + ':PATH' for p in named)}")
    if not path:
        raise ValueError(f"model {spec!r} needs a path: {spec}PATH (a diffusers image-to-video pipeline folder: "
                         f"{', '.join(sorted(backends()))})")
    check_dtype(dtype)
    check_offload(offload, device)
    check_device(device)
    words = backend_named(named[prefix]) if named[prefix] else None
    _, config = read_index(path, words.family if words else "diffusers", spec)
    cls = backend_for_config(config)
    if cls is None:
        raise ValueError(refusal(spec, config, words))
    return cls.load(path, device=device, dtype=dtype, offload=offload, name=spec, lora=lora, lora_2=lora_2,
                    lora_unmatched=lora_unmatched, **options)


def check_call_size(spec: str, height: int | None, width: int | None) -> None:
    """--height/--width for the pipeline folder `spec` (wan:PATH / diffusers:PATH) refused before it loads where they
    are no positive multiples of its backend's (`folder_size_multiple`, read from the folder's configs), or where its
    backend takes no call size at all (LTX-2, HunyuanVideo-1.5: the size follows each sample's first frame)."""
    from pathlib import Path

    from .checks import check_size

    if height is None or width is None:
        return
    prefix, _, path = spec.partition(":")
    try:
        _, config = read_index(path, prefix)
    except (ValueError, OSError):
        return  # the loader names what is wrong with the folder
    cls = backend_for_config(config)
    found = cls.folder_size_multiple(path) if cls is not None else None
    if cls is not None and not cls.takes_call_size:
        (mh, mw), why = found or ((None, None), None)
        rule = f"multiples of {mh if mh == mw else (mh, mw)} ({why})" if found else "the pipeline's multiple"
        raise ValueError(f"--height {height}, --width {width}: {cls.unsupported_words} for {cls.family} "
                         f"(steplens.backends.{cls.backend}; {Path(path) / 'model_index.json'} holds a "
                         f"{config.get('_class_name')}): its call size follows each sample's first frame, upscaled "
                         f"by an integer to {rule}; leave --height/--width out")
    if found is not None:
        check_size(height, width, *found)
    most = cls.folder_size_max(path) if cls is not None else None
    if most is not None:
        (hh, hw), why = most
        for what, v, m in (("--height", height, hh), ("--width", width, hw)):
            if v > m:
                raise ValueError(f"{what} {v}: at most {m} for this pipeline ({why}); {Path(path)} cannot place a "
                                 f"larger call")


def folder_geometry(spec: str):
    """(block_names, temporal factor, frames_from_video) of the pipeline folder `spec` (wan:PATH / diffusers:PATH), asked of its
    backend without loading the weights (`PipelineModel.folder_geometry`); refused, naming why, where it cannot say."""
    prefix, _, path = spec.partition(":")
    _, config = read_index(path, prefix, spec)
    cls = backend_for_config(config)
    if cls is None:
        raise ValueError(refusal(spec, config))
    found = cls.folder_geometry(path)
    if found is None:
        raise ValueError(f"--plan on {spec}: its blocks and latent frames are read from the folder's vae and "
                         f"transformer configs, which this folder does not hold in a form {cls.family}'s backend "
                         f"builds (a hub id?); give a local pipeline folder")
    return found


def load_pipeline(backend, path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                  offload: str | None = "none"):
    """A pipeline of `backend` (its model class) from a local folder (or hub id), in `dtype`, on `device` or
    offloaded onto it; a folder holding another class is refused before any weights load."""
    torch_dtype = check_dtype(dtype)
    offload = check_offload(offload, device)
    dev = check_device(device)
    source, config = read_index(path, backend.family)
    if backend.class_for(config) not in backend.pipeline_classes:
        raise ValueError(refusal(path, config, backend))
    return load_folder(backend.pipeline_class(), source, config, torch_dtype, backend.float32_components,
                       backend.check_pipeline, offload, dev, backend.family)


def refusal(spec: str, config: dict, words=None) -> str:
    """Why a folder's pipeline class is not loaded: in the words of the backend its prefix names, or generic."""
    found = config.get("_class_name") or "pipeline without _class_name"
    if words is not None:
        others = sorted(k for k, v in backends().items() if v is not words)
        return (f"{spec} holds a {found}; steplens' {words.family} backend supports "
                f"{', '.join(words.pipeline_classes)}{words.variants}"
                + (f"; other backends load {', '.join(others)}" if others else ""))
    return f"{spec} holds a {found}; steplens' backends load {', '.join(sorted(backends()))}"


def load_folder(cls, source: str, config: dict, torch_dtype, float32_components, check, offload: str, device,
                what: str):
    """`cls.from_pretrained(source)` as steplens loads every backend: `torch_dtype` for all but
    `float32_components` (VAEs, image encoders, vocoders stay float32), components saved as None passed as None,
    `check(pipe)` (a TypeError becomes a ValueError), then placed on `device` or CPU-offloaded onto it."""
    if torch_dtype != torch.float32:
        present = [c for c in float32_components if (config.get(c) or [None])[0] is not None]
        torch_dtype = {"default": torch_dtype, **{c: torch.float32 for c in present}}
    # components saved as None (e.g. no text encoder) are passed as None: from_pretrained wants every component
    absent = {k: None for k, v in config.items() if not k.startswith("_") and isinstance(v, (list, tuple))
              and len(v) == 2 and v[0] is None and v[1] is None}
    try:
        pipe = cls.from_pretrained(source, dtype=torch_dtype, **absent)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"could not load the {what} pipeline from {source}: {e}") from None
    try:
        check(pipe)
    except TypeError as e:
        raise ValueError(str(e)) from None
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_identity(spec: str, path: str, dtype, loras: dict) -> dict:
    """A pipeline model's identity (steplens.contract.identity), from its files alone (no weights loaded): the spec,
    the folder's content hash (folder_sha256), the dtype, and each LoRA (path, sha256, scale) by the component it goes
    into; `loras` {option or component: 'PATH[:SCALE]' spec, (path, scale) or None}."""
    from ..io.files import sha256_file
    from .lora import COMPONENTS, parse_spec

    out = {}
    for key, spec_ in loras.items():
        if spec_ is not None:
            p, scale = parse_spec(spec_, key if key.startswith("--") else "--lora")
            out[COMPONENTS.get(key, key)] = {"path": str(p), "sha256": sha256_file(p), "scale": scale}
    return {"model": spec, "model_sha256": folder_sha256(path), "dtype": str(check_dtype(dtype)).replace("torch.", ""),
            "loras": out}


SMALL_WEIGHTS = 64 << 20  # weights files up to this size are hashed whole; larger ones by name and size


def folder_sha256(path: str) -> str:
    """A content hash of a pipeline folder, cheap at any size: model_index.json and every component's config
    (*.json), and its weights files by content where small (the tiny test pipelines; <= 64 MiB), else by name and
    size (never reading a 14B model's shards). A hub id: the hash of its name."""
    import hashlib
    from pathlib import Path

    from ..io.files import sha256_file

    p = Path(path).expanduser()
    h = hashlib.sha256()
    if not p.is_dir():
        h.update(str(path).encode())
        return h.hexdigest()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        rel = f.relative_to(p).as_posix()
        if f.suffix == ".json" or f.stat().st_size <= SMALL_WEIGHTS and f.suffix in (".safetensors", ".bin"):
            h.update(f"{rel}\0{sha256_file(f)}\0".encode())
        elif f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf"):
            h.update(f"{rel}\0{f.stat().st_size}\0".encode())
    return h.hexdigest()


def looks_like_path(spec: str) -> bool:
    """Whether a --model spec names a local path (else it may be a hub id 'owner/name')."""
    return spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") != 1


def read_index(path: str, what: str, spec: str | None = None) -> tuple[str, dict]:
    """(where to load from, model_index.json) of a local diffusers pipeline folder or a hub id (only its index is
    fetched); refuses a file, a folder without an index, a missing folder, an unreadable index, by name. `what`
    names the backend ("Wan", "LTX-2"), `spec` how the user wrote the model (default: the path)."""
    import json
    from pathlib import Path

    spec = spec or path
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{spec} is a file; expected a diffusers pipeline folder (with model_index.json), "
                             f"as written by pipe.save_pretrained(DIR)")
        index = p / "model_index.json"
        if not index.is_file():
            raise FileNotFoundError(f"{p} has no model_index.json: not a diffusers pipeline folder (write one with "
                                    f"pipe.save_pretrained(DIR))")
        try:
            return str(p), json.loads(index.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{index} is not a readable model_index.json: {e}") from None
    if looks_like_path(path):
        raise FileNotFoundError(f"{what} pipeline folder not found: {p}")
    from diffusers import DiffusionPipeline

    try:
        return path, dict(DiffusionPipeline.load_config(path))
    except Exception as e:  # noqa: BLE001 - hub errors come in many types; report them as one
        raise ValueError(f"could not read the pipeline {path!r} (neither a local folder nor a reachable hub id): "
                         f"{e}") from None


