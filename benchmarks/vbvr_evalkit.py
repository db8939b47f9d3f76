"""VBVR-EvalKit's own maze evaluator (O-39) on what `steplens run` writes, beside the ground truth and a static
first frame: is steplens's VBVR number comparable with anyone else's?

    PYTHONPATH=/path/to/VBVR-EvalKit python benchmarks/vbvr_evalkit.py --count 24 --size 5 --frames 8

Writes a VBVR-Bench-layout folder of steplens mazes (no metadata.json, x16 upscale), runs `steplens run` on it
(the full decoded video at the ground truth's fps, the default), and scores with VBVR-EvalKit's evaluator called
directly (not through steplens's adapter): the model's videos, the ground-truth videos, and a static video of the
first frame with the ground truth's frame count and fps. Prints the mean overall score and the task-specific
dimension of each, with their spread. Then `steplens score --scorer vbvr` in both modes (issue 34): the largest
per-sample difference to the evaluator's own score in that mode (called with task_specific_only=True for the
task-specific mode, as VBVR-EvalKit's run_evaluation.py does), and steplens's floors table. Needs VBVR-EvalKit importable (clone it; `pip install -e .`, or its folder on
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
    own: dict[str, dict[str, float]] = {}
    scores: dict[str, list[tuple[float, float]]] = {"steplens run": [], "ground truth": [], "static first frame": []}
    for i in range(a.count):
        d = data / SPLIT / TASK / f"{i:05d}"
        gt = d / "ground_truth.mp4"
        static = static_dir / f"{i:05d}.mp4"
        first = read_png(d / "first_frame.png")
        write_mp4(static, np.repeat(first[None], len(read_mp4(gt)), 0), fps=video_fps(gt) or 4)
        for name, video in (("steplens run", out / SPLIT / TASK / f"{i:05d}.mp4"), ("ground truth", gt),
                            ("static first frame", static)):
            info = {"video_path": str(video), "gt_video_path": str(gt), "gt_first_frame": str(d / "first_frame.png"),
                    "gt_final_frame": str(d / "final_frame.png"), "gt_path": str(d)}
            r = ev.evaluate(info)
            scores[name].append((float(r["score"]), float(r["dimensions"].get("task_specific", float("nan")))))
            if name == "steplens run":
                own[f"{SPLIT}/{TASK}/{i:05d}"] = {"full": float(r["score"]), "task-specific": float(
                    ev.evaluate(info, task_specific_only=True)["score"])}
    ours = read_mp4(out / SPLIT / TASK / "00000.mp4")
    print(f"{a.count} {a.size}x{a.size} mazes, {a.frames} frames, VBVR-Bench layout; evaluator {type(ev).__name__}; "
          f"written video {ours.shape[0]} frames at {video_fps(out / SPLIT / TASK / '00000.mp4')} fps vs ground "
          f"truth {len(read_mp4(data / SPLIT / TASK / '00000' / 'ground_truth.mp4'))} frames")
    print(f"{'video':<20} {'overall':>8} {'(min..max)':>14} {'task-specific':>14}")
    for name, v in scores.items():
        o, t = np.array(v).T
        print(f"{name:<20} {o.mean():8.3f} {o.min():6.3f}..{o.max():.3f} {np.nanmean(t):14.3f}")
    import json

    for mode in ("task-specific", "full"):
        rec = work / f"scores-{mode}"
        p = subprocess.run([sys.executable, "-m", "steplens.cli", "score", "--data", str(data), "--outputs", str(out),
                            "--scorer", "vbvr", "--vbvr-score", mode, "--out", str(rec)], check=True,
                           capture_output=True, text=True)
        rows = json.loads((rec / "scores.json").read_text())["rows"]
        diff = max(abs(r["score"] - own[r["sample"]][mode]) for r in rows)
        print(f"\nsteplens score --vbvr-score {mode}: {len(rows)} samples, largest |steplens - VBVR-EvalKit| = "
              f"{diff:.3g}")
        print("\n".join(x for x in p.stdout.splitlines() if not x.startswith("score:")))


if __name__ == "__main__":
    main()
