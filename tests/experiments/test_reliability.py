"""Nothing lost, nothing silently wrong: failed encodes are never committed and are redone, output folders know
their configuration, stale temporary files are cleaned, file modes follow the umask, bytes are deterministic."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.io.files import atomic_write_text, clean_stale_temps

STEPLENS = [sys.executable, "-m", "steplens.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    assert cli("tasks", "generate", "maze", "--count", 3, "--size", 5, "--out", d).exit_code == 0
    return d


@pytest.mark.slow
def test_a_failed_encode_exits_non_zero_leaves_nothing_that_looks_done_and_is_redone(data, tmp_path):
    out = tmp_path / "out"
    # under a file-size limit of 2 KB the first video (about 3.7 KB) cannot be written
    cmd = " ".join(f'"{a}"' for a in STEPLENS + ["run", "--data", str(data), "--out", str(out), "--steps", "4"])
    p = subprocess.run(["bash", "-c", f"ulimit -f 2; {cmd}"], capture_output=True, text=True, env=ENV)
    assert p.returncode == 2 and "cannot be read back" in p.stderr and "Traceback" not in p.stderr, p.stderr[-1500:]
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.mp4")) and not list(out.rglob("*steplens-tmp*"))
    p = subprocess.run(STEPLENS + ["run", "--data", str(data), "--out", str(out), "--steps", "4"], capture_output=True,
                       text=True, env=ENV)
    assert p.returncode == 0 and "generated 3 videos" in p.stdout, p.stderr[-1500:]
    assert cli("score", "--data", data, "--outputs", out).exit_code == 0


def test_tasks_generate_refuses_to_mix_configurations_but_grows_one(tmp_path):
    out = tmp_path / "d"
    assert cli("tasks", "generate", "maze", "--count", 2, "--size", 5, "--out", out).exit_code == 0
    r = cli("tasks", "generate", "maze", "--count", 2, "--size", 7, "--out", out)
    assert r.exit_code == 2 and "another configuration" in r.output and "size" in r.output, r.output
    assert cli("tasks", "generate", "maze", "--count", 4, "--size", 5, "--out", out).exit_code == 0
    assert sorted(p.name for p in (out / "maze").iterdir() if p.is_dir()) == [f"{i:05d}" for i in range(4)]


def test_stale_temp_files_of_dead_processes_are_cleaned_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / "a" / f".00001.{pid}.x1y2z3.steplens-tmp.mp4"
    live = tmp_path / f".results.{os.getpid()}.abc123.steplens-tmp.json"
    mine = tmp_path / ".notes.txt"  # a user's hidden file: never touched
    for p in (stale, live, mine):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    assert clean_stale_temps(tmp_path) == 1
    assert not stale.exists() and live.exists() and mine.exists()


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.slow  # end to end, 3-10 s: make test, not test-fast
def test_safetensors_bytes_are_the_same_in_every_process(tmp_path):
    code = ("import sys, torch; from steplens.models.weights import atomic_save; torch.manual_seed(0); "
            "atomic_save({k: torch.randn(3) for k in 'zyxabc'}, sys.argv[1], {k: k * 3 for k in 'qwertyuiop'})")
    for i in range(3):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.safetensors")], check=True, env=ENV)
    assert len({(tmp_path / f"{i}.safetensors").read_bytes() for i in range(3)}) == 1


def test_a_refused_train_resume_leaves_the_folder_as_it_was(tmp_path):
    import json

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"arch": "test", "batch": 2, "steps": 1, "sizes": {"3": 1.0}, "frames": {"2": 1.0},
                               "eval_every": 0}))
    assert cli("train", "--out", tmp_path / "run", "--config", cfg).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    cfg.write_text(json.dumps({"arch": "test", "batch": 2, "steps": 2, "sizes": {"3": 1.0}, "frames": {"2": 1.0},
                               "eval_every": 0, "lr": 0.5}))
    r = cli("train", "--out", tmp_path / "run", "--config", cfg)
    assert r.exit_code == 2 and "another config" in r.output and "lr" in r.output, r.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_a_stale_temp_is_cleaned_when_its_pid_now_belongs_to_another_process(tmp_path):
    """A killed writer's pid can be taken by a new process before the folder is cleaned (pids wrap at 32,768 in a
    container, and a busy suite spawns thousands of threads): the temp file was then kept forever. The stand-in for
    that new process is this test's own process, given the name of a temp file a killed child left behind."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom steplens.io.files import atomic_path\n"
            "with atomic_path(Path(sys.argv[1]) / 'results.json') as tmp:\n"
            "    tmp.write_text('half'); print(tmp.name, flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    name = child.stdout.readline().strip()
    assert (tmp_path / name).exists(), name
    assert clean_stale_temps(tmp_path) == 0  # its writer is alive: kept
    child.kill()
    child.wait()
    reused = tmp_path / name.replace(f".{child.pid}", f".{os.getpid()}", 1)  # the same file, its pid now another's
    (tmp_path / name).rename(reused)
    assert clean_stale_temps(tmp_path) == 1 and not reused.exists()


def test_the_write_check_of_a_killed_process_is_cleaned_too(tmp_path):
    """`--out` is probed with a temporary file before any work; a process killed between its creation and removal
    left it behind for good (its name was not a steplens temp's)."""
    code = ("import os, sys, time\nfrom pathlib import Path\nfrom steplens.io import checks\n"
            "os.remove = lambda p: (print(p, flush=True), time.sleep(60))\n"
            "checks.out_dir(Path(sys.argv[1]))\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    left = Path(child.stdout.readline().strip())
    child.kill()
    child.wait()
    assert left.exists() and left.parent == tmp_path, left
    assert clean_stale_temps(tmp_path) == 1 and not list(tmp_path.iterdir())
