"""An output folder's identity (issue 22): under torchrun every rank checks `run`'s folder before it writes
(finding 2); two writers of different configurations into one results store: one is refused, the other's rows
stay intact (the two-writer case)."""

import json
import multiprocessing as mp

from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.store import ResultsStore


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_torchrun_rerun_with_other_steps_is_refused_on_every_rank(torchrun, tmp_path):
    runner = CliRunner()
    data, out = tmp_path / "data", tmp_path / "out"
    assert runner.invoke(app, ["tasks", "generate", "maze", "--count", "4", "--size", "3", "--upscale", "2",
                               "--out", str(data)]).exit_code == 0
    r = runner.invoke(app, ["run", "--model", "tiny-maze", "--data", str(data), "--out", str(out), "--steps", "4",
                            "--count", "1"])
    assert r.exit_code == 0, r.output
    before = _files(out)
    p = torchrun("-m", "steplens.cli", "run", "--model", "tiny-maze", "--data", data, "--out", out, "--steps", 6)
    assert p.returncode != 0
    assert _files(out) == before, p.stderr[-2000:]  # rank 1 wrote nothing either
    text = " ".join((p.stdout + p.stderr).split())
    assert text.count("another configuration") >= 2, text[-3000:]  # each rank refused, naming why


def _writer(path, config, barrier, tag, q):
    try:
        store = ResultsStore(path, ("condition", "sample"), config)
        barrier.wait()  # both opened before either wrote: the race of two `probe` runs started at once
        for i in range(4):
            store.add([{"condition": "c", "sample": f"{tag}{i}", "value": tag}])
        q.put((tag, "ok"))
    except ValueError as e:
        q.put((tag, str(e)))


def test_two_writers_of_different_configurations_one_is_refused(tmp_path):
    ctx = mp.get_context("fork")
    for n in range(10):
        path = tmp_path / f"store{n}"
        barrier, q = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(path, {"steps": s}, barrier, t, q)) for s, t in ((4, "a"), (6, "b"))]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        res = dict(q.get(timeout=5) for _ in procs)
        ok = [t for t, v in res.items() if v == "ok"]
        assert len(ok) == 1, res
        refused = next(v for t, v in res.items() if t not in ok)
        assert "another configuration" in refused and "steps" in refused
        cfg = json.loads((path / "store_config.json").read_text())
        rows = [json.loads(line) for line in (path / "rows.jsonl").read_text().splitlines()]
        assert cfg == {"steps": 4 if ok == ["a"] else 6}
        assert [r["value"] for r in rows] == ok * 4  # the winner's rows, intact, and only those
