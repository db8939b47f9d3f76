"""One cell of a model-beside-model table (distill_eval.py, frames_model.py): a model's successes and scores on the
first `count` held-out samples of a family (the test part, seeds 0..count-1, default size), run once and kept as
JSON so a rerun resumes; or read from a study folder's solve part on the same samples; and the figures printed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from steplens.experiments.evaluate import generate_and_score
from steplens.experiments.grid import ExperimentSettings, batches, load_samples
from steplens.experiments.stats import wilson
from steplens.presets import resolve

FAMILIES = ("maze", "maze-two-goals", "maze-loops", "tictactoe", "reappear", "symmetry", "symmetry-open")


def frames_of(model, family: str, frames: int | None = None) -> int:
    """The family's frame count at its default difficulty (or `frames`, where given)."""
    return load_samples(model, ExperimentSettings(task=family, count=1, frames=frames))[0].frames


def solve(model, family: str, count: int, steps: int | None = None, k: int = 1, frames: int | None = None) -> dict:
    """Successes and scores of `model` at `steps` (its default where None), given the first `k` frames of the ground
    truth (k = 1: the first frame alone), on videos of `frames` frames (the family's default where None)."""
    from steplens.tasks.sample import continue_from_frames

    samples = load_samples(model, ExperimentSettings(task=family, count=count, frames=frames))
    if k > 1:
        samples = [continue_from_frames(s, s.ground_truth, k) for s in samples]
    sampling = resolve(model, steps=steps)
    rows = []
    for chunk in batches(samples, 50):
        rows += generate_and_score(model, chunk, ExperimentSettings(task=family).scorers(), sampling=sampling)[1]
    return {"count": count, "k": k, "frames": samples[0].frames, "steps": sampling.steps,
            "success": [r["success"] for r in rows], "score": [r["score"] for r in rows]}


def cached(path: Path, count: int, label: str, make) -> dict:
    """The cell stored at `path` if it holds `count` samples, else `make()`, stored there (with its seconds)."""
    if path.is_file():
        got = json.loads(path.read_text())
        if got["count"] == count:
            return got
    t0 = time.time()
    cell = {**make(), "seconds": round(time.time() - t0, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell))
    print(f"{label}: {sum(cell['success'])}/{count} ({cell['seconds']} s)", flush=True)
    return cell


def from_study(folder: Path, family: str, count: int) -> dict:
    """The cell of a study folder's solve part at the family's default size (steplens study --parts solve: 20 steps,
    the same samples and noises), refused unless it holds seeds 0..count-1."""
    import steplens
    from steplens.tasks import get_task

    df = steplens.results(Path(folder) / family / f"solve-{get_task(family).default_size}").sort_values("seed")
    if list(df["seed"]) != list(range(count)):
        raise SystemExit(f"{folder}: {family} holds seeds {df['seed'].min()}..{df['seed'].max()} ({len(df)}), "
                         f"not 0..{count - 1}")
    return {"count": count, "k": 1, "frames": None, "success": [bool(x) for x in df["success"]],
            "score": [float(x) for x in df["score"]]}


def paired(a: list[bool], b: list[bool]) -> tuple[float, float, float]:
    """a − b on the same samples, and its 95% normal interval on the discordant pairs."""
    n = len(a)
    d = (sum(a) - sum(b)) / n
    b10 = sum(x and not y for x, y in zip(a, b)) / n
    b01 = sum(y and not x for x, y in zip(a, b)) / n
    se = math.sqrt(max(b10 + b01 - (b10 - b01) ** 2, 0.0) / n)
    return d, d - 1.96 * se, d + 1.96 * se


def rate(cell: dict, score: bool = False) -> str:
    """"0.960 [0.931, 0.977]" (Wilson 95%), with the mean score in brackets where asked."""
    s = cell["success"]
    lo, hi = wilson(sum(s), len(s))
    return f"{sum(s) / len(s):.3f} [{lo:.3f}, {hi:.3f}]" + (
        f" ({sum(cell['score']) / len(s):.3f})" if score else "")


def points(a: dict, b: dict) -> str:
    """a − b in points [95%]."""
    d, lo, hi = paired(a["success"], b["success"])
    return f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def emit(text: str, md: Path | None) -> None:
    """Print a table and, where asked, write it to `md` too."""
    print(text)
    if md:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(text)
