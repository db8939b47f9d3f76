"""Issue 34: the `vbvr-pro` scorer, VBVR-Pro-Bench's evaluators from a source folder the user names (option or
environment variable), loaded apart from an installed `vbvr_bench` (VBVR-EvalKit's package has the same name in
some versions). Scores equal its evaluators called directly (in another process, from the checkout, as its
run_evaluation_video.py calls them); the summary per split and per category is its aggregation of those scores."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from builders import add_pro_metadata, make_evalkit, make_pro_bench, make_vbvr
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import read_mp4, read_png, video_fps, write_mp4


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def text(r):
    return " ".join(r.output.split())


@pytest.fixture
def pro(tmp_path, monkeypatch):
    """A Pro-Bench-layout folder (metadata.json in every sample), outputs (ground truth for the maze task, a static
    first frame for the other), a Pro-Bench source whose package is `vbvr_bench`, and VBVR-EvalKit's stand-in
    installed as `vbvr_bench` too."""
    data, outs = tmp_path / "VBVR-Pro-Bench-Video", tmp_path / "outs"
    keys = make_vbvr(data, per_task=2)
    add_pro_metadata(data, keys)
    for k in keys:
        (outs / k).parent.mkdir(parents=True, exist_ok=True)
        gt = data / k / "ground_truth.mp4"
        if "O-39" in k:
            shutil.copy(gt, outs / f"{k}.mp4")
        else:
            write_mp4(outs / f"{k}.mp4", np.stack([read_png(data / k / "first_frame.png")] * len(read_mp4(gt))),
                      fps=video_fps(gt) or 4)
    source = make_pro_bench(tmp_path / "VBVR-Pro-Bench", package="vbvr_bench")
    make_evalkit(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for m in [m for m in sys.modules if m.startswith("vbvr_bench")]:
        monkeypatch.delitem(sys.modules, m)
    yield data, outs, keys, source
    for m in [m for m in sys.modules if m.startswith("vbvr_bench")]:
        del sys.modules[m]


DIRECT = """
import json, os, sys
sys.path.insert(0, os.getcwd())
from vbvr_bench.evaluators import get_evaluator, get_task_category
out = {}
for key, video in json.loads(sys.argv[1]).items():
    split, task, idx = key.split("/")
    d = os.path.join(sys.argv[2], key)
    info = {"video_path": video, "task_name": task, "no_ssim_fallback": True, "gt_path": d,
            "metafile_path": [os.path.join(d, "metadata.json"), os.path.join("./annotations", task, idx + ".json")],
            "gt_video_path": os.path.join(d, "ground_truth.mp4"), "gt_first_frame": os.path.join(d, "first_frame.png"),
            "gt_final_frame": os.path.join(d, "final_frame.png"), "prompt": open(os.path.join(d, "prompt.txt")).read()}
    out[key] = [get_evaluator(task, "cpu").evaluate(info, task_specific_only=True)["score"], get_task_category(task)]
print(json.dumps(out))
"""


def test_pro_scores_equal_its_evaluators_and_its_summary(pro, tmp_path):
    data, outs, keys, source = pro
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr-pro", "--vbvr-pro-source", source,
            "--out", tmp_path / "s")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "s" / "scores.json").read_text())
    videos = {k: str(outs / f"{k}.mp4") for k in keys}
    p = subprocess.run([sys.executable, "-c", DIRECT, json.dumps(videos), str(data)], cwd=source, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": ""})
    assert p.returncode == 0, p.stderr
    own = json.loads(p.stdout)
    assert {row["sample"]: row["score"] for row in res["rows"]} == {k: v[0] for k, v in own.items()}
    assert res["mode"] == "task-specific" and res["evaluator"]["kit"] == "VBVR-Pro-Bench"
    assert res["evaluator"]["version"] == "0.2.pro-test" and res["evaluator"]["files"] == 4
    # its summary: per split and per category, the mean of the scores
    cats = {}
    for k, (s, c) in own.items():
        cats.setdefault(c, []).append(s)
    sm = res["summary"]
    assert sm["overall"]["by_category"] == pytest.approx({c: np.mean(v) for c, v in cats.items()}, abs=1e-12)
    assert sm["overall"]["num_samples"] == 4 and sm["In_Domain"]["num_samples"] == 2
    assert sm["Out_of_Domain"]["mean_score"] == pytest.approx(np.mean([own[k][0] for k in keys if "G-7" in k]))
    assert sm["overall"]["by_category"]["Spatiality"] > 0.9 > sm["overall"]["by_category"]["Abstraction"]
    assert "VBVR-Pro-Bench summary" in text(r) and "Spatiality" in text(r)
    # VBVR-EvalKit's package of the same name is untouched: still the one importable here
    import vbvr_bench.evaluators as ev

    assert hasattr(ev, "CALLS") and not hasattr(ev, "get_task_category")


def test_the_source_folder_can_come_from_the_environment(pro, tmp_path, monkeypatch):
    data, outs, keys, source = pro
    monkeypatch.setenv("STEPLENS_VBVR_PRO_SOURCE", str(source))
    r = cli("score", "--data", data, "--outputs", outs, "--scorer", "vbvr-pro", "--no-floors")
    assert r.exit_code == 0 and "VBVR-Pro-Bench" in text(r), r.output


def test_pro_bad_inputs_are_named(pro, tmp_path, monkeypatch):
    data, outs, keys, source = pro
    monkeypatch.delenv("STEPLENS_VBVR_PRO_SOURCE", raising=False)
    base = ("score", "--data", data, "--outputs", outs, "--scorer", "vbvr-pro")
    (tmp_path / "notpro").mkdir()
    r = cli(*base, "--vbvr-pro-source", tmp_path / "notpro")
    assert r.exit_code == 2 and "is not a VBVR-Pro-Bench source folder" in text(r) and "notpro" in text(r), r.output
    r = cli(*base)
    assert r.exit_code == 2 and "STEPLENS_VBVR_PRO_SOURCE" in text(r), r.output
    r = cli(*base, "--vbvr-pro-source", source, "--vbvr-score", "full")
    assert r.exit_code == 2 and "task-specific only" in text(r), r.output
    split = keys[0].split("/")[0]  # --data at one split folder: its samples' split unknown to the summary
    r = cli("score", "--data", data / split, "--outputs", outs / split, "--scorer", "vbvr-pro", "--vbvr-pro-source",
            source)
    assert r.exit_code == 2 and "lies under no VBVR-Pro-Bench split folder" in text(r) and "Pro-Bench root" in text(r), \
        r.output
    (data / keys[3] / "metadata.json").unlink()
    r = cli(*base, "--vbvr-pro-source", source)
    assert r.exit_code == 2 and keys[3] in text(r) and "has no metadata.json" in text(r), r.output
