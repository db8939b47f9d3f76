"""Test-time methods at equal compute, scored on the same held-out samples with the same noises.

single           one seed (the baseline)
steps-x          one seed with N x the sampling steps
vote             N independent seeds, per-pixel majority vote over their last frames
best-consensus   N independent seeds, the one that agrees most with the others (no ground truth)
best-oracle      N independent seeds, any one correct (uses the scorer: an upper bound, not a method)
ensemble         the study's latent ensemble: block outputs averaged across the N seeds, early steps
ensemble-update  the same, averaging each block's own update (output - input)
ensemble-x0      x0_hat averaged across the N seeds at the early steps
ensemble-vote    the study's ensemble, then a majority vote over its N members
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from .ensemble import EnsembleConfig, consensus_index, final_labels, generate_ensemble, majority_vote
from .evaluate import wilson
from .io import atomic_write_json
from .plots import save
from .probes.base import ProbeSettings, held_out, write_table
from .report import Report
from .store import ResultsStore
from .tasks import get_task

INDEPENDENT = ("vote", "best-consensus", "best-oracle")
ENSEMBLES = {"ensemble": ("block", "first"), "ensemble-update": ("update", "first"), "ensemble-x0": ("x0", "first"),
             "ensemble-vote": ("block", "vote")}
METHODS = ("single", "steps-x", *INDEPENDENT, *ENSEMBLES)


def check_method(name: str) -> str:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return name


def _score(samples, labels_per_sample) -> list[bool]:
    return [get_task(s.task).score_labels(lab, s.first_frame, s.prompt).success
            for s, lab in zip(samples, labels_per_sample)]


def run_methods(model, samples, seeds, methods: list[str], n: int, steps: int, shift: float,
                ens: EnsembleConfig | None = None) -> dict[str, list[bool]]:
    """Success per sample for each method; methods that read the same N-seed run share one generation."""
    res: dict[str, list[bool]] = {}
    want = set(methods)
    if "single" in want:
        res["single"] = _score(samples, final_labels(model, generate_ensemble(
            model, samples, seeds, EnsembleConfig(n_seeds=1), steps, shift))[:, 0])
    if "steps-x" in want:
        res["steps-x"] = _score(samples, final_labels(model, generate_ensemble(
            model, samples, seeds, EnsembleConfig(n_seeds=1), steps * n, shift))[:, 0])
    if want & set(INDEPENDENT):
        lab = final_labels(model, generate_ensemble(model, samples, seeds, EnsembleConfig(n_seeds=n, alpha=0.0),
                                                    steps, shift))
        res["vote"] = _score(samples, majority_vote(lab))
        res["best-consensus"] = _score(samples, lab[np.arange(len(samples)), consensus_index(lab)])
        each = np.array([_score(samples, lab[:, k]) for k in range(n)])  # (N, B)
        res["best-oracle"] = each.any(0).tolist()
    for target in dict.fromkeys(t for name, (t, _) in ENSEMBLES.items() if name in want):
        cfg = (ens or EnsembleConfig()).model_copy(update={"n_seeds": n, "target": target})
        lab = final_labels(model, generate_ensemble(model, samples, seeds, cfg, steps, shift))
        for name, (t, pick) in ENSEMBLES.items():
            if name in want and t == target:
                res[name] = _score(samples, lab[:, 0] if pick == "first" else majority_vote(lab))
    return {m: res[m] for m in methods}


def paired_bootstrap(a: list[bool], b: list[bool], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over paired samples with a 95% bootstrap interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (reps, len(d)))].mean(1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def successes(rows: list[dict], method: str, n: int) -> dict[int, bool]:
    """{sample idx: success} of one method at one N, from results-store rows."""
    return {r["idx"]: r["success"] for r in rows if r["method"] == method and r["n"] == n}


def versus(rows: list[dict], a: tuple[str, int], b: tuple[str, int], reps: int = 2000) -> dict:
    """Paired difference of solve rates, method a minus method b ((name, N) each), over the samples both ran."""
    sa, sb = successes(rows, *a), successes(rows, *b)
    common = sorted(sa.keys() & sb.keys())
    if not common:
        raise ValueError(f"no sample ran both {a[0]} N={a[1]} and {b[0]} N={b[1]}")
    d, lo, hi = paired_bootstrap([sa[i] for i in common], [sb[i] for i in common], reps)
    return {"method": a[0], "n_seeds": a[1], "versus": b[0], "versus_n": b[1], "samples": len(common),
            "delta": d, "delta_ci_low": lo, "delta_ci_high": hi}


def method_table(rows: list[dict], jobs: list[tuple[str, int]]) -> list[dict]:
    """Solve rate (Wilson 95%) of every (method, N), and its paired difference to the single seed."""
    table = []
    for m, n in jobs:
        succ = list(successes(rows, m, n).values())
        lo_ci, hi_ci = wilson(sum(succ), len(succ))
        d = versus(rows, (m, n), ("single", 1)) if m != "single" else {}
        table.append({"method": m, "n_seeds": n, "compute": n, "samples": len(succ), "solve_rate": float(np.mean(succ)),
                      "ci_low": lo_ci, "ci_high": hi_ci, "delta_vs_single": d.get("delta", 0.0),
                      "delta_ci_low": d.get("delta_ci_low", 0.0), "delta_ci_high": d.get("delta_ci_high", 0.0),
                      "upper_bound": m == "best-oracle"})
    return table


def head_to_head(rows: list[dict], jobs: list[tuple[str, int]]) -> list[dict]:
    """Every ensemble variant against majority vote and consensus best-of-N at the same N (same compute)."""
    have = set(jobs)
    return [versus(rows, (m, n), (b, n)) for m, n in jobs if m in ENSEMBLES
            for b in ("vote", "best-consensus") if (b, n) in have]


def compare(model, out: Path, s: ProbeSettings, n_list=(2, 3, 4, 8), methods=METHODS,
            ens: EnsembleConfig | None = None, progress=True) -> dict:
    s = s.resolved()
    methods = [check_method(m) for m in methods]
    if "single" not in methods:
        methods = ["single", *methods]
    config = {"n_list": list(n_list), "methods": methods, "ensemble": (ens or EnsembleConfig()).model_dump(),
              "model": model.name}
    store = ResultsStore(Path(out) / "store", ("method", "n", "idx"), {"probe": "compare", **s.model_dump(), **config})
    samples, seeds = held_out(s)
    jobs = [(m, 1) for m in ["single"]] + [(m, n) for n in n_list for m in methods if m != "single"]
    with tqdm(total=len(jobs) * len(seeds), disable=not progress, desc="compare") as bar:
        for lo in range(0, len(seeds), s.batch):
            idx = list(range(lo, min(lo + s.batch, len(seeds))))
            for n in sorted({n for _, n in jobs}):
                todo = [m for m, k in jobs if k == n and not all(store.has(method=m, n=n, idx=seeds[i]) for i in idx)]
                if not todo:
                    bar.update(len(idx) * sum(1 for _, k in jobs if k == n))
                    continue
                got = run_methods(model, [samples[i] for i in idx], [seeds[i] for i in idx], todo, n, s.steps,
                                  s.shift, ens)
                store.add([{"method": m, "n": n, "idx": seeds[i], "success": bool(ok)}
                           for m, oks in got.items() for i, ok in zip(idx, oks)])
                bar.update(len(idx) * sum(1 for _, k in jobs if k == n))
    table, h2h = method_table(store.rows, jobs), head_to_head(store.rows, jobs)
    atomic_write_json(Path(out) / "results.json", {"settings": s.model_dump(), "config": config, "table": table,
                                                     "head_to_head": h2h})
    write_table(table, Path(out) / "compare.csv")
    plot(out, table, n_list)
    headline = {f"{r['method']} N={r['n_seeds']}": round(r["delta_vs_single"], 3) for r in table
                if r["method"] != "single"}
    return {"table": table, "head_to_head": h2h, "headline": headline}


def plot(out: Path, table, n_list) -> None:
    """Difference to the single seed with its 95% interval, per method, methods side by side at each N."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["method"] for r in table if r["method"] != "single"))
    pos = {n: i for i, n in enumerate(n_list)}
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(n_list) * max(1, len(names)) / 3), 3.6))
    for j, m in enumerate(names):
        rows = [r for r in table if r["method"] == m]
        x = [pos[r["n_seeds"]] + (j - (len(names) - 1) / 2) * width for r in rows]
        ax.errorbar(x, [r["delta_vs_single"] for r in rows],
                    yerr=[[r["delta_vs_single"] - r["delta_ci_low"] for r in rows],
                          [r["delta_ci_high"] - r["delta_vs_single"] for r in rows]],
                    marker="o", ms=4, capsize=2, ls="none", mfc="none" if m == "best-oracle" else None,
                    color=f"C{METHODS.index(m) % 10}",  # one colour per method in every plot
                    label=m + (" (upper bound)" if m == "best-oracle" else ""))
    ax.axhline(0, color="k", lw=1)
    ax.set_xlabel("N (forward passes per step, or N x steps)")
    ax.set_ylabel("solve rate - single seed")
    ax.set_xticks(range(len(n_list)), [str(n) for n in n_list])
    ax.set_xlim(-0.5, len(n_list) - 0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, Path(out) / "compare.png")


def report_section(rep: Report, out: Path, res: dict, rel: str = ".") -> None:
    rep.section("Ensemble vs best-of-N vs majority vote, at equal compute",
                "Solve rate on the same held-out samples and noises; differences to the single seed with paired "
                "bootstrap 95% intervals. best-oracle uses the scorer: an upper bound, not a method.")
    rep.image(f"{rel}/compare.png", "difference to the single seed per method and N")
    rep.table(res["table"], ["method", "n_seeds", "samples", "solve_rate", "ci_low", "ci_high", "delta_vs_single",
                             "delta_ci_low", "delta_ci_high"])
    if res.get("head_to_head"):
        rep.text("The ensembles against majority vote and consensus best-of-N at the same N (paired, 95% bootstrap):")
        rep.table(res["head_to_head"], ["method", "n_seeds", "versus", "samples", "delta", "delta_ci_low",
                                        "delta_ci_high"])
