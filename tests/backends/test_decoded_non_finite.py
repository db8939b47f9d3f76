"""Non-finite pixels are named, never scored (issue 31, battery): a VAE that decodes NaN from finite latents (the
latents pass their checks) stops the run with a clear error and writes no result, on every pipeline family."""

import math

import pytest
import torch
from typer.testing import CliRunner

from steplens.cli import app

pytestmark = [pytest.mark.wan, pytest.mark.filterwarnings("ignore:.*has no text encoder")]


def _builders():
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from steplens.backends.wan.tiny import tiny_wan22_i2v

    out = {"wan22": tiny_wan22_i2v}
    if hasattr(diffusers, "HunyuanVideo15ImageToVideoPipeline"):
        from steplens.backends.tiny.hunyuan15 import tiny_hunyuan15_i2v

        out["hunyuan15"] = tiny_hunyuan15_i2v
    if hasattr(diffusers, "LTX2ImageToVideoPipeline"):
        from steplens.backends.ltx2.tiny import tiny_ltx2_i2v

        out["ltx2"] = tiny_ltx2_i2v
    return out


@pytest.mark.parametrize("family", ["wan22", "hunyuan15", "ltx2"])
def test_a_vae_that_decodes_nan_is_not_scored(family, tmp_path):
    builders = _builders()
    if family not in builders:
        pytest.skip(f"this diffusers has no {family}")
    pipe = builders[family](seed=0)
    with torch.no_grad():  # the decoder's last layer NaN: finite latents in, NaN pixels out
        last = [m for n, m in pipe.vae.named_modules() if n.startswith("decoder") and hasattr(m, "weight")
                and isinstance(getattr(m, "weight"), torch.Tensor)][-1]
        last.weight.fill_(math.nan)
    pipe.save_pretrained(tmp_path / family)
    out = tmp_path / "eval"
    r = CliRunner().invoke(app, [str(a) for a in ["eval", "--model", f"wan:{tmp_path / family}", "--count", 1,
                                                  "--size", 3, "--frames", 2, "--steps", 2, "--batch", 1, "--out",
                                                  out]])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, text
    assert "decoded video" in text and "non-finite" in text and "Traceback" not in r.output, text
    assert not (out / "results.json").exists()
