"""`steplens study`: every experiment on every family of a model, one folder, the claims judged per family."""

import json

import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.orchestrators.study import training_cost

runner = CliRunner()


def cli(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


@pytest.mark.slow
def test_study_runs_every_part_on_every_family_and_judges_each_claim(tmp_path):
    """Every part but chains: with this baseline the chains part would run the energy probe at each of 20 matched
    steps (three quarters of this test's time); a study's chains part is checked by
    tests/experiments/test_chains.py::test_study_with_a_baseline_compares_the_chains_at_matched_sigma and planned ==
    run by test_plan_is_the_run.py::test_study_plan_is_the_run_for_every_part_baseline_and_chains."""
    out = tmp_path / "study"
    r, text = cli("study", "--model", "tiny-maze-2goal", "--out", out, "--count", 4, "--probe-count", 2, "--steps", 3,
                  "--sweep-count", 3, "--batch", 4, "--compare-families", 1, "--baseline", "tiny-maze", "--train-log",
                  "benchmarks/tiny-maze-2goal-train-log.jsonl", "--parts",
                  "solve,sweep,noise,propagation,energy,swap,plan,compare")
    assert r.exit_code == 0, r.output
    res = json.loads((out / "study.json").read_text())
    fam = res["families"]
    assert list(fam) == ["maze", "maze-two-goals"]  # the tasks its weights say it was trained on, in that order
    for name, f in fam.items():
        assert (f["size"], f["next_size"]) == (5, 6)
        for part in ("solve-5", "solve-6", "sweep", "noise", "propagation", "energy"):
            assert (out / name / part / "results.json").is_file() and (out / name / part / "report.html").is_file()
        # the solve figures are the behaviours probe's own numbers at each size
        for k in ("5", "6"):
            h = json.loads((out / name / f"solve-{k}" / "results.json").read_text())["headline"]
            assert f["solve"][k]["solve_rate"] == h["solve_rate"] and f["solve"][k]["n"] == 4
        assert {c for c in f["sweep"] if c.startswith("steps")} == {f"steps {k}" for k in (1, 2, 3, 5, 10, 20, 40)}
        assert {r["n"] for r in f["sweep"].values()} == {3}  # --sweep-count, not --count
    # swap only where the prompt chooses the answer; said, not silently skipped
    assert (out / "maze-two-goals" / "swap" / "results.json").is_file() and not (out / "maze" / "swap").exists()
    assert "swap" in fam["maze"]["not_applicable"][0]
    swap = "swapping one block between prompts flips the answer"
    assert set(res["claims"][swap]) == {"maze-two-goals"}
    # every other claim judged on both families, from the run that tests it
    for claim, by in res["claims"].items():
        if claim not in (swap, "the study's multi-seed ensemble beats one seed"):
            assert set(by) == {"maze", "maze-two-goals"}, claim
    few = res["claims"]["few-step sampling hurts (steps matter)"]["maze"]
    sweep = {r["condition"]: r for r in json.loads((out / "maze" / "sweep" / "results.json").read_text())["table"]}
    one = sweep["steps 1"]  # judged on the paired interval (1 step - 40 steps, same samples), shown in its cell
    assert few["run"] == "maze/sweep" and one["pairs"] == 3
    assert few["holds"] == (True if one["delta_ci_high"] < 0 else None if sweep["steps 40"]["ci_low"] <= 0 or
                            one["delta_ci_low"] <= -0.05 else False), (few, one)
    assert f"paired {one['delta_vs_most_steps']:+.3f}" in few["cell"] and "(rule: fewest - most steps" in few["cell"]
    # the comparison on the family where one seed is weakest
    rates = {n: f["solve"]["5"]["solve_rate"] for n, f in fam.items()}
    assert res["compared"] == [min(rates, key=lambda n: (rates[n], n))]
    assert {r["method"] for r in fam[res["compared"][0]]["compare"]} == {"single", "vote", "best-consensus",
                                                                         "best-oracle", "ensemble", "ensemble-x0"}
    # the baseline on the family it was trained on; the training cost from the log
    assert list(res["baseline"]["families"]) == ["maze"] and res["baseline"]["model"] == "tiny-maze"
    assert [row["family"] for row in res["training"]["rows"]] == ["maze", "maze-two-goals"]
    md = (out / "study.md").read_text()
    assert "4 per solve rate, 3 per condition of the steps and frames sweep, 4 per multi-seed method" in md
    # one baseline column whatever each family's size: a family the baseline was not trained on says so
    assert md.count("tiny-maze, same size") == 1 and "| – |" in md.split("## ")[1]
    assert "| maze-two-goals |" in md and "| tiny-maze, same size |" in md and "holds" in md
    html = (out / "report.html").read_text()
    assert "maze/noise/report.html" in html and "compare/" in html


def test_training_cost_reads_the_first_evaluation_at_each_level(tmp_path):
    log = tmp_path / "log.jsonl"
    recs = [{"step": 50, "loss": 1, "sec_per_step": 2.0}, {"step": 100, "loss": 1, "sec_per_step": 4.0},
            {"step": 100, "eval_solve_rate": 0.6, "eval_solve_rate_b": 0.1},  # an old log: the first task unnamed
            {"step": 150, "loss": 1, "sec_per_step": 2.0},
            {"step": 200, "loss": 1, "sec_per_step": 2.0, "eval_solve_rate_a": 0.95, "eval_solve_rate_b": 0.55}]
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    rows = training_cost(log, ["a", "b"], primary="a")
    hours = lambda s: f"{s / 3600:.1f}"  # noqa: E731
    assert rows == [{"family": "a", "last eval": "0.95 at step 200", "≥ 0.5: step (hours)": f"100 ({hours(300)})",
                     "≥ 0.9: step (hours)": f"200 ({hours(500)})"},
                    {"family": "b", "last eval": "0.55 at step 200", "≥ 0.5: step (hours)": f"200 ({hours(500)})",
                     "≥ 0.9: step (hours)": "not yet"}]
    # a second stage, started from the first: its steps count on from step 200
    stage2 = tmp_path / "stage2.jsonl"
    stage2.write_text(json.dumps({"step": 100, "sec_per_step": 36.0, "eval_solve_rate_b": 0.92}) + "\n")
    rows = training_cost([log, stage2], ["a", "b"], primary="a")
    assert rows[1] == {"family": "b", "last eval": "0.92 at step 300", "≥ 0.5: step (hours)": f"200 ({hours(500)})",
                       "≥ 0.9: step (hours)": f"300 ({hours(500 + 3600)})"}
    log.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        training_cost(log, ["a"])


@pytest.mark.parametrize("args, message", [
    (("--parts", "solve,nonesuch"), "unknown study part 'nonesuch'; allowed: solve, sweep"),
    (("--tasks", "maze,chess"), "unknown task 'chess'"),
    (("--parts", "sweep,compare"), "add solve to --parts"),
    (("--tasks", ","), "names no task"),
    (("--train-log", "nowhere/log.jsonl"), "nowhere/log.jsonl"),
    (("--count", 0), "--count"),
    (("--sweep-count", 0), "--sweep-count"),
])
def test_study_names_bad_input(tmp_path, args, message):
    r, text = cli("study", "--out", tmp_path / "s", *args)
    assert r.exit_code == 2 and message in text, text
    assert not (tmp_path / "s" / "study.json").exists()
