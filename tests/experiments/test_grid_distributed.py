"""Every experiment's jobs shared among processes (issue 23, item 2): a probe under `torchrun --nproc_per_node 2`
(CPU, gloo) gives the rows and results.json of one process; a process SIGKILLed mid-run, then the command run again,
runs only what was missing and ends the same; an output folder a rank does not share is named; `--engine ray` on a
local 2-CPU Ray cluster gives the same results, and a worker killed mid-run is retried."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port

from steplens.io.reproduce import differing_files

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STEPLENS = [sys.executable, "-m", "steplens.cli"]
# 4 jobs (one sample each) x the noise probe's default conditions at 4 steps: a few seconds per process
PROBE = ["probe", "noise", "--count", "4", "--size", "3", "--steps", "4", "--batch", "1"]


def _torchrun(*args, nproc=2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
            "127.0.0.1", "--master-port", str(free_port()), *[str(a) for a in args]]


def _rows(store: Path) -> list[dict]:
    """Every stored row: rows.jsonl and the ranks' shards."""
    return [json.loads(line) for p in sorted(store.glob("rows*.jsonl")) for line in p.read_text().splitlines()
            if line.strip()]


def _ran(stderr: str) -> int:
    """The rows the processes said they would run (each: missing (condition, sample) rows of its jobs)."""
    return sum(int(n) for n in re.findall(r"jobs to run, (\d+) rows", stderr))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The probe in one process."""
    out = tmp_path_factory.mktemp("one") / "out"
    subprocess.run(STEPLENS + PROBE + ["--out", str(out)], env=ENV, check=True, capture_output=True, timeout=300)
    return out


def _total(reference: Path) -> int:
    """The rows of the whole probe: 4 samples x its conditions, as one process stored them."""
    n = len(_rows(reference / "store"))
    assert n % 4 == 0 and n >= 4 * 5
    return n


def _same(a: Path, b: Path) -> None:
    ra, rb = json.loads((a / "results.json").read_text()), json.loads((b / "results.json").read_text())
    assert ra["table"] == rb["table"] and ra["headline"] == rb["headline"]
    assert ra == rb
    assert (a / "store" / "rows.jsonl").read_text() == (b / "store" / "rows.jsonl").read_text()
    assert (a / "noise.csv").read_bytes() == (b / "noise.csv").read_bytes()
    assert not list((b / "store").glob("rows-*.jsonl"))  # the shards were folded in


def test_torchrun_probe_equals_one_process(reference, tmp_path):
    rows_total = _total(reference)
    out = tmp_path / "two"
    t0 = time.time()
    p = subprocess.run(_torchrun("-m", "steplens.cli", *PROBE, "--out", out), env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    # both ranks ran a share (2 one-sample jobs each: the same cost), every row once
    shares = re.findall(r"\[rank (\d) of 2\]: (\d+) of 4 jobs to run", p.stderr)
    assert sorted(shares) == [("0", "2"), ("1", "2")], p.stderr[-3000:]
    assert _ran(p.stderr) == rows_total
    _same(reference, out)
    assert len(_rows(out / "store")) == rows_total
    print(f"torchrun x2: {time.time() - t0:.1f} s")


def test_torchrun_rank_killed_then_rerun_runs_only_what_is_missing(reference, tmp_path):
    rows_total = _total(reference)
    out = tmp_path / "killed"
    p = subprocess.Popen(_torchrun("-m", "steplens.cli", *PROBE, "--out", out), env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120  # kill once a quarter of the rows are stored
        while time.time() < deadline and p.poll() is None and \
                len(_rows(out / "store") if (out / "store").exists() else []) < rows_total // 4:
            time.sleep(0.05)
        assert p.poll() is None, "the run ended before it could be killed"
        children = [int(c) for c in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
        os.kill(children[-1], signal.SIGKILL)  # one rank, mid-run; torchrun then stops the other
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode != 0
    kept = _rows(out / "store")
    keys = {(r["condition"], r["sample"]) for r in kept}
    assert len(keys) == len(kept) and 0 < len(kept) < rows_total, len(kept)  # finished rows kept, once each
    again = subprocess.run(_torchrun("-m", "steplens.cli", *PROBE, "--out", out), env=ENV, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _ran(again.stderr) == rows_total - len(kept), again.stderr[-3000:]  # nothing finished ran again
    assert len(_rows(out / "store")) == rows_total
    _same(reference, out)


COUNTED = """
import os, sys
import steplens.models.load as load
real = load.load_model
def counted(*a, **kw):
    print("model loading on rank", os.environ.get("RANK"), file=sys.stderr, flush=True)
    return real(*a, **kw)
load.load_model = counted
sys.argv = ["steplens"] + sys.argv[1:]
from steplens.cli import main
main()
"""


def test_torchrun_rerun_of_another_configuration_is_refused_on_every_rank_before_it_loads(reference, tmp_path):
    """Issue 22, items 1 and 5: each process refuses an OUT of another configuration itself (no rank writes into it
    while another refuses), naming the field, before its model loads."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = {x.relative_to(out): x.read_bytes() for x in sorted(out.rglob("*")) if x.is_file()}
    script = tmp_path / "counted.py"
    script.write_text(COUNTED)
    other = [("5" if a == "4" and PROBE[i - 1] == "--steps" else a) for i, a in enumerate(PROBE)]
    p = subprocess.run(_torchrun(script, *other, "--out", out), env=ENV, capture_output=True, text=True, timeout=300)
    text = " ".join(p.stderr.split())
    assert p.returncode != 0, text[-3000:]
    assert text.count("another configuration") == 2 and text.count("steps: saved 4, given 5") == 2, text[-3000:]
    assert "model loading" not in text, text[-3000:]
    assert {x.relative_to(out): x.read_bytes() for x in sorted(out.rglob("*")) if x.is_file()} == before


STUDY = ["study", "--tasks", "maze", "--count", "2", "--probe-count", "2", "--compare-count", "2", "--steps", "2",
         "--batch", "1", "--parts", "solve,noise,energy,compare", "--compare-families", "1"]


def test_torchrun_study_equals_one_process(tmp_path):
    """The study with tiny counts (solve at two sizes, noise, compare on the weakest family, which every rank picks
    from the merged rows): every table, row and study.json as one process's."""
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(STEPLENS + STUDY + ["--out", str(one)], env=ENV, check=True, capture_output=True, timeout=300)
    p = subprocess.run(_torchrun("-m", "steplens.cli", *STUDY, "--out", two), env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "[rank 1 of 2]" in p.stderr
    files = sorted(x.relative_to(one) for x in one.rglob("*") if x.is_file())
    assert files == sorted(x.relative_to(two) for x in two.rglob("*") if x.is_file())
    assert (one / "maze" / "energy" / "pca.png").is_file()
    # every file byte for byte, the energy probe's pca.png and every plot included, the timing fields aside (issue 31)
    assert differing_files(one, two) == []
    a, b = (json.loads((d / "study.json").read_text()) for d in (one, two))
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_torchrun_study_rerun_of_another_configuration_is_refused_on_every_rank_before_it_loads(tmp_path):
    """Issue 31, item 5: `study` checks its folder (every part's store) before the model loads, on every process."""
    out = tmp_path / "out"
    study = ["study", "--tasks", "maze", "--count", "1", "--batch", "1", "--parts", "solve", "--steps", "2"]
    subprocess.run(STEPLENS + study + ["--out", str(out)], env=ENV, check=True, capture_output=True, timeout=300)
    (out / "study.json").unlink()  # as a killed study leaves it
    before = {x.relative_to(out): x.read_bytes() for x in sorted(out.rglob("*")) if x.is_file()}
    script = tmp_path / "counted.py"
    script.write_text(COUNTED)
    p = subprocess.run(_torchrun(script, *study[:-1], "3", "--out", out), env=ENV, capture_output=True, text=True,
                       timeout=300)
    text = " ".join(p.stderr.split())
    assert p.returncode != 0, text[-3000:]
    assert text.count("another configuration") == 2 and text.count("steps: saved 2, given 3") == 2, text[-3000:]
    assert "model loading" not in text, text[-3000:]
    assert {x.relative_to(out): x.read_bytes() for x in sorted(out.rglob("*")) if x.is_file()} == before


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data") / "data"
    subprocess.run(STEPLENS + ["tasks", "generate", "maze", "--count", "4", "--size", "3", "--out", str(d)],
                   env=ENV, check=True, capture_output=True)
    return d


@pytest.mark.parametrize("name", ["eval", "trace"])
def test_torchrun_eval_and_trace_share_their_samples(data, tmp_path, name):
    """`eval` (its batches shared, the rows gathered, rank 0 reports) and `trace --data` (each rank traces its share
    into its own folders): each process ran half the samples, and the files are those of one process."""
    args = {"eval": ["eval", "--data", data, "--steps", "3", "--batch", "1"],
            "trace": ["trace", "--data", data, "--count", "4", "--steps", "3"]}[name]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(STEPLENS + [str(a) for a in args] + ["--out", str(one)], env=ENV, check=True,
                   capture_output=True, timeout=300)
    p = subprocess.run(_torchrun("-m", "steplens.cli", *args, "--out", two), env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    if name == "eval":  # each rank's bar ran 2 samples; rank 0 alone reports the 4
        assert "| 2/2 [" in p.stderr and "/4 [" not in p.stderr, p.stderr[-2000:]
        assert p.stdout.count("on 4 samples of") == 1 and "solved 4/4" in p.stdout, p.stdout
    else:  # one line per traced sample, from whichever rank traced it: 4 in all
        assert p.stdout.count("solved:") == 4, p.stdout
    files = {x.relative_to(one): x.read_bytes() for x in sorted(one.rglob("*")) if x.is_file()}
    assert files == {x.relative_to(two): x.read_bytes() for x in sorted(two.rglob("*")) if x.is_file()}


RANK_CWD = """
import os, sys
os.chdir(os.path.join(sys.argv[1], "node" + os.environ["RANK"]))  # each rank its own disk: --out not shared
sys.argv = ["steplens"] + sys.argv[2:]
from steplens.cli import main
main()
"""


def test_a_rank_that_does_not_share_the_output_folder_is_named(tmp_path):
    for r in (0, 1):
        (tmp_path / f"node{r}").mkdir()
    script = tmp_path / "node.py"
    script.write_text(RANK_CWD)
    p = subprocess.run(_torchrun(script, tmp_path, *PROBE, "--out", "out", "--model", "missing.safetensors"),
                       env=ENV, capture_output=True, text=True, timeout=120)
    text = " ".join((p.stdout + p.stderr).split())
    assert p.returncode != 0
    assert "is not one folder shared by all 2 processes" in text, text[-3000:]
    assert "rank 1 on host" in text and "does not see the markers of rank 0" in text, text[-3000:]
    assert "not found" not in text  # refused before the model (a missing file here) was reached
    for r in (0, 1):
        assert not (tmp_path / f"node{r}" / "out" / "store").exists()
        assert not (tmp_path / f"node{r}" / "out" / ".steplens-ranks").exists()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_engine_ray_on_the_command_line_equals_one_process(ray_cluster, reference, tmp_path):
    """`steplens probe noise --engine ray --workers 2` on the local cluster: the rows and results of one process."""
    from typer.testing import CliRunner

    from steplens.cli import app

    out = tmp_path / "ray"
    r = CliRunner().invoke(app, PROBE + ["--out", str(out), "--engine", "ray", "--workers", "2"])
    assert r.exit_code == 0, r.output[-3000:]
    assert f"[on 2 Ray workers]: 4 of 4 jobs to run, {_total(reference)} rows" in r.output
    _same(reference, out)


def test_ray_engine_equals_one_process_and_retries_a_killed_worker(ray_cluster, tmp_path):
    """The noise probe's jobs on 2 Ray actors (the tiny shipped model each), one of them SIGKILLed mid-run: Ray
    restarts it and retries its job; the rows and results are those of one process."""
    import functools
    import threading

    import torch

    from steplens.experiments.engine import RayEngine, using
    from steplens.experiments.grid import ExperimentSettings
    from steplens.models.load import load_model
    from steplens.probes import get_probe

    noise = get_probe("noise")
    model = load_model("tiny-maze")
    s = ExperimentSettings(count=4, size=3, steps=4, batch=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each actor (1 CPU) runs
    try:
        ref = noise.run(model, tmp_path / "one", s, progress=False)
    finally:
        torch.set_num_threads(threads)
    per_job = len(ref["table"])  # one sample's rows: one per condition
    engine = RayEngine(2, functools.partial(load_model, "tiny-maze"), model=model)
    before = engine.pids()
    rows = tmp_path / "ray" / "store" / "rows.jsonl"
    killed = {}

    def kill_one():
        deadline = time.time() + 120
        while time.time() < deadline:
            if rows.exists() and len(rows.read_text().splitlines()) >= per_job:  # one job back: the pool is busy
                os.kill(before[0], signal.SIGKILL)
                killed["at"] = len(rows.read_text().splitlines())
                return
            time.sleep(0.02)

    t = threading.Thread(target=kill_one)
    t.start()
    try:
        with using(engine):
            res = noise.run(model, tmp_path / "ray", s, progress=False)
        t.join()
        after = engine.pids()
    finally:
        engine.close()
    assert killed and killed["at"] < 4 * per_job, killed
    assert after[0] != before[0] and after[1] == before[1]  # the killed actor was restarted, the other kept
    assert res["table"] == ref["table"] and res["headline"] == ref["headline"]
    _same(tmp_path / "one", tmp_path / "ray")
