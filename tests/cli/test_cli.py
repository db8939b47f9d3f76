"""End-to-end through the CLI, on the shipped weights."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import read_png, write_png
from steplens.models.load import SHIPPED, shipped_path

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_weights_are_present_and_small(name):
    p = shipped_path(name)
    assert p.is_file() and p.stat().st_size < 8e6


@pytest.mark.slow
def test_generate_run_score_roundtrip(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    r = cli("tasks", "generate", "maze", "--count", 3, "--seed", 50, "--size", 4, "--upscale", 4, "--out", data)
    assert r.exit_code == 0, r.output
    d = data / "maze" / "00001"
    assert {p.name for p in d.iterdir()} == {"first_frame.png", "final_frame.png", "ground_truth.mp4", "prompt.txt",
                                             "metadata.json"}
    meta = json.loads((d / "metadata.json").read_text())
    from steplens.tasks import draw, get_task

    # sample 1 is seed 51's input of the test part (held out by content): its generator seed is recorded
    assert meta["split"] == "test" and meta["seed"] == draw(get_task("maze"), 51, "test", 4).meta["seed"]
    assert meta["n"] == 4 and read_png(d / "first_frame.png").shape == (36, 36, 3)

    # the ground truth scores as solved (sanity of the scorer through the CLI)
    gt = tmp_path / "gt" / "maze"
    for i in range(3):
        write_png(gt / f"{i:05d}.png", read_png(data / "maze" / f"{i:05d}" / "final_frame.png"))
    r = cli("score", "--data", data, "--outputs", tmp_path / "gt")
    assert r.exit_code == 0 and "solved 3/3" in r.output, r.output

    r = cli("run", "--model", "tiny-maze", "--data", data, "--out", out, "--steps", 4)
    assert r.exit_code == 0, r.output
    for i in range(3):
        assert (out / "maze" / f"{i:05d}.mp4").is_file()
        assert read_png(out / "maze" / f"{i:05d}.png").shape == (36, 36, 3)
    r = cli("score", "--data", data, "--outputs", out, "--out", tmp_path / "scores")
    assert r.exit_code == 0 and "solved" in r.output, r.output
    scores = json.loads((tmp_path / "scores" / "scores.json").read_text())
    assert scores["n"] == 3 and scores["missing"] == 0


@pytest.mark.slow
def test_eval_and_trace_and_demo(tmp_path):
    r = cli("eval", "--model", "tiny-maze", "--count", 4, "--size", 4, "--steps", 6, "--out", tmp_path / "ev")
    assert r.exit_code == 0 and "95% CI" in r.output, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["n"] == 4 and 0 <= res["solve_rate"] <= 1 and len(res["per_sample"]) == 4
    assert res["cost"] == {"nfe": 4 * 6, "nfe_without_reuse": 4 * 6}  # 6 steps a sample, CFG off

    r = cli("trace", "--model", "tiny-maze", "--seed", 3, "--size", 4, "--steps", 6, "--out", tmp_path / "tr")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert len(m["per_step"]) == 6 and len(m["sigmas"]) == 6
    for f in ("grid.png", "final_x0.gif", "cos.png", "x0.safetensors"):
        assert (tmp_path / "tr" / f).stat().st_size > 0
    steps = read_png(tmp_path / "tr" / "steps.png")  # the viewer's sprite: a row per step, frames side by side
    assert steps.shape[:2] == (6 * 9, 4 * 9 + 3)  # 4x4 mazes are 9 px; 4 frames with 1 px gaps
    assert m["viewer"]["steps"] == 6 and (tmp_path / "tr" / "highlight.png").is_file()

    r = cli("demo", "--count", 2, "--steps", 4, "--out", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "traces/maze-5-00000/grid.png" in html and "Summary" in html and 'class="slv"' in html
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    unsolved = [r for r in summary["rows"] if not r["solved"]]
    if unsolved:  # the search panel: the first unsolved sample, one seed beside early-beam, side by side
        panel = summary["search_panel"]
        assert panel["sample"] == unsolved[0]["sample"] and panel["search"]["nfe"] > 0
        assert "Searching along the steps" in html and 'class="slp"' in html and panel["trace"] + "/steps.png" in html
    else:
        assert "search_panel" not in summary


@pytest.mark.parametrize("args, message", [
    (("eval", "--model", "nonesuch", "--count", 1), "unknown model 'nonesuch'; available: tiny-maze"),
    (("eval", "--size", 12, "--count", 1), "from 3 to 9 cells, got 12"),
    (("eval", "--steps", 0, "--count", 1), "--steps 0: must be >= 1"),
    (("tasks", "generate", "maze", "--size", 2, "--out", "x"), "from 3 to 9 cells, got 2"),
    (("eval", "--model", "wan:/nowhere", "--count", 1), "Wan pipeline folder not found"),
])
def test_bad_input_is_named(args, message):
    r = cli(*args)
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output


def test_missing_and_corrupt_weights(tmp_path):
    r = cli("eval", "--model", tmp_path / "none.safetensors", "--count", 1)
    assert r.exit_code == 2 and "not found" in r.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage" * 20)
    r = cli("eval", "--model", bad, "--count", 1)
    assert r.exit_code == 2 and "corrupt" in r.output


def test_first_frame_not_a_maze(tmp_path):
    data = tmp_path / "data"
    cli("tasks", "generate", "maze", "--count", 1, "--size", 3, "--upscale", 2, "--out", data)
    d = data / "maze" / "00000"
    img = read_png(d / "first_frame.png")
    write_png(d / "first_frame.png", np.pad(img, ((0, 1), (0, 1), (0, 0))))  # 15x15 -> 15x... not an upscale
    r = cli("run", "--data", data, "--out", tmp_path / "o", "--steps", 2)
    assert r.exit_code == 2 and "first_frame.png" in r.output and "not a maze frame" in r.output, r.output
    write_png(d / "first_frame.png", np.random.default_rng(0).integers(0, 255, (14, 14, 3), dtype=np.uint8))
    r = cli("run", "--data", data, "--out", tmp_path / "o", "--steps", 2)
    assert r.exit_code == 2 and "not a maze frame" in r.output, r.output


@pytest.mark.slow
def test_probe_and_compare_through_the_cli(tmp_path):
    r = cli("probe", "noise", "--count", 3, "--size", 3, "--steps", 3, "--batch", 3, "--out", tmp_path / "noise")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "noise" / "results.json").read_text())
    assert res["probe"] == "noise" and res["table"][0]["condition"] == "clean"
    assert "Noise: one step vs one frame" in (tmp_path / "noise" / "report.html").read_text()
    assert "Compute: " in (tmp_path / "noise" / "report.html").read_text() and res["cost"]["nfe"] < \
        res["cost"]["nfe_without_reuse"]
    r = cli("probe", "noise", "--count", 3, "--size", 3, "--steps", 3, "--batch", 3, "--no-reuse", "--out",
            tmp_path / "noise-whole")
    whole = json.loads((tmp_path / "noise-whole" / "results.json").read_text())
    assert r.exit_code == 0 and whole["table"] == res["table"], r.output
    assert whole["cost"]["nfe"] == whole["cost"]["nfe_without_reuse"] == res["cost"]["nfe_without_reuse"]
    r = cli("compare", "--count", 3, "--size", 3, "--steps", 3, "--n-seeds", 2, "--methods", "vote,ensemble",
            "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    table = json.loads((tmp_path / "cmp" / "results.json").read_text())["table"]
    assert [(t["method"], t["n_seeds"]) for t in table] == [("single", 1), ("vote", 2), ("ensemble", 2)]
    cost = json.loads((tmp_path / "cmp" / "results.json").read_text())["cost"]
    assert cost == {"nfe": 3 * 3 * (1 + 2 + 2), "nfe_without_reuse": 45}  # one seed, then 2 seeds per method
    h2h = json.loads((tmp_path / "cmp" / "results.json").read_text())["head_to_head"]
    assert [(h["method"], h["n_seeds"], h["versus"], h["samples"]) for h in h2h] == [("ensemble", 2, "vote", 3)]
    r = cli("eval", "--count", 2, "--size", 3, "--steps", 3, "--method", "ensemble", "--n-seeds", 2)
    assert r.exit_code == 0 and "ensemble, N=2" in r.output, r.output


@pytest.mark.parametrize("args, message", [
    (("probe", "nonesuch", "--out", "x"), "unknown probe 'nonesuch'; available: noise"),
    (("eval", "--method", "magic", "--count", 1), "unknown method 'magic'; available: single"),
    (("eval", "--method", "vote", "--n-seeds", 0, "--count", 1), "n_seeds must be >= 1, got 0"),
    (("compare", "--alpha", 2, "--out", "x"), "--alpha 2.0: must be <= 1"),
])
def test_bad_probe_and_ensemble_input_is_named(args, message):
    r = cli(*args)
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output


@pytest.mark.slow  # end to end, 3-10 s: make test, not test-fast
def test_messages_and_tables_do_not_wrap_in_logs(tmp_path):
    """Issue 22: rich wrapped at 80 columns when the output is a log (no terminal): a path or a table row was cut
    over lines. Without a terminal the console is wide; a terminal keeps its own width."""
    import os
    import subprocess
    import sys

    from steplens.tasks import get_task, write_sample

    data = tmp_path / "data"
    write_sample(data, get_task("maze").sample(0, 3, 3, idx=0), scale=2)
    out = tmp_path / ("a-long-output-folder-name-" * 4) / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    p = subprocess.run([sys.executable, "-m", "steplens.cli", "run", "--data", str(data), "--out", str(out),
                        "--steps", "2"], capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"generated 1 videos into {out} (0 of 1 were done)" in p.stdout.splitlines(), p.stdout
    runs = tmp_path / "runs" / ("a-run-folder-with-a-long-name-" * 3)
    runs.mkdir(parents=True)
    (runs / "results.json").write_text('{"probe": "noise", "headline": [1]}')  # listed as malformed: a long row
    p = subprocess.run([sys.executable, "-m", "steplens.cli", "report", str(tmp_path / "runs")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    row = next(line for line in p.stdout.splitlines() if "a-run-folder" in line)
    assert runs.name in row and "is malformed" in row, p.stdout  # the whole row on one line
