"""Explicit σ lists on the embedded model: generate(sigmas=...), a student's own σ list from its weights' info, and
--sigmas through presets.resolve and the CLI into the run config."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from steplens.cli import app
from steplens.models.load import load_model
from steplens.models.weights import save_weights
from steplens.models.wrap import EmbeddedModel
from steplens.backends.wan.presets import DISTILLED
from steplens.presets import resolve
from steplens.sampling import flow_sigmas
from steplens.tasks import get_task

MAZE = get_task("maze")


def _data(tmp_path):
    r = CliRunner().invoke(app, ["tasks", "generate", "maze", "--count", "1", "--size", "3", "--frames", "2",
                                 "--out", str(tmp_path / "data")])
    assert r.exit_code == 0, r.output
    return str(tmp_path / "data")


def _run(model, sampling=None, **kw):
    seen = []
    sampling = sampling or (resolve(model, **kw) if kw else None)
    out = model.generate([MAZE.sample(0, 3, 2), MAZE.sample(1, 3, 2)], [0, 1], sampling=sampling, callback=seen.append)
    return out, [s.sigma for s in seen], [s.sigma_next for s in seen]


def test_the_distilled_sigmas_are_the_shift_5_grid_at_1000_750_500_250():
    assert DISTILLED["sigmas"] == [1.0, 0.9375, 5 * 0.5 / (1 + 4 * 0.5), 0.625]
    assert DISTILLED["sigmas"][2] == pytest.approx(0.8333333333)


def test_generate_runs_exactly_the_given_sigmas(tiny_model):
    grid = flow_sigmas(4, 2.0)
    a, _, _ = _run(tiny_model, steps=4, shift=2.0)
    b, sig, nxt = _run(tiny_model, sigmas=grid[:-1].tolist())  # the final 0 implied
    assert torch.equal(a, b)
    c, _, _ = _run(tiny_model, sampling=replace(resolve(tiny_model, steps=7, shift=9.0), sigmas=grid.tolist()))  # the
    # final 0 given; sigmas win
    assert torch.equal(a, c)
    _, sig, nxt = _run(tiny_model, sigmas=[1.0, 0.9, 0.75, 0.5])
    assert sig == [float(torch.tensor(x)) for x in (1.0, 0.9, 0.75, 0.5)]  # float32 of each σ, exactly
    assert nxt[-1] == 0.0 and len(sig) == 4


def test_a_students_own_sigma_list_from_its_weights(tmp_path, tiny_model):
    sigmas = [1.0, 0.8, 0.3, 0.0]  # not a flow_sigmas grid: only the stored list gives these
    info = {"sampling": {"steps": 3, "shift": 3.0, "guidance": 1.0, "scheduler": "euler", "sigmas": sigmas,
                         "sigmas_are_flow_sigmas": False}}
    path = tmp_path / "student.safetensors"
    save_weights(path, tiny_model.net, tiny_model.net.cfg.to_dict(), info=info, dtype=torch.float32)
    student = load_model(str(path))
    own = student.sampling_defaults()
    assert (own["steps"], own["shift"], own["guidance"], own["sigmas"]) == (3, 3.0, 1.0, [1.0, 0.8, 0.3])
    out, sig, _ = _run(student)  # generate() with nothing given: the student's own σ list
    assert sig == [float(torch.tensor(s)) for s in sigmas[:-1]]
    same, _, _ = _run(EmbeddedModel(tiny_model.net), sigmas=sigmas)
    assert torch.equal(out, same)
    sp = resolve(student, None)
    assert list(sp.sigmas) == [1.0, 0.8, 0.3] and sp.steps == 3 and sp.sources["sigmas"] == "model"
    assert sp.describe()["sigmas"] == [1.0, 0.8, 0.3]
    # --steps equal to the list's length keeps it (as generate does); other --steps / --shift drop the model's list
    assert list(resolve(student, None, steps=3, shift=3.0).sigmas) == [1.0, 0.8, 0.3]
    assert resolve(student, None, shift=2.0).sigmas is None
    sp = resolve(student, None, steps=5)
    assert sp.sigmas is None and sp.steps == 5
    _, sig, _ = _run(student, steps=5)
    assert sig == pytest.approx(flow_sigmas(5, 3.0)[:-1].tolist())
    # the CLI samples with the student's list and records it
    r = CliRunner().invoke(app, ["run", "--model", str(path), "--out", str(tmp_path / "o"), "--data",
                                 _data(tmp_path)])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o" / "run_config.json").read_text())
    got = got.get("config", got)
    assert got["sampling"]["sigmas"] == [1.0, 0.8, 0.3] and got["steps"] == 3


def test_sigmas_option_reaches_the_sampler_and_the_run_config(tmp_path):
    model = load_model("tiny-maze")
    sp = resolve(model, None, sigmas="1,0.9,0.5,0")
    assert list(sp.sigmas) == [1.0, 0.9, 0.5] and sp.steps == 3 and sp.sources["steps"] == "option"
    _, sig, _ = _run(model, sampling=sp)  # the resolved list, as the commands call generate
    assert sig == [float(torch.tensor(s)) for s in (1.0, 0.9, 0.5)]
    r = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "o"), "--data", _data(tmp_path),
                                 "--sigmas", "1,0.6,0.2"])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o" / "run_config.json").read_text())
    got = got.get("config", got)
    assert got["sampling"]["sigmas"] == [1.0, 0.6, 0.2] and got["steps"] == 3
    assert got["sampling"]["sources"]["sigmas"] == "option"
    # --shift agreeing with --sigmas is taken (the list is that shift's grid)
    grid = ",".join(f"{s:.9f}" for s in flow_sigmas(3, 2.0)[:-1].tolist())
    assert resolve(load_model("tiny-maze"), None, shift=2.0, sigmas=grid).steps == 3
