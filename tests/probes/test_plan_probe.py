"""Probe `plan` (issue 35): plan agreement and diversity against step k, the time of first error, two claims."""

import json

import pytest

from steplens.models.load import load_model
from steplens.probes import get_probe, probe_names
from steplens.probes.base import ProbeSettings
from steplens.probes.contract import UNDETERMINED
from steplens.probes.plan import (AGREE, MIN_RUNS, MIN_SAMPLES, at_matched_sigma, check_options, default_ks,
                                  fixed_verdict, several_verdict)

TABLE_FIELDS = {"family", "k", "sigma", "runs", "agreement", "agree_low", "agree_high", "drawn", "diversity",
                "samples", "several", "several_low", "several_high"}


def test_plan_is_a_registered_probe_and_a_study_part():
    assert "plan" in probe_names()
    p = get_probe("plan")
    assert p.study is not None and p.study.options(type("C", (), {"n_seeds": 3})()) == {"n_seeds": 3}


def test_plan_runs_end_to_end_on_the_tiny_model(tiny_model, tmp_path):
    s = ProbeSettings(count=3, steps=3, size=3, frames=3, batch=3)
    res = get_probe("plan").run(tiny_model, tmp_path / "p", s, n_seeds=2, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "p" / "store" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["agree"]) == 2 and len(r["agree"][0]) == len(default_ks(3)) for r in rows)
    assert [r["k"] for r in res["table"]] == default_ks(3) == [0, 1, 2]
    assert all(TABLE_FIELDS <= set(r) for r in res["table"])
    # Euler's last step lands on x0_hat of that step: the last step's plan is the output's, in every run
    assert res["table"][-1]["agreement"] == 1.0
    fam = res["headline"]["families"]["maze"]
    assert fam["runs"] == 6 and fam["first_error"]["state"] == "measured"
    fe = fam["first_error"]
    assert fe["rejected"] + fe["not_rejected"] == fe["failed"] == 6 - round(fam["solve_rate"] * 6)
    assert sum(fe["histogram"]) == fe["rejected"] and len(fe["histogram"]) == 3
    # too little evidence: both claims undetermined, saying why
    for c in get_probe("plan").claims:
        state, text = c.judge(res["headline"], res["table"])
        assert state == UNDETERMINED and f"fewer than {MIN_RUNS if c.id == 'plan-first-step' else MIN_SAMPLES}" \
            in text, (c.id, text)
    assert (tmp_path / "p" / "plan.png").exists() and (tmp_path / "p" / "plan.csv").exists()
    # the NFE: two seeds of three steps per sample
    assert res["cost"]["nfe"] == 3 * 2 * 3


@pytest.mark.parametrize("task", ["tictactoe", "reappear"])
def test_tictactoe_and_reappear_measure_their_time_of_first_error(tiny_model, tmp_path, task):
    s = ProbeSettings(count=3, steps=2, frames=4, batch=3, task=task)
    res = get_probe("plan").run(tiny_model, tmp_path / "t", s, n_seeds=2, progress=False)
    fam = res["headline"]["families"][task]
    fe = fam["first_error"]
    assert fe["state"] == "measured" and fe["rejected"] + fe["not_rejected"] == fe["failed"]
    assert fe["failed"] == fam["runs"] - round(fam["solve_rate"] * fam["runs"])
    assert sum(fe["histogram"]) == fe["rejected"] and len(fe["histogram"]) == 4


def test_a_family_that_cannot_judge_frames_reports_its_first_error_undetermined(tiny_model, tmp_path):
    from builders import whole_only_task

    with whole_only_task() as name:
        s = ProbeSettings(count=2, steps=2, size=3, frames=3, batch=2, task=name)
        res = get_probe("plan").run(tiny_model, tmp_path / "t", s, n_seeds=1, progress=False)
    fe = res["headline"]["families"][name]["first_error"]
    assert fe["state"] == UNDETERMINED and "cannot judge single frames" in fe["why"]
    # one seed: no diversity, the second claim says so
    state, text = get_probe("plan").claims[1].judge(res["headline"], res["table"])
    assert state == UNDETERMINED and "2 or more seeds" in text


@pytest.mark.slow
def test_plan_on_the_shipped_maze_model(tmp_path):
    model = load_model("tiny-maze")
    s = ProbeSettings(count=2, steps=4, size=5, batch=2)
    res = get_probe("plan").run(model, tmp_path / "m", s, n_seeds=2, ks=[0, 1, 3], progress=False)
    assert [r["k"] for r in res["table"]] == [0, 1, 3] and res["table"][-1]["agreement"] == 1.0
    assert res["table"][0]["sigma"] > res["table"][1]["sigma"] > res["table"][2]["sigma"]
    assert res["headline"]["families"]["maze"]["plan_kind"] == ["pixels"]


def _table(agree0, agree1, runs, several=(0.0, 0.0, 0.0), last=1.0, samples=None):
    from steplens.experiments.stats import wilson

    def row(k, rate):
        lo, hi = wilson(round(rate * runs), runs)
        return {"family": "maze", "k": k, "sigma": 1 - k / 20, "runs": runs, "agreement": rate, "agree_low": lo,
                "agree_high": hi, "diversity": 1.0 + several[0], "samples": samples or runs // 2,
                "several": several[0], "several_low": several[1], "several_high": several[2]}
    return [row(0, agree0), row(1, agree1), row(19, last)]


def test_the_first_step_rule_holds_fails_or_waits_on_its_interval():
    assert fixed_verdict(_table(0.97, 0.98, 200), "maze")[0] is True
    assert fixed_verdict(_table(0.3, 0.5, 200), "maze")[0] is False
    assert fixed_verdict(_table(AGREE, AGREE, 30), "maze")[0] == UNDETERMINED  # lower bound below the floor
    assert fixed_verdict(_table(1.0, 1.0, MIN_RUNS - 1), "maze")[0] == UNDETERMINED


def test_the_several_early_rule_reads_diversity_and_rising_agreement():
    assert several_verdict(_table(0.4, 0.5, 200, several=(0.8, 0.7, 0.87)), "maze")[0] is True
    assert several_verdict(_table(0.4, 0.5, 200, several=(0.1, 0.05, 0.2)), "maze")[0] is False
    assert several_verdict(_table(0.4, 0.5, 200, several=(0.5, 0.4, 0.6)), "maze")[0] == UNDETERMINED
    assert several_verdict(_table(0.4, 0.5, 200, several=(0.8, 0.7, 0.87), samples=5), "maze")[0] == UNDETERMINED


def test_student_rows_meet_the_teacher_rows_nearest_in_sigma():
    student = [{"family": "maze", "k": k, "sigma": s, "agreement": a, "diversity": 1.0}
               for k, s, a in ((0, 1.0, 0.5), (1, 0.75, 0.8))]
    teacher = [{"family": "maze", "k": k, "sigma": 1 - k / 20, "agreement": k / 20, "diversity": 2.0}
               for k in range(20)]
    got = at_matched_sigma(student, teacher)
    assert [(g["student_k"], g["teacher_k"]) for g in got] == [(0, 0), (1, 5)]


def test_plan_options_refused_by_name():
    with pytest.raises(ValueError, match="--n-seeds 0.*1 to 64"):
        check_options(4, n_seeds=0)
    with pytest.raises(ValueError, match=r"\[0, 4\].*0..3 \(this run has 4 steps\)"):
        check_options(4, ks=[0, 4])


@pytest.mark.slow
def test_a_student_is_measured_beside_its_teacher_at_matched_sigma(tmp_path):
    from steplens.orchestrators.chains import step_sigmas_of

    student = load_model("tiny-reasoner-4step")
    s = ProbeSettings(count=2, size=5, batch=2, task="maze")
    res = get_probe("plan").run(student, tmp_path / "st", s, n_seeds=2, teacher="tiny-reasoner", progress=False)
    h = res["headline"]
    assert h["teacher"]["model"] == "tiny-reasoner" and set(h["teacher"]["families"]) == {"maze"}
    teacher_sigmas = step_sigmas_of(load_model("tiny-reasoner"))
    got = h["matched_sigma"]
    assert [g["student_k"] for g in got] == [r["k"] for r in res["table"]] == [0, 1, 2, 3]
    for g in got:  # each student step beside the teacher step nearest in σ, of the teacher's own grid
        assert g["teacher_sigma"] == min(teacher_sigmas, key=lambda x: abs(x - g["sigma"]))
    assert got[-1]["student_agreement"] == 1.0
    # the compute counts both models: the student's 4 steps and the teacher's 20, two seeds of two samples each
    assert res["cost"]["nfe"] == 2 * 2 * (4 + len(teacher_sigmas)) == 96
