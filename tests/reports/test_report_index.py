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
    # the terminal shows each verdict with its number and rule, as the page does (issue 31, item 2)
    text = " ".join(r.output.replace("│", " ").split())
    assert "the study's claims" in text and "(rule:" in page, text[-2000:]
    assert text.count("(rule:") >= 2 and "task/background energy" in text, text[-2000:]
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


def test_report_on_malformed_result_files_names_them_and_lists_the_others(tmp_path):
    """Issue 22's battery: one malformed result file under the folder gave a traceback and no index at all."""
    runs = tmp_path / "runs"
    assert cli("probe", "noise", "--count", 1, "--size", 3, "--steps", 2, "--out", runs / "noise").exit_code == 0
    good = json.loads((runs / "noise" / "results.json").read_text())
    bad = {"headline-a-list": {**good, "headline": [1, 2]}, "table-of-strings": {**good, "table": ["x", "y"]},
           "demo-without-counts": {"kind": "demo"}, "trace-odd": {"per_step": 3, "final_score": "x"},
           "truncated": None}
    for name, data in bad.items():
        (runs / name).mkdir()
        (runs / name / ("summary.json" if "demo" in name else "metrics.json" if "trace" in name else
                        "results.json")).write_text(json.dumps(data)[:-5] if data is None or name == "truncated"
                                                    else json.dumps(data))
    r = cli("report", runs)
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "Traceback" not in r.output, (r.exit_code, r.output, r.exception)
    page = (runs / "index.html").read_text()
    assert "noise at one step wrecks the answer" in page  # the good run judged as before
    for name in bad:
        assert f"{name}/" in text and f"{name}/" in page, name  # each bad file named
    assert "malformed" in text
