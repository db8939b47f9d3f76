"""A results folder's manifest and provenance (steplens.io.manifest) for a stage that resumes: checked before any
work (naming the sample and file, or the field, that differs) and recorded once the stage starts writing."""

from __future__ import annotations

from pathlib import Path

from ..io.manifest import (MANIFEST, PROVENANCE, manifest, manifest_diff, merged, provenance_diff, read_record,
                           versions, write_record)

# what a resume must share beyond the configuration each stage already compares (model, sampling, filters)
RUNTIME = ("steplens", "torch", "diffusers", "device")


def data_manifest(samples) -> dict:
    return manifest([(s.name, s.dir) for s in samples])


def stage_provenance(stage: str, man: dict, device: str, **fields) -> dict:
    """A stage's provenance record; `family`: the model family by its adapter's name (`model.backend`: embedded, wan,
    ltx2, hunyuan15), whatever prefix (diffusers:, or an alias) the model was named with."""
    return {"stage": stage, **fields, "data_manifest_sha256": man["sha256"], **versions(), "device": str(device)}


def check_resume(out: Path, man: dict, prov: dict, compared=RUNTIME) -> None:
    """Refuse a folder made from other data (a sample's file changed) or with another runtime, naming it."""
    out = Path(out)
    old = read_record(out, MANIFEST) if out.is_dir() else None
    if old is not None:
        diff = manifest_diff(old, man)
        if diff:
            raise ValueError(f"{out} was made from other data: {diff}. Use another --out, or restore the data as it "
                             f"was")
    old = read_record(out, PROVENANCE) if out.is_dir() else None
    if old is not None:
        diff = provenance_diff(old, prov, compared)
        if diff:
            raise ValueError(f"{out} was made with another setup ({PROVENANCE}): {diff}. Use another --out to "
                             f"start afresh")


def recorded(out: Path, man: dict) -> dict:
    """The manifest a folder will hold: `man` with the samples recorded before kept (a resume may cover others)."""
    return merged(read_record(out, MANIFEST) if Path(out).is_dir() else None, man)


def record(out: Path, man: dict, prov: dict) -> None:
    """Write the manifest and the provenance (its data_manifest_sha256 is the manifest's)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_record(out, MANIFEST, man)
    write_record(out, PROVENANCE, {**prov, "data_manifest_sha256": man["sha256"]})


def check_data(out: Path, data) -> None:
    """Before a model loads: every manifest.json under OUT (a probe's, a study's parts') against the files of DATA now,
    for the samples it lists whose folders are there; the first change refused, naming the folder, sample and file."""
    out = Path(out)
    if data is None or not out.is_dir():
        return
    for path in sorted(out.rglob(MANIFEST)):
        old = read_record(path.parent, MANIFEST) or {}
        here = [(r["sample"], Path(data) / r["sample"]) for r in old.get("samples", [])
                if r.get("sha256") and (Path(data) / r["sample"]).is_dir()]
        diff = manifest_diff(old, manifest(here)) if here else None
        if diff:
            raise ValueError(f"{path.parent} was made from other data: {diff}. Use another --out, or restore the data "
                             f"as it was")
