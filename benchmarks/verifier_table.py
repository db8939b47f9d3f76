"""Verifier best-of-n with verifiers of every strength side by side, from one set of particles (issue 32).

Best-of-n's particles do not depend on its verifier (particle j of a sample starts from the sample's seed + j x the
member stride, `steplens.methods.ensemble.member_seeds`), and best-of-2's are best-of-4's first two. So one run of
N particles per sample, each particle scored by the task's scorer and judged by every verifier, gives best-of-n for
every verifier and every n <= N: particle 0 is the one seed; best-of-n [V] is the particle V scores highest among
the first n (ties: the lowest index, `steplens.methods.search.TIE_RULE`); the oracle (any of the n correct) is the
upper bound no verifier passes. The same figures as `steplens compare --search-methods best-of-n --verifier V
--budget n` on the same samples, at a third of the compute for three verifiers (`--check` runs that compare on a few
samples and asserts it).

    OMP_NUM_THREADS=1 python benchmarks/verifier_table.py --model tiny-reasoner --count 300 --n 4 \\
        --verifiers checker,consensus,task --out runs/verifier-table [--families maze,tictactoe] [--md FILE]

Resumes per family from OUT/<family>.json (every particle's success and every verifier's score on it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cells import FAMILIES, emit, paired

from steplens.experiments.grid import ExperimentSettings, batches, load_samples
from steplens.experiments.stats import wilson
from steplens.methods.search import SearchConfig, decoded, search
from steplens.models.load import load_model
from steplens.probes.compare import _scored
from steplens.tasks import get_verifier, strip_sample, verifier_strength, verify_many


def particles(model, family: str, count: int, n: int, verifiers: list[str]) -> dict:
    """Every particle's success by the scorer and score by each verifier (over the first m particles, for a group
    verifier, at each m in 2..n: consensus among 2 is not consensus among 4)."""
    samples = load_samples(model, ExperimentSettings(task=family, count=count))
    scorers = ExperimentSettings(task=family).scorers()
    judges = {v: get_verifier(v) for v in verifiers}
    out = {"count": count, "n": n, "verifiers": verifiers, "success": [], "scores": {v: {} for v in verifiers},
           "nfe_per_sample": None}
    nfe = 0
    for chunk in batches(samples, max(1, 48 // n)):
        res = search(model, chunk, [s.seed for s in chunk], SearchConfig(method="best-of-n", n=n,
                                                                         verifier=verifiers[0]))
        nfe += res.nfe.nfe
        for i, s in enumerate(chunk):
            videos = decoded(model, res.finals[i])
            out["success"].append([bool(r["success"]) for r in _scored(scorers, [s] * n, videos)])
            for v, judge in judges.items():
                group = callable(getattr(judge, "verify_many", None))
                for m in range(2, n + 1):
                    if m < n and not group:
                        continue  # a verifier of single answers gives the same scores to the first m
                    got = verify_many(judge, videos[:m], strip_sample(s))
                    out["scores"][v].setdefault(str(m), []).append([float(x.score) for x in got])
    out["nfe_per_sample"] = nfe / count
    return out


def scores_at(cell: dict, verifier: str, m: int) -> list[list[float]]:
    """Each sample's scores of its first m particles by `verifier` (a group verifier's own at m; another's, the
    first m of its scores at n)."""
    return cell["scores"][verifier].get(str(m)) or [s[:m] for s in cell["scores"][verifier][str(cell["n"])]]


def pick(scores: list[float]) -> int:
    """The best score's index (ties: the first)."""
    return max(range(len(scores)), key=lambda j: (scores[j], -j))


def table(cells: dict, n_list: list[int]) -> list[str]:
    verifiers = next(iter(cells.values()))["verifiers"]
    head = ["family", "one seed"] + [f"best-of-{m} [{v}] ({verifier_strength(v)})" for m in n_list
                                     for v in verifiers] + [f"oracle {m}" for m in n_list]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for fam, c in cells.items():
        one = [p[0] for p in c["success"]]
        k = len(one)
        lo, hi = wilson(sum(one), k)
        row = [fam, f"{sum(one) / k:.3f} [{lo:.3f}, {hi:.3f}]"]
        for m in n_list:
            for v in verifiers:
                sc = scores_at(c, v, m)
                got = [c["success"][i][pick(sc[i])] for i in range(k)]
                ties = sum(len(set(sc[i])) == 1 for i in range(k))
                d, dlo, dhi = paired(got, one)
                row.append(f"{sum(got) / k:.3f} ({100 * d:+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}]; "
                           f"ties {ties})")
        for m in n_list:
            row.append(f"{sum(any(p[:m]) for p in c['success']) / k:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def check(model, family: str, n_list: list[int], verifier: str, count: int, cell: dict) -> None:
    """`steplens compare`'s verifier best-of-n on the first `count` samples equals this table's, sample by sample."""
    import tempfile

    from typer.testing import CliRunner

    import steplens
    from steplens.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        res = CliRunner().invoke(app, ["compare", "--model", model, "--task", family, "--count", str(count),
                                       "--methods", "single", "--search-methods", "best-of-n", "--budget",
                                       ",".join(map(str, n_list)), "--verifier", verifier, "--out", tmp])
        assert res.exit_code == 0, res.output
        df = steplens.results(tmp)
    for m in n_list:
        sc = scores_at(cell, verifier, m)
        mine = [cell["success"][i][pick(sc[i])] for i in range(count)]
        theirs = [bool(x) for x in df[df["condition"] == f"best-of-n B={m}"].sort_values("seed")["success"]]
        assert mine == theirs, (family, m, mine, theirs)
    print(f"check: {family} best-of-{n_list} [{verifier}] on {count} samples equals steplens compare's")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-reasoner")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--n", type=int, default=4, help="particles per sample (best-of-n for every n in 2..N)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--verifiers", default="checker,consensus,task")
    ap.add_argument("--out", type=Path, default=Path("runs/verifier-table"))
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--check", type=int, default=0, help="also run steplens compare on this many samples per "
                                                         "family and verifier and assert the same picks")
    a = ap.parse_args()
    fams, verifiers = a.families.split(","), a.verifiers.split(",")
    model = load_model(a.model)
    n_list = [m for m in (2, 4, 8) if m <= a.n]
    cells = {}
    for f in fams:
        path = a.out / f"{f}.json"
        if path.is_file() and json.loads(path.read_text())["count"] == a.count:
            cells[f] = json.loads(path.read_text())
            continue
        t0 = time.time()
        cells[f] = {**particles(model, f, a.count, a.n, verifiers), "seconds": round(time.time() - t0, 1)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cells[f]))
        print(f"{f}: {a.count} samples x {a.n} particles ({cells[f]['seconds']} s)", flush=True)
        for v in verifiers if a.check else ():
            check(a.model, f, n_list, v, a.check, cells[f])
    lines = [f"{a.model}, {a.count} held-out samples per family (the test part, seeds 0-{a.count - 1}, default sizes, "
             f"the model's own sampling); {a.n} particles per sample; solve rate, (points against one seed [95%]; "
             f"ties: samples whose particles the verifier scored all alike, decided by the lowest index)", ""]
    lines += table(cells, n_list)
    text = "\n".join(lines) + "\n"
    emit(text, a.md)


if __name__ == "__main__":
    main()
