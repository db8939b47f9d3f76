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

With budgets (`compare --budget 1,2,4,8`, in units of one plain run's NFE), the multi-seed methods run at N = each
budget >= 2 and the search methods (steplens.methods.search, a verifier that never sees the answer) at each budget:
best-of-n (N = budget particles), early-beam (as many particles as the budget allows with `keep` beams continuing
from the beam step), smc (N = budget particles resampled at the resampling steps), chain (tasks with continue_from:
up to `budget` one-seed generations). Every row records its NFE per sample (steplens.tape's counter); the budget
table gives solve rate and mean score per family with paired-bootstrap 95% intervals against one seed, and the AUC
table how well the verifier on x̂0 at step k predicts a particle's final success (from best-of-n's particles at the
largest budget).

Verifiers side by side (`beside`, `compare --beside-verifiers task,consensus`): best-of-n's particles at each budget
picked again by each further verifier, without a forward (`steplens.methods.search.repick`: the particles do not depend
on the verifier), as the method ``best-of-n [V]``: what a stronger or weaker verifier would have chosen among the same
particles, paired against the search methods' own verifier (``vs_best_of_n``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..experiments.evaluate import score_videos
from ..experiments.grid import ExperimentSettings, write_table
from ..experiments.stats import paired_bootstrap, summarize
from ..io.files import atomic_write_json
from ..presets import own
from ..methods.ensemble import (EnsembleConfig, check_ensemble, consensus_index, generate_ensemble, labels_of,
                                member_videos, vote_video)
from ..methods.search import (AXIS, TIE_RULE, SearchConfig, check_search, config_for_budget, decoded, default_k,
                              last_link_share, particle_latents, probe_steps, repick, search, search_record,
                              step_auc)
from ..reports.page import Report
from ..reports.plots import save
from ..tape import forwards
from ..tasks import Scorers, palette
from .base import ProbeBase, cost_text
from .contract import NOT_TESTED, STUDY, Branch, Claim, PlanShape, ProbeRun, StudyPart, difference_needed

INDEPENDENT = ("vote", "best-consensus", "best-oracle")
ENSEMBLES = {"ensemble": ("block", "first"), "ensemble-update": ("update", "first"), "ensemble-x0": ("x0", "first"),
             "ensemble-vote": ("block", "vote")}
METHODS = ("single", "steps-x", *INDEPENDENT, *ENSEMBLES)
STUDY_METHODS = ("vote", "best-consensus", "best-oracle", "ensemble", "ensemble-x0")  # `steplens study`'s comparison
SEARCH_METHODS = ("best-of-n", "early-beam", "smc", "chain", "backtrack")
DEFAULT_SEARCH = ("best-of-n", "early-beam", "smc")
# one colour per method in every plot: the multi-seed methods C0..C8, the search methods their own
COLOURS = {**{m: f"C{i % 10}" for i, m in enumerate(METHODS)}, "best-of-n": "C9", "early-beam": "black",
           "smc": "magenta", "chain": "saddlebrown", "backtrack": "darkorange"}


def beside_method(verifier: str) -> str:
    """The method name of best-of-n picked by a verifier beside the search methods' own (`beside`)."""
    return f"best-of-n [{verifier}]"


def beside_verifier(method: str) -> str | None:
    """The verifier of a `beside_method` name, else None."""
    return method[len("best-of-n ["):-1] if method.startswith("best-of-n [") and method.endswith("]") else None


def is_search(method: str) -> bool:
    """A method of the budget table that searches with a verifier (its conditions are named by budget, B=)."""
    return method in SEARCH_METHODS or beside_verifier(method) is not None


def colour(method: str) -> str:
    """A method's colour in every plot (a verifier beside: best-of-n's, dotted apart by `plot_budget`)."""
    return COLOURS["best-of-n" if beside_verifier(method) is not None else method]


def check_beside(beside, verifier: str, search_methods, budgets) -> list[str]:
    """Verifiers beside the search methods' own: known names, each once, not the search verifier, and only with
    --budget and best-of-n among the search methods (whose particles they pick among)."""
    from ..methods.search import all_verifier_names

    beside = list(beside or ())
    if not beside:
        return []
    if budgets is None:
        raise ValueError(f"--beside-verifiers {','.join(beside)}: goes with --budget (the verifiers pick among "
                         f"best-of-n's particles at each budget)")
    if "best-of-n" not in search_methods:
        raise ValueError(f"--beside-verifiers {','.join(beside)}: needs best-of-n among --search-methods (given: "
                         f"{','.join(search_methods)}): the verifiers pick among its particles")
    known = all_verifier_names()
    for v in beside:
        if v not in known:
            raise ValueError(f"--beside-verifiers: unknown verifier {v!r}; available: {', '.join(known)}")
    if verifier in beside or len(set(beside)) != len(beside):
        raise ValueError(f"--beside-verifiers {','.join(beside)}: each verifier once, none the search methods' own "
                         f"(--verifier {verifier})")
    return beside


def folder_samples(s: ExperimentSettings) -> list:
    """A folder's samples as its files say, without a model (no frame count: `need_frames=False`); their warnings come
    once, when the run loads them."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return s.source().load(need_frames=False)


def check_method(name: str) -> str:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return name


def check_budgets(budgets) -> list[int]:
    """Budgets in units of one plain run's NFE: whole numbers >= 1, each once."""
    budgets = list(budgets)
    bad = [b for b in budgets if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if bad:
        raise ValueError(f"--budget {bad[0]!r}: below one plain run's NFE; budgets are whole numbers of plain runs "
                         f">= 1, e.g. 1,2,4,8")
    if not budgets or len(set(budgets)) != len(budgets):
        raise ValueError(f"--budget {budgets}: give each budget once, at least one")
    return sorted(budgets)


def default_smc_steps(num_steps: int) -> list[int]:
    """Where smc resamples by default: the beam step, a quarter and half of the way."""
    return sorted({s for s in (default_k(num_steps), num_steps // 4, num_steps // 2) if s < num_steps - 1})


def search_at(base: SearchConfig, method: str, budget: int, num_steps: int) -> SearchConfig:
    """The search method's configuration at a budget (see the module doc)."""
    if method == "chain":
        return base.model_copy(update={"method": "chain", "inner": "best-of-n", "n": 1, "m": 1, "steps": [],
                                       "links": budget})
    if method in ("best-of-n", "backtrack"):  # backtrack: `budget` generations at most
        return base.model_copy(update={"method": method, "n": budget, "m": 1, "steps": []})
    if method == "smc":
        return base.model_copy(update={"method": method, "n": budget, "m": 1,
                                       "steps": base.steps or default_smc_steps(num_steps)})
    return config_for_budget(base.model_copy(update={"method": "early-beam", "steps": [], "n": base.m}), budget,
                             num_steps)


def _u8(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def _snapped(samples, videos) -> list[np.ndarray]:
    """Every method's frames in its task's palette where the task has one (vote and consensus decide in it): all
    methods scored on equal footing, so that a method's gain is its own and not the snapping's (issue 22: snapping
    one seed alone lifted VBVR's score 0.340 -> 0.411). Samples without a palette (VBVR's own drawings) as they are."""
    out = []
    for s, v in zip(samples, videos):
        pal = palette(s)
        out.append(np.asarray(pal, np.uint8)[labels_of(np.asarray(v, np.float32), pal)] if pal is not None else v)
    return out


def _scored(scorers: Scorers, samples, videos, details: bool = False) -> list[dict]:
    return score_videos(samples, [_u8(v) for v in _snapped(samples, videos)], scorers, details=details)


def _vote(samples, vids: np.ndarray) -> np.ndarray:
    pal = palette(samples[0])  # None for a sample not drawn by steplens: a vote per pixel value, no snapping
    if any(palette(s) is not pal for s in samples):  # one batch, one task: split otherwise
        return np.stack([vote_video(vids[i: i + 1], palette(s))[0] for i, s in enumerate(samples)])
    return vote_video(vids, pal)


def _consensus(samples, vids: np.ndarray) -> np.ndarray:
    last = np.stack([labels_of(vids[i, :, -1], palette(s)) if palette(s) is not None else vids[i, :, -1]
                     for i, s in enumerate(samples)])
    return consensus_index(last)


def run_methods(model, samples, seeds, methods: list[str], n: int, sampling=None,
                ens: EnsembleConfig | None = None, scorers: Scorers | None = None) -> dict[str, list[dict]]:
    """{method: [{"success", "score"} per sample]}, each generation sampled with `sampling` (steplens.presets.Sampling;
    None: the model's own; steps-x: at N x its steps); methods that read the same N-seed run share one generation."""
    from ..presets import sampled

    sampling = sampled(model, sampling)
    steps = sampling.steps
    scorers = scorers or Scorers()
    res: dict[str, list[dict]] = {}
    want = set(methods)
    b = np.arange(len(samples))

    nfe: dict[str, float] = {}

    def members(cfg, k_steps):
        with forwards(model) as c:
            lat = generate_ensemble(model, samples, seeds, cfg, sampling.with_numbers(steps=k_steps))
        members.nfe = c.nfe / len(samples)
        return member_videos(model, lat)

    if "single" in want:
        res["single"] = _scored(scorers, samples, members(EnsembleConfig(n_seeds=1), steps)[:, 0])
        nfe["single"] = members.nfe
    if "steps-x" in want:
        res["steps-x"] = _scored(scorers, samples, members(EnsembleConfig(n_seeds=1), steps * n)[:, 0])
        nfe["steps-x"] = members.nfe
    if want & set(INDEPENDENT):
        vids = members(EnsembleConfig(n_seeds=n, alpha=0.0), steps)
        nfe.update({m: members.nfe for m in INDEPENDENT})
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
                nfe[name] = members.nfe
    # `method_nfe`: what the method costs per sample; `nfe`: what was computed, a generation that several methods read
    # stored once, on the first of them (the store's sum is the run's NFE; steplens.probes.base)
    first = {}
    for m in methods:
        first.setdefault(generation(m), m)
    spent = {m: nfe[m] if first[generation(m)] == m else 0 for m in methods}
    return {m: [{**r, "nfe": spent[m], "nfe_without_reuse": spent[m], "method_nfe": nfe[m]} for r in res[m]]
            for m in methods}


def run_search(model, samples, seeds, method: str, budget: int, sampling, base: SearchConfig,
               scorers: Scorers, auc: bool = False) -> list[dict]:
    """Rows of one search method at one budget, sampled with `sampling` (steplens.presets.Sampling; None: the model's
    own): the scorer's success and score of the chosen video, the verifier's, the NFE per sample; with `auc`
    (best-of-n), each particle's verifier score on x̂0 at the probed steps and its final success by the scorer."""
    return _searched(model, samples, seeds, method, budget, sampling, base, scorers, auc)[0]


def run_beside(model, samples, seeds, budget: int, sampling, base: SearchConfig, scorers: Scorers,
               verifiers: list[str], auc: bool = False) -> dict[str, list[dict]]:
    """{condition: rows} of best-of-n at `budget` (`run_search`) and of its particles picked again by each verifier
    beside (`repick`: no forward, the particles decoded once for all of them; NFE 0 on their rows, `method_nfe`
    best-of-n's)."""
    rows, res, cfg = _searched(model, samples, seeds, "best-of-n", budget, sampling, base, scorers, auc)
    videos = decoded(model, particle_latents(res))
    per = res.nfe.nfe / len(samples)
    got = {condition("best-of-n", budget): rows}
    for v in verifiers:
        picked = repick(model, samples, res, v, videos=videos)
        got[condition(beside_method(v), budget)] = [
            {**x, "nfe": 0.0, "nfe_without_reuse": 0.0, "method_nfe": per}
            for x in search_rows_of(model, samples, picked, cfg.model_copy(update={"verifier": v}), scorers)]
    return got


def _searched(model, samples, seeds, method: str, budget: int, sampling, base: SearchConfig, scorers: Scorers,
              auc: bool):
    """(rows, the search result, its configuration) of `run_search`."""
    from ..presets import sampled

    sampling = sampled(model, sampling)
    steps = sampling.steps
    cfg = search_at(base, method, budget, steps)
    probe = probe_steps(steps) if auc and method == "best-of-n" else ()
    res = search(model, samples, seeds, cfg, sampling, probe_steps=probe)
    rows = search_rows_of(model, samples, res, cfg, scorers)
    if probe:
        probed = [st for st in res.stages if st.get("probe")]
        for i, r in enumerate(rows):
            finals = _scored(scorers, [samples[i]] * len(res.finals[i]), decoded(model, res.finals[i]))
            by_member = {k: [] for k in range(cfg.n)}
            for st in probed:
                for member, score in st["particles"][i]:
                    by_member[member].append(score)
            r["particles"] = {"steps": [st["step"] for st in probed], "v": [by_member[k] for k in range(cfg.n)],
                              "final": [f["success"] for f in finals]}
    return rows, res, cfg


def search_rows_of(model, samples, res, cfg: SearchConfig, scorers: Scorers) -> list[dict]:
    """A search result's rows: the scorer's success and score of each chosen video, the verifier's, the NFE per
    sample and the search's record (`search_record`)."""
    judged = res.final_samples or samples
    chain = cfg.method == "chain"
    scored = _scored(scorers, judged, decoded(model, res.latents), details=chain)
    shares = [last_link_share(judged[i], r) for i, r in enumerate(scored)] if chain else [None] * len(scored)
    per = res.nfe.nfe / len(samples)
    return [{**{k: x for k, x in r.items() if k != "details"}, "verified": bool(v.success),
             "verifier_score": float(v.score), "nfe": per, "nfe_without_reuse": per, "method_nfe": per,
             **search_record(res, i, cfg), **({"last_link_share": shares[i]} if shares[i] is not None else {})}
            for i, (r, v) in enumerate(zip(scored, res.scores))]


def method_nfe(row: dict):
    """What a row's method costs per sample (a store from before `method_nfe` stored it as `nfe`)."""
    return row.get("method_nfe", row.get("nfe"))


def jobs_of(o: dict) -> list[tuple[str, int]]:
    """(method, N or budget) of every condition, from the resolved options (`Compare.options`): the single seed,
    every multi-seed method at every N, every search method at every budget. The one job list of the run
    (`Compare.conditions`) and of its plan (`Compare.plan`)."""
    jobs = [("single", 1)] + [(m, n) for n in o["n_list"] for m in o["methods"] if m != "single"]
    return jobs + [(m, b) for b in o.get("budgets") or ()
                   for m in [*(o.get("search_methods") or ()), *map(beside_method, o.get("beside") or ())]]


def generation(method: str) -> str:
    """Which sampling run a method reads: methods of one generation share it."""
    if method in INDEPENDENT:
        return "independent"
    if beside_verifier(method) is not None:  # best-of-n's particles, picked by another verifier
        return "best-of-n"
    return ENSEMBLES[method][0] if method in ENSEMBLES else method


def condition(method: str, n: int) -> str:
    return f"{method} B={n}" if is_search(method) else f"{method} N={n}"


def versus(rows: list[dict], a: tuple[str, int], b: tuple[str, int], reps: int = 2000) -> dict:
    """Paired difference of solve rates, method a minus method b ((name, N) each), over the samples both ran."""
    sa = {r["sample"]: r["success"] for r in rows if r["condition"] == condition(*a)}
    sb = {r["sample"]: r["success"] for r in rows if r["condition"] == condition(*b)}
    common = sorted(sa.keys() & sb.keys())
    if not common:
        raise ValueError(f"no sample ran both {a[0]} N={a[1]} and {b[0]} N={b[1]}")
    d, lo, hi = paired_bootstrap([sa[i] for i in common], [sb[i] for i in common], reps)
    ca = {r["sample"]: r.get("score") for r in rows if r["condition"] == condition(*a)}
    cb = {r["sample"]: r.get("score") for r in rows if r["condition"] == condition(*b)}
    scored = all(ca[i] is not None and cb[i] is not None for i in common)  # rows without a score: no score delta
    sd, slo, shi = paired_bootstrap([ca[i] for i in common], [cb[i] for i in common], reps) if scored else (None,) * 3
    return {"method": a[0], "n_seeds": a[1], "versus": b[0], "versus_n": b[1], "samples": len(common),
            "delta": d, "delta_ci_low": lo, "delta_ci_high": hi,
            "score_delta": sd, "score_delta_ci_low": slo, "score_delta_ci_high": shi}


def method_table(rows: list[dict], jobs: list[tuple[str, int]]) -> list[dict]:
    """Solve rate (Wilson 95%) and mean score of every (method, N), and its paired difference to the single seed."""
    table = []
    for m, n in jobs:
        st = summarize([r for r in rows if r["condition"] == condition(m, n)])
        d = versus(rows, (m, n), ("single", 1)) if m != "single" else {}
        mine = [r for r in rows if r["condition"] == condition(m, n)]
        nfe = [method_nfe(r) for r in mine if method_nfe(r) is not None]
        table.append({"method": m, "n_seeds": n, "compute": n, "samples": st["n"], "solve_rate": st["solve_rate"],
                      "ci_low": st["ci_low"], "ci_high": st["ci_high"], "mean_score": st["mean_score"],
                      "delta_vs_single": d.get("delta", 0.0), "delta_ci_low": d.get("delta_ci_low", 0.0),
                      "delta_ci_high": d.get("delta_ci_high", 0.0),
                      "score_delta_vs_single": d.get("score_delta", 0.0) if d else 0.0,
                      "score_delta_ci_low": d.get("score_delta_ci_low", 0.0) if d else 0.0,
                      "score_delta_ci_high": d.get("score_delta_ci_high", 0.0) if d else 0.0, "upper_bound": m == "best-oracle",
                      **({"nfe": float(np.mean(nfe))} if nfe else {})})
    return table


def budget_table(rows: list[dict], jobs: list[tuple[str, int]], reps: int = 2000) -> list[dict]:
    """Per family (task) and (method, budget): NFE per sample and in plain runs, solve rate (Wilson 95%), mean score,
    and their paired differences to one seed (bootstrap 95%); a search method's also to verifier best-of-n at the
    same budget (``vs_best_of_n``: the issue's yardstick at equal compute; None where best-of-n did not run)."""
    out = []
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        single = {r["sample"]: r for r in mine if r["condition"] == condition("single", 1)}
        bon = {n: {r["sample"]: r for r in mine if r["condition"] == condition("best-of-n", n)} for _, n in jobs}
        plain = np.mean([method_nfe(r) for r in single.values() if method_nfe(r)] or [np.nan])
        for m, n in jobs:
            got = [r for r in mine if r["condition"] == condition(m, n)]
            if not got:
                continue
            st = summarize(got)
            row = {"task": task, "method": m, "budget": n, "samples": st["n"], "solve_rate": st["solve_rate"],
                   "ci_low": st["ci_low"], "ci_high": st["ci_high"], "mean_score": st["mean_score"],
                   "upper_bound": m == "best-oracle", "nfe": None, "nfe_runs": None,
                   **{f"{a}{b}": None for a in ("delta", "delta_score", "vs_best_of_n")
                      for b in ("", "_ci_low", "_ci_high")}, **search_work(got)}
            nfe = [method_nfe(r) for r in got if method_nfe(r) is not None]
            if nfe:
                row["nfe"] = float(np.mean(nfe))
                row["nfe_runs"] = float(row["nfe"] / plain) if plain == plain and plain else None
            common = [r for r in got if r["sample"] in single]
            if m != "single" and common:
                for key, name in (("success", "delta"), ("score", "delta_score")):
                    d, lo, hi = paired_bootstrap([float(r[key]) for r in common],
                                                 [float(single[r["sample"]][key]) for r in common], reps)
                    row.update({name: d, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
            paired = [r for r in got if r["sample"] in bon[n]]
            if is_search(m) and m != "best-of-n" and paired:
                d, lo, hi = paired_bootstrap([float(r["success"]) for r in paired],
                                             [float(bon[n][r["sample"]]["success"]) for r in paired], reps)
                row.update({"vs_best_of_n": d, "vs_best_of_n_ci_low": lo, "vs_best_of_n_ci_high": hi})
            out.append(row)
    return out


def search_work(rows: list[dict]) -> dict:
    """What a search method's verifier did over its rows (steplens.methods.search.search_record): its name, the
    samples with a choice among two or more particles (`decided`), the share of them where the verifier separated
    the candidates at some choice (`separated`), the choices the tie rule decided (`ties`), and the share of samples
    whose pick is the one seed's own run (`picked_one_seed`: member 0, never re-noised). None for rows of no search."""
    from ..tasks import verifier_strength

    mine = [r for r in rows if "decisions" in r or "generations" in r]
    if not mine:
        return {"verifier": None, "strength": None, "decided": None, "separated": None, "ties": None,
                "picked_one_seed": None, "last_link_share": None, "generations": None}
    decided = [r for r in mine if r.get("separated") is not None]
    one = [r["picked_one_seed"] for r in mine if r.get("picked_one_seed") is not None]
    shares = [r["last_link_share"] for r in mine if r.get("last_link_share") is not None and r.get("success")]
    gens = [r["generations"] for r in mine if r.get("generations") is not None]
    name = mine[0].get("verifier")
    return {"verifier": name, "strength": verifier_strength(name) if name else None, "decided": len(decided),
            "separated": float(np.mean([bool(r["separated"]) for r in decided])) if decided else None,
            "ties": int(sum(r.get("ties") or 0 for r in mine)),
            "picked_one_seed": float(np.mean(one)) if one else None,
            # chain: of the solved answers, the mean share the last link drew (1.0: solved in one link)
            "last_link_share": float(np.mean(shares)) if shares else None,
            "generations": float(np.mean(gens)) if gens else None}  # backtrack: generations spent per sample


def verifier_note(table: list[dict], name: str) -> str | None:
    """A plain sentence where the verifier separated the candidates of no sample for some search method (its picks
    fell to the tie rule: particle 0, the one seed's video), else None. A verifier beside (`beside`) is named on its
    own sentence."""
    flat = [r for r in table if r.get("separated") == 0.0 and r.get("decided")]
    names = list(dict.fromkeys(r.get("verifier") or name for r in flat))
    if len(names) > 1 or (names and names[0] != name):
        notes = [_flat_note([r for r in flat if (r.get("verifier") or name) == v], v, table) for v in names]
        return " ".join(n[0].upper() + n[1:] for n in notes)
    return _flat_note(flat, name, table) if flat else None


def _flat_note(flat: list[dict], name: str, table: list[dict]) -> str:
    which = ", ".join(f"{r['method']} B={r['budget']}" + (f" ({r['task']})" if len({x['task'] for x in table}) > 1
                                                          else "") for r in flat)
    one_seed = all(r.get("picked_one_seed") == 1.0 for r in flat)
    return (f"the verifier {name!r} scored every candidate alike on every sample of {which}: no choice was made by "
            f"it; {sum(r['ties'] for r in flat)} ties fell to the tie rule (lowest particle index), so these rows "
            + ("return particle 0, the one seed's video, and measure no search" if one_seed else
               "measure the tie rule, not the verifier")
            + ". Use a verifier that separates candidates (`steplens verifiers`).")


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
                    "95% interval above 0 holds, below 0 (at every N) does not",
                    lambda h, t: _ensemble_evidence(_best_ensemble(t)),
                    lambda h, t: _ensemble_needed(t),
                    "some method solving some sample, and a paired interval (ensemble - one seed) that excludes 0 "
                    "either way", "ours",
                    f"{STUDY}, abstract: an ensemble of latent trajectories from different seeds, 0.685 → 0.716; its "
                    f"details (seeds, blocks, early steps) are not public; ours: block outputs averaged over N seeds "
                    f"in the early steps, a paired bootstrap interval above 0"),)
    study = StudyPart(count="compare_count", order=90, scope="weakest",
                      options=lambda cfg: {"n_list": [cfg.n_seeds], "methods": list(STUDY_METHODS),
                                           "ens": EnsembleConfig()},
                      summary=lambda res: [{k: r.get(k) for k in ("method", "n_seeds", "solve_rate", "mean_score",
                                                                  "delta_vs_single", "delta_ci_low", "delta_ci_high",
                                                                  "score_delta_vs_single", "score_delta_ci_low",
                                                                  "score_delta_ci_high")}
                                           for r in res["table"]])

    def options(self, model, s: ExperimentSettings, n_list=(2, 3, 4, 8), methods=METHODS,
                ens: EnsembleConfig | None = None, budgets=None, search_methods=DEFAULT_SEARCH,
                search: SearchConfig | None = None, beside=()) -> dict:
        methods = [check_method(m) for m in methods]
        beside = check_beside(beside, (search or SearchConfig()).verifier, search_methods, budgets)
        if budgets is not None:  # the N-seed methods at every budget of two runs or more
            budgets = check_budgets(budgets)
            n_list = [b for b in budgets if b >= 2] or [2]
            bad = [m for m in search_methods if m not in SEARCH_METHODS]
            if bad or len(set(search_methods)) != len(search_methods):
                raise ValueError(f"search methods {list(search_methods)}: each once, from {', '.join(SEARCH_METHODS)}")
            # before the model loads (model None): the steps where given, else checked again once it has loaded
            steps = own(model, s.steps)[0] if model is not None else s.steps
            base = search or SearchConfig()
            given = s.tasks.split(",") if isinstance(s.tasks, str) else list(s.tasks or [])
            tasks = [] if s.data is not None else (given or [s.task])  # a folder's tasks: checked per sample
            folder = folder_samples(s) if s.data is not None and model is None else []  # before the model loads
            for m in search_methods:
                for b in budgets:
                    check_search(search_at(base, m, b, steps) if steps is not None else
                                 base.model_copy(update={"method": m}), steps, tasks, folder)
            for v in beside:  # each verifier reads the tasks' samples
                check_search(base.model_copy(update={"method": "best-of-n", "verifier": v}), None, tasks, folder)
        n_list = list(n_list)
        if len(set(n_list)) != len(n_list) or len(set(methods)) != len(methods):
            raise ValueError(f"repeated N or method: N {n_list}, methods {methods}; give each once")
        bad = [n for n in n_list if isinstance(n, bool) or not isinstance(n, int) or n < 2]
        if bad:
            raise ValueError(f"N = {bad[0]!r}: the multi-seed methods need N >= 2 seeds")
        if "single" not in methods:
            methods = ["single", *methods]
        if any(m in ENSEMBLES for m in methods):
            check_ensemble(ens or EnsembleConfig(), model, s.steps)  # model/steps None: what they tell is left
        s.scorers()  # an unknown scorer is named before the samples are made
        if budgets is None:
            return {"n_list": n_list, "methods": methods, "ens": ens}
        return {"n_list": n_list, "methods": methods, "ens": ens, "budgets": budgets,
                "search_methods": list(search_methods), "search": search or SearchConfig(), "beside": beside}

    def prepare(self, r: ProbeRun) -> None:
        """Every sample's verifier resolved before the first row (a folder the verifier cannot read is refused)."""
        if r.options.get("budgets"):
            for m in r.options["search_methods"]:
                check_search(r.options["search"].model_copy(update={"method": m}), None, (), r.samples)
                if m == "backtrack":  # the model's frame conditioning, now that it is loaded
                    from ..methods.backtrack import check_backtrack

                    check_backtrack(r.model, [x.task for x in r.samples])
            for v in r.options.get("beside") or ():  # each verifier beside reads these samples
                check_search(r.options["search"].model_copy(update={"method": "best-of-n", "verifier": v}), None, (),
                             r.samples)

    def config(self, r: ProbeRun) -> dict:
        o = r.options
        out = {"n_list": o["n_list"], "methods": o["methods"], "ensemble": (o["ens"] or EnsembleConfig()).model_dump(),
               "scored": "every method in its task's palette"}  # a store scored otherwise is refused, not mixed
        if o.get("budgets"):  # only then: a store of an older comparison resumes as it was
            out.update({"budgets": o["budgets"], "search_methods": o["search_methods"],
                        "search": o["search"].model_dump()})
            if o.get("beside"):  # only then: a store without verifiers beside resumes as it was
                out["beside_verifiers"] = o["beside"]
        return out

    def plan(self, s: ExperimentSettings, shape: PlanShape, options: dict) -> dict[str, Branch]:
        """The run's jobs (`jobs_of` on the options as `options` resolves them, budgets included): each (method, N)
        N seeds per sample (steps-x: one seed at N x the steps), methods reading one N-seed generation sharing it
        (counted once); each search method at each budget the forwards its configuration spends
        (`steplens.methods.search.search_nfe`; a chain at most its links' worth: it stops once its verifier accepts);
        best-of-n picked by a verifier beside reads best-of-n's particles (counted once)."""
        from ..methods.search import search_nfe

        o = self.options(None, s.model_copy(update={"steps": shape.steps}), **options)

        def branch(m, n):
            if m == "steps-x":
                return Branch(0, steps=shape.steps * n, shares=f"steps-x N={n}")
            if is_search(m):
                cfg = search_at(o["search"], generation(m), n, shape.steps)
                one = search_nfe(cfg, shape.steps)
                return Branch(0, forwards=one * cfg.links if m == "chain" else one,
                              at_most=m in ("chain", "backtrack"),  # both stop once the verifier accepts
                              shares=f"best-of-n B={n}" if generation(m) == "best-of-n" else None)
            return Branch(0, runs=n, shares=f"{generation(m)} N={n}")
        return {condition(m, n): branch(m, n) for m, n in jobs_of(o)}

    def conditions(self, r: ProbeRun) -> dict:
        """condition -> (method, N): the single seed, then every method at every N (and every search method at every
        budget)."""
        return {condition(m, n): (m, n) for m, n in jobs_of(r.options)}

    def group(self, r: ProbeRun, c: str):
        # committed per N and per generation (methods reading one N-seed run share it), so little work is lost to a
        # kill
        m, n = r.conditions[c]
        return n, generation(m)

    def batch(self, r: ProbeRun):
        s, conds, scorers = r.settings, r.conditions, r.settings.scorers()
        sampling = s.sampling_for(r.model)

        def run(todo, batch):
            n = conds[todo[0]][1]
            seeds = [x.seed for x in batch]
            plain = [c for c in todo if not is_search(conds[c][0])]
            got = {}
            if plain:
                done = run_methods(r.model, batch, seeds, [conds[c][0] for c in plain], n, sampling,
                                   r.options["ens"], scorers)
                got.update({c: done[conds[c][0]] for c in plain})
            beside = [beside_verifier(conds[c][0]) for c in todo if beside_verifier(conds[c][0]) is not None]
            auc = n == max(r.options.get("budgets") or [0])  # best-of-n's particles probed at the largest budget
            for c in todo:
                m = conds[c][0]
                if c in got or beside_verifier(m) is not None:
                    continue
                if m == "best-of-n" and beside:
                    got.update(run_beside(r.model, batch, seeds, n, sampling, r.options["search"], scorers, beside,
                                          auc=auc))
                else:
                    got[c] = run_search(r.model, batch, seeds, m, n, sampling, r.options["search"], scorers, auc=auc)
            if beside and condition("best-of-n", n) not in todo:  # stored already: its particles drawn again
                again = run_beside(r.model, batch, seeds, n, sampling, r.options["search"], scorers, beside)
                spent = again.pop(condition("best-of-n", n))
                for j, (c, rows) in enumerate(again.items()):  # the particles' NFE on the first reader, as spent
                    got[c] = rows if j else [{**x, "nfe": y["nfe"], "nfe_without_reuse": y["nfe_without_reuse"]}
                                             for x, y in zip(rows, spent)]
            return got
        return run

    def summary(self, r: ProbeRun, by: dict) -> dict:
        jobs = list(r.conditions.values())
        rows = [x for c in r.conditions for x in by[c]]
        table, h2h = method_table(rows, jobs), head_to_head(rows, jobs)
        headline = {condition(x["method"], x["n_seeds"]): round(x["delta_vs_single"], 3) for x in table
                    if x["method"] != "single"}
        out = {"table": table, "head_to_head": h2h, "headline": headline}
        if r.options.get("budgets"):
            out["budget_table"] = budget_table(rows, jobs)
            out["auc"] = step_auc([x for x in rows if x.get("particles")])
            name = r.options["search"].verifier
            out["verifier"] = {"name": name, "tie_rule": TIE_RULE, "note": verifier_note(out["budget_table"], name)}
        return out

    def write(self, r: ProbeRun, res: dict) -> None:
        extra = {k: res[k] for k in ("budget_table", "auc", "verifier") if k in res}
        atomic_write_json(r.out / "results.json", {"format": 1, "experiment": "compare", "config": r.config,
                                                   "table": res["table"], "head_to_head": res["head_to_head"],
                                                   "scored_by": r.settings.scorers().used(r.samples),
                                                   **({"verifier": r.options["search"].verifier}
                                                      if r.options.get("budgets") else {}),
                                                   **({"cost": res["cost"]} if res.get("cost") else {}),
                                                   **extra})
        write_table(res["table"], r.out / "compare.csv")
        if res.get("budget_table"):
            write_table(res["budget_table"], r.out / "budget.csv")
        if res.get("auc"):
            write_table(res["auc"], r.out / "auc.csv")

    def finish(self, r: ProbeRun, res: dict, rows: dict) -> None:
        plot(r.out, res["table"], sorted({x["n_seeds"] for x in res["table"] if x["method"] != "single"}))
        if res.get("budget_table"):
            plot_budget(r.out, res["budget_table"])

    def reads(self, data: dict) -> bool:
        return data.get("experiment") == "compare" or "head_to_head" in data

    def headline_text(self, h: dict, table: list) -> str:
        single = next((r for r in table if r["method"] == "single"), None)
        return f"one seed {single['solve_rate']:.3f} on {single['samples']} samples" if single else ""

    def report_section(self, rep: Report, out: Path, res: dict, rel: str = ".") -> None:
        rep.section("Ensemble vs best-of-N vs majority vote, at equal compute",
                    "Solve rate and mean score on the same held-out samples and noises, every method's frames scored in "
                    "the task's palette where it has one; differences to the single seed with paired bootstrap 95% "
                    "intervals, on the solve rate and on the mean score. best-oracle uses the scorer: an upper bound, "
                    "not a method. "
                    + cost_text(res.get("cost")))
        rep.image(f"{rel}/compare.png", "difference to the single seed per method and N")
        rep.table(res["table"], ["method", "n_seeds", "samples", "solve_rate", "ci_low", "ci_high", "mean_score",
                                 "delta_vs_single", "delta_ci_low", "delta_ci_high", "score_delta_vs_single",
                                 "score_delta_ci_low", "score_delta_ci_high"])
        if res.get("head_to_head"):
            rep.text("The ensembles against majority vote and consensus best-of-N at the same N (paired, 95% "
                     "bootstrap):")
            rep.table(res["head_to_head"], ["method", "n_seeds", "versus", "samples", "delta", "delta_ci_low",
                                            "delta_ci_high"])
        if res.get("budget_table"):
            rep.section("Accuracy against compute (NFE), per family",
                        "Every method at each budget (units of one plain run's NFE; nfe_runs: what it spent) on the "
                        "same samples and noises. Search methods pick with a verifier that never sees the answer. "
                        "delta / delta_score: paired difference to one seed in solve rate / mean score, bootstrap "
                        "95% interval; vs_best_of_n: a search method's solve rate minus verifier best-of-n's at the "
                        "same budget (paired, 95%). best-oracle uses the scorer: an upper bound, not a method. "
                        + verifier_text(res.get("verifier")))
            rep.image(f"{rel}/budget.png", "solve rate against NFE per family")
            rep.table(res["budget_table"], ["task", "method", "budget", "nfe_runs", "samples", "solve_rate", "ci_low",
                                            "ci_high", "mean_score", "delta", "delta_ci_low", "delta_ci_high",
                                            "delta_score", "delta_score_ci_low", "delta_score_ci_high",
                                            "vs_best_of_n", "vs_best_of_n_ci_low", "vs_best_of_n_ci_high",
                                            "verifier", "strength", "decided", "separated", "ties", "picked_one_seed",
                                            "last_link_share", "generations"])
        if res.get("auc"):
            rep.text("How early x̂0 tells: AUC of the verifier on a particle's x̂0 at step k for that particle's final "
                     "success (best-of-n's particles at the largest budget; None where all or none succeed):")
            rep.table(res["auc"], ["task", "step", "particles", "final_rate", "auc"])


def verifier_text(v: dict | None) -> str:
    """The search methods' verifier, what its columns mean, and its note where it separated nothing."""
    if not v:
        return ""
    text = (f"Search methods' verifier: {v['name']!r}. separated: the share of samples (of `decided`, those with a "
            f"choice among two or more particles) where the verifier's scores were not all equal at some choice; "
            f"ties: choices the tie rule decided ({v['tie_rule']}); picked_one_seed: the share whose pick is the one "
            f"seed's own run.")
    return text + (f" NOTE: {v['note']}" if v.get("note") else "")


def _best_ensemble(table: list) -> dict | None:
    """The study's ensemble at the N where its interval against one seed sits highest (None: not run)."""
    ens = [r for r in table if r["method"] == "ensemble"]
    return max(ens, key=lambda r: r["delta_ci_low"]) if ens else None


def _ensemble_evidence(best: dict) -> str:
    return (f"best N={best['n_seeds']}: {100 * best['delta_vs_single']:+.1f} points "
            f"[{100 * best['delta_ci_low']:+.1f}, {100 * best['delta_ci_high']:+.1f}] on {best.get('samples', '?')} "
            f"samples")


def _ensemble_needed(table: list) -> str | None:
    """None when the ensemble's paired difference to one seed is determined: above 0 at some N (holds) or below 0 at
    every N (does not hold); else why not."""
    if not any((r.get("solve_rate") or 0) > 0 for r in table):
        return "no method solved any sample: the paired differences are all 0"
    ens = [r for r in table if r["method"] == "ensemble"]
    if any(r["delta_ci_low"] > 0 for r in ens) or all(r["delta_ci_high"] < 0 for r in ens):
        return None
    best = _best_ensemble(table)
    return difference_needed({"mean": best["delta_vs_single"], "ci_low": best["delta_ci_low"],
                              "ci_high": best["delta_ci_high"], "n": best.get("samples")},
                             f"ensemble - one seed at N={best['n_seeds']}", 100, " points")


PROBE = Compare()
report_section = PROBE.report_section


def compare(model, out: Path, s: ExperimentSettings, n_list=(2, 3, 4, 8), methods=METHODS,
            ens: EnsembleConfig | None = None, progress=True, budgets=None, search_methods=DEFAULT_SEARCH,
            search: SearchConfig | None = None, beside=()) -> dict:
    """The comparison into OUT (resumable): {"table", "head_to_head", "headline"}; with `budgets` also
    "budget_table" and "auc" (see the module doc); `beside`: verifiers picking among best-of-n's particles beside
    the search methods' own."""
    kw = {} if budgets is None else {"budgets": budgets, "search_methods": search_methods, "search": search}
    if beside:  # refused by `Compare.options` without budgets
        kw["beside"] = list(beside)
    return PROBE.run(model, out, s, progress=progress, n_list=n_list, methods=methods, ens=ens, **kw)


def plot_budget(out: Path, table: list[dict]) -> None:
    """Solve rate (Wilson 95%) against NFE in plain runs, one panel per family, one line per method (a search method
    labelled with the axis it searches along, `steplens.methods.search.AXIS`)."""
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in table})
    cols = min(4, len(tasks))  # four panels a row: many families wrap instead of one long strip
    rows_n = -(-len(tasks) // cols)
    fig, grid = plt.subplots(rows_n, cols, figsize=(4.2 * cols + 1.5, 3.4 * rows_n), squeeze=False)
    panels = list(grid.flat)
    for ax in panels[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(panels, tasks):
        rows = [r for r in table if r["task"] == task and r.get("nfe_runs") is not None]
        for m in dict.fromkeys(r["method"] for r in rows):
            mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["nfe_runs"])
            x, y = [r["nfe_runs"] for r in mine], [r["solve_rate"] for r in mine]
            ax.errorbar(x, y, yerr=[[max(0.0, v - r["ci_low"]) for v, r in zip(y, mine)],
                                    [max(0.0, r["ci_high"] - v) for v, r in zip(y, mine)]],
                        marker="o", ms=3, capsize=2, lw=1,
                        ls="--" if m == "best-oracle" else ":" if beside_verifier(m) is not None else "-",
                        color=colour(m), label=f"{m} ({AXIS[generation(m)]})" if generation(m) in AXIS else m)
        ax.set_xscale("log", base=2)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("NFE (plain runs)")
        ax.set_ylim(-0.02, 1.02)
    for row in grid:
        row[0].set_ylabel("solve rate")
    fig.subplots_adjust(hspace=0.45)
    legend = {}  # every method of any panel (chain runs only on some families)
    for ax in panels[: len(tasks)]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, h)
    grid[0][-1].legend(list(legend.values()), list(legend), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, Path(out) / "budget.png")


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
                    yerr=[[max(0.0, r["delta_vs_single"] - r["delta_ci_low"]) for r in rows],
                          [max(0.0, r["delta_ci_high"] - r["delta_vs_single"]) for r in rows]],
                    marker="o", ms=4, capsize=2, ls="none", mfc="none" if m == "best-oracle" else None,
                    color=colour(m),  # one colour per method in every plot
                    label=m + (" (upper bound)" if m == "best-oracle" else ""))
    ax.axhline(0, color="k", lw=1)
    ax.set_xlabel("N (forward passes per step, or N x steps)")
    ax.set_ylabel("solve rate - single seed")
    ax.set_xticks(range(len(n_list)), [str(n) for n in n_list])
    ax.set_xlim(-0.5, len(n_list) - 0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, Path(out) / "compare.png")

