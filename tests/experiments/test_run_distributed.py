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


def test_torchrun_run_says_totals_once(torchrun, tmp_path):
    """Issue 22: under torchrun each rank printed its own count ('generated 3 videos', 'generated 2 videos'), read
    as totals, and each its own warnings. Rank 0 says the totals across the ranks, once; warnings come once."""
    from builders import make_vbvr_rendered

    data = tmp_path / "data"
    make_vbvr_rendered(data, per_task=5, px=34)  # samples not drawn by steplens: one warning per load
    out = tmp_path / "out"
    p = torchrun("-m", "steplens.cli", "run", "--data", data, "--out", out, "--steps", 2, "--frames", 2)
    assert p.returncode == 0, p.stderr[-2000:]
    said = [line for line in p.stdout.splitlines() if line.startswith("generated")]
    assert said == [f"generated 5 videos into {out} (0 of 5 were done) by 2 processes"], p.stdout
    assert p.stderr.count("taken as they are") == 1, p.stderr[-3000:]
    p = torchrun("-m", "steplens.cli", "run", "--data", data, "--out", out, "--steps", 2, "--frames", 2)
    assert p.returncode == 0, p.stderr[-2000:]
    said = [line for line in p.stdout.splitlines() if line.startswith("generated")]
    assert said == [f"generated 0 videos into {out} (5 of 5 were done) by 2 processes"], p.stdout
