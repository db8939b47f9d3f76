"""SIGKILL at random points of progress, 10 times per job (`run`, a probe, `compare`, `train`): every life makes progress,
the finished results are byte-identical to an uninterrupted run, and no temporary file is left behind."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STEPLENS = [sys.executable, "-m", "steplens.cli"]
KILLS = 10
LIFE = 300.0  # the most a life may take to pass its target (a hang fails the test then)
SAMPLES = 36  # `run`'s job: one PNG a sample, 3 a life at most (stride: total // (KILLS + 2))


def files(root: Path, skip=()) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip}


def same_files(out: Path, ref: Path, skip=()) -> None:
    """`out` holds the same files as `ref`, byte for byte, and no temporary file; a failure names the files (the
    bytes of whole checkpoints told nothing)."""
    got, want = files(out, skip), files(ref, skip)
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    assert [name for name in want if got[name] != want[name]] == []
    assert not temps(out)


def temps(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*steplens-tmp*")]


def kill_loop(args, progress, seed, total):
    """Start the job and SIGKILL it at a point of progress, KILLS times; then let it finish. Returns progress per life.

    Each life is killed once its progress has passed a random target beyond the last life's (a few units), plus a
    random moment into the next unit (mid-batch, mid-write): every life is killed mid-work whatever the machine's
    speed (a kill after wall-clock seconds killed lives before they started on a loaded machine)."""
    rng = random.Random(seed)
    seen = []
    stride = max(1, total // (KILLS + 2))
    for _ in range(KILLS):
        before = progress()
        if before >= total - 1:
            break
        target = min(total - 1, before + rng.randint(1, stride))
        p = subprocess.Popen(STEPLENS + args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while p.poll() is None and progress() < target and time.time() - t0 < LIFE:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        seen.append(progress())
    done = subprocess.run(STEPLENS + args, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return seen


def check_progress(seen, total):
    assert seen == sorted(seen), seen  # never lost
    working = next((i + 1 for i, v in enumerate(seen) if v >= total), len(seen))  # lives until the job was done
    lives = sum(b > a for a, b in zip([0] + seen[:working], seen[:working]))
    assert working >= 3, (seen, total)  # the job was killed mid-work several times
    assert lives == working, (seen, total)  # every life committed work before it was killed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill") / "data"
    subprocess.run(STEPLENS + ["tasks", "generate", "maze", "--count", str(SAMPLES), "--size", "5", "--frames", "4",
                               "--out", str(d)], env=ENV, check=True, capture_output=True)
    return d


def test_run_killed_ten_times_finishes_byte_identical(data, tmp_path):
    args = ["run", "--data", str(data), "--steps", "10", "--batch", "2"]
    ref = tmp_path / "ref"
    subprocess.run(STEPLENS + args + ["--out", str(ref)], env=ENV, check=True, capture_output=True)
    out = tmp_path / "killed"
    seen = kill_loop(args + ["--out", str(out)], lambda: len(list(out.rglob("*.png"))), seed=1, total=SAMPLES)
    check_progress(seen, SAMPLES)
    same_files(out, ref)


def _store_job(args, tmp_path, total, seed):
    """An experiment (a probe, compare) killed KILLS times ends as the uninterrupted one, byte for byte."""
    ref = tmp_path / "ref"
    subprocess.run(STEPLENS + args + ["--out", str(ref)], env=ENV, check=True, capture_output=True)
    total = total or len((ref / "store" / "rows.jsonl").read_text().splitlines())
    out = tmp_path / "killed"
    rows = out / "store" / "rows.jsonl"
    seen = kill_loop(args + ["--out", str(out)], lambda: len(rows.read_text().splitlines()) if rows.exists() else 0,
                     seed=seed, total=total)
    check_progress(seen, total)
    same_files(out, ref)


def test_probe_killed_ten_times_finishes_byte_identical(tmp_path):
    # a job is one batch with all its conditions (they share the clean run's prefix): one sample a job, so that a
    # life of a few seconds commits some; the total is the uninterrupted run's rows
    _store_job(["probe", "noise", "--count", "12", "--size", "4", "--steps", "10", "--batch", "1"], tmp_path,
               None, seed=2)


def test_compare_killed_ten_times_finishes_byte_identical(tmp_path):
    _store_job(["compare", "--count", "24", "--size", "4", "--steps", "10", "--batch", "4", "--n-seeds", "2,3",
                "--methods", "vote,ensemble"], tmp_path, 24 * 5, seed=3)


def test_train_killed_ten_times_finishes_byte_identical(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"arch": "test", "batch": 8, "steps": 600, "sizes": {"3": 1.0}, "frames": {"2": 1.0},
                               "eval_every": 0, "ckpt_every": 10, "threads": 1}))
    ref = tmp_path / "ref"
    subprocess.run(STEPLENS + ["train", "--config", str(cfg), "--out", str(ref)], env=ENV, check=True,
                   capture_output=True)
    out = tmp_path / "killed"

    def step():
        """The checkpoint's step from its header alone (polled every 20 ms: reading the tensors too took the CPU the
        killed job needs on a loaded machine); one open file, so a replaced checkpoint is read whole or not at all."""
        try:
            with (out / "checkpoint.safetensors").open("rb") as f:
                n = int.from_bytes(f.read(8), "little")
                return int(json.loads(f.read(n))["__metadata__"]["step"])
        except FileNotFoundError:
            return 0

    seen = kill_loop(["train", "--config", str(cfg), "--out", str(out)], step, seed=4, total=600)
    check_progress(seen, 600)
    # the log holds wall-clock times; everything else is the same bytes
    same_files(out, ref, skip=("log.jsonl",))
    # and two identical train + export runs give identical files
    for w in ("a", "b"):
        subprocess.run(STEPLENS + ["export", "--checkpoint", str(ref / "checkpoint.safetensors"), "--out",
                                   str(tmp_path / "w.safetensors"), "--command", "same"], env=ENV, check=True,
                       capture_output=True)
        (tmp_path / "w.safetensors").rename(tmp_path / f"w-{w}.safetensors")
    assert (tmp_path / "w-a.safetensors").read_bytes() == (tmp_path / "w-b.safetensors").read_bytes()


def test_ctrl_c_says_what_was_kept_and_exits_130(data, tmp_path):
    """Interrupted once it has written its first sample (a point of progress, not a wall-clock moment: a slow start
    on a loaded machine is still mid-work when the signal comes)."""
    out = tmp_path / "o"
    log = tmp_path / "stderr.txt"  # a file, not a pipe nobody reads while waiting
    with log.open("w") as stderr:
        p = subprocess.Popen(STEPLENS + ["run", "--data", str(data), "--out", str(out), "--steps", "20", "--batch",
                                         "1"], env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        t0 = time.time()
        while p.poll() is None and not any(out.rglob("*.png")) and time.time() - t0 < LIFE:
            time.sleep(0.02)
        assert p.poll() is None, "the run ended before it could be interrupted"
        p.send_signal(signal.SIGINT)
        p.wait(timeout=LIFE)
    err = log.read_text()
    assert p.returncode == 130 and "interrupted" in err and "run the same command again" in err, err[-2000:]
    assert "Traceback" not in err


def test_a_ctrl_c_lost_in_a_finalizer_still_stops_the_next_batch():
    """A SIGINT landing while a finalizer runs (an ffmpeg pipe closing) has its exception printed as 'ignored';
    the flag it leaves stops the loop at the next batch, and the CLI then exits 130."""
    import gc
    import os

    from steplens.io import interrupt

    class Closing:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs inside this finalizer: its exception is lost

    previous = signal.getsignal(signal.SIGINT)
    interrupt.install()
    try:
        c = Closing()
        del c
        gc.collect()
        assert interrupt.interrupted()
        with pytest.raises(interrupt.Interrupted):
            interrupt.check()
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupt._FLAG["set"] = False
