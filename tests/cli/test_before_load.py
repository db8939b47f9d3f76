"""Refusals made before the model loads (issue 22, item 5): an --out folder of another configuration (`run`,
`eval`), named field by field, with the model loader never called (the `loads` fixture of conftest.py; probe, compare
and trace: tests/test_bad_input.py)."""

import json

import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import get_task, write_sample


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for i in range(2):
        write_sample(root, get_task("maze").sample(i, 3, 3, idx=i), scale=2)
    return root


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def test_run_into_a_folder_of_other_steps_is_refused_before_the_model_loads(data, tmp_path, loads):
    out = tmp_path / "run"
    r, text = _cli("run", "--data", data, "--out", out, "--steps", 2, "--count", 1)
    assert r.exit_code == 0, text
    assert loads == ["tiny-maze"]
    saved = (out / "run_config.json").read_text()
    for extra, field in ((["--steps", 3], "steps: saved 2, given 3"), (["--steps", 2, "--guidance", 2], "guidance"),
                         (["--steps", 2, "--model", "tiny-maze-2goal"], "model: saved"),
                         (["--steps", 2, "--video", "latent-frames"], "video: saved"),
                         (["--steps", 2, "--seed", 5], "seed: saved 0, given 5")):
        r, text = _cli("run", "--data", data, "--out", out, *extra)
        assert r.exit_code == 2, text
        assert "another configuration" in text and field in text, (field, text)
        assert loads == ["tiny-maze"], (extra, loads)  # refused before any load
    assert (out / "run_config.json").read_text() == saved
    r, text = _cli("run", "--data", data, "--out", out, "--steps", 2)  # the same configuration resumes
    assert r.exit_code == 0 and "1 of 2 were done" in text, text


def test_eval_into_a_folder_of_another_configuration_is_refused_before_the_model_loads(tmp_path, loads):
    out = tmp_path / "eval"
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", out)
    assert r.exit_code == 0, text
    saved = json.loads((out / "results.json").read_text())
    for extra, field in ((["--steps", 3], "steps: saved 2, given 3"), (["--steps", 2, "--size", 4], "size"),
                         (["--steps", 2, "--method", "vote"], "method: saved")):
        r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--out", out, *extra)
        assert r.exit_code == 2, text
        assert "another configuration" in text and field in text, (field, text)
        assert len(loads) == 1, (extra, loads)
    assert json.loads((out / "results.json").read_text()) == saved
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", out)  # same: rerun
    assert r.exit_code == 0, text
    run = tmp_path / "run-folder"  # a `run` folder is not an eval folder of the same model
    run.mkdir()
    (run / "run_config.json").write_text(json.dumps({"model": "tiny-maze", "steps": 9}))
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", run)
    assert r.exit_code == 2 and "run_config.json" in text, text
    assert len(loads) == 2
