"""Weights as safetensors (never pickles), written atomically: what ships and what `--model FILE` loads.

A weights file holds one state dict, its architecture and an info dict (training config, step, command,
sampling defaults); `load_weights` also reads a training checkpoint's EMA weights (steplens.training.checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file


def canonical_header(path: Path) -> None:
    """Rewrite a safetensors file's JSON header with its keys sorted (same length, same offsets), so that the same
    tensors and metadata always give the same bytes (the writer orders the header as a hash map does)."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        meta = header.pop("__metadata__", None)
        ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}) | dict(sorted(header.items()))
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > n:
            raise ValueError(f"{path}: sorted header of {len(text)} bytes exceeds the written {n}")
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (sorted by name): a damaged file is caught on load."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().cpu()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def atomic_save(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
    from ..io.files import atomic_path

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**metadata, "sha256": digest(tensors)}
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        canonical_header(tmp)
        read_safetensors(tmp)  # verify what was written before it replaces anything


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a clear error if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:  # one read of the file: metadata and tensors of the same bytes, even while a writer replaces the file
        data = path.read_bytes()
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8: 8 + n]).get("__metadata__") or {}
        tensors = load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"weights file {path} is corrupt or not a safetensors file: {e}") from None
    if "sha256" in meta and digest(tensors) != meta["sha256"]:  # files written before the checksum have none
        raise ValueError(f"weights file {path} is corrupt: its tensors do not match the checksum recorded when it "
                         f"was written (damaged on disk or in transfer)")
    return tensors, meta


def save_weights(path, model, arch: dict, info: dict | None = None, dtype=torch.float16) -> None:
    """The shippable form: one state dict (half precision by default) and its architecture."""
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    atomic_save(tensors, path, {"format": "steplens-weights-1", "arch": json.dumps(arch),
                                "info": json.dumps(info or {})})


def load_weights(path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """(state dict in float32, architecture dict, info dict) of a weights or checkpoint file."""
    tensors, meta = read_safetensors(path)
    fmt = meta.get("format")
    if fmt == "steplens-checkpoint-1":  # a training checkpoint: take its EMA weights
        tensors = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        info = {"step": int(meta["step"]), "train_config": json.loads(meta["train_config"])}
    elif fmt == "steplens-weights-1":
        info = json.loads(meta.get("info", "{}"))
    else:
        raise ValueError(f"{path} is not a steplens weights file (format {fmt!r}); expected steplens-weights-1")
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors, json.loads(meta["arch"]), info
