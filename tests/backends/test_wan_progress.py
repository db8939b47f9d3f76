"""What an A14B user waits on (issue 22, item 5): `run` and `eval` on a pipeline show per-step progress (a sample
takes minutes), and `trace --decode-steps` decodes x0_hat only at the chosen steps."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers")

from steplens.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    from steplens.backends.wan.tiny import tiny_wan22_i2v

    root = tmp_path_factory.mktemp("wan")
    tiny_wan22_i2v(seed=0).save_pretrained(root / "wan22")
    data = root / "data"
    r = CliRunner().invoke(app, ["tasks", "generate", "maze", "--count", "1", "--size", "3", "--upscale", "2",
                                 "--frames", "2", "--out", str(data)])
    assert r.exit_code == 0, r.output
    return f"wan:{root / 'wan22'}", data


def test_run_and_eval_on_a_pipeline_show_each_step(wan, tmp_path):
    model, data = wan
    for args in (["run", "--data", data, "--out", tmp_path / "o"], ["eval", "--data", data]):
        r = CliRunner().invoke(app, [str(a) for a in [*args, "--model", model, "--steps", 3]])
        assert r.exit_code == 0, r.output
        assert "steps:" in r.output and "0/3" in r.output, r.output  # a bar over the 3 steps


def test_trace_decode_steps_on_a_pipeline(wan, tmp_path):
    from safetensors.torch import load_file

    model, data = wan
    sample = next(data.rglob("first_frame.png")).parent
    r = CliRunner().invoke(app, [str(a) for a in ["trace", "--model", model, "--sample", sample, "--steps", 3,
                                                  "--decode-steps", "0,2", "--out", tmp_path / "t"]])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["steps"] == [0, 2] and [m["step"] for m in metrics["per_step"]] == [0, 2]
    assert metrics["experts"] is None or len(metrics["experts"]) == 2
    assert load_file(str(tmp_path / "t" / "x0.safetensors"))["x0"].shape[0] == 2


def test_trace_on_a_pipeline_decodes_a_few_steps_by_default_and_all_when_asked(wan, tmp_path):
    model, data = wan
    sample = next(data.rglob("first_frame.png")).parent
    for extra, want in (([], [0, 2, 4, 6, 8]), (["--decode-steps", "all"], list(range(9)))):
        r = CliRunner().invoke(app, [str(a) for a in ["trace", "--model", model, "--sample", sample, "--steps", 9,
                                                      *extra, "--out", tmp_path / f"t{len(extra)}"]])
        assert r.exit_code == 0, r.output
        metrics = json.loads((tmp_path / f"t{len(extra)}" / "metrics.json").read_text())
        assert [m["step"] for m in metrics["per_step"]] == want
