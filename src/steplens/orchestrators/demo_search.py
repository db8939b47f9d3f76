"""The demo's search panel: one hard held-out sample, one seed beside early-plan beam search, in the step viewer.

The sample is the first of the demo's traced samples that one seed does not solve. On it, `early-beam` runs (N seeds
to the beam step, the task's verifier, which never reads the answer, scores their decoded x̂0, the best one goes on
to the end: steplens.methods.search). With one beam kept and no later branching, the winner's whole trajectory is
that of one initial noise, so tracing its seed shows exactly what the search chose. The two viewers sit side by side,
the right one following the left step for step; the panel states both outcomes by the scorer and the NFE each spent.
Whether the search solved it is reported as it came out: the panel is an illustration, the accuracy at equal compute
is `compare --budget` (benchmarks/search_budget.py).
"""

from __future__ import annotations

from pathlib import Path

from ..methods.search import SearchConfig, default_k, search
from ..reports.traces import write_trace
from ..reports.viewer import CSS, JS, paired_viewer, trace_viewer
from ..tape import NFECounter
from ..trace import trace

PARTICLES = 8


def hard_one(traces):
    """The first traced sample one seed did not solve (None: all solved)."""
    return next((tr for tr in traces if not tr.final_score["success"]), None)


def search_panel(model, out: Path, traces, views: dict, sampling, frames) -> dict | None:
    """Run the search on the hard sample, trace its winner into OUT/traces/search-*, and return the panel's record
    (with "html"), or None when one seed solved every traced sample (nothing to search for)."""
    tr = hard_one(traces)
    if tr is None:
        return None
    s, steps, guidance = tr.sample, sampling.steps, sampling.guidance
    cfg = SearchConfig(method="early-beam", n=PARTICLES, m=1, k=default_k(steps))
    counter = NFECounter()
    res = search(model, [s], [int(tr.seed)], cfg, sampling, frames=frames, counter=counter)
    winner = res.survivors[0]
    rel = f"traces/search-{s.task}-{s.idx:05d}"
    won = trace(model, [s], [int(winner.seed)], sampling, frames=frames, x0_files=[out / rel / "x0.safetensors"])[0]
    geometry = write_trace(won, out / rel)["viewer"]
    one_nfe = steps * (2 if guidance and guidance != 1.0 else 1)
    record = {"sample": s.name, "method": "early-beam", "particles": PARTICLES, "beam_step": cfg.k, "kept": 1,
              "verifier": cfg.verifier, "one_seed": {"seed": int(tr.seed), "solved": bool(tr.final_score["success"]),
                                                     "score": float(tr.final_score["score"])},
              "search": {"seed": int(winner.seed), "member": int(res.chosen[0]),
                         "solved": bool(won.final_score["success"]), "score": float(won.final_score["score"]),
                         "verified": bool(res.scores[0].success), "nfe": int(counter.nfe)},
              "one_seed_nfe": one_nfe, "trace": rel}
    left = views[s.name]
    right = trace_viewer(rel, geometry, won.sigmas, won.metrics, won.experts, f"early-beam winner: {s.name}",
                         won.candidates)
    record["html"] = paired_viewer(left, right, list(range(len(won.sigmas))), f"{s.name}: one seed and early-beam")
    return record


def add_to_report(rep, record: dict) -> None:
    """The panel's section of the demo report."""
    a, b = record["one_seed"], record["search"]

    def said(x):
        return f"{'solved' if x['solved'] else 'not solved'} (score {x['score']:.2f})"
    rep.section(f"Searching along the steps: {record['sample']}",
                f"Left: one seed ({a['seed']}), {said(a)}, {record['one_seed_nfe']} NFE. Right: early-beam: "
                f"{record['particles']} seeds run to step {record['beam_step']}, the '{record['verifier']}' verifier "
                f"(it reads only the first frame and the prompt, never the answer) scores their decoded x̂0, the best "
                f"one continues to the end: seed {b['seed']}, {said(b)}, {b['nfe']} NFE. The sample is the first "
                f"above that one seed did not solve; the outcome is shown as it came out. Accuracy at equal compute, "
                f"on hundreds of samples: `steplens compare --budget` (README, 'Search along the steps').")
    rep.raw(record["html"], css=CSS, js=JS)
