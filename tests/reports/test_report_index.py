"""`steplens report DIR`: an index of the runs under a folder, with headline numbers and the study's claims."""

import json

from typer.testing import CliRunner

from steplens.cli import app


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_report_indexes_probes_demos_and_traces_and_judges_the_claims(tmp_path):
    runs = tmp_path / "runs"
    assert cli("probe", "noise", "--count", 2, "--size", 3, "--steps", 3, "--out", runs / "noise").exit_code == 0
    assert cli("probe", "energy", "--count", 2, "--size", 3, "--steps", 3, "--out", runs / "energy").exit_code == 0
    assert cli("demo", "--count", 2, "--steps", 3, "--out", runs / "demo").exit_code == 0
    assert cli("trace", "--seed", 1, "--size", 3, "--steps", 3, "--out", runs / "tr").exit_code == 0
    r = cli("report", runs)
    assert r.exit_code == 0, r.output
    page = (runs / "index.html").read_text()
    for needle in ("noise at one step wrecks the answer", "middle blocks carry the decisive semantics",
                   "noise/report.html", "energy/report.html", "demo/report.html", " solved"):
        assert needle in page, needle
    assert "probe noise" in r.output and "demo" in r.output and "trace" in r.output
    # the energy report's layer x frame grids sit behind a step slider
    assert 'class="sls"' in (runs / "energy" / "report.html").read_text()


def test_report_on_no_runs_or_a_newer_format_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("report", tmp_path / "empty")
    assert r.exit_code == 2 and "no steplens runs under" in r.output
    r = cli("report", tmp_path / "nowhere")
    assert r.exit_code == 2 and "runs folder not found" in r.output
    new = tmp_path / "new" / "p"
    new.mkdir(parents=True)
    (new / "results.json").write_text(json.dumps({"format": 9, "probe": "noise", "headline": {}}))
    r = cli("report", tmp_path / "new")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "written by a newer steplens (result format 9" in text, r.output
    assert "newer steplens" in (tmp_path / "new" / "index.html").read_text()
