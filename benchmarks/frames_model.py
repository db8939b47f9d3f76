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
import json
import time
from pathlib import Path

from distill_eval import FAMILIES, paired

from steplens.experiments.evaluate import generate_and_score
from steplens.experiments.grid import ExperimentSettings, batches, load_samples
from steplens.experiments.stats import wilson
from steplens.models.load import load_model
from steplens.tasks.sample import continue_from_frames


def run(model, family: str, count: int, k: int) -> dict:
    samples = load_samples(model, ExperimentSettings(task=family, count=count))
    if k > 1:
        samples = [continue_from_frames(s, s.ground_truth, k) for s in samples]
    rows = []
    for chunk in batches(samples, 50):
        rows += generate_and_score(model, chunk, ExperimentSettings(task=family).scorers())[1]
    return {"count": count, "k": k, "frames": samples[0].frames, "success": [r["success"] for r in rows],
            "score": [r["score"] for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--frames-model", default="tiny-reasoner-frames")
    ap.add_argument("--base", default="tiny-reasoner", help="the image-to-video model beside ('' for none)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--ks", default="1,2,3", help="K leading frames for the frame-prefix model (K < T kept)")
    ap.add_argument("--out", type=Path, default=Path("runs/frames-model"))
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--base-from", type=Path, default=None,
                    help="a study folder of --base on the same samples (its solve-<size>/ at each family's default "
                         "size): the base's K = 1 read from it, not run again")
    a = ap.parse_args()
    fams, ks = a.families.split(","), [int(k) for k in a.ks.split(",")]
    runs = [(f"frames K={k}", a.frames_model, k) for k in ks] + ([("base K=1", a.base, 1)] if a.base else [])
    res: dict = {}
    if a.base and a.base_from:
        import steplens
        from steplens.tasks import get_task

        for f in fams:
            df = steplens.results(a.base_from / f / f"solve-{get_task(f).default_size}").sort_values("seed")
            if list(df["seed"]) != list(range(a.count)):
                raise SystemExit(f"{a.base_from}: {f} holds seeds {df['seed'].min()}..{df['seed'].max()} "
                                 f"({len(df)}), not 0..{a.count - 1}")
            res["base K=1", f] = {"count": a.count, "k": 1, "frames": None, "success": [bool(x) for x in df["success"]],
                                  "score": [float(x) for x in df["score"]]}
    for name, spec, k in runs:
        if all((name, f) in res for f in fams):  # read from --base-from: nothing to run
            continue
        model = load_model(spec)
        for f in fams:
            path = a.out / name.replace(" ", "_").replace("=", "") / f"{f}.json"
            if path.is_file() and json.loads(path.read_text())["count"] == a.count:
                res[name, f] = json.loads(path.read_text())
                continue
            t0 = time.time()
            one = load_samples(model, ExperimentSettings(task=f, count=1))[0]
            if k >= one.frames:
                continue  # K must leave a frame to generate
            res[name, f] = {**run(model, f, a.count, k), "seconds": round(time.time() - t0, 1)}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res[name, f]))
            print(f"{name} {f}: {sum(res[name, f]['success'])}/{a.count} ({res[name, f]['seconds']} s)", flush=True)
    names = [n for n, _, _ in runs[-1:] + runs[:-1]] if a.base else [n for n, _, _ in runs]
    lines = [f"{a.count} held-out samples per cell (the test part, seeds 0-{a.count - 1}, default sizes, 20 steps); "
             f"solve rate [Wilson 95%]; `{a.base}` given the first frame beside `{a.frames_model}` given the first K "
             f"frames of the ground truth", "",
             "| family | T | " + " | ".join(names) + f" | frames K=1 − {a.base}, points [95%] |",
             "|---|---:|" + "---|" * (len(names) + 1)]
    for f in fams:
        cells = []
        for n in names:
            if (n, f) not in res:
                cells.append("–")
                continue
            s = res[n, f]["success"]
            lo, hi = wilson(sum(s), len(s))
            cells.append(f"{sum(s) / len(s):.3f} [{lo:.3f}, {hi:.3f}]")
        diff = ""
        if ("base K=1", f) in res and ("frames K=1", f) in res:
            d, lo, hi = paired(res["frames K=1", f]["success"], res["base K=1", f]["success"])
            diff = f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
        t = next((res[n, f]["frames"] for n in names if (n, f) in res and res[n, f]["frames"]), "")
        lines.append(f"| {f} | {t} | " + " | ".join(cells) + f" | {diff} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.md:
        a.md.parent.mkdir(parents=True, exist_ok=True)
        a.md.write_text(text)


if __name__ == "__main__":
    main()
