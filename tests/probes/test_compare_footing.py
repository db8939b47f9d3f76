"""compare puts every method on equal footing (issue 22, finding 8): every method's video is snapped to the task's
palette before it is scored where the task has one (not only vote's), and the table gives the paired difference to
one seed on the mean score as well as on the solve rate. Also: empty ensemble blocks/steps refused."""

import numpy as np
import pytest

from steplens.presets import resolve
from steplens.methods.ensemble import EnsembleConfig
from steplens.probes.compare import method_table, run_methods
from steplens.tasks import Scorers, get_task, palette


def test_every_method_is_scored_on_palette_snapped_frames(tiny_model):
    samples = [get_task("maze").sample(i, 3, 3) for i in range(3)]
    seeds = [int(s.seed) for s in samples]
    got = run_methods(tiny_model, samples, seeds, ["single", "vote"], 1, resolve(tiny_model, steps=3, shift=3.0,
                                                                                 guidance=1.0), scorers=Scorers())
    # vote over one seed is that seed snapped: with both snapped, they score the same
    assert [r["score"] for r in got["single"]] == [r["score"] for r in got["vote"]]
    assert palette(samples[0]) is not None


def test_the_table_gives_the_mean_score_difference_with_its_interval():
    rows = []
    for i in range(40):
        rows.append({"condition": "single N=1", "sample": str(i), "success": i % 2 == 0, "score": 0.5})
        rows.append({"condition": "vote N=3", "sample": str(i), "success": i % 2 == 0, "score": 0.6 + 0.01 * (i % 3)})
    t = {r["method"]: r for r in method_table(rows, [("single", 1), ("vote", 3)])}
    assert t["vote"]["delta_vs_single"] == 0.0
    assert t["vote"]["score_delta_vs_single"] == pytest.approx(np.mean([0.1 + 0.01 * (i % 3) for i in range(40)]))
    assert 0.09 < t["vote"]["score_delta_ci_low"] < t["vote"]["score_delta_vs_single"] < t["vote"]["score_delta_ci_high"]


@pytest.mark.parametrize("field", ["blocks", "steps"])
def test_an_empty_ensemble_selection_is_refused(field):
    with pytest.raises(ValueError, match=f"{field}=\\[\\] selects no {field[:-1]}"):
        EnsembleConfig(**{field: []})


def test_study_parts_empty_is_refused_before_the_model_loads(tmp_path):
    from typer.testing import CliRunner

    from steplens.cli import app

    r = CliRunner().invoke(app, ["study", "--model", "tiny-maze", "--parts", "",
                                 "--out", str(tmp_path / "s")])
    text = " ".join(r.output.split())  # every command refuses an empty value at parse, naming the option
    assert r.exit_code == 2 and "'--parts'" in text and "empty value ''" in text, r.output
