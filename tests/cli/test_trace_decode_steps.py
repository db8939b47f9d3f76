"""`trace --decode-steps` (issue 22, item 5): x0_hat decoded, scored and kept only at the chosen steps (decoding every
step of a 14B model cost 102 s per sample against 8.8 s for `run`); what it keeps equals the full trace there."""

import json

from safetensors.torch import load_file
from typer.testing import CliRunner

from steplens.cli import app


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def test_decode_steps_keeps_the_chosen_steps_of_the_full_trace(tmp_path):
    base = ["trace", "--seed", 1, "--size", 3, "--steps", 6]
    r, text = _cli(*base, "--out", tmp_path / "all")
    assert r.exit_code == 0, text
    r, text = _cli(*base, "--decode-steps", "0,3,-1", "--out", tmp_path / "some")  # -1: the last step
    assert r.exit_code == 0, text
    full = json.loads((tmp_path / "all" / "metrics.json").read_text())
    some = json.loads((tmp_path / "some" / "metrics.json").read_text())
    assert full["steps"] == list(range(6)) and some["steps"] == [0, 3, 5]
    assert [m["step"] for m in some["per_step"]] == [0, 3, 5]
    assert some["sigmas"] == [full["sigmas"][k] for k in (0, 3, 5)]
    for m in some["per_step"]:
        assert m == full["per_step"][m["step"]]
    assert some["final_score"] == full["final_score"]
    x_all = load_file(str(tmp_path / "all" / "x0.safetensors"))["x0"]
    x_some = load_file(str(tmp_path / "some" / "x0.safetensors"))["x0"]
    assert x_some.shape[0] == 3 and (x_some == x_all[[0, 3, 5]]).all()
    assert some["summary"]["commitment_step"] in (None, 0, 3, 5)


def test_decode_steps_bad_values_are_named(tmp_path):
    for value, must in (("9", "--decode-steps: step 9 out of range; this run has steps 0..5 (-6..-1 from the end)"),
                        ("a,b", "comma-separated integers"), ("-7", "step -7 out of range"),
                        ("2,2", "repeated step 2"), ("5,-1", "repeated step 5")):
        r, text = _cli("trace", "--seed", 1, "--size", 3, "--steps", 6, "--decode-steps", value,
                       "--out", tmp_path / "o")
        assert r.exit_code == 2 and must in text and "Traceback" not in r.output, (value, text)


def test_decode_steps_from_the_end_with_the_models_own_steps(tiny_model):
    from steplens.tasks import get_task
    from steplens.trace import trace

    s = get_task("maze").sample(0, 3, 2)
    tr = trace(tiny_model, [s], [0], decode_steps=[0, -1])[0]  # steps: the model's own (20)
    n = tiny_model.sampling_defaults()["steps"]
    assert tr.steps == [0, n - 1] and tr.x0.shape[0] == 2 and [m["step"] for m in tr.metrics] == [0, n - 1]
