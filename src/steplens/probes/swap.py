"""Probe `swap`: does one block at one step carry the decision? Swap it between two prompts.

Pairs of runs on the same two-goal maze, same noise, different prompts (A: red goal, B: blue goal).
At step s, the hidden states of block k in run A are replaced by those of run B; the flip rate is how
often A's output then reaches B's goal. Also swapped for reference: the latent x_s and x0_hat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..hooks import Hooks
from ..plots import save
from ..report import Report
from ..store import ResultsStore
from ..tasks import get_task
from ..video import to_uint8
from .base import ProbeSettings, rate, write_results


def default_swap_steps(n: int) -> list[int]:
    return sorted({0, 1, 2, n // 4, n // 2} & set(range(n)))


def pairs(s: ProbeSettings):
    task = get_task(s.task)
    if not getattr(task, "two_goals", False):
        raise ValueError(f"the swap probe needs a task whose prompt chooses the answer (maze-two-goals), got {s.task!r}")
    seeds = list(range(s.seed, s.seed + s.count))
    a = [task.sample(x, s.size, s.frames, idx=x, target="red") for x in seeds]
    b = [task.sample(x, s.size, s.frames, idx=x, target="blue") for x in seeds]
    return a, b, seeds


def check_pair(a, b) -> None:
    if a.first_frame.shape != b.first_frame.shape or a.frames != b.frames:
        raise ValueError(f"a swap needs runs of the same shape: {a.first_frame.shape} x {a.frames} frames vs "
                         f"{b.first_frame.shape} x {b.frames} frames")


def run(model, out: Path, s: ProbeSettings, blocks: list[str] | None = None, steps: list[int] | None = None,
        progress=True) -> dict:
    if s.task == "maze":
        s = s.model_copy(update={"task": "maze-two-goals"})
    s = s.resolved()
    blocks = blocks or list(model.block_names)
    steps = default_swap_steps(s.steps) if steps is None else steps
    points = [*blocks, "latent", "x0"]
    conds = ["A", "B"] + [f"{p}@{k}" for p in points for k in steps]
    config = {"blocks": blocks, "steps": steps, "model": model.name}
    store = ResultsStore(Path(out) / "store", ("condition", "idx"), {"probe": "swap", **s.model_dump(), **config})
    a_all, b_all, seeds = pairs(s)
    for a, b in zip(a_all, b_all):
        check_pair(a, b)
    task = get_task(s.task)

    def outcome(batch_a, batch_b, lat):
        vids = model.decode(lat)
        return [{"reaches_a": task.score(to_uint8(v[:, -1]), a.first_frame, a.prompt).success,
                 "flip": task.score(to_uint8(v[:, -1]), b.first_frame, b.prompt).success}
                for a, b, v in zip(batch_a, batch_b, vids)]

    with tqdm(total=len(conds) * len(seeds), disable=not progress, desc="probe swap") as bar:
        for lo in range(0, len(seeds), s.batch):
            ba, bb, bs = a_all[lo: lo + s.batch], b_all[lo: lo + s.batch], seeds[lo: lo + s.batch]
            todo = [c for c in conds if not all(store.has(condition=c, idx=i) for i in bs)]
            bar.update((len(conds) - len(todo)) * len(bs))
            if not todo:
                continue
            rec = Hooks(model, s.steps).record(points, steps=steps, branch="cond")
            with rec:
                lat_b = model.generate(bb, bs, steps=s.steps, shift=s.shift, guidance=s.guidance, hooks=rec)
            lat_a = model.generate(ba, bs, steps=s.steps, shift=s.shift, guidance=s.guidance)
            done = {"A": outcome(ba, bb, lat_a), "B": outcome(ba, bb, lat_b)}
            for c in todo:
                if c not in done:
                    p, k = c.rsplit("@", 1)
                    h = Hooks(model, s.steps).replace(p, rec.get(p, int(k)), steps=[int(k)], branch="cond")
                    with h:
                        done[c] = outcome(ba, bb, model.generate(ba, bs, steps=s.steps, shift=s.shift,
                                                                 guidance=s.guidance, hooks=h))
                store.add([{"condition": c, "idx": i, **r} for i, r in zip(bs, done[c])])
                bar.update(len(bs))
    table = []
    for c in conds:
        rows = store.select(condition=c)
        f, ra = rate(rows, "flip"), rate(rows, "reaches_a")
        table.append({"condition": c, "n": f["n"], "flip_rate": f["rate"], "flip_ci_low": f["ci95"][0],
                      "flip_ci_high": f["ci95"][1], "reaches_a": ra["rate"]})
    by = {r["condition"]: r for r in table}
    block_rows = [r for r in table if r["condition"].split("@")[0] in blocks]
    best = max(block_rows, key=lambda r: r["flip_rate"]) if block_rows else None
    headline = {"A_reaches_red": by["A"]["reaches_a"], "B_reaches_blue": by["B"]["flip_rate"],
                "best_block_step": best["condition"] if best else None, "best_flip_rate": best["flip_rate"] if best else None,
                "latent_flip": {k: by[f"latent@{k}"]["flip_rate"] for k in steps},
                "x0_flip": {k: by[f"x0@{k}"]["flip_rate"] for k in steps}}
    write_results(out, "swap", s, config, table, headline)
    plot(out, by, points, steps)
    return {"headline": headline, "table": table}


def plot(out: Path, by: dict, points, steps) -> None:
    import matplotlib.pyplot as plt

    grid = np.array([[by[f"{p}@{k}"]["flip_rate"] for k in steps] for p in points])
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(steps), 0.8 + 0.3 * len(points)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="magma", aspect="auto")
    ax.set_xticks(range(len(steps)), [str(k) for k in steps])
    ax.set_yticks(range(len(points)), points, fontsize=7)
    ax.set_xlabel("swap at step")
    fig.colorbar(im, ax=ax, label="flip rate (A reaches B's goal)")
    save(fig, Path(out) / "swap.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    h = res["headline"]
    rep.section("Latent swap between prompts",
                f"Without a swap, A reaches the red goal in {h['A_reaches_red']:.3f} of pairs and B the blue one in "
                f"{h['B_reaches_blue']:.3f}. Highest flip rate: {h['best_block_step']} ({h['best_flip_rate']:.3f}).")
    rep.image(f"{rel}/swap.png", "flip rate per swapped point and step")
    rep.table(res["table"])
