"""Issue 34: VBVR scores as the field reports them. Both VBVR-EvalKit modes, named (task-specific, the default, and
full); the evaluator pinned by the SHA-256 of its source; an evaluator that raises on one sample counted, not a
crash; floors (static first frame, ground truth, a pan) beside the model; a manifest of the data folder that a
rescore must match. The evaluator is a small rule-based package with VBVR-EvalKit's interface (tests/builders.py),
written to tmp_path: VBVR-EvalKit itself is not installed."""

import json
import shutil

import numpy as np
import pytest
from builders import make_vbvr
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import read_mp4, read_png, video_fps, write_mp4, write_png

FIVE = {"first_frame_consistency", "final_frame_accuracy", "temporal_smoothness", "visual_quality", "task_specific"}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def text(r):
    return " ".join(r.output.split())


def folder(tmp_path, per_task=5):
    """A VBVR-layout data folder (10 samples, two tasks) and model outputs: the ground truth for the maze task, a
    static first frame for the two-goal task."""
    data, outs = tmp_path / "VBVR-Bench-Data", tmp_path / "outs"
    keys = make_vbvr(data, per_task=per_task)
    for k in keys:
        (outs / k).parent.mkdir(parents=True, exist_ok=True)
        gt = data / k / "ground_truth.mp4"
        if "O-39" in k:
            shutil.copy(gt, outs / f"{k}.mp4")
        else:
            write_mp4(outs / f"{k}.mp4", np.stack([read_png(data / k / "first_frame.png")] * len(read_mp4(gt))),
                      fps=video_fps(gt) or 4)
    return data, outs, keys


def direct(ev, data, row, video, **kw):
    d = data / row["sample"]
    return float(ev.get_evaluator(row["task"], device="cpu").evaluate(
        {"video_path": str(video), "gt_video_path": str(d / "ground_truth.mp4"), "gt_first_frame":
         str(d / "first_frame.png"), "gt_final_frame": str(d / "final_frame.png"), "gt_path": str(d)}, **kw)["score"])


def test_both_modes_equal_the_evaluator_called_directly_and_are_named(tmp_path, evalkit):
    data, outs, keys = folder(tmp_path, per_task=3)
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "ts", "--no-floors")
    assert r.exit_code == 0, r.output
    ts = json.loads((tmp_path / "ts" / "scores.json").read_text())
    assert ts["mode"] == "task-specific" and [row["sample"] for row in ts["rows"]] == keys
    for row in ts["rows"]:
        video = outs / f"{row['sample']}.mp4"
        own_ts, own_full = direct(evalkit, data, row, video, task_specific_only=True), direct(evalkit, data, row, video)
        assert row["mode"] == "task-specific" and row["score"] == own_ts
        assert row["scores"] == {"task-specific": own_ts, "full": pytest.approx(own_full, abs=1e-12)}
        assert set(row["dimensions"]) == FIVE and row["dimensions"]["task_specific"] == own_ts
    # the static outputs: the full score is far above the task-specific one (VBVR-EvalKit issue #240)
    static = ts["per_task"]["G-7_maze-two-goals_data-generator"]
    assert static["mean_scores"]["full"] > static["mean_scores"]["task-specific"] + 0.3
    said = text(r)
    assert "task-specific" in said and "full" in said  # both, side by side
    assert "success = score >= 0.8 under the task-specific score" in said

    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--vbvr-score", "full",
            "--out", tmp_path / "full.json", "--no-floors")
    assert r.exit_code == 0, r.output
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["mode"] == "full" and "success = score >= 0.8 under the full score" in text(r)
    for row in full["rows"]:
        assert row["mode"] == "full"
        assert row["score"] == pytest.approx(direct(evalkit, data, row, outs / f"{row['sample']}.mp4"), abs=1e-12)
    # every score records the evaluator: its package version and the SHA-256 of its source files
    ident = full["evaluator"]
    assert ident["version"] == "0.1.test" and len(ident["sha256"]) == 64 and ident["files"] == 2
    assert all(row["evaluator_sha256"] == ident["sha256"] for row in full["rows"])


def test_a_bad_mode_is_refused_before_any_work(tmp_path, evalkit):
    data, outs, _ = folder(tmp_path, per_task=1)
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--vbvr-score", "weighted")
    assert r.exit_code == 2 and "--vbvr-score 'weighted'" in text(r) and "task-specific, full" in text(r), r.output
    assert evalkit.CALLS == []


@pytest.mark.slow  # end to end, 3-10 s: make test, not test-fast
def test_an_evaluator_raising_on_one_sample_is_counted_not_a_crash(tmp_path, evalkit):
    data, outs, keys = folder(tmp_path)
    bad = keys[7]
    shutil.copy(data / bad / "first_frame.png", data / bad / "final_frame.png")  # the evaluator divides by zero
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s.json",
            "--no-floors")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["errors"] == 1 and s["n"] == 10 and sum("error" not in row for row in s["rows"]) == 9
    row = next(row for row in s["rows"] if row["sample"] == bad)
    assert "ZeroDivisionError" in row["error"] and "no answer pixels" in row["error"] and row["score"] == 0.0
    said = text(r)
    assert "warning" in said and bad in said and "1 of 10" in said and "as score 0" in said


def test_an_unknown_task_lists_the_closest_evaluator_names(tmp_path, evalkit):
    data, outs, keys = folder(tmp_path, per_task=1)
    shutil.move(data / "In-Domain_50" / "O-39_maze_data-generator", data / "In-Domain_50" / "O-39_maze-data-generatr")
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr")
    assert r.exit_code == 2 and "'O-39_maze-data-generatr'" in text(r), r.output
    assert "closest: O-39_maze_data-generator" in text(r)


@pytest.mark.slow  # end to end, 3-10 s: make test, not test-fast
def test_floors_beside_the_model_per_task_scored_once(tmp_path, evalkit):
    data, outs, keys = folder(tmp_path, per_task=2)
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s" / "scores.json").read_text())
    floors = s["floors"]
    assert set(floors["per_task"]) == {"O-39_maze_data-generator", "G-7_maze-two-goals_data-generator"}
    assert set(floors["overall"]) == {"static first frame", "ground truth", "pan"}
    # the ground-truth floor is the evaluator on ground_truth.mp4; the static one on the first frame repeated
    gt = [direct(evalkit, data, {"sample": k, "task": k.split("/")[1]}, data / k / "ground_truth.mp4",
                 task_specific_only=True) for k in keys]
    assert floors["overall"]["ground truth"]["mean_score"] == pytest.approx(np.mean(gt), abs=1e-12)
    k = keys[0]
    still = tmp_path / "still.mp4"
    gtv = data / k / "ground_truth.mp4"
    write_mp4(still, np.stack([read_png(data / k / "first_frame.png")] * len(read_mp4(gtv))), fps=video_fps(gtv))
    static_rows = {x["sample"]: x for x in floors["rows"]["static first frame"]}
    assert static_rows[k]["score"] == pytest.approx(direct(evalkit, data, {"sample": k, "task": k.split("/")[1]},
                                                           still, task_specific_only=True), abs=1e-12)
    said = text(r)
    assert all(w in said for w in ("static first frame", "ground truth", "pan", "model"))
    # scored once: the next score of the same folder calls no evaluator
    calls = len(evalkit.CALLS)
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s")
    assert r.exit_code == 0 and len(evalkit.CALLS) == calls, r.output
    assert json.loads((tmp_path / "s" / "scores.json").read_text())["floors"] == floors


def test_a_folder_scored_with_one_evaluator_source_is_refused_with_another(tmp_path, evalkit):
    data, outs, _ = folder(tmp_path, per_task=1)
    once = ("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--no-floors")
    assert cli(*once, "--out", tmp_path / "s").exit_code == 0
    old = json.loads((tmp_path / "s" / "provenance.json").read_text())["evaluator"]["sha256"]
    src = tmp_path / "site" / "vbvr_bench" / "evaluators" / "__init__.py"
    src.write_text(src.read_text() + "\n# patched: a fix on one task\n")
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s", "--no-floors")
    assert r.exit_code == 2, r.output
    r2 = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s2", "--no-floors")
    assert r2.exit_code == 0, r2.output  # another folder: rescored
    new = json.loads((tmp_path / "s2" / "provenance.json").read_text())["evaluator"]["sha256"]
    assert new != old and old[:16] in text(r) and new[:16] in text(r) and "another --out" in text(r)


def test_a_changed_first_frame_in_a_scored_folder_is_named(tmp_path, evalkit):
    data, outs, keys = folder(tmp_path, per_task=1)
    once = ("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--no-floors")
    assert cli(*once, "--out", tmp_path / "s").exit_code == 0
    man = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert [m["sample"] for m in man["samples"]] == keys
    assert set(man["samples"][0]["sha256"]) == {"first_frame.png", "prompt.txt", "ground_truth.mp4",
                                                "final_frame.png"}
    img = read_png(data / keys[1] / "first_frame.png")
    img[0, 0] = 255 - img[0, 0]
    write_png(data / keys[1] / "first_frame.png", img)
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr", "--out", tmp_path / "s", "--no-floors")
    assert r.exit_code == 2 and keys[1] in text(r) and "first_frame.png" in text(r), r.output


@pytest.mark.slow
def test_the_mode_reaches_every_command_that_scores_with_vbvr(tmp_path, evalkit):
    data, _, keys = folder(tmp_path, per_task=1)
    got = {}
    for mode in ("full", "task-specific"):
        r = cli("trace", "--data", data, "--scorer", "vbvr", "--vbvr-score", mode, "--steps", 2, "--count", 1,
                "--out", tmp_path / mode, "--model", "tiny-maze-2goal")
        assert r.exit_code == 0, r.output
        got[mode] = [x["score"] for x in json.loads((tmp_path / mode / keys[0] / "metrics.json").read_text())
                     ["per_step"]]
    assert evalkit.CALLS and all(not only for _, only in evalkit.CALLS)  # one full call gives both modes
    assert all(f != t for f, t in zip(got["full"], got["task-specific"])), got  # the same videos, read two ways
    r = cli("eval", "--data", data, "--scorer", "vbvr", "--steps", 2, "--count", 1, "--out", tmp_path / "ev",
            "--model", "tiny-maze-2goal", "--vbvr-score", "full")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    row = res["per_sample"][0]
    assert row["details"]["mode"] == "full" and row["score"] == row["details"]["scores"]["full"], row
    assert res["config"]["vbvr_score"] == "full"  # the results say the mode
    # the floors beside the model in eval's table too, in its mode, cached in its folder
    assert res["floors"]["mode"] == "full" and set(res["floors"]["overall"]) == {"static first frame",
                                                                                 "ground truth", "pan"}
    assert "static first frame" in text(r) and (tmp_path / "ev" / "floors.json").is_file()
    r = cli("eval", "--data", data, "--scorer", "vbvr", "--steps", 2, "--count", 1, "--out", tmp_path / "ev2",
            "--model", "tiny-maze-2goal")
    assert json.loads((tmp_path / "ev2" / "results.json").read_text())["config"]["vbvr_score"] == "task-specific"


@pytest.mark.slow
def test_a_probe_store_scored_with_one_evaluator_source_is_refused_with_another(tmp_path, evalkit):
    data, _, _ = folder(tmp_path, per_task=1)
    probe = ("probe", "noise", "--data", data, "--scorer", "vbvr", "--steps", 2, "--count", 1, "--model",
             "tiny-maze-2goal", "--out", tmp_path / "p")
    r = cli(*probe)
    assert r.exit_code == 0, r.output
    src = tmp_path / "site" / "vbvr_bench" / "evaluators" / "__init__.py"
    src.write_text(src.read_text() + "\n# patched\n")
    r = cli(*probe)
    assert r.exit_code == 2 and "evaluator_sha256" in text(r), r.output


def test_an_evaluator_error_on_frames_is_said_and_scored_zero(tmp_path, evalkit):
    """Where frames are scored (probes, trace, eval) an evaluator's error is counted as 0 and said, naming the
    sample, not a crash of the run."""
    from steplens.tasks import get_scorer
    from steplens.tasks.folders import SampleSource

    data, _, keys = folder(tmp_path, per_task=1)
    shutil.copy(data / keys[0] / "first_frame.png", data / keys[0] / "final_frame.png")
    s = SampleSource(data=data).load()[0]
    with pytest.warns(UserWarning, match=f"failed on sample {keys[0]}.*ZeroDivisionError"):
        got = get_scorer("vbvr").score(read_mp4(data / keys[0] / "ground_truth.mp4"), s)
    assert got.score == 0.0 and not got.success and "no answer pixels" in got.details["error"]
