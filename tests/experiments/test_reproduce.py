"""Every file reproduces (issue 31, item 3): each command run twice into fresh folders writes the same files, byte for
byte, except the timing fields declared in `steplens.io.reproduce.TIMING_FIELDS`; the energy probe's pca.png included
(it used an unseeded randomized PCA)."""

import pytest
import torch
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.reproduce import TIMING_FIELDS, differing_files
from steplens.probes.energy import pca_rgb


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data") / "data"
    r = CliRunner().invoke(app, ["tasks", "generate", "maze", "--count", "2", "--size", "3", "--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


def _twice(tmp_path, *args):
    """The command run twice (the global random state moved on in between), each into a fresh OUT."""
    outs = []
    for i in (1, 2):
        out = tmp_path / f"out{i}"
        torch.manual_seed(1000 + i)  # what a caller did before must not matter
        r = CliRunner().invoke(app, [str(a).replace("OUT", str(out)) for a in args])
        assert r.exit_code == 0, r.output[-3000:]
        outs.append(out)
    assert any(outs[0].rglob("*")), "the command wrote nothing"
    return outs


def test_pca_of_hidden_states_is_deterministic():
    h = torch.randn(2, 4, 4, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    a = pca_rgb(h)
    torch.manual_seed(2)
    b = pca_rgb(h)
    assert (a == b).all()
    # the first component is the direction of most variance: its channel spreads wider than the third's
    assert a[..., 0].std() > 0 and a.shape == (2, 4, 4, 3)


def test_energy_probe_twice_gives_the_same_files_pca_included(tmp_path):
    a, b = _twice(tmp_path, "probe", "energy", "--count", 1, "--steps", 2, "--size", 3, "--out", "OUT")
    assert (a / "pca.png").is_file()
    assert differing_files(a, b) == []


def test_timing_fields_are_the_only_json_fields_left_out(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, t, v in ((a, 1.5, 1), (b, 2.5, 1)):
        d.mkdir()
        (d / "x.json").write_text('{"%s": %s, "v": %s}' % (TIMING_FIELDS[0], t, v))
        (d / "y.csv").write_text(f"{v}\n")
    assert differing_files(a, b) == []
    (b / "x.json").write_text('{"%s": 2.5, "v": 2}' % TIMING_FIELDS[0])
    (b / "y.csv").write_text("1 \n")
    (b / "z.png").write_bytes(b"z")
    assert differing_files(a, b) == ["z.png", "x.json", "y.csv"]


COMMANDS = {
    "run": ["run", "--data", "DATA", "--out", "OUT", "--steps", 2],
    "eval": ["eval", "--count", 2, "--size", 3, "--frames", 2, "--steps", 2, "--out", "OUT"],
    "trace": ["trace", "--data", "DATA", "--out", "OUT", "--steps", 2, "--count", 1],
    "demo": ["demo", "--count", 1, "--steps", 2, "--out", "OUT"],
    **{f"probe {p}": ["probe", p, "--count", 1, "--steps", 2, "--size", 3, "--out", "OUT"]
       for p in ("noise", "propagation", "sweep", "behaviours", "swap")},
    "compare": ["compare", "--count", 1, "--size", 3, "--steps", 2, "--n-seeds", 2, "--out", "OUT"],
    "compare --budget": ["compare", "--count", 1, "--size", 3, "--steps", 2, "--budget", "1,2", "--out", "OUT"],
    "study": ["study", "--tasks", "maze", "--count", 1, "--probe-count", 1, "--compare-count", 1, "--sweep-count", 1,
              "--steps", 2, "--compare-families", 1, "--out", "OUT"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_twice_gives_the_same_files(name, data, tmp_path):
    a, b = _twice(tmp_path, *[str(data) if x == "DATA" else x for x in COMMANDS[name]])
    assert differing_files(a, b) == []


@pytest.mark.slow
def test_score_twice_gives_the_same_file(data, tmp_path):
    run = tmp_path / "run"
    assert CliRunner().invoke(app, ["run", "--data", str(data), "--out", str(run), "--steps", "2"]).exit_code == 0
    a, b = _twice(tmp_path, "score", "--data", data, "--outputs", run, "--out", "OUT")
    assert differing_files(a, b) == []


@pytest.mark.slow
def test_every_json_names_the_scorer_that_scored(data, tmp_path):
    """Issue 31, item 5: eval, trace, demo, a probe and compare (with a budget: also the verifier) name the scorer."""
    import json

    def cli(*args):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert r.exit_code == 0, r.output[-2000:]
        return r.output
    cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", tmp_path / "eval")
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["scored_by"] == {"maze": "maze"}
    text = cli("trace", "--data", data, "--out", tmp_path / "trace", "--steps", 2, "--count", 1)
    assert "scored by maze" in text
    metrics = next((tmp_path / "trace").rglob("metrics.json"))
    assert json.loads(metrics.read_text())["final_score"]["scorer"] == "maze"
    cli("demo", "--count", 1, "--steps", 2, "--out", tmp_path / "demo")
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["scored_by"] == {"maze": "maze"}
    cli("probe", "noise", "--count", 1, "--steps", 2, "--size", 3, "--scorer", "maze-shortest", "--out",
        tmp_path / "noise")
    assert json.loads((tmp_path / "noise" / "results.json").read_text())["scored_by"] == {"maze": "maze-shortest"}
    cli("compare", "--count", 1, "--size", 3, "--steps", 2, "--budget", "2", "--methods", "single", "--out",
        tmp_path / "cmp")
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert res["scored_by"] == {"maze": "maze"} and res["verifier"]["name"] == res["config"]["search"]["verifier"]
