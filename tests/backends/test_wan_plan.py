"""The plan is the run on the tiny Wan2.2 pipeline (two experts, CFG on: two forwards a step) held as users hold it,
on a VBVR-layout folder: `--plan --json` (the pipeline not loaded) says the NFE the run then stores, for a probe,
compare with its search methods at a budget, and a study's parts."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers")

from builders import held_wan22, make_vbvr  # noqa: E402
from steplens.cli import app  # noqa: E402

pytestmark = pytest.mark.wan
runner = CliRunner()


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("wanplan")
    held_wan22(root)
    make_vbvr(root / "bench", per_task=1, frames=6)
    return root


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def sampling(held):
    return ("--model", f"wan:{held / 'wan22'}", "--preset", "vbvr", "--data", held / "bench", "--scorer", "maze",
            "--steps", 4, "--guidance", 3, "--height", 32, "--width", 32, "--batch", 1)


@pytest.mark.parametrize("command", [
    ("probe", "noise", "--count", 1),
    ("compare", "--budget", "2", "--verifier", "consensus", "--methods", "single,vote", "--count", 1),
    ("study", "--parts", "solve,noise,compare", "--count", 1, "--probe-count", 1, "--compare-families", 1,
     "--n-seeds", 2),
], ids=["probe noise", "compare --budget", "study"])
def test_planned_nfe_is_the_runs_on_wan22(held, command, tmp_path):
    args = (*command, *sampling(held))
    out = tmp_path / "o"
    plan = json.loads(run(*args, "--plan", "--json", "--sec-per-nfe", 1, "--out", out))
    assert not out.exists()
    run(*args, "--out", out)
    cost = json.loads((out / ("study.json" if command[0] == "study" else "results.json")).read_text())["cost"]
    cost = cost.get("total", cost)
    assert (plan["nfe"], plan["nfe_without_reuse"]) == (cost["nfe"], cost["nfe_without_reuse"])
    assert plan["nfe"] > 0


@pytest.mark.parametrize("family", ["wan22", "ti2v", "ltx2", "hunyuan15"])
def test_a_folders_blocks_and_frames_are_asked_of_its_backend_without_loading(family, tmp_path):
    """--plan reads a pipeline folder's blocks and latent frames from its backend, on the VAE and transformer built
    with empty weights: what the loaded model says (LTX-2 compresses time 8x, HunyuanVideo-1.5's tiny VAE 2x, Wan
    4x; no Wan config key read for the others)."""
    pytest.importorskip("transformers")
    from steplens.backends import backend_for
    from steplens.backends.load import folder_geometry
    from steplens.backends.ltx2.tiny import tiny_ltx2_i2v
    from steplens.backends.tiny.hunyuan15 import tiny_hunyuan15_i2v
    from steplens.backends.wan.tiny import tiny_wan22_i2v, tiny_wan22_ti2v

    build = {"wan22": tiny_wan22_i2v, "ti2v": tiny_wan22_ti2v, "ltx2": tiny_ltx2_i2v,
             "hunyuan15": tiny_hunyuan15_i2v}[family]
    pipe = build(seed=0)
    pipe.save_pretrained(tmp_path / family)
    model = backend_for(pipe)(pipe)
    blocks, factor, frames_from_video = folder_geometry(f"wan:{tmp_path / family}")
    assert (blocks, factor) == (list(model.block_names), model.temporal_factor)
    assert [frames_from_video(n) for n in (1, 5, 9, 33, 81, 121)] == \
        [model.frames_from_video(n) for n in (1, 5, 9, 33, 81, 121)]
