"""`--search` from `run` and `eval` on the shipped tiny-maze (the SearchOptions bundle): the chosen particle written
or scored, NFE recorded, the configuration saved."""

import json

from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import get_task, write_sample


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_eval_with_early_beam_records_its_nfe(tmp_path):
    r = cli("eval", "--count", 2, "--size", 3, "--steps", 4, "--guidance", 1, "--search", "early-beam",
            "--particles", 3, "--beam-step", 1, "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert "search early-beam, N=3, verifier task" in r.output and "NFE per sample: 8.0" in r.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["method"] == "search:early-beam" and res["search"]["n"] == 3 and res["search"]["k"] == 1
    assert res["nfe_per_sample"] == 3 * 2 + 1 * 2 and all(row["nfe"] == 8 for row in res["per_sample"])
    assert {"verified", "verifier_score", "success", "score"} <= set(res["per_sample"][0])


def test_run_with_a_search_writes_the_chosen_particle(tmp_path):
    data = tmp_path / "data"
    for i in range(2):
        write_sample(data, get_task("maze").sample(i, 3, 3, idx=i))
    r = cli("run", "--data", data, "--out", tmp_path / "out", "--steps", 4, "--search", "smc", "--particles", 2,
            "--resample-steps", 1, "--verifier", "consensus")
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "out" / "run_config.json").read_text())
    assert cfg["search"]["method"] == "smc" and cfg["search"]["verifier"] == "consensus"
    assert len(list((tmp_path / "out").rglob("*.mp4"))) == 2
