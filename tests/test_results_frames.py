"""`steplens.results(DIR)`: every results folder as one DataFrame with the same column names."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import steplens
from steplens.cli import app
from steplens.io.results import COLUMNS


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    common = ("--count", 2, "--steps", 3)
    made = {
        "probe": cli("probe", "noise", *common, "--out", root / "noise"),
        "compare": cli("compare", *common, "--n-seeds", 2, "--methods", "single,vote", "--out", root / "cmp"),
        "eval": cli("eval", *common, "--out", root / "ev"),
        "study": cli("study", "--model", "tiny-maze", "--count", 2, "--probe-count", 2, "--parts", "solve,noise",
                     "--steps", 3, "--out", root / "st"),
    }
    for name, r in made.items():
        assert r.exit_code == 0, (name, r.output)
    return root


@pytest.mark.parametrize("name", ["noise", "cmp", "ev", "st"])
def test_every_folder_reads_as_rows_with_the_same_columns(folders, name):
    df = steplens.results(folders / name)
    cols = list(df.columns)
    assert cols[cols.index("condition"):][: len(COLUMNS)] == COLUMNS
    assert len(df) >= 2 and set(df["task"]) == {"maze"} and set(df["split"]) == {"test"}
    assert df["seed"].notna().all() and df["nfe"].notna().all() and (df["nfe_without_reuse"] >= df["nfe"]).all()
    assert set(df["sample"]) == {"maze/00000", "maze/00001"} and set(df["seed"]) == {0, 1}


def test_rows_add_up_to_what_the_folder_reports(folders):
    df = steplens.results(folders / "noise")
    summary = steplens.results(folders / "noise", "summary")
    clean = summary.set_index("condition").loc["clean"]
    assert df[df.condition == "clean"]["success"].sum() == clean["solved"]
    cost = json.loads((folders / "noise" / "results.json").read_text())["cost"]
    assert df["nfe"].sum() == cost["nfe"] and df["nfe_without_reuse"].sum() == cost["nfe_without_reuse"]
    study = steplens.results(folders / "st")
    assert set(study["part"]) == {"maze/noise", "maze/solve-5", "maze/solve-6"}
    claims = steplens.results(folders / "st", "summary")
    assert {"claim", "family", "state", "evidence"} <= set(claims.columns) and len(claims) >= 2
    ev = steplens.results(folders / "ev", "summary")
    assert len(ev) == 1 and ev["n"][0] == 2


def test_a_folder_without_results_and_a_bad_kind_are_named(tmp_path):
    with pytest.raises(ValueError, match="no such results folder"):
        steplens.results(tmp_path / "nope")
    with pytest.raises(ValueError, match="no results here"):
        steplens.results(tmp_path)
    with pytest.raises(ValueError, match="what = 'table'"):
        steplens.results(tmp_path, "table")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "rows.jsonl").write_text('{"condition": "a"}\n{oops\n')
    with pytest.raises(ValueError, match=r"rows.jsonl, line 2"):
        steplens.results(tmp_path)
