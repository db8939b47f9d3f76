"""`--engine ray` asks the cluster before it starts (issue 31, battery): workers it cannot place are refused naming
what it has (was: no progress in 300 s; --workers 1000000 segfaulted), and a placement that does not come within the
wait says so (was: a silent hang). Needs ray (the [ray] extra)."""

import time

import pytest
from typer.testing import CliRunner

from steplens.cli import app

pytestmark = pytest.mark.distributed
PROBE = ["probe", "noise", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--batch", 1]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


@pytest.mark.parametrize("workers", [64, 1_000_000])
def test_workers_the_cluster_cannot_place_are_refused_naming_what_it_has(workers, ray_cluster, tmp_path, loads):
    out = tmp_path / "out"
    t0 = time.time()
    r, text = _cli(*PROBE, "--engine", "ray", "--workers", workers, "--out", out)
    assert r.exit_code == 2, text
    assert f"--workers {workers}" in text and "2 CPU" in text and "room for 2" in text, text
    assert time.time() - t0 < 30 and loads == [] and not (out / "store").exists(), (loads, text)


def test_a_placement_that_does_not_come_says_so(ray_cluster, tmp_path, monkeypatch, loads):
    """Both CPUs held by another job's placement group: the pool cannot be placed; refused after the wait."""
    from ray.util.placement_group import placement_group, remove_placement_group

    import steplens.experiments.engine as engine

    held = placement_group([{"CPU": 1}, {"CPU": 1}])
    ray_cluster.get(held.ready(), timeout=30)
    monkeypatch.setattr(engine, "PLACE_WAIT", 3)
    try:
        t0 = time.time()
        r, text = _cli(*PROBE, "--engine", "ray", "--workers", 1, "--out", tmp_path / "out")
    finally:
        remove_placement_group(held)
    assert r.exit_code == 2, text
    assert "could not place" in text and "within 3 s" in text and "2 CPU" in text, text
    assert time.time() - t0 < 30 and loads == [], (loads, text)
