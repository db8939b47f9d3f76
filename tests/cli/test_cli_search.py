"""`--search` from `run` and `eval` on the shipped tiny-maze (the SearchOptions bundle): the chosen particle written
or scored, NFE recorded, the configuration saved."""

import json

import pytest
from builders import make_vbvr_rendered
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import Score, get_task, register_verifier, write_sample


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
    # the search's work: each sample's choice (early-beam keeps 1 of 3 at step 1), the verifier's separation, ties
    for row in res["per_sample"]:
        assert [(d["kind"], d["step"], len(d["scores"])) for d in row["decisions"]] == [("keep", 1, 3)]
        assert row["verifier"] == "task" and row["separated"] in (True, False) and row["ties"] in (0, 1)
    work = res["search_work"]
    assert work["decided"] == 2 and work["ties"] == sum(r["ties"] for r in res["per_sample"])
    assert "lowest particle index" in work["tie_rule"]
    assert f"verifier separated the candidates on {sum(r['separated'] for r in res['per_sample'])} of 2" in r.output


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
    # each sample's search shows its work beside its video: the verifier's scores at each choice, ties, the pick
    for i in range(2):
        rec = json.loads((tmp_path / "out" / "maze" / f"{i:05d}.search.json").read_text())
        assert rec["verifier"] == "consensus" and rec["sample"] == f"maze/{i:05d}"
        assert [d["kind"] for d in rec["decisions"]] == ["resample", "pick"]
        assert all(len(d["scores"]) == 2 for d in rec["decisions"]) and isinstance(rec["ties"], int)
        assert rec["picked"] in (0, 1) and "lowest particle index" in rec["tie_rule"]


class Listed:
    """A stand-in judge for the listing."""
    name = "test-listed"
    reads = "the last frame's brightness"

    def verify(self, video, sample):
        return Score(score=0.5, success=False)


register_verifier("test-listed", Listed)


def test_verifiers_lists_the_built_ins_and_plugins_with_what_they_read(monkeypatch):
    import sys

    # the rows whole whatever COLUMNS said when the console was made (set in a pytest-xdist worker, or by the user)
    monkeypatch.setattr(sys.modules["steplens.cli.app"].console, "width", 1000)
    r = cli("verifiers")
    text = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    for name in ("task", "consensus", "test-listed"):
        assert name in text
    assert "the last frame's brightness" in text and "first frame" in text and "other particles" in text
    assert "tictactoe" in text and "verify hook" in text  # which tasks the `task` verifier reads
    assert "VBVR" in text and "consensus" in text  # what fits a folder not drawn by steplens


@pytest.mark.parametrize("cmd", [["compare", "--budget", "2", "--search-methods", "best-of-n"],
                                 ["eval", "--search", "best-of-n", "--particles", "2"],
                                 ["run", "--search", "best-of-n", "--particles", "2"]])
def test_a_vbvr_folder_the_task_verifier_cannot_read_is_refused_before_the_model_loads(cmd, tmp_path, loads):
    """Issue 31, finding 4: `compare --budget` on rendered VBVR mazes with the default `task` verifier loaded the model,
    wrote one row and stopped (rc 2); now every sample's verifier is resolved first."""
    root = tmp_path / "VBVR-Bench-Data"
    make_vbvr_rendered(root)
    out = tmp_path / "out"
    r = cli(*cmd, "--data", root, "--steps", 2, "--out", out)
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert loads == [], loads  # refused before the model loads
    assert "verifier 'task'" in text and "not drawn by steplens" in text and "In-Domain_50/O-39" in text, text
    assert "--verifier consensus" in text and "plug-in" in text and "steplens verifiers" in text, text
    assert "Traceback" not in r.output
    assert not (out / "store").exists() and not list(out.rglob("*.mp4")) if out.exists() else True
