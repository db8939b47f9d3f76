"""`run` on samples at their native size with odd sides (issue 22, item 5): an 11x11 maze's video cannot be H.264
encoded as it is, so run writes it at an even upscale (x2), decided and stated before the model loads, recorded in
run_config.json, and `score` scores it as it scores any upscale."""

import json
import sys

import pytest
from typer.testing import CliRunner

import steplens.models.load as model_load
from steplens.cli import app
from steplens.io.files import atomic_write_text, read_mp4, read_png, write_png
from steplens.tasks import Scorers, get_task


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


@pytest.fixture
def native(tmp_path):
    """A sample folder at native size: an 11x11-pixel maze (first and final frame, prompt, metadata; an odd-sided
    ground-truth video cannot be written, so there is none)."""
    s = get_task("maze").sample(0, 5, 3, idx=0)
    d = tmp_path / "data" / "maze" / "00000"
    d.mkdir(parents=True)
    write_png(d / "first_frame.png", s.first_frame)
    write_png(d / "final_frame.png", s.ground_truth[-1])
    atomic_write_text(d / "prompt.txt", s.prompt + "\n")
    atomic_write_text(d / "metadata.json", json.dumps({**s.meta, "frames": s.frames, "upscale": 1}))
    assert s.first_frame.shape == (11, 11, 3)
    return tmp_path / "data"


@pytest.fixture
def loads(monkeypatch):
    """The model loads of the commands a test invokes (the real loader runs), each with what the command had
    printed before it."""
    calls = []
    real = model_load.load_model

    def counted(*a, **kw):
        sys.stdout.flush()
        calls.append(" ".join(sys.stdout.buffer.getvalue().decode().split()))
        return real(*a, **kw)
    monkeypatch.setattr(model_load, "load_model", counted)
    return calls


def test_run_on_odd_native_sides_writes_an_even_upscale_stated_before_the_model_loads(native, tmp_path, loads):
    out = tmp_path / "out"
    r, text = _cli("run", "--data", native, "--out", out, "--steps", 2)
    assert r.exit_code == 0, text
    said = "11x11-pixel frames have odd sides (H.264 needs even ones): their videos are written upscaled x2 (22x22)"
    assert said in text
    assert len(loads) == 1 and said in loads[0], loads  # decided and said before the model loaded
    video, last = read_mp4(out / "maze" / "00000.mp4"), read_png(out / "maze" / "00000.png")
    assert video.shape[1:] == (22, 22, 3) and last.shape == (22, 22, 3)
    assert json.loads((out / "run_config.json").read_text())["even_upscale"] == {"11x11": 2}
    r, text = _cli("run", "--data", native, "--out", out, "--steps", 2)  # the same configuration resumes
    assert r.exit_code == 0 and "1 of 1 were done" in text, text

    r, text = _cli("score", "--data", native, "--outputs", out, "--out", tmp_path / "scores.json")
    assert r.exit_code == 0, text
    row = json.loads((tmp_path / "scores.json").read_text())["rows"][0]
    from steplens.tasks.folders import read_sample

    s = read_sample(native / "maze" / "00000", native, 0, None, None, need_frames=False)
    at_native = Scorers().for_sample(s).score(last[None, ::2, ::2], s)  # the same answer at 11x11
    assert (row["success"], row["score"]) == (bool(at_native.success), float(at_native.score))
