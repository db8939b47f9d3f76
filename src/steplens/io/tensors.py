"""A safetensors file written piece by piece (a trace's x0_hat, one decoded step at a time): the same bytes as
`safetensors.torch.save_file` of the whole tensors, without holding them in memory at once."""

from __future__ import annotations

import json
import math
import struct
from contextlib import ExitStack
from pathlib import Path

import torch

from .files import atomic_path


class StreamedSafetensors:
    """`with StreamedSafetensors(path, {name: shape}) as f: f.write(name, part)...`: float32 tensors of known shapes,
    each written in parts along its first dimension, in the order the file stores them (by name, as safetensors
    sorts tensors of one dtype); the file appears (atomically) only when every byte was written."""

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]]):
        self.path = Path(path)
        self.shapes = {k: tuple(int(d) for d in shapes[k]) for k in sorted(shapes)}
        self._order = list(self.shapes)
        self._left = {k: 4 * math.prod(s) for k, s in self.shapes.items()}
        self._stack = ExitStack()
        self._file = None

    def header(self) -> bytes:
        """safetensors' own header: 8 bytes of length, then compact JSON (tensors by name) padded to 8 bytes."""
        entries, at = {}, 0
        for k, s in self.shapes.items():
            n = 4 * math.prod(s)
            entries[k] = {"dtype": "F32", "shape": list(s), "data_offsets": [at, at + n]}
            at += n
        text = json.dumps(entries, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text

    def __enter__(self):
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(open(tmp, "wb"))
        self._file.write(self.header())
        return self

    def write(self, name: str, part: torch.Tensor) -> None:
        """The next rows of `name` (all of it, or a slice along its first dimension), after every tensor before it."""
        if name not in self.shapes:
            raise KeyError(f"{self.path.name}: no tensor {name!r} (it holds {', '.join(self.shapes)})")
        now = next((k for k in self._order if self._left[k]), None)
        if now != name:
            raise ValueError(f"{self.path.name}: {name!r} {self.shapes[name]} is already full" if not self._left[name]
                             else f"{self.path.name}: {now!r} is written before {name!r}")
        shape = self.shapes[name]
        if part.dtype != torch.float32 or part.dim() != len(shape) or tuple(part.shape[1:]) != shape[1:]:
            raise ValueError(f"{self.path.name}: a part of {name!r} {tuple(part.shape)} {part.dtype} does not fit its "
                             f"float32 shape {shape}")
        data = part.detach().contiguous().cpu().numpy()  # little-endian float32, as safetensors stores it
        if data.nbytes > self._left[name]:
            raise ValueError(f"{self.path.name}: a part of {name!r} {tuple(part.shape)} overruns its shape {shape}")
        self._file.write(memoryview(data).cast("B"))
        self._left[name] -= data.nbytes

    def __exit__(self, kind, value, tb):
        self._file.close()
        missing = [k for k, n in self._left.items() if n]
        if kind is None and missing:  # the temporary file goes, nothing replaces `path`
            err = ValueError(f"{self.path.name}: {', '.join(missing)} not written in full; the file is not kept")
            self._stack.__exit__(ValueError, err, None)
            raise err
        return self._stack.__exit__(kind, value, tb)
