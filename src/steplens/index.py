"""`steplens report DIR`: one index page for a folder of runs, with headline numbers and the study's claims.

Every probe, comparison, demo and trace under DIR is found by its result file (results.json, summary.json,
metrics.json), listed with its headline numbers and a link to its own report, and each of the study's claims
that its kind tests is judged on that model by a stated rule ("holds", "does not hold").
"""

from __future__ import annotations

import json
from pathlib import Path

from .report import Report

FORMAT = 1  # the newest result format this steplens reads; files without one are format 1


def _claims_noise(h: dict) -> list[tuple[str, bool, str]]:
    return [("noise at one step wrecks the answer", h["step_noise_min"] <= 0.5 * h["clean"],
             f"worst step {h['worst_step']}: {h['step_noise_min']:.3f} vs clean {h['clean']:.3f} (rule: ≤ half)"),
            ("noise at one frame is repaired", h["frame_noise_mean"] >= 0.9 * h["clean"],
             f"mean over frames {h['frame_noise_mean']:.3f} vs clean {h['clean']:.3f} (rule: ≥ 90% of it)")]


def _claims_propagation(h: dict) -> list:
    k, n = h["peak_inject_step"], h["steps"]
    return [("a perturbation propagates most from the middle steps", 0.25 * n <= k <= 0.75 * n,
             f"peak at step {k} of {n} (rule: in the middle half)")]


def _claims_energy(h: dict, table: list) -> list:
    blocks = [r["block"] for r in table]
    i = blocks.index(h["best_block"])
    return [("middle blocks carry the decisive semantics", 0.25 * len(blocks) <= i < 0.75 * len(blocks),
             f"highest task/background energy in {h['best_block']} of {len(blocks)} ({h['best_ratio']:.3f}; rule: "
             f"a block of the middle half)")]


def _claims_swap(h: dict) -> list:
    return [("swapping one block between prompts flips the answer", (h.get("best_flip_rate") or 0) >= 0.5,
             f"best {h.get('best_block_step')}: flip rate {h.get('best_flip_rate') or 0:.3f} (rule: ≥ 0.5)")]


def _claims_sweep(table: list) -> list:
    frames = [r for r in table if r["condition"].startswith("frames")]
    steps = sorted((r for r in table if r["condition"].startswith("steps")), key=lambda r: r["steps"])
    out = []
    if frames:
        lo, hi = min(r["solve_rate"] for r in frames), max(r["solve_rate"] for r in frames)
        out.append(("fewer frames hurt little", hi - lo <= 0.1, f"solve rates {lo:.3f}–{hi:.3f} over frame counts "
                    f"(rule: within 0.1)"))
    if len(steps) > 1:
        one, most = steps[0], steps[-1]
        out.append(("few-step sampling hurts (steps matter)", one["solve_rate"] < most["solve_rate"] - 0.05,
                    f"{one['steps']} step(s) {one['solve_rate']:.3f} vs {most['steps']} {most['solve_rate']:.3f} "
                    f"(rule: lower by > 0.05)"))
    return out


def _claims_behaviours(h: dict) -> list:
    b = h["mean_off_branches_per_step"]
    return [("several candidates early, one late", b[0] > b[-1],
             f"off-target branches {b[0]:.3f} at step 0 → {b[-1]:.3f} at the end (rule: fewer at the end)"),
            ("self-correction happens", h["self_corrections"] > 0, f"{h['self_corrections']} of {h['runs']} runs")]


def _claims_compare(table: list) -> list:
    ens = [r for r in table if r["method"] == "ensemble"]
    if not ens:
        return []
    best = max(ens, key=lambda r: r["delta_ci_low"])
    return [("the study's multi-seed ensemble beats one seed", best["delta_ci_low"] > 0,
             f"best N={best['n_seeds']}: {100 * best['delta_vs_single']:+.1f} points [{100 * best['delta_ci_low']:+.1f}, "
             f"{100 * best['delta_ci_high']:+.1f}] (rule: 95% interval above 0)")]


def read_run(path: Path) -> dict | None:
    """One run's entry from its result file, None if the file is not a steplens result."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return {"path": path, "kind": "unreadable", "error": f"{path} cannot be read: {e}"}
    if not isinstance(data, dict):
        return None
    fmt = data.get("format", 1)
    kind = (f"probe {data['probe']}" if "probe" in data
            else "compare" if data.get("experiment") == "compare" or "head_to_head" in data
            else "demo" if data.get("kind") == "demo" else "trace" if "per_step" in data else None)
    if kind is None:
        return None
    if not isinstance(fmt, int) or fmt > FORMAT:
        return {"path": path, "kind": kind, "error": f"{path} was written by a newer steplens (result format {fmt}; "
                                                    f"this one reads formats up to {FORMAT}): upgrade steplens"}
    entry = {"path": path, "kind": kind, "claims": [], "headline": ""}
    h, table = data.get("headline", {}), data.get("table", [])
    model = data.get("config", {}).get("model") or data.get("model")
    entry["model"] = model
    if kind == "probe noise":
        entry["claims"] = _claims_noise(h)
        entry["headline"] = f"clean {h['clean']:.3f}; step noise mean {h['step_noise_mean']:.3f}, frame noise mean " \
                            f"{h['frame_noise_mean']:.3f}"
    elif kind == "probe propagation":
        entry["claims"] = _claims_propagation(h)
        entry["headline"] = f"peak at step {h['peak_inject_step']} ({h['peak_final_x0_dissimilarity']:.3f})"
    elif kind == "probe energy":
        entry["claims"] = _claims_energy(h, table)
        entry["headline"] = f"best block {h['best_block']} ({h['best_ratio']:.3f})"
    elif kind == "probe swap":
        entry["claims"] = _claims_swap(h)
        a = h.get("A_follows_prompt", h.get("A_reaches_red", 0))  # the older name: runs before issue 9
        b = h.get("B_follows_prompt", h.get("B_reaches_blue", 0))
        entry["headline"] = f"follows the prompt: A {a:.3f}, B {b:.3f}"
    elif kind == "probe sweep":
        entry["claims"] = _claims_sweep(table)
        entry["headline"] = ", ".join(f"{k}: {v}" for k, v in list(h.items())[:6])
    elif kind == "probe behaviours":
        entry["claims"] = _claims_behaviours(h)
        entry["headline"] = f"{h['runs']} runs, solve rate {h['solve_rate']:.3f}, commitment step " \
                            f"{h['mean_commitment_step']}"
    elif kind == "compare":
        entry["claims"] = _claims_compare(table)
        single = next((r for r in table if r["method"] == "single"), None)
        entry["headline"] = f"one seed {single['solve_rate']:.3f} on {single['samples']} samples" if single else ""
    elif kind == "demo":
        entry["headline"] = f"{data['solved']}/{data['count']} solved"
        entry["model"] = data.get("model")
    elif kind == "trace":
        fs = data.get("final_score", {})
        entry["headline"] = f"{data.get('sample')}: solved {fs.get('success')}, commitment step " \
                            f"{data.get('summary', {}).get('commitment_step')}"
    return entry


def find_runs(root: Path) -> list[dict]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs folder not found: {root}" if not root.exists() else f"{root} is a file, not a "
                                                                                          f"folder of runs")
    entries = []
    for name in ("results.json", "summary.json", "metrics.json"):
        for p in sorted(root.rglob(name)):
            if "store" in p.relative_to(root).parts:
                continue
            e = read_run(p)
            if e is not None:
                entries.append(e)
    demo_dirs = [e["path"].parent for e in entries if e["kind"] == "demo"]
    entries = [e for e in entries if not (e["kind"] == "trace" and any(d in e["path"].parents for d in demo_dirs))]
    if not entries:
        raise ValueError(f"no steplens runs under {root}: looked for probe and compare results.json, demo "
                         f"summary.json and trace metrics.json")
    return sorted(entries, key=lambda e: (e["kind"], str(e["path"])))


def write_index(root: Path, out: Path | None = None) -> tuple[Path, list[dict]]:
    root = Path(root)
    entries = find_runs(root)
    out = Path(out) if out else root / "index.html"
    rep = Report(f"steplens runs under {root.name or root}")
    rep.text("Every probe, comparison, demo and trace found here, with its headline numbers, and each of the study's "
             "claims that it tests judged on that model by the stated rule.")
    rows, claims = [], []
    for e in entries:
        rel = e["path"].parent.relative_to(root).as_posix() or "."
        has_report = (e["path"].parent / "report.html").exists()
        rows.append({"run": rel, "kind": e["kind"], "model": e.get("model"),
                     "headline": e.get("error") or e["headline"]})
        for claim, holds, evidence in e.get("claims", []):
            claims.append({"claim": claim, "holds": holds, "evidence": evidence, "run": rel, "model": e.get("model")})
        if has_report:
            rep.link(f"{rel}/report.html", f"{e['kind']}: {rel}/report.html")
    rep.section("The study's claims on these models")
    rep.table(claims, ["claim", "holds", "evidence", "model", "run"]) if claims else rep.text("No probe or "
                                                                                              "comparison found.")
    rep.section("Runs").table(rows, ["run", "kind", "model", "headline"])
    rep.write(out)
    return out, entries
