"""VBVR-EvalKit's own maze evaluator (O-39) on what `steplens run` writes, beside the ground truth and a static
first frame: is steplens's VBVR number comparable with anyone else's?

    PYTHONPATH=/path/to/VBVR-EvalKit python benchmarks/vbvr_evalkit.py --count 24 --size 5 --frames 8

Writes a VBVR-Bench-layout folder of steplens mazes (no metadata.json, x16 upscale), runs `steplens run` on it
(the full decoded video at the ground truth's fps, the default), and scores with VBVR-EvalKit's evaluator called
directly (not through steplens's adapter): the model's videos, the ground-truth videos, and a static video of the
first frame with the ground truth's frame count and fps. Prints the mean overall score and the task-specific
dimension of each, with their spread. Needs VBVR-EvalKit importable (clone it; `pip install -e .`, or its folder on
PYTHONPATH, with opencv-python).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from steplens.io.files import read_mp4, read_png, video_fps, write_mp4
from steplens.tasks import get_task, write_sample

TASK, SPLIT = "O-39_maze_data-generator", "In-Domain_50"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--size", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--model", default="tiny-maze")
    ap.add_argument("--work", type=Path, default=None, help="keep the folders here (default: a temporary folder)")
    a = ap.parse_args()
    try:
        from vbvr_bench.evaluators import get_evaluator
    except ImportError:
        sys.exit("VBVR-EvalKit is not importable: clone https://github.com/Video-Reason/VBVR-EvalKit and "
                 "`pip install -e .` (or put its folder on PYTHONPATH, with opencv-python)")
    work = a.work or Path(tempfile.mkdtemp(prefix="vbvr-evalkit-"))
    data, out = work / "data", work / "out"
    task = get_task("maze")
    for i in range(a.count):
        write_sample(data, task.sample(10_000 + i, a.size, a.frames, idx=i), metadata=False,
                     rel=f"{SPLIT}/{TASK}/{i:05d}")
    subprocess.run([sys.executable, "-m", "steplens.cli", "run", "--model", a.model, "--data", str(data), "--out",
                    str(out)], check=True)
    ev = get_evaluator(TASK, device="cpu")
    static_dir = work / "static"
    static_dir.mkdir(exist_ok=True)
    scores: dict[str, list[tuple[float, float]]] = {"steplens run": [], "ground truth": [], "static first frame": []}
    for i in range(a.count):
        d = data / SPLIT / TASK / f"{i:05d}"
        gt = d / "ground_truth.mp4"
        static = static_dir / f"{i:05d}.mp4"
        first = read_png(d / "first_frame.png")
        write_mp4(static, np.repeat(first[None], len(read_mp4(gt)), 0), fps=video_fps(gt) or 4)
        for name, video in (("steplens run", out / SPLIT / TASK / f"{i:05d}.mp4"), ("ground truth", gt),
                            ("static first frame", static)):
            r = ev.evaluate({"video_path": str(video), "gt_video_path": str(gt), "gt_first_frame":
                             str(d / "first_frame.png"), "gt_final_frame": str(d / "final_frame.png"),
                             "gt_path": str(d)})
            scores[name].append((float(r["score"]), float(r["dimensions"].get("task_specific", float("nan")))))
    ours = read_mp4(out / SPLIT / TASK / "00000.mp4")
    print(f"{a.count} {a.size}x{a.size} mazes, {a.frames} frames, VBVR-Bench layout; evaluator {type(ev).__name__}; "
          f"written video {ours.shape[0]} frames at {video_fps(out / SPLIT / TASK / '00000.mp4')} fps vs ground "
          f"truth {len(read_mp4(data / SPLIT / TASK / '00000' / 'ground_truth.mp4'))} frames")
    print(f"{'video':<20} {'overall':>8} {'(min..max)':>14} {'task-specific':>14}")
    for name, v in scores.items():
        o, t = np.array(v).T
        print(f"{name:<20} {o.mean():8.3f} {o.min():6.3f}..{o.max():.3f} {np.nanmean(t):14.3f}")


if __name__ == "__main__":
    main()
