"""Claims need evidence (issue 22, finding 6): a claim whose rule has nothing to stand on is "undetermined", with
why, in the probe's verdict, `steplens report` and the study's table; never "holds"."""

import json

import pytest

from steplens.orchestrators.study import tables
from steplens.probes import get_probe, probe_names
from steplens.probes.contract import UNDETERMINED, state_word
from steplens.orchestrators.report_index import write_index


def _noise_result(clean_solved, n=4, step=0, frame=0):
    def row(cond, k):
        return {"condition": cond, "n": n, "solved": k, "solve_rate": k / n, "ci_low": 0.0 if k == 0 else 0.15,
                "ci_high": 0.49 if k == 0 else 1.0, "mean_score": 0.3}
    table = [row("clean", clean_solved), row("step 0", step), row("step 1", step), row("frame 0", frame)]
    h = {"clean": clean_solved / n, "clean_mean_score": 0.3, "step_noise_mean": step / n, "step_noise_min": step / n,
         "worst_step": 0, "frame_noise_mean": frame / n, "frame_noise_min": frame / n,
         "drop_step_noise": 0.0, "drop_frame_noise": 0.0, "step_noise_mean_score": 0.3}
    return h, table


def _verdicts(probe, h, table):
    return {c.id: c.judge(h, table) for c in get_probe(probe).claims}


def test_noise_claims_on_nothing_solved_are_undetermined_with_why():
    h, table = _noise_result(0)
    v = _verdicts("noise", h, table)
    for cid in ("noise-step-wrecks", "noise-frame-repaired"):
        state, text = v[cid]
        assert state == UNDETERMINED, (cid, v[cid])
        assert "clean solve rate" in text and "does not exclude 0" in text, text
    # with a clean solve rate whose interval excludes the floor, the rules judge as before
    h, table = _noise_result(4, step=0, frame=4)
    v = _verdicts("noise", h, table)
    assert v["noise-step-wrecks"][0] is True and v["noise-frame-repaired"][0] is True


def test_an_energy_ratio_below_one_carries_nothing():
    table = [{"block": f"blocks.{i}", "task_background_ratio": r} for i, r in enumerate((0.9, 0.92, 0.96, 0.93))]
    h = {"best_block": "blocks.2", "best_ratio": 0.96, "solve_rate": 0.0, "mean_score": 0.0}
    state, text = get_probe("energy").claims[0].judge(h, table)
    assert state == UNDETERMINED and "0.960" in text and "above 1" in text, text
    h = {**h, "best_ratio": 1.2}
    table[2]["task_background_ratio"] = 1.2
    assert get_probe("energy").claims[0].judge(h, table)[0] is True


@pytest.mark.parametrize("name", probe_names())
def test_every_claim_states_the_evidence_it_needs(name):
    for c in get_probe(name).claims:
        assert c.needs_text, f"{name}: claim {c.id} states no evidence it needs"


def test_study_table_and_report_show_three_states(tmp_path):
    claims = {"a": {"maze": {"holds": True, "state": "holds", "evidence": "e", "run": "maze/x"}},
              "b": {"maze": {"holds": False, "state": "does not hold", "evidence": "e", "run": "maze/x"}},
              "c": {"maze": {"holds": None, "state": "undetermined", "why": "no clean solve",
                             "evidence": "undetermined: no clean solve", "run": "maze/x"}}}
    rows = tables({"families": {"maze": {"solve": {}, "size": 5, "next_size": 6}}, "compared": [],
                   "claims": claims})["claims"]
    assert [r["maze"] for r in rows] == ["holds", "does not hold", "undetermined: no clean solve"]
    assert [state_word(s) for s in (True, False, UNDETERMINED)] == ["holds", "does not hold", "undetermined"]
    # report: a noise result with nothing solved lists both claims as undetermined, with why
    h, table = _noise_result(0)
    run = tmp_path / "runs" / "noise"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"probe": "noise", "headline": h, "table": table}))
    out, entries = write_index(tmp_path / "runs")
    page = out.read_text()
    assert page.count("undetermined") >= 2 and "does not exclude 0" in page
    assert [c[1] for c in entries[0]["claims"]] == [UNDETERMINED, UNDETERMINED]


# Issue 31, item 2: every rule fed no evidence ("zero") and too little ("little") says undetermined, with why, and its
# cell shows the number it stands on and its rule. One case per registered claim: a new claim needs its own here.
def _rate(cond, k, n, **kw):
    return {"condition": cond, "n": n, "solved": k, "solve_rate": k / n if n else 0.0, "ci_low": 0.0,
            "ci_high": 0.6 if n else 0.0, "mean_score": 0.1, **kw}


def _ens(delta, lo, hi, n=10):
    return [{"method": "single", "n_seeds": 1, "samples": n, "solve_rate": 0.3, "delta_vs_single": 0.0,
             "delta_ci_low": 0.0, "delta_ci_high": 0.0},
            {"method": "ensemble", "n_seeds": 3, "samples": n, "solve_rate": 0.3 + delta, "delta_vs_single": delta,
             "delta_ci_low": lo, "delta_ci_high": hi}]


ONE_STEP = {"frame_protocol": "one-step", "clean": 0.0, "frames": 2, "frame_steps": [0, 1], "drop_frame_noise": 0.0,
            "drop_step_noise_at_frame_steps": 0.0}
def _plan(runs: int) -> list[dict]:
    """The plan probe's family table with `runs` runs (0: nothing measured, no seeds compared)."""
    none = dict.fromkeys(("agreement", "agree_low", "agree_high", "several", "several_low", "several_high",
                          "diversity"))
    if not runs:
        return [{"family": "maze", "k": 0, "runs": 0, "samples": 0, **none}]
    first = {"family": "maze", "k": 0, "runs": runs, "samples": 2, "agreement": 0.8, "agree_low": 0.38,
             "agree_high": 0.96, "several": 0.5, "several_low": 0.09, "several_high": 0.91, "diversity": 1.5}
    return [first, {**first, "k": 19, "agreement": 1.0, "agree_low": 0.57, "agree_high": 1.0}]


CASES = {  # claim id: (zero evidence, too little evidence), each (headline, table)
    "behaviours-early-candidates": (
        ({"runs": 0, "solve_rate": 0.0, "self_corrections": 0, "mean_off_branches_per_step": []}, []),
        ({"runs": 3, "solve_rate": 0.0, "self_corrections": 0, "mean_off_branches_per_step": [1.5, 0.3],
          "runs_with_listed_answers": 3, "runs_holding_several_early": 2}, [])),
    "behaviours-self-correction": (
        ({"runs": 0, "solve_rate": 0.0, "self_corrections": 0}, []),
        ({"runs": 3, "solve_rate": 0.0, "self_corrections": 0}, [])),
    "noise-step-wrecks": (({}, []), _noise_result(0)),
    "noise-frame-repaired": (({}, []), _noise_result(0)),
    "noise-frame-hurts-less": (({"frame_protocol": "one-step"}, []), (ONE_STEP, _noise_result(0)[1])),
    "sweep-frames": (({}, [_rate("frames 2", 0, 0), _rate("frames 3", 0, 0)]),
                     ({}, [_rate("frames 2", 0, 3), _rate("frames 3", 0, 3)])),
    "sweep-steps": (({}, [_rate("steps 1", 0, 0, steps=1), _rate("steps 20", 0, 0, steps=20)]),
                    ({}, [_rate("steps 1", 0, 3, steps=1), _rate("steps 20", 0, 3, steps=20)])),
    "energy-middle-blocks": (({}, []), ({"best_block": "blocks.1", "best_ratio": 0.95},
                                        [{"block": f"blocks.{i}"} for i in range(4)])),
    "swap-one-block-flips": (({}, []), ({"A_follows_prompt": 0.3, "B_follows_prompt": 0.4, "best_flip_rate": 0.6,
                                         "best_block_step": "blocks.1@0"}, [])),
    "propagation-middle-steps": (({}, []), ({"steps": 4, "peak_inject_step": 2, "peak_final_x0_dissimilarity": 0.0},
                                            [])),
    "compare-ensemble-beats-one-seed": (({}, _ens(0.0, 0.0, 0.0, n=0)), ({}, _ens(0.0, -0.2, 0.3))),
    # the plan probe (issue 35): no run at all; 5 runs of 2 samples (the rules need 20 runs and 10 samples)
    "plan-first-step": (({}, _plan(0)), ({}, _plan(5))),
    "plan-several-early": (({}, _plan(0)), ({}, _plan(5))),
}


def test_every_claim_has_its_zero_and_too_little_case():
    ids = {c.id for p in probe_names() for c in get_probe(p).claims}
    assert ids <= set(CASES), f"claims without a zero / too-little evidence case: {sorted(ids - set(CASES))}"


@pytest.mark.parametrize("cid", list(CASES))
@pytest.mark.parametrize("which", ["zero", "little"])
def test_every_rule_on_zero_and_too_little_evidence_is_undetermined(cid, which):
    claim = next(c for p in probe_names() for c in get_probe(p).claims if c.id == cid)
    h, table = CASES[cid][which == "little"]
    state, text = claim.judge(h, table)
    assert state == UNDETERMINED, (cid, which, text)
    cell = claim.cell(h, table)
    assert cell.startswith("undetermined: ") and f"(rule: {claim.rule_text})" in cell, cell
    assert len(cell.split(";")[0]) > len("undetermined: "), cell  # why, named


def test_too_little_evidence_names_what_is_missing():
    by = {c.id: c for p in probe_names() for c in get_probe(p).claims}
    h, t = CASES["behaviours-self-correction"][1]  # solves 0 of 3: no run ends right, no self-correction to see
    assert "0 of 3 runs end right (the rule needs >= 10)" in by["behaviours-self-correction"].cell(h, t)
    h, t = CASES["behaviours-early-candidates"][1]
    assert "3 runs with listed answers (the rule needs >= 10)" in by["behaviours-early-candidates"].cell(h, t)
    h = {k: v for k, v in h.items() if k not in ("runs_with_listed_answers", "runs_holding_several_early")}
    assert "the task lists no answers" in by["behaviours-early-candidates"].cell(h, t)
    cell = by["compare-ensemble-beats-one-seed"].cell(*CASES["compare-ensemble-beats-one-seed"][1])
    assert "holds 0" in cell and "+0.0 points [-20.0, +30.0] on 10 samples" in cell, cell


def test_enough_evidence_still_judges_both_ways():
    by = {c.id: c for p in probe_names() for c in get_probe(p).claims}
    sc = by["behaviours-self-correction"]
    assert sc.judge({"runs": 20, "solve_rate": 0.6, "self_corrections": 0}, [])[0] is False
    assert sc.cell({"runs": 20, "solve_rate": 0.6, "self_corrections": 0}, []) == \
        "does not hold: 0 of 20 runs self-correct (12 end right) (rule: at least one run)"
    assert sc.judge({"runs": 20, "solve_rate": 0.6, "self_corrections": 2}, [])[0] is True
    ens = by["compare-ensemble-beats-one-seed"]
    assert ens.judge({}, _ens(0.1, 0.02, 0.2))[0] is True
    assert ens.judge({}, _ens(-0.1, -0.2, -0.02))[0] is False


def test_a_two_expert_claim_shows_each_expert():
    h = {"best_block": "blocks.1", "best_ratio": 0.934,
         "by_expert": {"high_noise": {"best_block": "blocks.1", "best_ratio": 0.934},
                       "low_noise": {"best_block": "blocks.2", "best_ratio": 1.031}}}
    cell = get_probe("energy").claims[0].cell(h, [{"block": f"blocks.{i}"} for i in range(4)])
    assert "undetermined" in cell and "0.934" in cell and "1.031" in cell, cell
    assert "high_noise" in cell and "low_noise" in cell, cell


def test_chains_differences_need_an_interval_that_excludes_zero():
    from steplens.orchestrators.chains import exploration_loss, verdict

    d = lambda m, lo, hi, n=12: {"n": n, "mean": m, "ci_low": lo, "ci_high": hi}  # noqa: E731
    assert verdict({"early_held_diff": None, "commit_sigma_diff": None})["state"] == UNDETERMINED  # zero
    assert verdict({"early_held_diff": d(-1, -2, -0.5, n=3), "commit_sigma_diff": d(0.1, 0.05, 0.2, n=3)}
                   )["state"] == UNDETERMINED  # too little
    v = verdict({"early_held_diff": d(0.0, -0.1, 0.1), "commit_sigma_diff": d(0.0, -0.05, 0.05)})
    assert v["state"] == UNDETERMINED and "holds 0" in v["why"] and v["rule"], v
    assert verdict({"early_held_diff": d(-1, -2, -0.5), "commit_sigma_diff": d(0.1, 0.05, 0.2)})["state"] == "holds"
    assert verdict({"early_held_diff": d(1, 0.5, 2), "commit_sigma_diff": d(0.0, -0.05, 0.05)})["state"] == \
        "does not hold"
    # the pooled claim from +0.000 [+0.000, +0.000] on 10 samples: nothing determined
    fams = {"maze-loops": {"several_right": True, "solve_diff": d(0.0, 0.0, 0.0, n=5)},
            "maze": {"several_right": False, "solve_diff": d(0.0, 0.0, 0.0, n=5)}}
    loss = exploration_loss(fams)
    assert loss["state"] == UNDETERMINED and "on 10 samples" in loss["why"] and loss["rule"], loss


def test_study_cells_show_the_number_and_rule_and_no_raw_none(tmp_path):
    from steplens.orchestrators.study import judge, markdown, write_report

    run = tmp_path / "maze" / "solve-5"
    run.mkdir(parents=True)
    h = {"runs": 3, "solve_rate": 0.0, "mean_score": 0.05, "self_corrections": 0, "reverse_corrections": 0,
         "mean_commitment_step": None, "perception_before_action": 0, "perception_with_action": 0,
         "runs_with_both_steps": 0, "runs_exploring_multiple_branches": 0, "mean_off_branches_per_step": [0.4, 0.1]}
    (run / "results.json").write_text(json.dumps({"probe": "behaviours", "headline": h, "table": []}))
    fam = {"maze": {"size": 5, "next_size": None, "solve": {"5": {
        "n": 3, "solve_rate": 0.0, "ci_low": 0.0, "ci_high": 0.56, "mean_score": 0.05, "mean_commitment_step": None,
        "mean_early_candidates": None, "runs_holding_several_early": None, "mean_winner_step": None,
        "mean_right_step": None, "self_corrections": 0, "perception_before_action": 0, "runs_with_both_steps": 0}}}}
    claims = judge(tmp_path, fam)
    result = {"model": "m", "config": {"seed": 0, "count": 3, "sweep_count": 3, "compare_count": 3, "probe_count": 3,
                                       "steps": 4, "shift": 1.0}, "families": fam, "compared": [], "claims": claims}
    md = markdown(result)
    assert "undetermined: 0 of 3 runs end right (the rule needs >= 10); 0 of 3 runs self-correct (0 end right) " \
           "(rule: at least one run)" in md, md
    assert "the task lists no answers" in md and "None" not in md, md
    write_report(tmp_path, result)
    page = (tmp_path / "report.html").read_text()
    assert "0 of 3 runs self-correct (0 end right) (rule: at least one run)" in page


def test_few_step_sampling_is_judged_on_a_paired_interval():
    claim = next(c for c in get_probe("sweep").claims if c.id == "sweep-steps")

    def table(d, lo, hi, n=12):
        one = _rate("steps 1", 6, n, steps=1, delta_vs_most_steps=d, delta_ci_low=lo, delta_ci_high=hi, pairs=n)
        most = {**_rate("steps 20", 9, n, steps=20), "ci_low": 0.45}
        return [one, most]
    state, text = claim.judge({}, table(-0.25, -0.6, 0.1))  # lower by 0.25, but the interval holds 0
    assert state == UNDETERMINED and "holds 0" in text and "on 12 samples" in text, text
    assert claim.judge({}, table(-0.25, -0.5, -0.05))[0] is True
    assert claim.judge({}, table(0.0, -0.02, 0.03))[0] is False  # a drop shown under 0.05
    assert "paired -0.250 [-0.500, -0.050]" in claim.cell({}, table(-0.25, -0.5, -0.05))


@pytest.mark.slow
def test_a_study_on_a_model_that_solves_nothing_says_undetermined_with_its_numbers(tmp_path):
    """Issue 31, finding 2, as a user meets it: a model that solves 0 of 3 (one step) said "does not hold" for
    self-correction and candidates, with no number and no rule in study.md and report.html."""
    from typer.testing import CliRunner

    from steplens.cli import app

    out = tmp_path / "study"
    r = CliRunner().invoke(app, ["study", "--tasks", "maze-loops", "--count", "3", "--steps", "1", "--parts", "solve",
                                 "--out", str(out)], terminal_width=400)
    assert r.exit_code == 0, r.output[-3000:]
    cells = ("undetermined: 0 of 3 runs end right (the rule needs >= 10); 0 of 3 runs self-correct (0 end right) "
             "(rule: at least one run)", "undetermined: 3 runs with listed answers (the rule needs >= 10)")
    md, page = (out / "study.md").read_text(), (out / "report.html").read_text()
    for cell in cells:
        assert cell in md and cell in " ".join(r.output.split()), (cell, md)
    assert "0 of 3 runs self-correct (0 end right) (rule: at least one run)" in page
    assert "does not hold" not in md and "None" not in md, md


def test_one_frame_against_all_frames_is_judged_on_a_paired_interval():
    """noise-frame-hurts-less is a difference (one frame's solve rate minus all frames', same steps, same samples):
    an interval that holds 0 is undetermined, not "does not hold"."""
    claim = next(c for c in get_probe("noise").claims if c.id == "noise-frame-hurts-less")
    _, table = _noise_result(4, n=12)
    table[0].update(ci_low=0.7)

    def h(d, lo, hi):
        return {**ONE_STEP, "clean": 1.0, "frames": [0, 1], "drop_frame_noise": 0.5 - d,
                "drop_step_noise_at_frame_steps": 0.5, "frame_minus_step_at_frame_steps":
                    {"mean": d, "ci_low": lo, "ci_high": hi, "n": 12}}
    state, text = claim.judge(h(0.05, -0.1, 0.2), table)  # drops 0.45 vs 0.5: "less", but not shown
    assert state == UNDETERMINED and "holds 0" in text and "on 12 samples" in text, text
    assert claim.judge(h(0.3, 0.1, 0.5), table)[0] is True
    assert claim.judge(h(-0.3, -0.5, -0.1), table)[0] is False
    assert "paired +0.300 [+0.100, +0.500]" in claim.cell(h(0.3, 0.1, 0.5), table)


def test_the_noise_probe_records_the_paired_difference(tiny_model, tmp_path):
    from steplens.probes.base import ProbeSettings

    res = get_probe("noise").run(tiny_model, tmp_path, ProbeSettings(count=3, steps=3, size=3, frames=2, batch=3),
                                 progress=False)
    d = res["headline"]["frame_minus_step_at_frame_steps"]
    assert d["n"] == 3 and d["ci_low"] <= d["mean"] <= d["ci_high"]
    assert d["mean"] == pytest.approx(res["headline"]["drop_step_noise_at_frame_steps"] -
                                      res["headline"]["drop_frame_noise"])
