"""The frame-prefix model (issue 35) beside `tiny-reasoner`, on the same held-out samples and noises, per family:
solve rate (Wilson 95%) of tiny-reasoner given the first frame (K = 1, image-to-video), of the frame-prefix model at
K = 1, and of the frame-prefix model given the first K frames of the ground truth for K = 2 .. T-1 (T: the family's
frame count at its default difficulty: 3 or 4, so a quarter of the frames rounds to K = 1 and half is K = 2); the
frame-prefix model's K = 1 paired against tiny-reasoner (normal interval on the discordant pairs).

    OMP_NUM_THREADS=1 python benchmarks/frames_model.py --count 300 --frames-model tiny-reasoner-frames \\
        --out runs/frames-model [--families maze,tictactoe] [--ks 1,2]

Resumes per (run, family) from OUT/<run>/<family>.json; prints a Markdown table (--md FILE also writes it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cells import FAMILIES, cached, emit, frames_of, from_study, points, rate, solve

from steplens.models.load import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--frames-model", default="tiny-reasoner-frames")
    ap.add_argument("--base", default="tiny-reasoner", help="the image-to-video model beside ('' for none)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--ks", default="1,2,3", help="K leading frames for the frame-prefix model (K < T kept)")
    ap.add_argument("--frames", type=int, default=None, help="videos of this many frames (default: each family's "
                                                                 "own; --base-from needs the default)")
    ap.add_argument("--out", type=Path, default=Path("runs/frames-model"))
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--base-from", type=Path, default=None,
                    help="a study folder of --base on the same samples (its solve-<size>/ at each family's default "
                         "size): the base's K = 1 read from it, not run again")
    a = ap.parse_args()
    fams, ks = a.families.split(","), [int(k) for k in a.ks.split(",")]
    runs = [(f"frames K={k}", a.frames_model, k) for k in ks] + ([("base K=1", a.base, 1)] if a.base else [])
    res: dict = {}
    if a.base_from and a.frames is not None:
        raise SystemExit("--base-from holds the families' default frame counts; leave out --frames or --base-from")
    if a.base and a.base_from:
        res.update({("base K=1", f): from_study(a.base_from, f, a.count) for f in fams})
    for name, spec, k in runs:
        if all((name, f) in res for f in fams):  # read from --base-from: nothing to run
            continue
        model = load_model(spec)
        for f in fams:
            if k >= frames_of(model, f, a.frames):
                continue  # K must leave a frame to generate
            res[name, f] = cached(a.out / name.replace(" ", "_").replace("=", "") / f"{f}.json", a.count,
                                  f"{name} {f}", lambda: solve(model, f, a.count, k=k, frames=a.frames))
    names = [n for n, _, _ in runs[-1:] + runs[:-1]] if a.base else [n for n, _, _ in runs]
    lines = [f"{a.count} held-out samples per cell (the test part, seeds 0-{a.count - 1}, default sizes, 20 steps); "
             f"solve rate [Wilson 95%]; `{a.base}` given the first frame beside `{a.frames_model}` given the first K "
             f"frames of the ground truth", "",
             "| family | T | " + " | ".join(names) + f" | frames K=1 − {a.base}, points [95%] |",
             "|---|---:|" + "---|" * (len(names) + 1)]
    for f in fams:
        cells = [rate(res[n, f]) if (n, f) in res else "–" for n in names]
        diff = points(res["frames K=1", f], res["base K=1", f]) \
            if ("base K=1", f) in res and ("frames K=1", f) in res else ""
        t = next((res[n, f]["frames"] for n in names if (n, f) in res and res[n, f]["frames"]), "")
        lines.append(f"| {f} | {t} | " + " | ".join(cells) + f" | {diff} |")
    text = "\n".join(lines) + "\n"
    emit(text, a.md)


if __name__ == "__main__":
    main()
