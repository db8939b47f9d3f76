"""Held out by content: every generated input belongs to one part (train, val, test) by what the model sees.

A sample's identity is a hash of what the model is given: its first frame (native pixels, shape included) and its
prompt (`content_id`). The hash decides the part (`part_of`): about 80% of all inputs are `train`, 5% `val` (the
trainer's periodic evaluation) and 15% `test` (every figure). A generator seed is not an identity: two seeds can
draw the same board. So `draw(task, seed, part)` asks the task's generator for the sample of `seed`, and where its
content lies in another part, for the samples of seeds derived from it (`derived_seed`), until one lies in `part`:
deterministic by (seed, part), and no input of one part is ever drawn for another, whatever the seeds.

The generator's own distribution is kept within each part (rejection), so a family's difficulty does not change
between parts; a family whose input space is small draws the same input again within a part (its `input_space`
says how many there are).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from .sample import Sample

PARTS = ("train", "val", "test")
SHARES = {"test": 0.15, "val": 0.05, "train": 0.80}  # of all inputs, by hash
DEFAULT_PART = "test"  # where every figure is measured
MAX_TRIES = 2000  # derived seeds tried for one sample (a part holding 5% of inputs needs 20 on average)
_VERSION = b"steplens-content-v1"


def content_id(first_frame: np.ndarray, prompt: str) -> str:
    """The hex SHA-256 of what the model sees: the first frame (uint8 pixels with their shape) and the prompt."""
    frame = np.ascontiguousarray(np.asarray(first_frame, dtype=np.uint8))
    h = hashlib.sha256(_VERSION)
    h.update(repr(frame.shape).encode())
    h.update(frame.tobytes())
    h.update(b"\0" + prompt.encode("utf-8"))
    return h.hexdigest()


def sample_content_id(sample: Sample) -> str:
    return content_id(sample.first_frame, sample.prompt)


def part_of(cid: str) -> str:
    """The part a content id lies in: its first 52 bits as a number in [0, 1), cut at the shares (test, val, train)."""
    u = int(cid[:13], 16) / 16 ** 13
    edge = 0.0
    for part in ("test", "val", "train"):
        edge += SHARES[part]
        if u < edge:
            return part
    return "train"


def check_part(part: str, where: str = "--split") -> str:
    if part not in PARTS:
        raise ValueError(f"{where} {part!r}: generated samples come from one part of the task's inputs, split by "
                         f"content: {', '.join(PARTS)}")
    return part


def derived_seed(seed: int, attempt: int) -> int:
    """The generator seed of try `attempt` (0: the seed itself) for `seed`: a 60-bit hash, never another seed's."""
    if attempt == 0:
        return int(seed)
    digest = hashlib.sha256(f"steplens-draw/{int(seed)}/{attempt}".encode()).digest()
    return 2 ** 62 + int.from_bytes(digest[:8], "big") % 2 ** 60  # above every seed a user gives


def draw(task, seed: int, part: str = DEFAULT_PART, size=None, frames=None, idx=None) -> Sample:
    """The sample of `seed` within `part` of `task`'s inputs (see the module docstring). Its metadata records the
    part, the content id and the generator seed that drew it (`meta["seed"]`); `sample.seed` (its noise seed) is
    `seed`, the one asked for."""
    check_part(part, "part")
    if getattr(task, "split_by_content", True) is False:  # the task says its inputs cannot be held out
        s = task.sample(seed, size, frames, idx=idx)
        return replace(s, meta={**s.meta, "split": "none", "content_id": sample_content_id(s)})
    for attempt in range(MAX_TRIES):
        s = task.sample(derived_seed(seed, attempt), size, frames, idx=idx)
        cid = sample_content_id(s)
        if part_of(cid) == part:
            meta = {**s.meta, "split": part, "content_id": cid, "seed": s.meta.get("seed", s.seed)}
            return replace(s, meta=meta, seed=int(seed))
    raise ValueError(f"{task.name}: no input in part {part!r} among {MAX_TRIES} draws from seed {seed} (size {size}): "
                     f"its input space at this size is too small to split by content (a task whose inputs cannot be "
                     f"held out declares split_by_content = False: its figures are then on inputs seen in training)")


def draw_many(task, seeds, part: str = DEFAULT_PART, size=None, frames=None, idx_from_seed: bool = True) -> list:
    return [draw(task, s, part, size, frames, idx=s if idx_from_seed else None) for s in seeds]


def input_space(task, size=None, frames=None, draws: int = 5000, seed: int = 0) -> dict:
    """How many distinct inputs a generator draws at a size: `distinct` among `draws` seeds, and the Chao1
    estimate of the whole space from how many were seen once and twice (exact where every input was seen twice)."""
    counts: dict[str, int] = {}
    for s in range(seed, seed + draws):
        cid = sample_content_id(task.sample(s, size, frames))
        counts[cid] = counts.get(cid, 0) + 1
    f1 = sum(1 for c in counts.values() if c == 1)
    f2 = sum(1 for c in counts.values() if c == 2)
    chao1 = len(counts) + (f1 * (f1 - 1) / (2 * (f2 + 1)))
    return {"draws": draws, "distinct": len(counts), "seen_once": f1, "chao1": round(chao1),
            "parts": {p: sum(1 for c in counts if part_of(c) == p) for p in PARTS}}
