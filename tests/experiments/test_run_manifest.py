"""Issue 34: a `run` results folder holds the manifest of its data (sample ids, SHA-256 of each sample's files) and
its provenance (model, sampling, data manifest hash, versions, device); a resume goes on only when they match, and
names the sample and file, or the field, that differs."""

import json

from builders import make_vbvr
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import read_png, write_png


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_run_records_its_data_and_setup_and_resumes_only_when_they_match(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    keys = make_vbvr(data, per_task=1)
    run = ("run", "--model", "tiny-maze-2goal", "--data", data, "--out", out, "--steps", 2)
    r = cli(*run)
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert [m["sample"] for m in man["samples"]] == keys and len(man["sha256"]) == 64
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["stage"] == "run" and prov["model"] == "tiny-maze-2goal" and prov["steps"] == 2
    assert prov["family"] == "embedded"  # the family by its name
    assert prov["data_manifest_sha256"] == man["sha256"] and prov["device"] == "cpu" and prov["torch"]
    r = cli(*run)
    assert r.exit_code == 0 and "generated 0 videos" in r.output, r.output  # the same data and setup: resumes
    r = cli(*run[:-1], 3)  # another configuration: refused, and the records stay those of the folder's run
    assert r.exit_code == 2 and "another configuration" in r.output, r.output
    assert json.loads((out / "provenance.json").read_text()) == prov
    img = read_png(data / keys[0] / "first_frame.png")
    img[0, 0] = 255 - img[0, 0]
    write_png(data / keys[0] / "first_frame.png", img)
    r = cli(*run)
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and keys[0] in said and "first_frame.png" in said and "changed" in said, r.output
    write_png(data / keys[0] / "first_frame.png", _undo(img))
    assert cli(*run).exit_code == 0  # restored: resumes
    (out / "provenance.json").write_text(json.dumps({**prov, "torch": "0.0"}))
    r = cli(*run)
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "torch: 0.0 recorded" in said, r.output


def _undo(img):
    img = img.copy()
    img[0, 0] = 255 - img[0, 0]
    return img
