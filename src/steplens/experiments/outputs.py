"""Where a run writes each sample's outputs: OUT/<sample's place>.mp4, .png, .seed<k>.mp4 and .search.json."""

from __future__ import annotations

from pathlib import Path

from ..tasks import Sample


def output_paths(out: Path, s: Sample) -> tuple[Path, Path]:
    """OUT/<sample's place>.mp4 and .png."""
    base = Path(out) / s.name
    return base.with_name(base.name + ".mp4"), base.with_name(base.name + ".png")


def member_path(out: Path, s: Sample, k: int) -> Path:
    base = Path(out) / s.name
    return base.with_name(f"{base.name}.seed{k}.mp4")


def search_path(out: Path, s: Sample) -> Path:
    """OUT/<sample's place>.search.json: what a search did for the sample (`steplens.methods.search.search_record`)."""
    base = Path(out) / s.name
    return base.with_name(base.name + ".search.json")
