"""Processes of one launch started with different options (issue 31, battery): each compares its options with the
others' at start and all refuse, naming the difference, before any model loads or any row is written (was: a crash
in gloo and a partial store)."""

import os
import subprocess
import sys

import pytest
from conftest import free_port

pytestmark = pytest.mark.distributed
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# rank 1 is started with --steps 3, rank 0 with --steps 2 (a launcher script that builds each rank's command)
SCRIPT = """
import os, sys
sys.argv = ["steplens"] + [("3" if os.environ["RANK"] == "1" and a == "2" and sys.argv[i] == "--steps" else a)
                           for i, a in enumerate(sys.argv[1:])]
import steplens.models.load as load
real = load.load_model
def said(*a, **k):
    print("model loading", file=sys.stderr)
    return real(*a, **k)
load.load_model = said
from steplens.cli import main
main()
"""


@pytest.mark.parametrize("command", [["probe", "noise", "--count", "2", "--size", "3", "--batch", "1"],
                                     ["eval", "--count", "2", "--size", "3", "--frames", "2", "--batch", "1"]])
def test_ranks_started_with_different_options_all_refuse_naming_the_difference(command, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                        "127.0.0.1", "--master-port", str(free_port()), str(script), *command, "--steps", "2",
                        "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=240)
    text = " ".join(p.stderr.split())
    assert p.returncode != 0, text[-3000:]
    assert text.count("started with different options") == 2, text[-3000:]
    assert "--steps: rank 0 2, rank 1 3" in text, text[-3000:]
    assert "[rank0]" not in text and "[rank1]" not in text and "steplens/" not in text, text[-3000:]  # no rank's
    # traceback (torchrun itself prints one of its own for a child that exits non-zero)
    assert "model loading" not in text and not (out / "store").exists(), text[-3000:]


def test_accelerate_launch_cpu_with_two_processes_is_refused_not_run_as_one(tmp_path):
    pytest.importorskip("accelerate")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                        "--main_process_port", str(free_port()), "-m", "steplens.cli", "probe", "noise", "--count",
                        "2", "--size", "3", "--steps", "2", "--out", str(out)],
                       env=ENV, capture_output=True, text=True, timeout=240)
    text = " ".join((p.stdout + p.stderr).split())
    assert p.returncode != 0 and "accelerate launch --cpu" in text and "one process" in text, text[-3000:]
    assert not (out / "store").exists()
