"""`steplens trace` on the tiny Wan2.2 pipeline at 50 steps: its default decode steps on a pipeline (0, 1/4, 1/2,
3/4 and the last) against every step (`--decode-steps all`): wall time and peak memory (max RSS) of each, one fresh
process each.

    OMP_NUM_THREADS=1 python benchmarks/trace_decode.py --steps 50
    OMP_NUM_THREADS=1 python benchmarks/trace_decode.py --steps 50 --px 256 --frames 9 --dtype bfloat16

--px N: the maze redrawn at N x N pixels (resampled, as VBVR's frames are: taken as it is, so x0_hat is decoded at
that size, not at the maze's native 7 x 7) in a VBVR-layout folder; --frames: latent frames; --dtype: the model's.
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


def rendered(root: Path, maze, px: int) -> Path:
    """A VBVR-layout sample folder (no metadata) whose frames are the maze resampled to px x px (bicubic)."""
    import numpy as np
    from PIL import Image

    from steplens.io.files import atomic_write_text, write_mp4, write_png

    def redraw(frame):
        return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((px, px), Image.BICUBIC))

    d = root / "In-Domain_50" / "O-39_maze_data-generator" / "00000"
    d.mkdir(parents=True)
    write_png(d / "first_frame.png", redraw(maze.first_frame))
    write_png(d / "final_frame.png", redraw(maze.ground_truth[-1]))
    write_mp4(d / "ground_truth.mp4", np.stack([redraw(f) for f in maze.ground_truth]), fps=4)
    atomic_write_text(d / "prompt.txt", maze.prompt + "\n")
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--px", type=int, default=None)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    from steplens.backends.wan.tiny import tiny_wan22_i2v
    from steplens.tasks import get_task, write_sample

    work = Path(tempfile.mkdtemp(prefix="trace-decode-"))
    tiny_wan22_i2v(seed=0).save_pretrained(work / "wan22")
    maze = get_task("maze").sample(0, 3, a.frames, idx=0)
    if a.px is None:
        sample = write_sample(work / "data", maze, scale=2)
    else:
        sample = rendered(work / "data", maze, a.px)
    print(f"tiny Wan2.2 (two experts, CFG, {a.dtype}), one 3x3 maze ({a.px or 14} px, {a.frames} frames), "
          f"{a.steps} steps")
    for name, extra in (("default (5 steps decoded)", []), ("every step", ["--decode-steps", "all"])):
        cmd = [sys.executable, "-m", "steplens.cli", "trace", "--model", f"wan:{work / 'wan22'}", "--sample",
               str(sample), "--steps", str(a.steps), "--frames", str(a.frames), "--dtype", a.dtype, *extra, "--out", str(work / name.split()[0])]
        t0 = time.time()
        rss = subprocess.run([sys.executable, "-c", RUN, *cmd], capture_output=True, text=True, check=True).stdout
        print(f"{name:<26} {time.time() - t0:7.1f} s   peak RSS {int(rss.strip().splitlines()[-1]) / 1024:7.0f} MiB")


if __name__ == "__main__":
    main()
