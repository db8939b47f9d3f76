"""Claims need evidence (issue 22, finding 6): a claim whose rule has nothing to stand on is "undetermined", with
why, in the probe's verdict, `steplens report` and the study's table; never "holds"."""

import json

import pytest

from steplens.experiments.study import tables
from steplens.probes import get_probe, probe_names
from steplens.probes.contract import UNDETERMINED, state_word
from steplens.reports.index import write_index


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
