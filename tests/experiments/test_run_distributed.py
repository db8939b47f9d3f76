"""`steplens run` shared out over 2 processes by torchrun: every sample done once, same outputs as one process."""


import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.experiments.dist import shard
from steplens.io.files import read_png


def test_shard_takes_every_world_th_job():
    jobs = list(range(7))
    assert shard(jobs, 0, 2) == [0, 2, 4, 6] and shard(jobs, 1, 2) == [1, 3, 5]
    assert sorted(shard(jobs, 0, 3) + shard(jobs, 1, 3) + shard(jobs, 2, 3)) == jobs


@pytest.mark.parametrize("backend", ["embedded", "wan"])
def test_torchrun_run_equals_single_process(torchrun, tmp_path, backend):
    runner = CliRunner()
    data = tmp_path / "data"
    assert runner.invoke(app, ["tasks", "generate", "maze", "--count", "5", "--size", "3", "--upscale", "2",
                               "--out", str(data)]).exit_code == 0
    model = "tiny-maze"
    if backend == "wan":  # the tiny two-expert Wan2.2 config, saved as a local diffusers folder
        pytest.importorskip("diffusers")
        from steplens.backends.wan.tiny import tiny_wan22_i2v

        tiny_wan22_i2v(seed=0).save_pretrained(tmp_path / "wan")
        model = f"wan:{tmp_path / 'wan'}"
    one = tmp_path / "one"
    r = runner.invoke(app, ["run", "--model", model, "--data", str(data), "--out", str(one), "--steps", "3"])
    assert r.exit_code == 0, r.output
    two = tmp_path / "two"
    p = torchrun("-m", "steplens.cli", "run", "--model", model, "--data", data, "--out", two, "--steps", 3)
    assert p.returncode == 0, p.stderr[-2000:]
    for i in range(5):
        a, b = read_png(one / "maze" / f"{i:05d}.png"), read_png(two / "maze" / f"{i:05d}.png")
        assert a.shape == b.shape and (a == b).mean() > 0.999
