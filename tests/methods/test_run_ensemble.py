"""The ensemble as an option of `steplens run`: selection rules, and the seeds split over 2 torchrun processes."""


import numpy as np
import pytest
from typer.testing import CliRunner

from steplens.presets import resolve
from steplens.cli import app
from steplens.io.files import read_png
from steplens.io.video import to_uint8, upscale
from steplens.methods.ensemble import EnsembleConfig, generate_ensemble
from steplens.models.load import load_model
from steplens.tasks.folders import find_samples as sample_dirs, read_sample

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    r = cli("tasks", "generate", "maze", "--count", 3, "--size", 6, "--upscale", 2, "--out", root)
    assert r.exit_code == 0, r.output
    return root


def _members(data, n, steps, alpha=1.0):
    """Every member's decoded video (B, N, C, T, H, W) in [-1, 1], computed here through the API."""
    model = load_model("tiny-maze")
    samples = [read_sample(d) for d in sample_dirs(data)]
    lat = generate_ensemble(model, samples, [s.idx for s in samples], EnsembleConfig(n_seeds=n, alpha=alpha),
                            sampling=resolve(model, steps=steps))
    px = model.decode(lat.flatten(0, 1))
    return px.reshape(*lat.shape[:2], *px.shape[1:])


def _written(video):
    """A video's last frame as `run` writes it to the PNG: uint8, upscaled x2 like the data."""
    return upscale(to_uint8(video), 2)[-1]


@pytest.mark.slow
def test_run_ensemble_first_and_all_write_member_zero(data, tmp_path):
    out = tmp_path / "all"
    r = cli("run", "--data", data, "--out", out, "--steps", 6, "--ensemble", 3, "--select", "all")
    assert r.exit_code == 0, r.output
    want = [_written(v[0]) for v in _members(data, 3, 6)]
    for i in range(3):
        assert np.array_equal(read_png(out / "maze" / f"{i:05d}.png"), want[i])
        assert [(out / "maze" / f"{i:05d}.seed{k}.mp4").is_file() for k in range(3)] == [True] * 3
        assert (out / "maze" / f"{i:05d}.mp4").read_bytes() == (out / "maze" / f"{i:05d}.seed0.mp4").read_bytes()
    first = tmp_path / "first"
    assert cli("run", "--data", data, "--out", first, "--steps", 6, "--ensemble", 3).exit_code == 0
    assert not list((first / "maze").glob("*.seed*.mp4"))
    assert all(np.array_equal(read_png(first / "maze" / f"{i:05d}.png"), want[i]) for i in range(3))


@pytest.mark.slow
def test_run_ensemble_consensus_writes_the_member_closest_to_the_others(data, tmp_path):
    out = tmp_path / "cons"
    r = cli("run", "--data", data, "--out", out, "--steps", 6, "--ensemble", 4, "--alpha", 0, "--select", "consensus")
    assert r.exit_code == 0, r.output
    from steplens.io.video import to_rgb

    px = _members(data, 4, 6, alpha=0.0)
    # in the space `run` decides in: the decoded last frames as RGB (runner._pick)
    last = to_rgb(px[:, :, :, -1].flatten(0, 1)).reshape(3, 4, -1).astype(np.float64)
    for i in range(3):
        dist = [sum(((last[i, k] - last[i, j]) ** 2).mean() for j in range(4)) for k in range(4)]
        assert np.array_equal(read_png(out / "maze" / f"{i:05d}.png"), _written(px[i, int(np.argmin(dist))]))


@pytest.mark.parametrize("args, msg", [
    (("--ensemble", 0), "n_seeds must be >= 1, got 0"),
    (("--ensemble", 2, "--alpha", 1.5), "--alpha 1.5: must be <= 1"),
    (("--ensemble", 2, "--select", "best"), "unknown selection rule 'best'; available: first, consensus, all"),
    (("--select", "consensus",), "need an ensemble"),
    (("--ensemble", 2, "--ens-blocks", "9"), "block 9 out of range: the model has blocks 0..7"),
    (("--ensemble", 2, "--ens-blocks", "a,b"), "expected comma-separated integers, got 'a,b'"),
])
def test_run_ensemble_bad_input_is_named(data, tmp_path, args, msg):
    r = cli("run", "--data", data, "--out", tmp_path / "x", "--steps", 2, *args)
    assert r.exit_code == 2 and msg in " ".join(r.output.split()), r.output


def _torchrun(torchrun, data, out, n):
    return torchrun("-m", "steplens.cli", "run", "--data", data, "--out", out, "--steps", 6, "--ensemble", n,
                    "--split-seeds")


def test_torchrun_split_seeds_equals_the_batched_ensemble(torchrun, data, tmp_path):
    p = _torchrun(torchrun, data, tmp_path / "two", 4)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    want = [_written(v[0]).astype(int) for v in _members(data, 4, 6)]
    for i in range(3):
        got = read_png(tmp_path / "two" / "maze" / f"{i:05d}.png").astype(int)
        assert np.abs(got - want[i]).max() <= 1  # all-reduced means: equal within float rounding


def test_torchrun_split_seeds_refuses_a_world_size_not_dividing_n(torchrun, data, tmp_path):
    p = _torchrun(torchrun, data, tmp_path / "bad", 3)
    assert p.returncode != 0 and "world size 2 does not divide n_seeds=3" in " ".join((p.stdout + p.stderr).split())
