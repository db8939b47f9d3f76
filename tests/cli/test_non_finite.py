"""Non-finite numbers are named, never written (issue 22, battery): --guidance beyond any CFG scale is refused with
the options; weights that make NaN stop the run at the step it appeared, with a clear error and no output."""

import math

import torch
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import get_task, write_sample


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def test_a_huge_guidance_is_refused_with_the_options(tmp_path):
    for g in ("1e30", "1e300", "101"):
        r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--guidance", g)
        assert r.exit_code == 2 and "--guidance" in text and "must be <= 100" in text, text
        assert "Traceback" not in r.output
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--guidance", "3")
    assert r.exit_code == 0, text


def test_weights_that_make_nan_stop_the_run_naming_the_step(tmp_path):
    from steplens.models import VideoDiT, get_arch
    from steplens.models.weights import save_weights

    net = VideoDiT(get_arch("test"))
    with torch.no_grad():
        next(p for n, p in net.named_parameters() if p.dim() == 2).fill_(math.nan)
    save_weights(tmp_path / "nan.safetensors", net, net.cfg.to_dict())
    data = tmp_path / "data"
    write_sample(data, get_task("maze").sample(0, 3, 3, idx=0), scale=2)
    out = tmp_path / "out"
    r, text = _cli("run", "--model", tmp_path / "nan.safetensors", "--data", data, "--out", out, "--steps", 2)
    assert r.exit_code == 2, text
    assert "non-finite values (NaN/inf) at step 0" in text and "Traceback" not in r.output, text
    assert not list(out.rglob("*.mp4")) and not list(out.rglob("*.png"))
