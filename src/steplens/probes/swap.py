"""Probe `swap`: does one block at one step carry the decision? Swap it between two prompts.

Pairs of runs on the same two-goal maze, same noise, different prompts (A: red goal, B: blue goal).
At step s, the hidden states of block k in run A are replaced by those of run B; the flip rate is how
often A's output then reaches B's goal. Also swapped for reference: the latent x_s and x0_hat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..experiments.stats import summarize
from ..hooks import Hooks
from ..io.video import to_uint8
from ..reports.page import Report
from ..reports.plots import save
from ..tape import ForwardTape, forwards, reuse_enabled
from ..tasks import DEFAULT_TASK, find_task, tasks_with
from .base import ProbeBase, ProbeSettings, cost_text, generate, nfe_row
from .contract import STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart


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


def check_pair(a, b) -> None:
    if a.first_frame.shape != b.first_frame.shape or a.frames != b.frames:
        raise ValueError(f"a swap needs runs of the same shape: {a.first_frame.shape} x {a.frames} frames vs "
                         f"{b.first_frame.shape} x {b.frames} frames")


def _follows_needed(h: dict) -> str | None:
    a, b = h.get("A_follows_prompt", h.get("A_reaches_red")), h.get("B_follows_prompt")
    if a is None or b is None:
        return "no unswapped runs to compare with"
    return None if min(a, b) >= 0.5 else (f"the model follows the prompt in only {a:.2f} (A) and {b:.2f} (B) of "
                                         f"pairs: a flip says little")


class Swap(ProbeBase):
    name = "swap"
    description = "does one block at one step carry the decision? its hidden states swapped between two prompts"
    claims = (Claim("swap-one-block-flips", "swapping one block between prompts flips the answer",
                    lambda h, t: (h.get("best_flip_rate") or 0) >= 0.5, "≥ 0.5",
                    lambda h, t: f"best {h.get('best_block_step')}: flip rate {h.get('best_flip_rate') or 0:.3f}",
                    lambda h, t: _follows_needed(h),
                    "the model follows each prompt without a swap in at least half the pairs", "ours",
                    f"{STUDY} (its summaries: a latent swap at middle layers reverses the result); which step and "
                    f"how are not public ('latent swap at the first step' is unconfirmed); ours: "
                    f"block outputs of the cond branch replaced at one step, two-goal mazes, flip rate ≥ 0.5"),)
    study = StudyPart(count="probe_count", order=50,
                      not_applicable=lambda task: None if callable(getattr(task, "swap_pair", None)) else
                      "swap: the prompt does not choose the answer (no swap_pair)")

    def default_task(self) -> str:
        """The task the probe generates when none is named: the first registered one whose prompt chooses the
        answer (it has `swap_pair`)."""
        return (tasks_with("swap_pair") or [DEFAULT_TASK])[0]

    def options(self, model, s: ProbeSettings, blocks: list[str] | None = None,
                steps: list[int] | None = None) -> dict:
        if s.data is None and not callable(getattr(find_task(s.task), "swap_pair", None)):  # generated: named now
            raise ValueError(f"the swap probe needs a task whose prompt chooses the answer (one with swap_pair: "
                             f"{', '.join(tasks_with('swap_pair'))}); task {s.task!r} has none")
        if model is None and s.steps is None:  # before the model loads, its own steps unknown: checked once loaded
            return {"blocks": blocks, "steps": steps}
        blocks = blocks or (list(model.block_names) if model is not None else None)
        steps = default_swap_steps(s.steps) if steps is None else steps
        bad = [k for k in steps if not 0 <= k < s.steps]
        if bad:
            raise ValueError(f"step index {bad[0]} out of range: steps are 0..{s.steps - 1}")
        return {"blocks": blocks, "steps": steps}

    def prepare(self, r: ProbeRun) -> None:
        other = r.state["other"] = dict(zip([a.name for a in r.samples], pairs(r.samples)))
        for a in r.samples:
            check_pair(a, other[a.name])

    def plan(self, s: ProbeSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        blocks = list(options.get("blocks") or shape.blocks)
        steps = default_swap_steps(shape.steps) if options.get("steps") is None else list(options["steps"])
        # A and B unswapped; each swap follows A until its step (A's recorded prefix replayed)
        return {"A": Branch(0), "B": Branch(0), **{f"{p}@{k}": Branch(k) for p in [*blocks, "latent", "x0"]
                                                   for k in steps}}

    def conditions(self, r: ProbeRun) -> dict:
        return dict.fromkeys(["A", "B"] + [f"{p}@{k}" for p in _points(r) for k in r.options["steps"]])

    def group(self, r: ProbeRun, condition: str):
        return 0  # one recording of B per batch, shared by every swap

    def batch(self, r: ProbeRun):
        model, s, other, steps = r.model, r.settings, r.state["other"], r.options["steps"]
        points = _points(r)
        scorers = s.scorers()

        def outcome(batch_a, lat):
            vids = model.decode(lat)
            return [{"reaches_a": scorers.score(to_uint8(v), a).success,
                     "flip": scorers.score(to_uint8(v), other[a.name]).success} for a, v in zip(batch_a, vids)]

        def run_batch(todo, ba):
            n, reuse = len(ba), reuse_enabled()
            bb = [other[a.name] for a in ba]
            swaps = [c for c in todo if c not in ("A", "B")]
            done, shared, again = {}, 0, 0
            if "B" in todo or swaps:
                rec = Hooks(model, s.steps).record(points, steps=steps, branch="cond")
                with forwards(model) as cb:
                    lat_b = generate(model, s, bb, rec)
                done["B"] = [{**x, **nfe_row(cb, n)} for x in outcome(ba, lat_b)]
                shared += 0 if "B" in todo else cb.nfe // n
            tape = ForwardTape(batch=n) if reuse and swaps else None
            if "A" in todo or tape is not None:
                with forwards(model, record=tape) as ca:
                    lat_a = generate(model, s, ba)
                done["A"] = [{**x, **nfe_row(ca, n)} for x in outcome(ba, lat_a)]
                again = 0 if "A" in todo else ca.nfe // n  # recomputed for its tape only (a resumed run)
            for c in swaps:
                p, k = c.rsplit("@", 1)
                at = int(k) if tape is not None else 0
                h = Hooks(model, s.steps).replace(p, rec.get(p, int(k)), steps=[int(k)], branch="cond")
                with forwards(model, replay=tape if at else None, upto=at) as counter:
                    lat = generate(model, s, ba, h)
                done[c] = [{**x, **nfe_row(counter, n, shared, again)} for x in outcome(ba, lat)]
                shared = again = 0
            return {c: done[c] for c in todo}
        return run_batch

    def summary(self, r: ProbeRun, rows_by: dict) -> dict:
        blocks, steps = r.options["blocks"], r.options["steps"]
        table = []
        for c, rows in rows_by.items():
            f, ra = summarize(rows, "flip"), summarize(rows, "reaches_a")
            table.append({"condition": c, "n": f["n"], "flip_rate": f["solve_rate"], "flip_ci_low": f["ci_low"],
                          "flip_ci_high": f["ci_high"], "reaches_a": ra["solve_rate"]})
        by = {x["condition"]: x for x in table}
        block_rows = [x for x in table if x["condition"].split("@")[0] in blocks]
        best = max(block_rows, key=lambda x: x["flip_rate"]) if block_rows else None
        headline = {"A_follows_prompt": by["A"]["reaches_a"], "B_follows_prompt": by["B"]["flip_rate"],
                    "best_block_step": best["condition"] if best else None,
                    "best_flip_rate": best["flip_rate"] if best else None,
                    "latent_flip": {k: by[f"latent@{k}"]["flip_rate"] for k in steps},
                    "x0_flip": {k: by[f"x0@{k}"]["flip_rate"] for k in steps}}
        if min(headline["A_follows_prompt"], headline["B_follows_prompt"]) < 0.5:
            headline["warning"] = (f"the model follows the prompt in only {headline['A_follows_prompt']:.2f} (A) "
                                   f"and {headline['B_follows_prompt']:.2f} (B) of runs: flip rates say little about "
                                   f"a model that does not follow the prompt (try tiny-maze-2goal)")
        return {"headline": headline, "table": table}

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        plot(r.out, {x["condition"]: x for x in res["table"]}, _points(r), r.options["steps"])

    def headline_text(self, h: dict, table: list) -> str:
        a = h.get("A_follows_prompt", h.get("A_reaches_red", 0))  # the older name: runs before issue 9
        b = h.get("B_follows_prompt", h.get("B_reaches_blue", 0))
        return f"follows the prompt: A {a:.3f}, B {b:.3f}"

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        h = res["headline"]
        rep.section("Latent swap between prompts",
                    f"Without a swap, A reaches the goal its prompt names in {h['A_follows_prompt']:.3f} of pairs and "
                    f"B in {h['B_follows_prompt']:.3f}. Highest flip rate: {h['best_block_step']} "
                    f"({h['best_flip_rate']:.3f}). {h.get('warning', '')} {cost_text(res.get('cost'))}")
        rep.image(f"{rel}/swap.png", "flip rate per swapped point and step")
        rep.table(res["table"])


def _points(r: ProbeRun) -> list[str]:
    """What a swap replaces: each block's hidden states, and for reference the latent x_s and x0_hat."""
    return [*r.options["blocks"], "latent", "x0"]


PROBE = Swap()
run, report_section, default_task = PROBE.run, PROBE.report_section, PROBE.default_task


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

