"""Probe `swap`: does one block at one step carry the decision? Swap it between two prompts.

Pairs of runs on the same two-goal maze, same noise, different prompts (A: red goal, B: blue goal).
At step s, the hidden states of block k in run A are replaced by those of run B; the flip rate is how
often A's output then reaches B's goal. Also swapped for reference: the latent x_s and x0_hat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..experiment import open_store, rows_of, run_grid
from ..hooks import Hooks
from ..plots import save
from ..report import Report
from ..stats import summarize
from ..tasks import DEFAULT_TASK, find_task, tasks_with
from ..video import to_uint8
from .base import ProbeSettings, generate, load_samples, write_results


def default_swap_steps(n: int) -> list[int]:
    return sorted({0, 1, 2, n // 4, n // 2} & set(range(n)))


def pairs(samples):
    """(A, B): each sample and its pair with the other prompt (the task's swap_pair)."""
    out = []
    for a in samples:
        t = find_task(a.task)
        if t is None or not hasattr(t, "swap_pair"):
            raise ValueError(f"the swap probe needs a task whose prompt chooses the answer (one with swap_pair, e.g. "
                             f"maze-two-goals); sample {a.name} is of task {a.task!r}")
        out.append(t.swap_pair(a))
    return out


def default_task() -> str:
    """The task the probe generates when none is named: the first registered one whose prompt chooses the answer
    (it has `swap_pair`)."""
    return (tasks_with("swap_pair") or [DEFAULT_TASK])[0]


def check_pair(a, b) -> None:
    if a.first_frame.shape != b.first_frame.shape or a.frames != b.frames:
        raise ValueError(f"a swap needs runs of the same shape: {a.first_frame.shape} x {a.frames} frames vs "
                         f"{b.first_frame.shape} x {b.frames} frames")


def run(model, out: Path, s: ProbeSettings, blocks: list[str] | None = None, steps: list[int] | None = None,
        progress=True) -> dict:
    blocks = blocks or list(model.block_names)
    steps = default_swap_steps(s.steps) if steps is None else steps
    bad = [k for k in steps if not 0 <= k < s.steps]
    if bad:
        raise ValueError(f"step index {bad[0]} out of range: steps are 0..{s.steps - 1}")
    points = [*blocks, "latent", "x0"]
    conds = ["A", "B"] + [f"{p}@{k}" for p in points for k in steps]
    samples = load_samples(model, s)
    other = dict(zip([a.name for a in samples], pairs(samples)))
    for a in samples:
        check_pair(a, other[a.name])
    config = {**s.describe(), "blocks": blocks, "steps": steps, "model": model.name}
    store = open_store(out, "swap", config)
    scorers = s.scorers()

    def outcome(batch_a, lat):
        vids = model.decode(lat)
        return [{"reaches_a": scorers.score(to_uint8(v), a).success,
                 "flip": scorers.score(to_uint8(v), other[a.name]).success} for a, v in zip(batch_a, vids)]

    def run_batch(todo, ba):
        bb = [other[a.name] for a in ba]
        rec = Hooks(model, s.steps).record(points, steps=steps, branch="cond")
        lat_b = generate(model, s, bb, rec)
        done = {"A": outcome(ba, generate(model, s, ba)), "B": outcome(ba, lat_b)}
        for c in todo:
            if c not in done:
                p, k = c.rsplit("@", 1)
                h = Hooks(model, s.steps).replace(p, rec.get(p, int(k)), steps=[int(k)], branch="cond")
                done[c] = outcome(ba, generate(model, s, ba, h))
        return {c: done[c] for c in todo}

    run_grid(store, conds, samples, s.batch, run_batch, group=lambda c: 0, desc="probe swap", progress=progress)
    table = []
    for c in conds:
        rows = rows_of(store, c, samples)
        f, ra = summarize(rows, "flip"), summarize(rows, "reaches_a")
        table.append({"condition": c, "n": f["n"], "flip_rate": f["solve_rate"], "flip_ci_low": f["ci_low"],
                      "flip_ci_high": f["ci_high"], "reaches_a": ra["solve_rate"]})
    by = {r["condition"]: r for r in table}
    block_rows = [r for r in table if r["condition"].split("@")[0] in blocks]
    best = max(block_rows, key=lambda r: r["flip_rate"]) if block_rows else None
    headline = {"A_follows_prompt": by["A"]["reaches_a"], "B_follows_prompt": by["B"]["flip_rate"],
                "best_block_step": best["condition"] if best else None, "best_flip_rate": best["flip_rate"] if best else None,
                "latent_flip": {k: by[f"latent@{k}"]["flip_rate"] for k in steps},
                "x0_flip": {k: by[f"x0@{k}"]["flip_rate"] for k in steps}}
    if min(headline["A_follows_prompt"], headline["B_follows_prompt"]) < 0.5:
        headline["warning"] = (f"the model follows the prompt in only {headline['A_follows_prompt']:.2f} (A) and "
                               f"{headline['B_follows_prompt']:.2f} (B) of runs: flip rates say little about a model "
                               f"that does not follow the prompt (try tiny-maze-2goal)")
    write_results(out, "swap", s, config, table, headline, samples=len(samples))
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
                f"Without a swap, A reaches the goal its prompt names in {h['A_follows_prompt']:.3f} of pairs and B "
                f"in {h['B_follows_prompt']:.3f}. Highest flip rate: {h['best_block_step']} "
                f"({h['best_flip_rate']:.3f}). {h.get('warning', '')}")
    rep.image(f"{rel}/swap.png", "flip rate per swapped point and step")
    rep.table(res["table"])
