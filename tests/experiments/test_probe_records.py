"""Issue 34 items 3 and 5 beyond `run`/`score`: every probe, compare and study folder holds manifest.json (the data's
sample ids and file hashes) and provenance.json (stage, model and sampling, data manifest hash, versions, device)
and resumes only when they match, naming the sample and file or the field that differs; on a VBVR folder (a kit
scores every sample) their tables show the floors (static first frame, ground truth, pan) beside the model, per task
and overall, scored once per folder. The evaluator is tests/builders.py's small package with VBVR-EvalKit's
interface (VBVR-EvalKit itself is not installed)."""

import json

import numpy as np
import pytest
from builders import make_vbvr
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import read_png, write_png

FLOORS = ["static first frame", "ground truth", "pan"]
TASKS = ["O-39_maze_data-generator", "G-7_maze-two-goals_data-generator"]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(r):
    return " ".join(r.output.split())


def _flip(path):
    img = read_png(path)
    img[0, 0] = 255 - img[0, 0]
    write_png(path, img)


def _floor_calls(ev, out):
    """Evaluator calls on floor videos: the static and pan videos written under a floors/ folder of OUT (its parts'
    too), and ground_truth.mp4."""
    return [c for c in ev.CALLS if (c[0].startswith(str(out)) and "/floors/" in c[0])
            or c[0].endswith("ground_truth.mp4")]


@pytest.mark.slow
def test_a_probe_on_a_vbvr_folder_shows_the_floors_beside_the_model_scored_once(tmp_path, evalkit):
    data, out = tmp_path / "data", tmp_path / "p"
    keys = make_vbvr(data, per_task=1)
    probe = ("probe", "behaviours", "--data", data, "--scorer", "vbvr", "--steps", 2, "--model", "tiny-maze-2goal",
             "--out", out)
    r = cli(*probe)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    fl = res["floors"]
    assert fl["mode"] == "task-specific" and fl["model_condition"] == "clean"
    beside = fl["beside"]
    assert [b["task"] for b in beside] == TASKS + ["overall"]
    assert list(beside[0]) == ["task", "n", "model (clean)"] + FLOORS
    # the model's column is the probe's own clean rows; each floor's the evaluator on that floor's video
    rows = [json.loads(x) for x in (out / "store" / "rows.jsonl").read_text().splitlines()]
    for b, k in zip(beside, keys):
        assert b["model (clean)"] == pytest.approx(next(x["score"] for x in rows if x["sample"] == k))
        for f in FLOORS:
            assert b[f] == pytest.approx(next(x["score"] for x in fl["rows"][f] if x["sample"] == k))
    assert beside[-1]["ground truth"] == pytest.approx(np.mean([b["ground truth"] for b in beside[:-1]]))
    assert beside[-1]["static first frame"] < beside[-1]["ground truth"]  # a still image does not solve a maze
    # every table: the terminal, floors.md, floors.csv and the report
    assert "floors beside the model (task-specific mode)" in said(r) and "static first frame" in said(r)
    md = (out / "floors.md").read_text()
    assert all(w in md for w in ["| task | n | model (clean) | static first frame | ground truth | pan |", *TASKS])
    assert (out / "floors.csv").read_text().splitlines()[0] == "task,n,model (clean),static first frame,ground truth,pan"
    assert "Floors beside the model (task-specific mode)" in (out / "report.html").read_text()
    # scored once: 3 floors x 2 samples, and none again when the folder is run again
    assert len(_floor_calls(evalkit, out)) == 6
    calls = len(evalkit.CALLS)
    r = cli(*probe)
    assert r.exit_code == 0 and len(evalkit.CALLS) == calls, r.output
    assert json.loads((out / "results.json").read_text())["floors"]["beside"] == beside


@pytest.mark.slow
def test_a_probe_folder_resumes_only_from_the_same_data_and_setup(tmp_path):
    data, out = tmp_path / "data", tmp_path / "p"
    keys = make_vbvr(data, per_task=1)
    probe = ("probe", "behaviours", "--data", data, "--steps", 2, "--model", "tiny-maze-2goal", "--out", out)
    r = cli(*probe)
    assert r.exit_code == 0, r.output
    assert "floors" not in json.loads((out / "results.json").read_text())  # no evaluator kit: no floors
    man = json.loads((out / "manifest.json").read_text())
    assert [m["sample"] for m in man["samples"]] == keys and "first_frame.png" in man["samples"][0]["sha256"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["stage"] == "probe behaviours" and prov["data_manifest_sha256"] == man["sha256"]
    assert prov["config"]["model"] == "tiny-maze-2goal" and prov["config"]["steps"] == 2 and prov["device"] == "cpu"
    assert prov["torch"] and prov["diffusers"]
    assert cli(*probe).exit_code == 0  # the same data and setup: resumes
    _flip(data / keys[1] / "first_frame.png")
    r = cli(*probe)
    assert r.exit_code == 2 and keys[1] in said(r) and "first_frame.png" in said(r) and "changed" in said(r), r.output
    assert "Traceback" not in r.output
    _flip(data / keys[1] / "first_frame.png")
    assert cli(*probe).exit_code == 0  # restored: resumes
    (out / "provenance.json").write_text(json.dumps({**prov, "torch": "0.0"}))
    r = cli(*probe)
    assert r.exit_code == 2 and "torch: 0.0 recorded" in said(r), r.output
    (out / "provenance.json").write_text(json.dumps(prov))
    r = cli(*probe, "--steps", 3)  # other sampling (the last --steps given): refused, the field named
    assert r.exit_code == 2 and "steps" in said(r), r.output


@pytest.mark.slow
def test_a_study_folder_records_its_data_and_shows_floors_and_names_a_changed_first_frame(tmp_path, evalkit):
    data, out = tmp_path / "data", tmp_path / "study"
    keys = make_vbvr(data, per_task=1)
    study = ("study", "--model", "tiny-maze-2goal", "--data", data, "--scorer", "vbvr", "--count", 1, "--steps", 2,
             "--parts", "solve", "--out", out)
    r = cli(*study)
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert sorted(m["sample"] for m in man["samples"]) == sorted(keys)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["stage"] == "study" and prov["identity"]["model"] == "tiny-maze-2goal"
    assert prov["config"]["steps"] == 2 and prov["data_manifest_sha256"] == man["sha256"]
    parts = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("provenance.json") if p.parent != out)
    assert len(parts) == 2 and all(p.endswith("/solve") for p in parts)  # every part records its own
    md = (out / "study.md").read_text()
    head = next(line for line in md.splitlines() if line.startswith("| family"))
    assert all(f in head for f in FLOORS), head
    solve = json.loads((out / parts[0] / "results.json").read_text())
    assert solve["floors"]["mode"] == "task-specific"
    calls = len(evalkit.CALLS)
    assert cli(*study).exit_code == 0 and len(_floor_calls(evalkit, out)) == 6  # floors scored once
    assert len(evalkit.CALLS) == calls
    _flip(data / keys[0] / "first_frame.png")
    r = cli(*study)
    assert r.exit_code == 2 and keys[0] in said(r) and "first_frame.png" in said(r), r.output
