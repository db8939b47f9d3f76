"""The bill against the run (issue 31): for every command and every study part, on the embedded model (and with
--wan the tiny Wan2.2 pipeline, CFG on, on a VBVR-layout folder), `--plan --json`'s NFE beside the NFE the run then
stores (results.json / study.json `cost`: the rows' sums), with and without prefix reuse; and how long `--plan`
takes on a huge count and budget.

    PYTHONPATH=src python benchmarks/plan_vs_run.py [--out DIR] [--wan]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from steplens.cli import app

EMBEDDED = ("--model", "tiny-maze", "--count", 2, "--size", 3, "--steps", 3, "--batch", 2)
COMMANDS = {
    "probe behaviours": ("probe", "behaviours", *EMBEDDED),
    "probe sweep": ("probe", "sweep", *EMBEDDED),
    "probe noise": ("probe", "noise", *EMBEDDED),
    "probe noise (every-step)": ("probe", "noise", "--frame-noise", "every-step", *EMBEDDED),
    "probe propagation": ("probe", "propagation", *EMBEDDED),
    "probe energy": ("probe", "energy", *EMBEDDED),
    "probe swap": ("probe", "swap", "--task", "maze-two-goals", *EMBEDDED),
    "compare": ("compare", "--n-seeds", "2,3", *EMBEDDED),
    "compare --budget 2,4 (tiny-reasoner, maze-loops)": (
        "compare", "--model", "tiny-reasoner", "--task", "maze-loops", "--budget", "2,4", "--count", 2, "--methods",
        "single", "--batch", 2),
    "compare --budget 1,2,3 +chain": ("compare", "--budget", "1,2,3", "--methods", "single,vote,ensemble",
                                      "--search-methods", "best-of-n,early-beam,smc,chain", "--model", "tiny-maze",
                                      "--count", 2, "--size", 3, "--steps", 4, "--batch", 2),
}
STUDY = ("study", "--model", "tiny-reasoner-4step", "--baseline", "tiny-reasoner", "--tasks", "maze,tictactoe",
         "--count", 2, "--probe-count", 2, "--sweep-count", 1, "--compare-families", 1, "--batch", 2)


def cli(*args) -> str:
    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        raise SystemExit(f"steplens {' '.join(map(str, args))}: exit {r.exit_code}\n{r.output}{r.exception!r}")
    return r.output


def plan(*args) -> dict:
    return json.loads(cli(*args, "--plan", "--json", "--sec-per-nfe", 1))


def part_of(path: str) -> str:
    seg = path.split("/")
    if seg[0] in ("baseline", "compare", "chains"):
        return {"baseline": "baseline solve"}.get(seg[0], seg[0])
    return "solve" if seg[1].startswith("solve") else seg[1]


def row(what, p, c) -> dict:
    return {"command / part": what, "planned NFE": ("≤ " if p.get("at_most") else "") + f"{p['nfe']:,}",
            "run NFE": f"{c['nfe']:,}", "planned without reuse": f"{p['nfe_without_reuse']:,}",
            "run without reuse": f"{c['nfe_without_reuse']:,}",
            "equal": "yes" if (p["nfe"], p["nfe_without_reuse"]) == (c["nfe"], c["nfe_without_reuse"]) else
            "within (a chain stops once its verifier accepts)" if p.get("at_most") and c["nfe"] <= p["nfe"] else "NO"}


def commands(out: Path, todo: dict, label: str = "") -> list[dict]:
    rows = []
    for name, args in todo.items():
        where = out / name.replace(" ", "_").replace("/", "_")
        p = plan(*args, "--out", where)
        cli(*args, "--out", where)
        c = json.loads((where / "results.json").read_text())["cost"]
        rows.append(row(label + name, p, c))
    return rows


def study(out: Path, args, label: str = "") -> list[dict]:
    p = plan(*args, "--out", out)
    cli(*args, "--out", out)
    cost = json.loads((out / "study.json").read_text())["cost"]
    by: dict = {}
    for path, c in cost["parts"].items():
        got = by.setdefault(part_of(path), {"nfe": 0, "nfe_without_reuse": 0})
        got["nfe"] += c["nfe"]
        got["nfe_without_reuse"] += c["nfe_without_reuse"]
    rows = [row(f"{label}study: {x['part']}", x, by.get(x["part"], {"nfe": 0, "nfe_without_reuse": 0}))
            for x in p["parts"]]
    rows += [row(f"{label}study: {x}", {"nfe": 0, "nfe_without_reuse": 0}, by[x]) for x in by
             if x not in {y["part"] for y in p["parts"]}]  # a part the plan left out
    return rows + [row(f"{label}study: total", p, cost["total"])]


def wan_rows(out: Path) -> list[dict]:
    from steplens.backends.wan.tiny import tiny_wan22_i2v
    from steplens.tasks import get_task, write_sample

    tiny_wan22_i2v(seed=0).save_pretrained(out / "wan22")
    for rel, task in (("In-Domain_50/O-39_maze_data-generator/00000", "maze"),
                      ("Out-of-Domain_50/G-7_maze-two-goals_data-generator/00000", "maze-two-goals")):
        write_sample(out / "bench", get_task(task).sample(100, 3, 6, idx=0), scale=4, metadata=False, rel=rel)
    wan = ("--model", f"wan:{out / 'wan22'}", "--preset", "vbvr", "--data", out / "bench", "--scorer", "maze",
           "--steps", 4, "--guidance", 3, "--height", 32, "--width", 32, "--batch", 1)
    todo = {"probe noise": ("probe", "noise", "--count", 1, *wan),
            "compare --budget 2": ("compare", "--budget", "2", "--verifier", "consensus", "--methods", "single,vote",
                                   "--count", 1, *wan)}
    return commands(out, todo, "Wan2.2 ") + study(
        out / "study", ("study", "--parts", "solve,noise,compare", "--count", 1, "--probe-count", 1,
                        "--compare-families", 1, "--n-seeds", 2, *wan), "Wan2.2 ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--wan", action="store_true", help="also the tiny Wan2.2 pipeline (needs diffusers)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = a.out or Path(tmp)
        rows = commands(out, COMMANDS) + study(out / "study", STUDY)
        if a.wan:
            rows += wan_rows(out / "wan")
        timed = []
        for args in (("compare", "--model", "tiny-reasoner", "--budget", "1000000"),
                     ("probe", "noise", "--model", "tiny-maze", "--count", 1_000_000_000)):
            t0 = time.perf_counter()
            p = plan(*args, "--out", out / "huge")
            timed.append(f"`steplens {' '.join(map(str, args))} --plan`: {p['nfe']:,} NFE, answered in "
                         f"{time.perf_counter() - t0:.2f} s (in process)")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print("\n" + "\n".join(timed))


if __name__ == "__main__":
    main()
