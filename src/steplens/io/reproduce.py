"""What "the same run gives the same files" means: every file an output folder holds is byte for byte the same when a
command runs twice into fresh folders, except the fields below, which measure time (wall-clock seconds) and nothing
about the model or the samples. They are declared here, in one place; `differing_files` compares two folders with them
left out of JSON files (and nowhere else: every other file, PNGs and videos included, must match byte for byte)."""

from __future__ import annotations

import json
from pathlib import Path

# The JSON fields that measure time: study.json's and a demo's summary.json's "seconds" (wall-clock of the run).
TIMING_FIELDS = ("seconds",)


def without_timing(data):
    """A parsed JSON value with every `TIMING_FIELDS` key dropped, at any depth."""
    if isinstance(data, dict):
        return {k: without_timing(v) for k, v in data.items() if k not in TIMING_FIELDS}
    if isinstance(data, list):
        return [without_timing(v) for v in data]
    return data


def _same(a: Path, b: Path) -> bool:
    x, y = a.read_bytes(), b.read_bytes()
    if x == y:
        return True
    if a.suffix != ".json":
        return False
    try:
        return without_timing(json.loads(x)) == without_timing(json.loads(y))
    except (ValueError, UnicodeDecodeError):
        return False


def differing_files(a, b) -> list[str]:
    """The files (relative paths) that are not the same in folders a and b (present in one only, or differing beyond
    the timing fields); [] when the two runs reproduce each other."""
    a, b = Path(a), Path(b)
    files = lambda d: {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}  # noqa: E731
    fa, fb = files(a), files(b)
    return sorted(fa ^ fb) + [f for f in sorted(fa & fb) if not _same(a / f, b / f)]
