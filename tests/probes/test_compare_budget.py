"""`compare` with compute budgets (steplens.probes.compare, on the tiny embedded model): every method at each budget on
the same samples and noises, NFE recorded per row and in plain runs, the per-family table with paired intervals, the
plot, and the AUC of the step-k verifier for final success."""

import json

import numpy as np
import pytest

from steplens.presets import resolve
from steplens.experiments.grid import ExperimentSettings
from steplens.methods.search import SearchConfig, roc_auc, step_auc
from steplens.probes.compare import check_budgets, compare, run_methods
from steplens.tasks import Score, register_verifier

STEPS = 4


def settings(**kw):
    return ExperimentSettings(task="maze", size=3, count=3, steps=STEPS, shift=1.0, guidance=1.0, batch=3, **kw)


def test_budgets_run_every_method_on_the_same_samples_with_their_nfe(tiny_model, tmp_path):
    res = compare(tiny_model, tmp_path, settings(), methods=["vote", "best-oracle"], budgets=[1, 2],
                  search_methods=["best-of-n", "early-beam", "smc"], search=SearchConfig(verifier="task", k=1),
                  progress=False)
    bt = {(r["method"], r["budget"]): r for r in res["budget_table"]}
    assert set(bt) == {("single", 1), ("vote", 2), ("best-oracle", 2), ("best-of-n", 1), ("early-beam", 1),
                       ("smc", 1), ("best-of-n", 2), ("early-beam", 2), ("smc", 2)}
    assert all(r["samples"] == 3 and r["task"] == "maze" for r in bt.values())
    assert bt["single", 1]["nfe"] == STEPS and bt["single", 1]["nfe_runs"] == 1.0
    for key in (("vote", 2), ("best-oracle", 2), ("best-of-n", 2), ("smc", 2)):
        assert bt[key]["nfe_runs"] == 2.0, key
    # early-beam within budget 2 at k = 1: n (k + 1) + (S - k - 1) <= 2 S -> n = 3, NFE 3 * 2 + 2 = 8 = 2 runs
    assert bt["early-beam", 2]["nfe"] == 8 and bt["early-beam", 1]["nfe_runs"] == 1.0
    assert bt["best-of-n", 2]["delta_ci_low"] <= bt["best-of-n", 2]["delta"] <= bt["best-of-n", 2]["delta_ci_high"]
    assert bt["single", 1]["delta"] is None
    # a search method against verifier best-of-n at the same budget: the paired difference of the stored successes
    stored = [json.loads(x) for x in (tmp_path / "store" / "rows.jsonl").read_text().splitlines()]
    won = {(r["condition"], r["sample"]): float(r["success"]) for r in stored}
    for m in ("early-beam", "smc"):
        for b in (1, 2):
            want = sum(won[f"{m} B={b}", s] - won[f"best-of-n B={b}", s] for s in ("maze/00000", "maze/00001",
                                                                                   "maze/00002")) / 3
            r = bt[m, b]
            assert r["vs_best_of_n"] == pytest.approx(want), (m, b)
            assert r["vs_best_of_n_ci_low"] <= r["vs_best_of_n"] <= r["vs_best_of_n_ci_high"]
    assert all(bt[k]["vs_best_of_n"] is None for k in (("best-of-n", 2), ("vote", 2), ("single", 1)))
    # the AUC: best-of-n's two particles at the largest budget, per probed step (None where all or none succeed)
    assert [a["step"] for a in res["auc"]] == [0, 1, 3] and all(a["particles"] == 6 for a in res["auc"])
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["config"]["budgets"] == [1, 2] and data["budget_table"] and data["auc"]
    assert (tmp_path / "budget.png").exists() and (tmp_path / "budget.csv").exists()
    again = compare(tiny_model, tmp_path, settings(), methods=["vote", "best-oracle"], budgets=[1, 2],
                    search_methods=["best-of-n", "early-beam", "smc"], search=SearchConfig(verifier="task", k=1),
                    progress=False)
    assert again["budget_table"] == res["budget_table"]  # resumed from the store, nothing rerun


def test_without_budgets_the_configuration_is_as_before(tiny_model, tmp_path):
    compare(tiny_model, tmp_path, settings(), n_list=[2], methods=["vote"], progress=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert "budgets" not in data["config"] and "budget_table" not in data
    assert [t["nfe"] for t in data["table"]] == [STEPS, 2 * STEPS]


def test_existing_methods_report_their_nfe(tiny_model):
    from steplens.tasks import get_task

    b = [get_task("maze").sample(i, 3, 3) for i in range(2)]
    got = run_methods(tiny_model, b, [0, 1], ["single", "steps-x", "vote", "ensemble"], n=2, sampling=resolve(tiny_model, steps=STEPS, shift=1.0, guidance=2.0))
    assert {m: rows[0]["nfe"] for m, rows in got.items()} == {"single": 2 * STEPS, "steps-x": 2 * 2 * STEPS,
                                                              "vote": 2 * 2 * STEPS, "ensemble": 2 * 2 * STEPS}


def test_roc_auc_and_step_auc():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([1, 1, 1], [0, 1, 1]) == 0.5 and roc_auc([1, 2], [1, 1]) is None
    rows = [{"task": "maze", "particles": {"steps": [0, 2], "v": [[0.1, 0.9], [0.2, 0.1]], "final": [True, False]}},
            {"task": "maze", "particles": {"steps": [0, 2], "v": [[0.3, 0.8], [0.4, 0.2]], "final": [True, False]}}]
    assert [(a["step"], a["auc"]) for a in step_auc(rows)] == [(0, 0.25), (2, 1.0)]


def test_bad_budgets_are_named():
    with pytest.raises(ValueError, match=r"--budget 0: below one plain run's NFE"):
        check_budgets([0, 2])
    with pytest.raises(ValueError, match=r"give each budget once"):
        check_budgets([2, 2])


class _Flat:
    """A plug-in verifier that scores every candidate alike."""
    name = "test-flat-budget"

    def verify(self, video, sample):
        return Score(score=0.25, success=False)


class _Brightest:
    name = "test-brightest-budget"

    def verify(self, video, sample):
        s = float(np.asarray(video)[-1].mean() / 255)
        return Score(score=s, success=s > 0.5)


register_verifier("test-flat-budget", _Flat)
register_verifier("test-brightest-budget", _Brightest)


def _budget(tiny_model, out, verifier):
    return compare(tiny_model, out, settings(), methods=["vote"], budgets=[2],
                   search_methods=["best-of-n", "early-beam", "smc"], search=SearchConfig(verifier=verifier, k=1),
                   progress=False)


def test_a_tie_only_verifier_gives_a_table_that_says_so(tiny_model, tmp_path):
    """Issue 31, finding 4: with a verifier that scores every candidate alike, the search methods return particle 0
    (the one seed's video); the table shows that the verifier separated no sample and counts the ties."""
    res = _budget(tiny_model, tmp_path, "test-flat-budget")
    bt = {(r["method"], r["budget"]): r for r in res["budget_table"]}
    for m in ("best-of-n", "early-beam", "smc"):
        r = bt[m, 2]
        assert r["verifier"] == "test-flat-budget" and r["separated"] == 0.0 and r["decided"] == 3, r
        assert r["ties"] == 3, r  # one decision per sample fell to the tie rule (best-of-n's pick, early-beam's keep,
        # smc's last pick; smc's resampling draws by weight)
        assert r["picked_one_seed"] == 1.0, r
    assert bt["single", 1]["separated"] is None and bt["vote", 2]["ties"] is None
    stored = [json.loads(x) for x in (tmp_path / "store" / "rows.jsonl").read_text().splitlines()]
    single = {r["sample"]: r for r in stored if r["condition"] == "single N=1"}
    for r in stored:
        if r["condition"] in ("best-of-n B=2", "early-beam B=2", "smc B=2"):
            assert r["separated"] is False and r["picked"] == 0 and r["decisions"], r["condition"]
            assert all(set(d["scores"]) == {0.25} for d in r["decisions"])
            assert (r["success"], r["score"]) == (single[r["sample"]]["success"], single[r["sample"]]["score"])
    note = res["verifier"]["note"]
    assert "test-flat-budget" in note and "scored every candidate alike" in note and "one seed" in note, note
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["verifier"]["name"] == "test-flat-budget" and "lowest particle index" in data["verifier"]["tie_rule"]
    assert data["verifier"]["note"] == note
    header = (tmp_path / "budget.csv").read_text().splitlines()[0].split(",")
    assert {"verifier", "separated", "ties", "decided", "picked_one_seed"} <= set(header)


def test_a_verifier_that_separates_shows_it(tiny_model, tmp_path):
    res = _budget(tiny_model, tmp_path, "test-brightest-budget")
    bt = {(r["method"], r["budget"]): r for r in res["budget_table"]}
    for m in ("best-of-n", "early-beam", "smc"):
        assert bt[m, 2]["separated"] == 1.0 and bt[m, 2]["ties"] == 0, bt[m, 2]
    assert res["verifier"]["note"] is None
