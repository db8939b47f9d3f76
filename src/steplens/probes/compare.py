"""Probe `compare`: test-time methods at equal compute, scored on the same held-out samples with the same noises.

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

from ..experiments.evaluate import score_videos
from ..experiments.grid import ExperimentSettings, write_table
from ..experiments.stats import paired_bootstrap, summarize
from ..io.files import atomic_write_json
from ..methods.ensemble import (EnsembleConfig, check_ensemble, consensus_index, generate_ensemble, labels_of,
                                member_videos, vote_video)
from ..reports.page import Report
from ..reports.plots import save
from ..tasks import Scorers, palette
from .base import ProbeBase, cost_text
from .contract import NOT_TESTED, STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart

INDEPENDENT = ("vote", "best-consensus", "best-oracle")
ENSEMBLES = {"ensemble": ("block", "first"), "ensemble-update": ("update", "first"), "ensemble-x0": ("x0", "first"),
             "ensemble-vote": ("block", "vote")}
METHODS = ("single", "steps-x", *INDEPENDENT, *ENSEMBLES)
STUDY_METHODS = ("vote", "best-consensus", "best-oracle", "ensemble", "ensemble-x0")  # `steplens study`'s comparison


def check_method(name: str) -> str:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return name


def _u8(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def _scored(scorers: Scorers, samples, videos) -> list[dict]:
    return score_videos(samples, [_u8(v) for v in videos], scorers)


def _vote(samples, vids: np.ndarray) -> np.ndarray:
    pal = palette(samples[0])  # None for a sample not drawn by steplens: a vote per pixel value, no snapping
    if any(palette(s) is not pal for s in samples):  # one batch, one task: split otherwise
        return np.stack([vote_video(vids[i: i + 1], palette(s))[0] for i, s in enumerate(samples)])
    return vote_video(vids, pal)


def _consensus(samples, vids: np.ndarray) -> np.ndarray:
    last = np.stack([labels_of(vids[i, :, -1], palette(s)) if palette(s) is not None else vids[i, :, -1]
                     for i, s in enumerate(samples)])
    return consensus_index(last)


def run_methods(model, samples, seeds, methods: list[str], n: int, steps: int, shift: float,
                ens: EnsembleConfig | None = None, scorers: Scorers | None = None,
                guidance: float = 1.0) -> dict[str, list[dict]]:
    """{method: [{"success", "score"} per sample]}; methods that read the same N-seed run share one generation."""
    scorers = scorers or Scorers()
    res: dict[str, list[dict]] = {}
    want = set(methods)
    b = np.arange(len(samples))

    def members(cfg, k_steps):
        return member_videos(model, generate_ensemble(model, samples, seeds, cfg, k_steps, shift, guidance))

    if "single" in want:
        res["single"] = _scored(scorers, samples, members(EnsembleConfig(n_seeds=1), steps)[:, 0])
    if "steps-x" in want:
        res["steps-x"] = _scored(scorers, samples, members(EnsembleConfig(n_seeds=1), steps * n)[:, 0])
    if want & set(INDEPENDENT):
        vids = members(EnsembleConfig(n_seeds=n, alpha=0.0), steps)
        res["vote"] = _scored(scorers, samples, _vote(samples, vids))
        res["best-consensus"] = _scored(scorers, samples, vids[b, _consensus(samples, vids)])
        each = [_scored(scorers, samples, vids[:, k]) for k in range(n)]
        res["best-oracle"] = [{"success": any(e[i]["success"] for e in each), "score": max(e[i]["score"] for e in each)}
                              for i in b]
    for target in dict.fromkeys(t for name, (t, _) in ENSEMBLES.items() if name in want):
        cfg = (ens or EnsembleConfig()).model_copy(update={"n_seeds": n, "target": target})
        vids = members(cfg, steps)
        for name, (t, pick) in ENSEMBLES.items():
            if name in want and t == target:
                res[name] = _scored(scorers, samples, vids[:, 0] if pick == "first" else _vote(samples, vids))
    return {m: res[m] for m in methods}


def generation(method: str) -> str:
    """Which sampling run a method reads: methods of one generation share it."""
    if method in INDEPENDENT:
        return "independent"
    return ENSEMBLES[method][0] if method in ENSEMBLES else method


def condition(method: str, n: int) -> str:
    return f"{method} N={n}"


def versus(rows: list[dict], a: tuple[str, int], b: tuple[str, int], reps: int = 2000) -> dict:
    """Paired difference of solve rates, method a minus method b ((name, N) each), over the samples both ran."""
    sa = {r["sample"]: r["success"] for r in rows if r["condition"] == condition(*a)}
    sb = {r["sample"]: r["success"] for r in rows if r["condition"] == condition(*b)}
    common = sorted(sa.keys() & sb.keys())
    if not common:
        raise ValueError(f"no sample ran both {a[0]} N={a[1]} and {b[0]} N={b[1]}")
    d, lo, hi = paired_bootstrap([sa[i] for i in common], [sb[i] for i in common], reps)
    return {"method": a[0], "n_seeds": a[1], "versus": b[0], "versus_n": b[1], "samples": len(common),
            "delta": d, "delta_ci_low": lo, "delta_ci_high": hi}


def method_table(rows: list[dict], jobs: list[tuple[str, int]]) -> list[dict]:
    """Solve rate (Wilson 95%) and mean score of every (method, N), and its paired difference to the single seed."""
    table = []
    for m, n in jobs:
        st = summarize([r for r in rows if r["condition"] == condition(m, n)])
        d = versus(rows, (m, n), ("single", 1)) if m != "single" else {}
        table.append({"method": m, "n_seeds": n, "compute": n, "samples": st["n"], "solve_rate": st["solve_rate"],
                      "ci_low": st["ci_low"], "ci_high": st["ci_high"], "mean_score": st["mean_score"],
                      "delta_vs_single": d.get("delta", 0.0), "delta_ci_low": d.get("delta_ci_low", 0.0),
                      "delta_ci_high": d.get("delta_ci_high", 0.0), "upper_bound": m == "best-oracle"})
    return table


def head_to_head(rows: list[dict], jobs: list[tuple[str, int]]) -> list[dict]:
    """Every ensemble variant against majority vote and consensus best-of-N at the same N (same compute)."""
    have = set(jobs)
    return [versus(rows, (m, n), (b, n)) for m, n in jobs if m in ENSEMBLES
            for b in ("vote", "best-consensus") if (b, n) in have]


class Compare(ProbeBase):
    name = "compare"
    kind = "compare"
    description = "one seed against vote, best-of-N, the oracle and the study's ensembles at equal compute"
    claims = (Claim("compare-ensemble-beats-one-seed", "the study's multi-seed ensemble beats one seed",
                    lambda h, t: _best_ensemble(t)["delta_ci_low"] > 0 if _best_ensemble(t) else NOT_TESTED,
                    "95% interval above 0", lambda h, t: _ensemble_evidence(_best_ensemble(t)),
                    lambda h, t: None if any((r.get("solve_rate") or 0) > 0 for r in t) else
                    "no method solved any sample: the paired differences are all 0",
                    "some method solving some sample (a paired difference that can be nonzero)", "ours",
                    f"{STUDY}, abstract: an ensemble of latent trajectories from different seeds, 0.685 → 0.716; its "
                    f"details (seeds, blocks, early steps) are not public; ours: block outputs averaged over N seeds "
                    f"in the early steps, a paired bootstrap interval above 0"),)
    study = StudyPart(count="compare_count", order=90, scope="weakest",
                      options=lambda cfg: {"n_list": [cfg.n_seeds], "methods": list(STUDY_METHODS),
                                           "ens": EnsembleConfig()},
                      summary=lambda res: [{k: r[k] for k in ("method", "n_seeds", "solve_rate", "mean_score",
                                                              "delta_vs_single", "delta_ci_low", "delta_ci_high")}
                                           for r in res["table"]])

    def options(self, model, s: ExperimentSettings, n_list=(2, 3, 4, 8), methods=METHODS,
                ens: EnsembleConfig | None = None) -> dict:
        methods = [check_method(m) for m in methods]
        n_list = list(n_list)
        if len(set(n_list)) != len(n_list) or len(set(methods)) != len(methods):
            raise ValueError(f"repeated N or method: N {n_list}, methods {methods}; give each once")
        bad = [n for n in n_list if isinstance(n, bool) or not isinstance(n, int) or n < 2]
        if bad:
            raise ValueError(f"N = {bad[0]!r}: the multi-seed methods need N >= 2 seeds")
        if "single" not in methods:
            methods = ["single", *methods]
        if any(m in ENSEMBLES for m in methods):
            check_ensemble(ens or EnsembleConfig(), model, s.steps)
        s.scorers()  # an unknown scorer is named before the samples are made
        return {"n_list": n_list, "methods": methods, "ens": ens}

    def config(self, r: ProbeRun) -> dict:
        o = r.options
        return {"n_list": o["n_list"], "methods": o["methods"], "ensemble": (o["ens"] or EnsembleConfig()).model_dump()}

    def plan(self, s: ExperimentSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        """Each (method, N): N seeds per sample (steps-x: one seed at N x the steps); methods reading one N-seed
        generation share it (counted once)."""
        n_list = list(options.get("n_list") or (2, 3, 4, 8))
        methods = [check_method(m) for m in (options.get("methods") or METHODS)]
        jobs = [("single", 1)] + [(m, n) for n in n_list for m in methods if m != "single"]

        def branch(m, n):
            if m == "steps-x":
                return Branch(0, steps=shape.steps * n, shares=f"steps-x N={n}")
            return Branch(0, runs=n, shares=f"{generation(m)} N={n}")
        return {condition(m, n): branch(m, n) for m, n in jobs}

    def conditions(self, r: ProbeRun) -> dict:
        """condition -> (method, N): the single seed, then every method at every N."""
        o = r.options
        jobs = [("single", 1)] + [(m, n) for n in o["n_list"] for m in o["methods"] if m != "single"]
        return {condition(m, n): (m, n) for m, n in jobs}

    def group(self, r: ProbeRun, c: str):
        # committed per N and per generation (methods reading one N-seed run share it), so little work is lost to a
        # kill
        m, n = r.conditions[c]
        return n, generation(m)

    def batch(self, r: ProbeRun):
        s, conds, scorers = r.settings, r.conditions, r.settings.scorers()

        def run(todo, batch):
            n = conds[todo[0]][1]
            got = run_methods(r.model, batch, [x.seed for x in batch], [conds[c][0] for c in todo], n, s.steps,
                              s.shift, r.options["ens"], scorers, s.guidance)
            return {c: got[conds[c][0]] for c in todo}
        return run

    def summary(self, r: ProbeRun, by: dict) -> dict:
        jobs = list(r.conditions.values())
        rows = [x for c in r.conditions for x in by[c]]
        table, h2h = method_table(rows, jobs), head_to_head(rows, jobs)
        headline = {f"{x['method']} N={x['n_seeds']}": round(x["delta_vs_single"], 3) for x in table
                    if x["method"] != "single"}
        return {"table": table, "head_to_head": h2h, "headline": headline}

    def write(self, r: ProbeRun, res: dict) -> None:
        atomic_write_json(r.out / "results.json", {"format": 1, "experiment": "compare", "config": r.config,
                                                   "table": res["table"], "head_to_head": res["head_to_head"],
                                                   **({"cost": res["cost"]} if res.get("cost") else {})})
        write_table(res["table"], r.out / "compare.csv")

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        plot(r.out, res["table"], r.options["n_list"])

    def reads(self, data: dict) -> bool:
        return data.get("experiment") == "compare" or "head_to_head" in data

    def headline_text(self, h: dict, table: list) -> str:
        single = next((r for r in table if r["method"] == "single"), None)
        return f"one seed {single['solve_rate']:.3f} on {single['samples']} samples" if single else ""

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        rep.section("Ensemble vs best-of-N vs majority vote, at equal compute",
                    "Solve rate on the same held-out samples and noises; differences to the single seed with paired "
                    "bootstrap 95% intervals. best-oracle uses the scorer: an upper bound, not a method. "
                    + cost_text(res.get("cost")))
        rep.image(f"{rel}/compare.png", "difference to the single seed per method and N")
        rep.table(res["table"], ["method", "n_seeds", "samples", "solve_rate", "ci_low", "ci_high", "mean_score",
                                 "delta_vs_single", "delta_ci_low", "delta_ci_high"])
        if res.get("head_to_head"):
            rep.text("The ensembles against majority vote and consensus best-of-N at the same N (paired, 95% "
                     "bootstrap):")
            rep.table(res["head_to_head"], ["method", "n_seeds", "versus", "samples", "delta", "delta_ci_low",
                                            "delta_ci_high"])


def _best_ensemble(table: list) -> dict | None:
    """The study's ensemble at the N where its interval against one seed sits highest (None: not run)."""
    ens = [r for r in table if r["method"] == "ensemble"]
    return max(ens, key=lambda r: r["delta_ci_low"]) if ens else None


def _ensemble_evidence(best: dict) -> str:
    return (f"best N={best['n_seeds']}: {100 * best['delta_vs_single']:+.1f} points "
            f"[{100 * best['delta_ci_low']:+.1f}, {100 * best['delta_ci_high']:+.1f}]")


PROBE = Compare()
report_section = PROBE.report_section


def compare(model, out: Path, s: ExperimentSettings, n_list=(2, 3, 4, 8), methods=METHODS,
            ens: EnsembleConfig | None = None, progress=True) -> dict:
    """The comparison into OUT (resumable): {"table", "head_to_head", "headline"}."""
    return PROBE.run(model, out, s, progress=progress, n_list=n_list, methods=methods, ens=ens)


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

