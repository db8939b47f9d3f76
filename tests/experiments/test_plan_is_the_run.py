"""The plan is the run's own job list (issue 31, item 1): `--plan` counts the conditions, samples and NFE the run
spends, for compare (search methods and budgets included), each probe and every study part (chains included), on
the real samples and frames; `--plan --json` prints it as JSON; huge counts are priced in closed form within seconds;
every stored row carries `nfe` and `nfe_without_reuse`."""

import json
import time

import pytest
from typer.testing import CliRunner

from steplens.cli import app

runner = CliRunner()


def cli(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r, r.output


def plan_json(*args) -> dict:
    r, out = cli(*args, "--plan", "--json", "--sec-per-nfe", "1")
    assert r.exit_code == 0, out
    return json.loads(out)


def rows(out):
    return [json.loads(x) for x in (out / "store" / "rows.jsonl").read_text().splitlines()]


def test_compare_plan_counts_the_search_methods_and_budgets(tmp_path):
    """The issue's case: the plan said 1 condition / 40 NFE, the run spends 7 conditions / 756 NFE."""
    p = plan_json("compare", "--model", "tiny-reasoner", "--task", "maze-loops", "--budget", "2,4", "--count", 2,
                  "--methods", "single", "--out", tmp_path / "o")
    (part,) = p["parts"]
    assert (part["conditions"], part["samples"], part["nfe"]) == (7, 2, 756)
    assert p["nfe"] == 756 and p["nfe_without_reuse"] == 756
    assert p["device_hours"] == pytest.approx(756 / 3600)
    assert not (tmp_path / "o").exists()


def test_plan_answers_huge_counts_and_budgets_within_seconds(tmp_path):
    t0 = time.perf_counter()
    p = plan_json("compare", "--model", "tiny-reasoner", "--budget", "1000000", "--count", 2, "--methods", "single",
                  "--out", tmp_path / "o")
    assert time.perf_counter() - t0 <= 10
    # single 20 + best-of-n 20e6 + smc 20e6 + early-beam (k = 2: n x 3 + 17 <= 20e6, n = 6,666,661) per sample
    assert p["nfe"] == 2 * (20 + 2 * 20_000_000 + 6_666_661 * 3 + 17)
    t0 = time.perf_counter()
    p = plan_json("probe", "noise", "--model", "tiny-maze", "--count", 1_000_000_000, "--out", tmp_path / "n")
    assert time.perf_counter() - t0 <= 10
    assert p["parts"][0]["samples"] == 1_000_000_000 and p["nfe"] > 0
    t0 = time.perf_counter()
    p = plan_json("compare", "--model", "tiny-reasoner", "--count", 1_000_000_000, "--budget", "1,2,4,8", "--out",
                  tmp_path / "c")
    assert time.perf_counter() - t0 <= 10 and p["parts"][0]["samples"] == 1_000_000_000


def test_compare_rows_carry_both_nfe_fields_and_shared_runs_once(tmp_path):
    out = tmp_path / "c"
    r, text = cli("compare", "--model", "tiny-maze", "--count", 2, "--size", 3, "--steps", 2, "--n-seeds", 2,
                  "--methods", "vote,best-consensus", "--out", out)
    assert r.exit_code == 0, text
    got = rows(out)
    assert all(x["nfe_without_reuse"] is not None and x["nfe_without_reuse"] == x["nfe"] for x in got)
    # vote and best-consensus read one 2-seed run: counted once (2 seeds x 2 steps), on the first that reads it
    res = json.loads((out / "results.json").read_text())
    assert res["cost"]["nfe"] == 2 * (2 + 2 * 2)


def test_study_chains_without_a_baseline_is_refused_before_any_work(tmp_path):
    r, text = cli("study", "--model", "tiny-reasoner-4step", "--parts", "chains", "--count", 1, "--out",
                  tmp_path / "s")
    assert r.exit_code == 2, text
    assert "--parts chains" in " ".join(text.split()) and "--baseline" in text
    assert not (tmp_path / "s").exists()


def test_study_chains_plan_prices_the_chains(tmp_path):
    p = plan_json("study", "--model", "tiny-reasoner-4step", "--baseline", "tiny-reasoner", "--parts", "chains",
                  "--tasks", "maze", "--count", 2, "--probe-count", 1, "--out", tmp_path / "s")
    assert p["nfe"] > 0 and [x["part"] for x in p["parts"]] == ["chains"]


def run_cost(out) -> dict:
    return json.loads((out / "results.json").read_text())["cost"]


def store_nfe(out) -> tuple[int, int]:
    """The rows' own sums: every row carries both counts."""
    got = rows(out)
    assert all(r.get("nfe") is not None and r.get("nfe_without_reuse") is not None for r in got)
    return round(sum(r["nfe"] for r in got)), round(sum(r["nfe_without_reuse"] for r in got))


COMMON = ("--model", "tiny-maze", "--count", 2, "--size", 3, "--steps", 3, "--batch", 2)
COMMANDS = {
    "probe behaviours": ("probe", "behaviours"),
    "probe sweep": ("probe", "sweep"),
    "probe noise": ("probe", "noise"),
    "probe noise every-step": ("probe", "noise", "--frame-noise", "every-step"),
    "probe propagation": ("probe", "propagation"),
    "probe energy": ("probe", "energy"),
    "probe swap": ("probe", "swap", "--task", "maze-two-goals"),
    "compare": ("compare", "--n-seeds", "2,3"),
    "compare --budget": ("compare", "--budget", "1,2,3", "--methods", "single,vote,ensemble", "--steps", 4),
    "compare --beside-verifiers": ("compare", "--budget", "2,3", "--methods", "single", "--search-methods",
                                   "best-of-n,smc", "--verifier", "checker", "--beside-verifiers", "task", "--steps",
                                   4),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_planned_nfe_is_the_runs_nfe(name, tmp_path):
    """For every command: the plan's NFE (with and without reuse), samples and conditions equal what the run stores
    (results.json's cost, the rows' sums, their conditions)."""
    args = (*COMMANDS[name], *COMMON) if "--steps" not in COMMANDS[name] else \
        (*COMMANDS[name], *COMMON[:-4], *COMMON[-2:])
    out = tmp_path / "o"
    p = plan_json(*args, "--out", out)
    assert not out.exists()
    r, text = cli(*args, "--out", out)
    assert r.exit_code == 0, text
    (part,) = p["parts"]
    cost = run_cost(out)
    assert (p["nfe"], p["nfe_without_reuse"]) == (cost["nfe"], cost["nfe_without_reuse"]) == store_nfe(out), name
    got = rows(out)
    assert part["jobs"] == len(got) and part["samples"] == len({x["sample"] for x in got})


def part_of(path: str) -> str:
    """The study part a results.json under the study's folder belongs to (study.json's cost keys)."""
    seg = path.split("/")
    if seg[0] in ("baseline", "compare", "chains"):
        return {"baseline": "baseline solve"}.get(seg[0], seg[0])
    return "solve" if seg[1].startswith("solve") else seg[1]


def study_parts_cost(out) -> dict:
    by: dict = {}
    for path, c in json.loads((out / "study.json").read_text())["cost"]["parts"].items():
        got = by.setdefault(part_of(path), [0, 0])
        got[0], got[1] = got[0] + c["nfe"], got[1] + c["nfe_without_reuse"]
    return by


def assert_study_plan_is_the_run(args, out):
    p = plan_json("study", *args, "--out", out)
    assert not out.exists()
    r, text = cli("study", *args, "--out", out)
    assert r.exit_code == 0, text
    planned = {x["part"]: [x["nfe"], x["nfe_without_reuse"]] for x in p["parts"]}
    assert planned == study_parts_cost(out)
    total = json.loads((out / "study.json").read_text())["cost"]["total"]
    assert (p["nfe"], p["nfe_without_reuse"]) == (total["nfe"], total["nfe_without_reuse"])
    stored = sum(len(f.read_text().splitlines()) for f in out.rglob("store/rows.jsonl"))
    assert sum(x["jobs"] for x in p["parts"]) == stored  # every planned job is a stored row, and no more
    return planned


@pytest.mark.slow
def test_study_plan_is_the_run_for_every_part_baseline_and_chains(tmp_path):
    """Every part of a study (solve at two sizes, sweep, noise, propagation, energy, compare on the weakest family, the
    baseline's solve, chains: a few-step student against its teacher) planned as it runs, part by part. Before: the
    compare part priced at its method count while the run stored each shared generation on every method reading it
    (240 planned, 384 run), chains priced 0."""
    planned = assert_study_plan_is_the_run(
        ["--model", "tiny-reasoner-4step", "--baseline", "tiny-reasoner", "--tasks", "maze,tictactoe", "--count", 2,
         "--probe-count", 2, "--sweep-count", 1, "--compare-families", 1, "--batch", 2], tmp_path / "s")
    assert set(planned) == {"solve", "sweep", "noise", "propagation", "energy", "plan", "compare", "baseline solve",
                            "chains"}
    assert all(v[0] > 0 for v in planned.values())


@pytest.mark.slow
def test_study_plan_on_a_folder_uses_its_samples_and_frames(tmp_path):
    """On a VBVR-layout folder (no metadata: frames from ground_truth.mp4) of 3 samples per task at 6 frames: every
    part priced on min(count, 3) samples per family at the samples' own frame count, as the run spends; the noise
    part's conditions per sample are `probe noise --plan`'s on the same folder."""
    from builders import make_vbvr

    data = tmp_path / "vbvr"
    make_vbvr(data, per_task=3, size=3, frames=6)
    args = ["--model", "tiny-maze", "--data", data, "--count", 5, "--probe-count", 2, "--steps", 3,
            "--compare-families", 1, "--parts", "solve,noise,compare", "--batch", 2]
    planned = assert_study_plan_is_the_run(args, tmp_path / "s")
    assert set(planned) == {"solve", "noise", "compare"}
    one = plan_json("probe", "noise", "--model", "tiny-maze", "--data", data, "--tasks", "O-39_maze_data-generator",
                    "--count", 2, "--steps", 3, "--out", tmp_path / "n")
    study = plan_json("study", *args, "--out", tmp_path / "s2")
    noise = next(x for x in study["parts"] if x["part"] == "noise")
    assert noise["conditions"] == one["parts"][0]["conditions"] and noise["samples"] == 2 * 2
    solve = next(x for x in study["parts"] if x["part"] == "solve")
    assert solve["samples"] == 2 * 3  # min(--count 5, 3 samples) per task folder, not 5 (nor 500)


@pytest.mark.parametrize("method, extra", [("best-of-n", {}), ("smc", {"steps": [1, 3]}), ("early-beam", {"m": 1}),
                                           ("early-beam", {"m": 2, "k": 1}), ("early-beam", {"m": 1, "steps": [3, 5]})])
def test_particles_for_a_budget_in_closed_form_are_the_most_the_budget_buys(method, extra):
    """config_for_budget's closed form: the largest n whose NFE stays within the budget (what counting n up found)."""
    from steplens.methods.search import SearchConfig, config_for_budget, search_nfe

    for steps in (4, 8, 20):
        for budget in (1, 2, 3, 4, 7, 8, 50):
            base = SearchConfig(method=method, n=max(2, extra.get("m", 1)), **extra)
            if extra.get("steps") and max(extra["steps"]) >= steps - 1:
                continue
            try:
                got = config_for_budget(base, budget, steps)
            except ValueError:  # even the fewest particles cost more: refused, as before
                assert search_nfe(base.model_copy(update={"n": max(1, base.m)}), steps) > budget * steps
                continue
            assert search_nfe(got, steps) <= budget * steps
            assert search_nfe(got.model_copy(update={"n": got.n + 1}), steps) > budget * steps


def test_a_chain_is_planned_at_its_most_links_and_runs_within(tmp_path):
    """A chain stops once its verifier accepts: its plan is a bound, said so (`at_most`), and the run stays within."""
    args = ("compare", "--budget", "2", "--methods", "single", "--search-methods", "chain", "--model", "tiny-maze",
            "--count", 2, "--size", 3, "--steps", 4, "--batch", 2)
    out = tmp_path / "o"
    p = plan_json(*args, "--out", out)
    assert p["at_most"] and p["parts"][0]["at_most"] and p["nfe"] == 2 * (4 + 2 * 4)  # single, then at most 2 links
    r, text = cli(*args, "--out", out)
    assert r.exit_code == 0, text
    assert 2 * (4 + 4) <= run_cost(out)["nfe"] <= p["nfe"]


def test_a_probe_whose_plan_is_not_its_run_is_refused_before_any_work(tiny_model, tmp_path):
    """The plan is the run's job list, checked at every run: a probe whose `plan` names other conditions than it
    runs is refused, naming both, before any model run (nothing written)."""
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings
    from steplens.probes.contract import Branch

    class Drifted(type(get_probe("energy"))):
        def plan(self, s, shape, options):
            return {"energy": Branch(0), "forgotten": Branch(0)}

    with pytest.raises(ValueError, match=r"plan and its run disagree .*planned, not run: \['forgotten'\]"):
        Drifted().run(tiny_model, tmp_path / "o", ProbeSettings(count=1, steps=2, size=3, frames=2), progress=False)
    assert not (tmp_path / "o" / "store").exists()
