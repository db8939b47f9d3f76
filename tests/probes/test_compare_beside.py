"""Verifiers side by side in `compare` (`--beside-verifiers`): best-of-n's particles picked again by each further
verifier without a forward. What it must be: exactly what best-of-n with that verifier picks on the same samples
and seeds, at no NFE of its own; paired against the search verifier's best-of-n; refused by name where it cannot
run."""

import json

import pytest
from builders import brightness_verifier
from typer.testing import CliRunner

from steplens.cli import app
from steplens.experiments.grid import ExperimentSettings
from steplens.methods.search import SearchConfig, repick, search
from steplens.probes.compare import compare
from steplens.tasks import get_task, register_verifier

STEPS = 4
KEYS = ("success", "score", "verified", "verifier_score", "picked", "decisions", "separated", "ties",
        "picked_one_seed", "verifier")


def settings():
    return ExperimentSettings(task="maze", size=3, count=4, steps=STEPS, shift=1.0, guidance=1.0, batch=4)


register_verifier("test-darkest-beside", brightness_verifier("test-darkest-beside", darkest=True))
register_verifier("test-brightest-beside", brightness_verifier("test-brightest-beside"))


def rows(out) -> list[dict]:
    return [json.loads(x) for x in (out / "store" / "rows.jsonl").read_text().splitlines()]


def test_a_verifier_beside_picks_what_its_own_best_of_n_picks_at_no_nfe(tiny_model, tmp_path):
    both = compare(tiny_model, tmp_path / "both", settings(), methods=["single"], budgets=[2, 3],
                   search_methods=["best-of-n"], search=SearchConfig(verifier="test-brightest-beside"),
                   beside=["test-darkest-beside"], progress=False)
    alone = compare(tiny_model, tmp_path / "alone", settings(), methods=["single"], budgets=[2, 3],
                    search_methods=["best-of-n"], search=SearchConfig(verifier="test-darkest-beside"),
                    progress=False)
    got = {(r["condition"], r["sample"]): r for r in rows(tmp_path / "both")}
    own = {(r["condition"], r["sample"]): r for r in rows(tmp_path / "alone")}
    moved = 0
    for b in (2, 3):
        for s in [f"maze/{i:05d}" for i in range(4)]:
            beside, mine = got[f"best-of-n [test-darkest-beside] B={b}", s], own[f"best-of-n B={b}", s]
            assert {k: beside[k] for k in KEYS} == {k: mine[k] for k in KEYS}, (b, s)
            assert beside["nfe"] == 0 and beside["method_nfe"] == mine["nfe"] == b * STEPS
            moved += beside["picked"] != got[f"best-of-n B={b}", s]["picked"]
    assert moved > 0  # the two verifiers disagree somewhere: the beside rows are not best-of-n's copied
    # no NFE of its own: the run costs what best-of-n alone costs
    assert sum(r["nfe"] for r in got.values()) == sum(r["nfe"] for r in own.values())
    bt = {(r["method"], r["budget"]): r for r in both["budget_table"]}
    for b in (2, 3):
        r = bt["best-of-n [test-darkest-beside]", b]
        assert r["verifier"] == "test-darkest-beside" and r["nfe_runs"] == b
        paired = [float(got[f"best-of-n [test-darkest-beside] B={b}", s]["success"])
                  - float(got[f"best-of-n B={b}", s]["success"]) for s in [f"maze/{i:05d}" for i in range(4)]]
        assert r["vs_best_of_n"] == pytest.approx(sum(paired) / 4)
    data = json.loads((tmp_path / "both" / "results.json").read_text())
    assert data["config"]["beside_verifiers"] == ["test-darkest-beside"]
    assert "beside_verifiers" not in json.loads((tmp_path / "alone" / "results.json").read_text())["config"]


def test_repick_is_search_with_the_other_verifier(tiny_model):
    task = get_task("maze")
    samples = [task.sample(i, 3, 3) for i in range(3)]
    cfg = SearchConfig(method="best-of-n", n=3, verifier="test-brightest-beside")
    res = search(tiny_model, samples, [0, 1, 2], cfg)
    again = repick(tiny_model, samples, res, "test-darkest-beside")
    direct = search(tiny_model, samples, [0, 1, 2], cfg.model_copy(update={"verifier": "test-darkest-beside"}))
    assert again.chosen == direct.chosen and again.nfe.nfe == 0
    assert [s.score for s in again.scores] == [s.score for s in direct.scores]
    assert again.decisions == direct.decisions
    assert bool((again.latents == direct.latents).all())
    with pytest.raises(ValueError, match="best-of-n's particles"):  # a result without its particles
        repick(tiny_model, samples, type(res)(res.latents, res.chosen, res.scores, res.nfe), "task")


runner = CliRunner()


@pytest.mark.parametrize("args, says", [
    (("--beside-verifiers", "task"), "--budget"),
    (("--budget", "2", "--search-methods", "smc", "--beside-verifiers", "task"), "best-of-n"),
    (("--budget", "2", "--beside-verifiers", "nope"), "'nope'"),
    (("--budget", "2", "--verifier", "checker", "--beside-verifiers", "checker"), "--verifier checker"),
    (("--budget", "2", "--beside-verifiers", "task,task"), "each verifier once"),
])
def test_bad_verifiers_beside_are_named_before_the_model_loads(args, says, tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, ["compare", "--model", "no-such-model.safetensors", "--task", "maze", "--count", "2",
                            "--methods", "single", *args, "--out", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, text
    assert says in text and "--beside-verifiers" in text and "Traceback" not in text, text
    assert not out.exists()


def test_the_command_line_shows_each_verifier_beside_by_name(tmp_path):
    """A method named with brackets is printed as it is (rich would read "[task]" as markup and drop it)."""
    r = runner.invoke(app, ["compare", "--model", "tiny-maze", "--task", "maze", "--size", "3", "--count", "2",
                            "--steps", "2", "--methods", "single", "--budget", "2", "--search-methods", "best-of-n",
                            "--verifier", "checker", "--beside-verifiers", "task", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    lines = [" ".join(x.replace("│", " ").split()) for x in r.output.splitlines()]
    assert any(x.startswith("best-of-n [task] 2 ") for x in lines), r.output  # the methods' table
    assert any(x.startswith("maze best-of-n [task] 2 ") for x in lines), r.output  # the budget table
    assert "vs best-of-n" in r.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [x["method"] for x in data["budget_table"]] == ["single", "best-of-n", "best-of-n [task]"]


def test_beside_rows_missing_from_a_store_are_redrawn_and_their_nfe_counted(tiny_model, tmp_path):
    """Rows of a verifier beside lost from a store (best-of-n's kept): a rerun draws best-of-n's particles again, picks
    the same, and counts the recomputation on the first verifier beside."""
    kw = dict(methods=["single"], budgets=[2], search_methods=["best-of-n"],
              search=SearchConfig(verifier="test-brightest-beside"),
              beside=["test-darkest-beside", "checker"], progress=False)
    compare(tiny_model, tmp_path, settings(), **kw)
    store = tmp_path / "store" / "rows.jsonl"
    before = rows(tmp_path)
    store.write_text("".join(json.dumps(r) + "\n" for r in before if "[" not in r["condition"]))
    compare(tiny_model, tmp_path, settings(), **kw)
    after = {(r["condition"], r["sample"]): r for r in rows(tmp_path)}
    for r in before:
        a = after[r["condition"], r["sample"]]
        assert {k: a[k] for k in KEYS if k in r} == {k: r[k] for k in KEYS if k in r}, r["condition"]
    assert {a["nfe"] for (c, _), a in after.items() if c == "best-of-n [test-darkest-beside] B=2"} == {2 * STEPS}
    assert {a["nfe"] for (c, _), a in after.items() if c == "best-of-n [checker] B=2"} == {0}
