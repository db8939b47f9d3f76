"""`steplens trace` on the tiny Wan2.2 pipeline at 50 steps: its default decode steps on a pipeline (0, 1/4, 1/2,
3/4 and the last) against every step (`--decode-steps all`): wall time and peak memory (max RSS) of each, one fresh
process each.

    OMP_NUM_THREADS=1 python benchmarks/trace_decode.py --steps 50
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if p.returncode:
    sys.exit(p.stdout[-2000:] + p.stderr[-2000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    from steplens.backends.wan.tiny import tiny_wan22_i2v
    from steplens.tasks import get_task, write_sample

    work = Path(tempfile.mkdtemp(prefix="trace-decode-"))
    tiny_wan22_i2v(seed=0).save_pretrained(work / "wan22")
    sample = write_sample(work / "data", get_task("maze").sample(0, 3, 3, idx=0), scale=2)
    print(f"tiny Wan2.2 (two experts, CFG), one 3x3 maze, {a.steps} steps")
    for name, extra in (("default (5 steps decoded)", []), ("every step", ["--decode-steps", "all"])):
        cmd = [sys.executable, "-m", "steplens.cli", "trace", "--model", f"wan:{work / 'wan22'}", "--sample",
               str(sample), "--steps", str(a.steps), *extra, "--out", str(work / name.split()[0])]
        t0 = time.time()
        rss = subprocess.run([sys.executable, "-c", RUN, *cmd], capture_output=True, text=True, check=True).stdout
        print(f"{name:<26} {time.time() - t0:7.1f} s   peak RSS {int(rss.strip().splitlines()[-1]) / 1024:7.0f} MiB")


if __name__ == "__main__":
    main()
