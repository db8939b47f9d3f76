"""`steplens study` on a wan: model as its users hold it: two LoRAs, the vbvr preset, bfloat16 (the tiny Wan2.2
pipeline, one sample per figure): accepted, and the preset's sampling reaches every run of the study."""

import json

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from steplens.cli import app  # noqa: E402

from builders import held_wan22  # noqa: E402


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    one, two = held_wan22(root)
    return root, one, two


def _study(root, one, two, out, *extra):
    args = ["study", "--model", f"wan:{root / 'wan22'}", "--lora", str(one), "--lora-2", f"{two}:0.5",
            "--preset", "vbvr", "--dtype", "bfloat16", "--steps", "2", "--tasks", "maze", "--parts", "solve",
            "--count", "1", "--batch", "1", "--out", str(out), *extra]
    r = CliRunner().invoke(app, args)
    return r, " ".join(r.output.split())


def test_study_takes_loras_preset_and_dtype_on_a_wan_model(held, tmp_path):
    root, one, two = held
    r, text = _study(root, one, two, tmp_path / "study")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "study" / "study.json").read_text())
    cfg = res["config"]
    assert (cfg["steps"], cfg["shift"], cfg["guidance"]) == (2, 5.0, 5.0)  # --steps, then the preset's shift and CFG
    assert cfg["sampling"]["preset"] == "vbvr" and cfg["sampling"]["scheduler"] == "euler"
    assert cfg["sampling"]["boundary"] == 0.875 and cfg["sampling"]["sources"]["steps"] == "option"
    assert set(res["families"]["maze"]["solve"]) == {"5", "6"}
    for k in ("5", "6"):  # every run of the study samples as the preset says, and records it
        store = json.loads((tmp_path / "study" / "maze" / f"solve-{k}" / "store" / "store_config.json").read_text())
        assert (store["steps"], store["shift"], store["guidance"]) == (2, 5.0, 5.0)
        assert store["sampling"]["preset"] == "vbvr"


def test_study_refuses_bad_model_options_by_name(held, tmp_path):
    root, one, two = held
    wrong = tmp_path / "wrong.safetensors"
    save_file({"transformer.nothing.here.lora_A.weight": torch.zeros(2, 4),
               "transformer.nothing.here.lora_B.weight": torch.zeros(4, 2)}, str(wrong))
    for extra, message in ((["--lora", str(wrong)], "wrong.safetensors"),
                           (["--lora-2", f"{two}:big"], "the scale after ':' must be a number, got 'big'"),
                           (["--dtype", "float8"], "unknown dtype 'float8'"),
                           (["--offload", "model"], "pass an accelerator device"),
                           (["--preset", "fast"], "--preset 'fast' does not exist")):
        r, text = _study(root, one, two, tmp_path / "bad", *extra)
        assert r.exit_code == 2 and message in text, (extra, r.output)
        assert not (tmp_path / "bad").exists()
