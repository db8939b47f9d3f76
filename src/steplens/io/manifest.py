"""A results folder's records of what it was made from: the manifest of the data (each sample's id and the SHA-256
of its files) and the provenance of a stage (who made it, with what); a resume is allowed only when they match.

    manifest.json    {"files": [...], "samples": [{"sample": id, "sha256": {file: hex}}], "sha256": hex}
    provenance.json  {"stage": ..., fields...}: compared field by field
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .files import atomic_write_json, sha256_file

# the files of a sample folder that decide its score (VBVR-Bench layout; metadata.json in VBVR-Pro-Bench)
SAMPLE_FILES = ("first_frame.png", "final_frame.png", "prompt.txt", "ground_truth.mp4", "metadata.json")
MANIFEST, PROVENANCE = "manifest.json", "provenance.json"


def manifest(samples: list[tuple[str, Path | None]]) -> dict:
    """The manifest of (sample id, sample folder) pairs; a sample without a folder (generated) lists no files."""
    rows = [{"sample": name, "sha256": {f: sha256_file(Path(d) / f) for f in SAMPLE_FILES
                                        if d is not None and (Path(d) / f).is_file()}} for name, d in samples]
    return seal(rows)


def seal(rows: list[dict]) -> dict:
    """A manifest of these sample rows, with the SHA-256 of its body."""
    body = {"files": list(SAMPLE_FILES), "samples": rows}
    return {**body, "sha256": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()}


def merged(old: dict | None, new: dict) -> dict:
    """The new manifest with the samples only the old one holds kept (a resume over more or other samples)."""
    if old is None:
        return new
    now = {r["sample"] for r in new["samples"]}
    kept = [r for r in old.get("samples", []) if r["sample"] not in now]
    return seal(kept + new["samples"]) if kept else new


def manifest_diff(old: dict, new: dict) -> str | None:
    """The first difference between a recorded manifest and the data now, for the samples both hold, named by
    sample and file; None when they agree."""
    before = {r["sample"]: r["sha256"] for r in old.get("samples", [])}
    for r in new["samples"]:
        was = before.get(r["sample"])
        if was is None:
            continue  # a sample added since (a wider filter): scored anew
        for f in SAMPLE_FILES:
            a, b = was.get(f), r["sha256"].get(f)
            if a != b:
                how = ("is new" if a is None else "is gone" if b is None else
                       f"changed (sha256 {a[:16]} when scored, {b[:16]} now)")
                return f"sample {r['sample']}: its {f} {how}"
    return None


def provenance_diff(old: dict, new: dict, fields) -> str | None:
    """The recorded provenance's fields that differ from now's, named with both values; None when they agree."""
    out = []
    for f in fields:
        a, b = old.get(f), new.get(f)
        if a != b:
            out.append(f"{f}: {_short(a)} recorded, {_short(b)} now")
    return "; ".join(out) or None


def _short(v) -> str:
    return json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v


def read_record(folder: Path, name: str) -> dict | None:
    p = Path(folder) / name
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise ValueError(f"{p} is not valid JSON ({e}); it records what this folder was made from: restore it or "
                         f"use another output folder") from None


def write_record(folder: Path, name: str, obj: dict) -> None:
    atomic_write_json(Path(folder) / name, obj)


def versions() -> dict:
    """steplens, torch and diffusers versions (from the installed distributions; none imported)."""
    from importlib import metadata

    out = {}
    for d in ("steplens", "torch", "diffusers"):
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = None
    return out
