"""A VBVR task folder is a VBVR task (issue 22, finding 4): rendered maze frames (anti-aliased, at a non-integer
scale, no metadata.json) in a VBVR-Bench-layout folder are taken as they are, not refused by steplens's pixel-art
maze check; steplens's own maze scorer refuses them clearly, and the default scorer for such a folder is named."""

import json
import sys

import numpy as np
import pytest
from builders import FinalFrameScorer, make_vbvr, make_vbvr_rendered
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import (answer_region, candidates, default_answer_region, palette, register_scorer,
                            scorer_names)
from steplens.tasks.folders import SampleSource


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])




@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from steplens.tasks import registry

    scorer_names()  # the registry loaded, then the plug-in added for this module only (other tests list the scorers)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_SCORERS", dict(registry._SCORERS))
        register_scorer("final-frame-l1", FinalFrameScorer)
        root = tmp_path_factory.mktemp("vbvr") / "VBVR-Bench-Data"
        yield root, make_vbvr_rendered(root)


def test_rendered_maze_samples_are_read_as_they_are(rendered):
    root, keys = rendered
    samples = SampleSource(data=root).load()
    assert [s.key for s in samples] == keys
    s = samples[0]
    assert s.task == "O-39_maze_data-generator" and s.first_frame.shape == (34, 34, 3)
    assert s.foreign and "not a maze frame" in s.foreign  # why steplens's maze checks do not apply
    # the task hooks that need steplens's drawing fall back to their task-free forms
    assert np.array_equal(answer_region(s), default_answer_region(s)) and answer_region(s).any()
    assert candidates(s) is None and palette(s) is None
    # a folder steplens wrote keeps its task checks and hooks
    assert palette("maze") is not None


def test_score_names_the_scorer_for_a_folder_not_drawn_by_steplens(rendered, tmp_path, monkeypatch):
    root, keys = rendered
    monkeypatch.setitem(sys.modules, "vbvr_bench", None)  # VBVR-EvalKit not installed
    out = tmp_path / "out"
    out.mkdir()
    r = cli("score", "--data", root, "--outputs", out, "--scorer", "maze")
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "--scorer maze" in text and "not a maze frame" in text, r.output
    assert "Traceback" not in r.output
    r = cli("score", "--data", root, "--outputs", out)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "not drawn by steplens" in text and "vbvr" in text and "VBVR-EvalKit" in text, \
        r.output


@pytest.mark.slow
def test_run_trace_probe_and_compare_take_rendered_frames(rendered, tmp_path):
    root, keys = rendered
    model = ("--model", "tiny-maze", "--steps", 2)
    sc = ("--scorer", "final-frame-l1")
    r = cli("run", *model, "--data", root, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert all((tmp_path / "run" / f"{k}.mp4").is_file() for k in keys)
    r = cli("trace", *model, *sc, "--data", root, "--count", 1, "--out", tmp_path / "tr")
    assert r.exit_code == 0, r.output
    r = cli("probe", "noise", *model, *sc, "--data", root, "--count", 2, "--out", tmp_path / "noise")
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "noise" / "results.json").read_text())["config"]
    assert "O-39_maze_data-generator" in json.dumps(cfg.get("taken_as_is", {})), cfg
    with pytest.warns(UserWarning, match="taken as they are.*no palette snapping") as said:
        r = cli("compare", *model, *sc, "--data", root, "--count", 2, "--n-seeds", 2, "--methods", "vote,single",
                "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    assert sum("taken as they are" in str(w.message) for w in said) == 1  # said once
    cfg = json.loads((tmp_path / "cmp" / "results.json").read_text())["config"]
    assert "O-39_maze_data-generator" in cfg["taken_as_is"]


def test_a_benchmark_mixing_pixel_art_and_rendered_folders_is_not_blocked(tmp_path):
    root = tmp_path / "VBVR-Bench-Data"
    make_vbvr_rendered(root, folder="O-40_maze_data-generator")
    make_vbvr(root, per_task=1)  # pixel-art folders beside the rendered one: steplens's maze task still applies
    samples = SampleSource(data=root).load()
    pixel = [s for s in samples if not s.foreign]
    assert pixel and len(pixel) < len(samples)
    assert palette(pixel[0]) is not None
