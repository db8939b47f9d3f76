"""The study in its own setting, spread (issue 23): VBVR-Wan2.2 as users hold it (the tiny Wan2.2 pipeline and a
DiffSynth LoRA pair, --preset vbvr) on a VBVR-Bench-layout folder without metadata.json, under
`torchrun --nproc_per_node 2` (CPU, gloo): the same study.json figures, rows and tables as one process."""

import json
import os
import subprocess
import sys

import pytest
from builders import held_wan22, make_vbvr
from conftest import free_port

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _study(tmp_path, out, nproc, one, two):
    args = ["-m", "steplens.cli", "study", "--model", f"wan:{tmp_path / 'wan22'}", "--lora", one, "--lora-2", two,
            "--preset", "vbvr", "--data", tmp_path / "bench", "--scorer", "maze", "--steps", 3, "--count", 2,
            "--probe-count", 2, "--parts", "solve,noise", "--batch", 1, "--out", out]
    launch = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                                                  str(nproc), "--master-addr", "127.0.0.1", "--master-port",
                                                  str(free_port())]
    p = subprocess.run(launch + [str(a) for a in args], env=ENV, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((out / "study.json").read_text())


def test_the_folder_study_with_loras_under_torchrun_equals_one_process(tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    loras = held_wan22(tmp_path)
    make_vbvr(tmp_path / "bench", per_task=2)
    a = _study(tmp_path, tmp_path / "one", 1, *loras)
    b = _study(tmp_path, tmp_path / "two", 2, *loras)
    for key in ("families", "claims", "identity", "config", "cost"):
        assert a[key] == b[key], key
    for fam in a["families"]:
        for part in ("solve", "noise"):
            ra = (tmp_path / "one" / fam / part / "store" / "rows.jsonl").read_text()
            rb = (tmp_path / "two" / fam / part / "store" / "rows.jsonl").read_text()
            assert ra == rb and ra.count("\n") >= 2, (fam, part)
    assert (tmp_path / "one" / "study.md").read_text() == (tmp_path / "two" / "study.md").read_text()
    assert set(a["identity"]["loras"]) == {"transformer", "transformer_2"}
