"""The pieces of spreading an experiment (issue 23, item 2) that need no second process: the split of jobs by cost,
the store's per-rank shards and their folding, and results that do not depend on the order rows were stored in."""

import json

from steplens.experiments.dist import assign
from steplens.experiments.grid import run_grid, sample_cost
from steplens.io.store import ResultsStore
from steplens.tasks import get_task


def test_assign_balances_by_cost_and_is_deterministic():
    costs = [9, 1, 1, 1, 4, 4, 1, 3]
    share = assign(costs, 2)
    assert sorted(i for s in share for i in s) == list(range(len(costs)))  # every job once
    loads = [sum(costs[i] for i in s) for s in share]
    assert abs(loads[0] - loads[1]) <= 1 and share == assign(costs, 2)  # balanced; the same on every process
    assert assign([5, 5, 5, 5], 4) == [[0], [1], [2], [3]]
    assert assign([1, 2], 3) == [[1], [0], []]  # more processes than jobs: some idle


def test_sample_cost_is_frames_times_pixels():
    s = get_task("maze").sample(0, 3, 4)
    h, w = s.first_frame.shape[:2]
    assert sample_cost(s) == 4 * h * w
    assert sample_cost(get_task("maze").sample(0, 5, 4)) > sample_cost(s)


def test_shards_are_written_by_one_writer_each_and_folded_in_order(tmp_path):
    cfg = {"experiment": "x"}
    a = ResultsStore(tmp_path, ("condition", "sample"), cfg, shard=0)
    b = ResultsStore(tmp_path, ("condition", "sample"), cfg, shard=1)
    a.add([{"condition": "c", "sample": "s2", "v": 2}])
    b.add([{"condition": "c", "sample": "s1", "v": 1}, {"condition": "c", "sample": "s2", "v": 99}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows-00000.jsonl", "rows-00001.jsonl",
                                                          "store_config.json"]
    # rank 1's shard holds only what it added new: s2 was rank 0's already
    assert [json.loads(x)["sample"] for x in (tmp_path / "rows-00001.jsonl").read_text().splitlines()] == ["s1"]
    reader = ResultsStore(tmp_path, ("condition", "sample"), cfg)
    assert {(r["sample"], r["v"]) for r in reader.rows} == {("s1", 1), ("s2", 2)}
    reader.consolidate(order=lambda r: r["sample"])
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["rows.jsonl", "store_config.json"]
    assert [json.loads(x)["sample"] for x in (tmp_path / "rows.jsonl").read_text().splitlines()] == ["s1", "s2"]
    before = (tmp_path / "rows.jsonl").stat().st_mtime_ns
    reader.consolidate(order=lambda r: r["sample"])  # already so: nothing written
    assert (tmp_path / "rows.jsonl").stat().st_mtime_ns == before


def test_a_shard_left_by_a_killed_launch_is_resumed_by_one_process(tmp_path):
    """rows-<rank>.jsonl of a killed torchrun run count as done when the command runs again in one process."""
    samples = [get_task("maze").sample(i, 3, 2, idx=i) for i in range(3)]
    ran = []

    def run(conds, batch):
        ran.extend((c, s.name) for c in conds for s in batch)
        return {c: [{"success": True, "score": float(len(s.name) + len(c))} for s in batch] for c in conds}

    cfg = {"experiment": "t"}
    ResultsStore(tmp_path, ("condition", "sample"), cfg, shard=1).add(
        [{"condition": "b", "sample": samples[1].name, "task": "maze", "success": True, "score": 0.5}])
    store = ResultsStore(tmp_path, ("condition", "sample"), cfg)
    run_grid(store, ["a", "b"], samples, 1, run, progress=False)
    assert len(ran) == 5 and ("b", samples[1].name) not in ran  # only what was missing
    lines = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    # folded in, in (sample, condition) order, whatever order they were stored in
    assert [(r["sample"], r["condition"]) for r in lines] == [(s.name, c) for s in samples for c in ("a", "b")]
    assert not list(tmp_path.glob("rows-*.jsonl"))
