"""Issue 24's accuracy-against-compute table: every method at budgets of 1, 2, 4, 8 plain runs (NFE) on the families
where one seed is weakest, with the search methods (a verifier that never sees the answer) beside the multi-seed ones;
and issue 35's two axes at equal compute (steps: early-beam, smc; time: backtrack, with a frame-prefix --model; task
restart: chain), each against verifier best-of-n:

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search_budget.py --count 300 --budgets 2,4,8 \\
        --model tiny-reasoner-frames --families maze,maze-loops,tictactoe --methods vote \\
        --search best-of-n,early-beam,smc,backtrack,chain --verifier checker --out runs/axes-checker

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search_budget.py --count 300 --budgets 1,2,4,8 \\
        --out runs/search-budget [--families reappear,maze-loops,tictactoe,maze6,maze7] [--threads 1]

Families: reappear, maze-loops, tictactoe on `tiny-reasoner` (their default sizes); maze 6x6 and 7x7 on `tiny-maze`
(one and two sizes above its comfort). Each family is one resumable `compare` folder (OUT/<family>): run families
in parallel processes (one thread each) and rerun to resume or grow. Held out by content: the test part's inputs
(compare's default --split test; training draws the train part). `chain` runs on the families whose task has `continue_from` (the mazes).

Writes OUT/table.md (solve rate [Wilson 95%], NFE in plain runs, paired-bootstrap difference to one seed and, for a
search method, to verifier best-of-n at the same budget [95%]; the step-k AUC per family; the issue's equal-compute
target judged per family; with --beside a verifier table's folder, best-of-n with the `task` verifier beside this
table's on the same particles, labelled), OUT/search_budget.json and OUT/budget.png (accuracy against NFE, one panel per family).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from steplens.methods.search import AXIS

FAMILIES = {  # name: (model, task, size); --model replaces the model of every family (e.g. the frame-prefix model,
    # which backtrack needs)
    "reappear": ("tiny-reasoner", "reappear", None),
    "maze-loops": ("tiny-reasoner", "maze-loops", None),
    "tictactoe": ("tiny-reasoner", "tictactoe", None),
    "maze": ("tiny-reasoner", "maze", None),
    "maze-two-goals": ("tiny-reasoner", "maze-two-goals", None),
    "symmetry": ("tiny-reasoner", "symmetry", None),
    "symmetry-open": ("tiny-reasoner", "symmetry-open", None),
    "maze6": ("tiny-maze", "maze", 6),
    "maze7": ("tiny-maze", "maze", 7),
    "maze7-reasoner": ("tiny-reasoner", "maze", 7),  # two sizes above tiny-reasoner's default: with --model
    # tiny-reasoner-frames, backtrack (the time axis) beside the others on 7x7 mazes
}
DEFAULT_FAMILIES = ("reappear", "maze-loops", "tictactoe", "maze6", "maze7")


def run_family(name: str, a, count: int | None = None) -> dict:
    from steplens.experiments.grid import ExperimentSettings
    from steplens.methods.search import SearchConfig
    from steplens.models.load import load_model
    from steplens.probes.compare import compare
    from steplens.tasks import find_task

    model_name, task, size = FAMILIES[name]
    model_name = a.model or model_name
    model = load_model(model_name)
    s = ExperimentSettings(task=task, size=size, count=count or a.count, seed=a.seed, batch=a.batch)
    search = [m for m in a.search.split(",")
              if (m != "chain" or callable(getattr(find_task(task), "continue_from", None)))
              and (m != "backtrack" or getattr(model, "prefix_trained", 1) > 1)]
    t0 = time.time()
    res = compare(model, Path(a.out) / name, s, methods=a.methods.split(","), budgets=a.budget_list,
                  search_methods=search, search=SearchConfig(verifier=a.verifier, m=a.keep), progress=not a.quiet)
    return {"family": name, "model": model_name, "task": task, "size": size, "count": s.count,
            "seconds": round(time.time() - t0, 1),
            "budget_table": res["budget_table"], "auc": res["auc"]}


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.0f}"


def table_md(results: list[dict]) -> str:
    lines = ["| family | method | budget | samples | NFE (runs) | solve rate [95%] | vs one seed, points [95%] | "
             "vs best-of-n at the budget, points [95%] | mean score |", "|---|---|---:|---:|---:|---|---|---|---:|"]

    def points(x, key):
        return "" if x.get(key) is None else (f"{100 * x[key]:+.1f} [{100 * x[key + '_ci_low']:+.1f}, "
                                              f"{100 * x[key + '_ci_high']:+.1f}]")
    for r in results:
        for x in r["budget_table"]:
            method = x["method"] + (" (upper bound)" if x["upper_bound"] else "")
            lines.append(f"| {r['family']} | {method} | {x['budget']} | {x.get('samples', '')} | {x['nfe_runs'] or 0:.2f} | "
                         f"{_pct(x['solve_rate'])}% [{_pct(x['ci_low'])}, {_pct(x['ci_high'])}] | "
                         f"{points(x, 'delta')} | {points(x, 'vs_best_of_n')} | {x['mean_score']:.3f} |")
    lines += ["", "AUC of the verifier on x̂0 at step k for a particle's final success (best-of-n's particles at the "
              "largest budget):", "", "| family | step | particles | final success | AUC |", "|---|---:|---:|---:|---:|"]
    for r in results:
        for x in r["auc"]:
            auc = "" if x["auc"] is None else f"{x['auc']:.3f}"
            lines.append(f"| {r['family']} | {x['step']} | {x['particles']} | {x['final_rate']:.3f} | {auc} |")
    return "\n".join(lines) + "\n"


SEARCH = ("early-beam", "smc")  # the search methods judged against verifier best-of-n (chain: its own target)
MIN_SAMPLES = 30  # below this a paired bootstrap interval is no evidence either way
AXES = {ax: tuple(m for m, a in AXIS.items() if a == ax) for ax in ("steps", "time", "task restart")}  # issue 35


def verdicts(results: list[dict], margin: float = 0.10, methods=SEARCH) -> list[dict]:
    """The issue's equal-compute target per family and budget: the best of `methods` (highest solve rate) against
    verifier best-of-n at the same budget, on their paired difference. Holds: >= `margin` with the 95% interval
    above 0; does not hold: the interval's top below `margin`; else undetermined (the interval straddles it, or no
    paired rows), with why."""
    out = []
    for r in results:
        rows = r["budget_table"]
        for b in sorted({x["budget"] for x in rows if x["method"] == "best-of-n" and x["budget"] >= 2}):
            cands = [x for x in rows if x["method"] in methods and x["budget"] == b]
            if not cands:
                continue
            best = max(cands, key=lambda x: x["solve_rate"])
            d, lo, hi = (best.get("vs_best_of_n"), best.get("vs_best_of_n_ci_low"), best.get("vs_best_of_n_ci_high"))
            if d is None:
                state, why = "undetermined", "no paired difference to best-of-n recorded"
            elif best["samples"] < MIN_SAMPLES:  # a bootstrap over a few samples that all agree is [0, 0]: no evidence
                state, why = "undetermined", f"{best['samples']} samples (a verdict needs {MIN_SAMPLES})"
            elif d >= margin and lo > 0:
                state, why = "holds", ""
            elif hi < margin:
                state, why = "does not hold", ""
            else:
                state, why = "undetermined", f"the interval straddles {100 * margin:+.0f} points"
            out.append({"family": r["family"], "budget": b, "method": best["method"], "delta": d, "ci_low": lo,
                        "ci_high": hi, "state": state, "why": why, "solve_rate": best["solve_rate"],
                        "nfe_runs": best["nfe_runs"]})
    return out


def target_state(v: list[dict], families_needed: int) -> tuple[list[str], str]:
    """(families where a verdict holds, the target's state): met with `families_needed` of them; not met when even the
    undetermined ones could not make up the number; else undetermined, naming the families still open."""
    held = sorted({x["family"] for x in v if x["state"] == "holds"})
    open_ = sorted({x["family"] for x in v if x["state"] == "undetermined"} - set(held))
    state = ("met" if len(held) >= families_needed else "not met" if len(held) + len(open_) < families_needed
             else "undetermined (families still open: " + ", ".join(open_) + ")")
    return held, state


def axes_md(results: list[dict], margin: float = 0.10, families_needed: int = 3) -> str:
    """Issue 35: per axis (steps: early-beam, smc; time: backtrack; task restart: chain), the families where its best
    method beats verifier best-of-n at equal NFE by >= `margin` (paired 95% interval above 0) at some budget."""
    lines = [f"Both axes at equal compute: an axis's best method against verifier best-of-n at the same budget, target "
             f">= {100 * margin:.0f} points on >= {families_needed} families", "",
             "Each cell: the axis's best method, its solve rate at the NFE it spent (plain runs), its paired difference "
             "to best-of-n in points [95%] and the verdict.", "",
             "| family | budget | samples | one seed | best-of-n | " + " | ".join(f"{ax} ({', '.join(ms)})"
                                                                       for ax, ms in AXES.items()) + " |",
             "|---|---:|---:|---|---|" + "---|" * len(AXES)]
    per_axis = {ax: {(x["family"], x["budget"]): x for x in verdicts(results, margin, ms)} for ax, ms in AXES.items()}
    keys = sorted({k for v in per_axis.values() for k in v}, key=lambda k: ([r["family"] for r in results].index(k[0]),
                                                                           k[1]))
    for fam, b in keys:
        cells = []
        for ax in AXES:
            x = per_axis[ax].get((fam, b))
            pts = "" if x is None or x["delta"] is None else \
                f" {100 * x['delta']:+.1f} [{100 * x['ci_low']:+.1f}, {100 * x['ci_high']:+.1f}]"
            cells.append("–" if x is None else f"{x['method']} {_pct(x['solve_rate'])}% at {x['nfe_runs']:.2f}{pts} "
                                               f"{x['state']}{': ' + x['why'] if x['why'] else ''}")
        rows = next(r["budget_table"] for r in results if r["family"] == fam)
        one = next((x for x in rows if x["method"] == "single"), None)
        bon = next((x for x in rows if x["method"] == "best-of-n" and x["budget"] == b), None)
        lines.append(f"| {fam} | {b} | {'' if bon is None else bon.get('samples', '')} | "
                     f"{'' if one is None else _pct(one['solve_rate']) + '%'} | "
                     f"{'' if bon is None else _pct(bon['solve_rate']) + '%'} | " + " | ".join(cells) + " |")
    lines.append("")
    for ax in AXES:
        held, state = target_state(list(per_axis[ax].values()), families_needed)
        lines.append(f"- {ax}: holds on {len(held)} families ({', '.join(held) or 'none'}); the target "
                     f"({families_needed} families): {state}")
    return "\n".join(lines) + "\n"


def paired(a: list[bool], b: list[bool]) -> tuple[float, float, float]:
    """a − b on the same samples with its paired bootstrap 95% interval: the interval `compare` gives every
    difference of its budget table (`steplens.experiments.stats.paired_bootstrap`), so one table's intervals agree."""
    from steplens.experiments.stats import paired_bootstrap

    return paired_bootstrap([float(x) for x in a], [float(x) for x in b])


def head_to_head_md(results: list[dict], rows_of: dict) -> str:
    """The question itself: does the time axis beat the step axis here, and by how much? Per family and budget, each
    axis's best method (highest solve rate at the budget) against the step axis's best, paired on the same samples
    (`paired`: the paired bootstrap 95% interval compare gives every difference); NFE as each spent (a budget is a
    cap: backtrack and chain stop once the verifier accepts). `rows_of`: each family's rows (`steplens.results` of its
    folder)."""
    lines = ["Time against steps, head to head: each axis's best method at the budget minus the step axis's best, "
             "paired on the same samples (paired bootstrap 95%; NFE in plain runs as spent):", "",
             "| family | budget | steps: best | time: best | time − steps, points [95%] | task restart: best | "
             "task restart − steps, points [95%] |", "|---|---:|---|---|---|---|---|"]
    for r in results:
        df = rows_of[r["family"]]

        def best(axis, b):
            rows = [x for x in r["budget_table"] if x["method"] in AXES[axis] and x["budget"] == b]
            if not rows:
                return None, None
            x = max(rows, key=lambda x: x["solve_rate"])
            got = df[df["condition"] == f"{x['method']} B={b}"].sort_values("seed")
            return x, [bool(v) for v in got["success"]]

        for b in sorted({x["budget"] for x in r["budget_table"] if x["method"] in AXES["steps"]}):
            (st, ss), cells = best("steps", b), []
            for axis in ("time", "task restart"):
                x, xs = best(axis, b)
                if x is None or len(xs) != len(ss):
                    cells += ["–", "–"]
                    continue
                d, lo, hi = paired(xs, ss)
                cells += [f"{x['method']} {_pct(x['solve_rate'])}% at {x['nfe_runs']:.2f}",
                          f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"]
            lines.append(f"| {r['family']} | {b} | {st['method']} {_pct(st['solve_rate'])}% at {st['nfe_runs']:.2f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict_md(results: list[dict], margin: float = 0.10) -> str:
    v = verdicts(results, margin)
    lines = [f"Target: at equal NFE the best search method beats verifier best-of-n by >= {100 * margin:.0f} points "
             f"(paired, 95%):", "", "| family | budget | best search method | vs best-of-n, points [95%] | verdict |",
             "|---|---:|---|---|---|"]
    for x in v:
        pts = "" if x["delta"] is None else (f"{100 * x['delta']:+.1f} [{100 * x['ci_low']:+.1f}, "
                                             f"{100 * x['ci_high']:+.1f}]")
        lines.append(f"| {x['family']} | {x['budget']} | {x['method']} | {pts} | {x['state']}"
                     f"{': ' + x['why'] if x['why'] else ''} |")
    fams = {x["family"] for x in v}
    held, state = target_state(v, 2)
    lines += ["", f"Families where it holds: {len(held)} of {len(fams)} ({', '.join(held) or 'none'}); "
                  f"the target (two families) on these: {state}."]
    return "\n".join(lines) + "\n"


def _finals(rows) -> list[list[bool]] | None:
    """Each row's particles' final successes (compare's `particles` record), or None where a row lacks them."""
    out = []
    for p in rows["particles"] if "particles" in rows else []:
        if not isinstance(p, dict) or "final" not in p:
            return None
        out.append([bool(x) for x in p["final"]])
    return out or None


def _solver_picks(source: Path, family: str, b: int, mine_all) -> tuple[list[bool], list[bool], int] | None:
    """(best-of-b [task] per sample, any particle right per sample, n) on the first n samples of this table's
    best-of-b rows (`mine_all`: every row of this table's folder; its best-of-b rows hold seeds 0..k-1; n: as many
    as the source holds, at most k), from `source`: a verifier table's folder (SOURCE/<family>.json) or a folder of
    compare runs with `--verifier task` (SOURCE/<family>); None where it holds no such figure. Refused unless its
    particles are this table's (the same particles' successes, sample by sample)."""
    import steplens
    from verifier_table import pick, scores_at

    ours = mine_all[mine_all["condition"] == f"best-of-n B={b}"].sort_values("seed")
    verifier = str(ours["verifier"].dropna().iloc[0])
    cell = json.loads((source / f"{family}.json").read_text()) if (source / f"{family}.json").exists() else {}
    if "scores" in cell:  # a verifier table's cell (another JSON there, e.g. this script's own, is not one)
        if b > cell["n"]:
            return None
        k = min(len(ours), cell["count"])
        mine = [bool(x) for x in ours["success"][:k]]
        if verifier in cell["verifiers"]:
            sc = scores_at(cell, verifier, b)
            if [cell["success"][i][pick(sc[i])] for i in range(k)] != mine:
                raise SystemExit(f"{source / family}.json: its best-of-{b} [{verifier}] is not compare's on these "
                                 f"samples: not the same particles")
        sc = scores_at(cell, "task", b)
        return ([cell["success"][i][pick(sc[i])] for i in range(k)], [any(cell["success"][i][:b]) for i in range(k)],
                k)
    if not (source / family).is_dir():
        return None
    df = steplens.results(source / family)
    if "verifier" not in df:  # rows written before they named their verifier: the store's configuration does
        conf = json.loads((source / family / "store" / "store_config.json").read_text())
        df["verifier"] = (conf.get("search") or {}).get("verifier")
    theirs = df[(df["condition"] == f"best-of-n B={b}") & (df["verifier"] == "task")].sort_values("seed")
    k = min(len(ours), len(theirs))
    if k == 0 or list(theirs["seed"][:k]) != list(range(k)):
        return None
    theirs = theirs.iloc[:k]
    # the same particles: compare records them at its largest budget only; best-of-b's are best-of-B's first b
    oracle = None
    for c in sorted(set(df["condition"]) & set(mine_all["condition"])):
        if not c.startswith("best-of-n B="):
            continue
        a = _finals(mine_all[mine_all["condition"] == c].sort_values("seed").iloc[:k])
        t = _finals(df[df["condition"] == c].sort_values("seed").iloc[:k])
        if a is not None and t is not None:
            if a != t:
                raise SystemExit(f"{source / family}: its {c} particles are not this table's (their final successes "
                                 f"differ)")
            oracle = [any(f[:b]) for f in t]
    if oracle is None:
        raise SystemExit(f"{source / family}: no best-of-n budget where both record their particles: cannot check "
                         f"that they are this table's")
    return [bool(x) for x in theirs["success"]], oracle, k


def beside_md(results: list[dict], rows_of: dict, source: Path) -> str:
    """The issue's `solver` figures beside a user's verifier, labelled: verifier best-of-m [task] (a verifier that
    solves the task, stronger than a user has) on this table's own particles, from a verifier table's cells
    (benchmarks/verifier_table.py: one set of particles scored by every verifier) or compare runs with --verifier
    task (`_solver_picks`), paired against this table's best-of-m on the same samples. `rows_of`: each family's
    rows (`steplens.results` of its folder)."""
    from steplens.tasks import verifier_strength

    lines = [f"Beside (labelled): verifier best-of-n with the `task` verifier ({verifier_strength('task')}), the "
             f"same particles scored by a verifier that solves the task; from {source}:", "",
             "| family | budget | samples | best-of-n [this table's verifier] | best-of-n [task] | task − this "
             "table's, points [95%] | oracle (any particle right) |", "|---|---:|---:|---|---|---|---|"]
    for r in results:
        df = rows_of[r["family"]]
        for b in sorted({x["budget"] for x in r["budget_table"] if x["method"] == "best-of-n"}):
            ours = df[df["condition"] == f"best-of-n B={b}"].sort_values("seed")
            if len(ours) == 0 or list(ours["seed"]) != list(range(len(ours))):
                continue
            got = _solver_picks(source, r["family"], b, df)
            if got is None:
                continue
            task, oracle, k = got
            mine = [bool(x) for x in ours["success"][:k]]
            d, lo, hi = paired(task, mine)
            lines.append(f"| {r['family']} | {b} | {k} | {_pct(sum(mine) / k)}% [{ours['verifier'].iloc[0]}] | "
                         f"{_pct(sum(task) / k)}% | {100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | "
                         f"{_pct(sum(oracle) / k)}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                    help=f"of {', '.join(FAMILIES)}; FAMILY:N gives one its own sample count (default --count)")
    ap.add_argument("--model", default=None, help="one model for every family (default: each family's own)")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="1,2,4,8")
    ap.add_argument("--methods", default="vote,best-consensus,best-oracle,ensemble")
    ap.add_argument("--search", default="best-of-n,early-beam,smc,chain",
                    help="search methods; backtrack runs where the model takes leading frames")
    ap.add_argument("--verifier", default="task")
    ap.add_argument("--keep", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/search-budget")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--beside", default=None, help="a verifier table's folder (benchmarks/verifier_table.py) or "
                                                   "a folder of compare runs with --verifier task: best-of-n [task] "
                                                   "beside this table's, on the same particles, labelled")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    counts = {}  # FAMILY:COUNT gives a family its own sample count (a folder grown to another size than the rest)
    for item in a.families.split(","):
        name, _, n = item.partition(":")
        if n and not (n.isdigit() and int(n) >= 1):
            raise SystemExit(f"--families {item!r}: a family's own count must be a whole number >= 1, got {n!r}")
        counts[name] = int(n) if n else None
    fams = list(counts)
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise SystemExit(f"unknown family {bad[0]!r}; available: {', '.join(FAMILIES)}")
    a.budget_list = [int(b) for b in a.budgets.split(",")]
    results = [run_family(f, a, counts[f]) for f in fams]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_budget.json").write_text(json.dumps({"count": a.count, "budgets": a.budget_list,
                                                        "results": results}, indent=1))
    import steplens

    rows_of = {r["family"]: steplens.results(out / r["family"]) for r in results}  # every row, read once
    beside = beside_md(results, rows_of, Path(a.beside)) if a.beside else ""
    h2h = head_to_head_md(results, rows_of)
    (out / "table.md").write_text(table_md(results) + "\n" + verdict_md(results) + "\n" + axes_md(results) + "\n"
                                  + h2h + ("\n" + beside if beside else ""))
    from steplens.probes.compare import plot_budget

    plot_budget(out, [{**x, "task": r["family"]} for r in results for x in r["budget_table"]])
    print(table_md(results))
    print(verdict_md(results))
    print(axes_md(results))
    print(h2h)
    if beside:
        print(beside)
    print("seconds: " + ", ".join(f"{r['family']} {r['seconds']}" for r in results))


if __name__ == "__main__":
    main()
