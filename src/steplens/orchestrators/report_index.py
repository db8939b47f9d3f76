"""`steplens report DIR`: one index page for a folder of runs, with headline numbers and the study's claims.

Every probe (the comparison is one), demo and trace under DIR is found by its result file (results.json,
summary.json, metrics.json), listed with its headline numbers and a link to its own report, and each of the study's
claims that its probe tests (steplens.probes.contract.Claim) is judged on that model by its stated rule, on the
evidence the rule states it needs ("holds", "does not hold", or "undetermined: why" when that evidence is missing).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..probes import probes
from ..probes.contract import UNDETERMINED, state_word
from ..reports.page import Report

FORMAT = 1  # the newest result format this steplens reads; files without one are format 1


def read_run(path: Path) -> dict | None:
    """One run's entry from its result file, None if the file is not a steplens result; a file that cannot be read
    or read as its kind (a field of the wrong type, a missing field) is an entry naming why, listed, not judged."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return {"path": path, "kind": "unreadable", "error": f"{path} cannot be read: {e}"}
    if not isinstance(data, dict):
        return None
    try:
        return _entry(path, data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        return {"path": path, "kind": "malformed", "error": f"{path} is malformed ({type(e).__name__}: {e}): listed, "
                                                            f"not judged"}


def _entry(path: Path, data: dict) -> dict | None:
    fmt = data.get("format", 1)
    probe = next((p for p in probes() if p.reads(data)), None)
    kind = (probe.kind if probe is not None
            else f"probe {data['probe']}" if "probe" in data  # a probe not installed here: listed, not judged
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
    if probe is not None:
        entry["claims"] = judge(probe, h, table)
        entry["why"] = why(probe, h, table)
        entry["cells"] = {c.text: cell for c in probe.claims if (cell := c.cell(h, table)) is not None}
        entry["headline"] = probe.headline_text(h, table)
    elif kind == "demo":
        entry["headline"] = f"{data['solved']}/{data['count']} solved"
        entry["model"] = data.get("model")
    elif kind == "trace":
        fs = data.get("final_score", {})
        entry["headline"] = f"{data.get('sample')}: solved {fs.get('success')}, commitment step " \
                            f"{data.get('summary', {}).get('commitment_step')}"
    return entry


def judge(probe, headline: dict, table: list) -> list[tuple[str, bool | str, str]]:
    """(claim, state, evidence) for each of the study's claims that the probe tests and this result can test: state
    True (holds), False (does not hold) or UNDETERMINED (the evidence starts with why; `why` gives it alone)."""
    verdicts = [(c.text, c.judge(headline, table)) for c in probe.claims]
    return [(text, *v) for text, v in verdicts if v is not None]


def why(probe, headline: dict, table: list) -> dict[str, str]:
    """{claim: why its evidence is missing} for the claims this result leaves undetermined."""
    return {c.text: c.needs(headline, table) for c in probe.claims
            if (v := c.judge(headline, table)) is not None and v[0] == UNDETERMINED}


def verdict_text(state, why: str | None = None) -> str:
    """"holds", "does not hold" or "undetermined: why"."""
    return f"{state_word(state)}: {why}" if state == UNDETERMINED and why else state_word(state)


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
             "claims that it tests judged on that model by the stated rule: holds, does not hold, or undetermined "
             "(with why) where the evidence the rule needs is missing.")
    rows, claims = [], []
    for e in entries:
        rel = e["path"].parent.relative_to(root).as_posix() or "."
        has_report = (e["path"].parent / "report.html").exists()
        rows.append({"run": rel, "kind": e["kind"], "model": e.get("model"),
                     "headline": e.get("error") or e["headline"]})
        for claim, state, evidence in e.get("claims", []):
            claims.append({"claim": claim, "verdict": e["cells"].get(claim) or verdict_text(state, e["why"].get(claim)),
                           "evidence": evidence, "run": rel, "model": e.get("model")})
        if has_report:
            rep.link(f"{rel}/report.html", f"{e['kind']}: {rel}/report.html")
    rep.section("The study's claims on these models")
    rep.table(claims, ["claim", "verdict", "evidence", "model", "run"]) if claims else rep.text("No probe or "
                                                                                              "comparison found.")
    rep.section("Runs").table(rows, ["run", "kind", "model", "headline"])
    rep.write(out)
    return out, entries
