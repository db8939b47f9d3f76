"""Where early-plan beam search should look: `early-beam` at one budget with its beam step k swept, beside one seed
and verifier best-of-N at the same budget, on tuning inputs kept apart from every figure's: the validation part
(steplens.tasks.splits: held out by content; figures draw the test part).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/beam_step.py --model tiny-maze --task maze --size 6 \\
        --count 100 --budget 2 --ks 0,1,2,4,6,9 --out runs/beam-step-maze6

With --keeps, every beam step is swept with each number of beams kept (m): more beams leave the final pick to the
verifier on finished answers, at the price of fewer particles. At a fixed budget a later k sees x̂0 closer to the
answer (the step-k AUC of compare --budget) but affords fewer particles (N = the most whose NFE fits:
N * (k + 1) + m * (steps - k - 1) <= budget * steps). Prints and writes OUT/table.md and OUT/beam_step.json: per k
(and m) the particles, NFE in plain runs, solve rate [Wilson 95%] and mean score.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny-maze")
    ap.add_argument("--task", default="maze")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=10_000, help="first tuning seed (drawn in the val part)")
    ap.add_argument("--budget", type=int, default=2)
    ap.add_argument("--ks", default="0,1,2,4,6,9")
    ap.add_argument("--keeps", default="1", help="beams kept (m), each swept with every k")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/beam-step")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from steplens.experiments.grid import ExperimentSettings
    from steplens.experiments.stats import summarize
    from steplens.methods.search import SearchConfig, config_for_budget
    from steplens.models.load import load_model
    from steplens.presets import own, resolve
    from steplens.probes.compare import run_search
    from steplens.tasks import find_task
    from steplens.tasks.splits import draw_many

    model = load_model(a.model)
    steps = own(model, None)[0]
    ks = [int(k) for k in a.ks.split(",")]
    bad = [k for k in ks if not 0 <= k < steps - 1]
    if bad:
        raise SystemExit(f"--ks {a.ks}: k = {bad[0]} is not a beam step of {a.model}'s {steps} steps (0..{steps - 2})")
    task = find_task(a.task)
    samples = draw_many(task, range(a.seed, a.seed + a.count), "val", size=a.size)  # tuning: never a figure's input
    scorers = ExperimentSettings(task=a.task, size=a.size, count=a.count).scorers()
    keeps = [int(m) for m in a.keeps.split(",")]
    conds = [("single", None, 1, 1), ("best-of-n", None, a.budget, 1)] + [("early-beam", k, a.budget, m) for k in ks
                                                                           for m in keeps]
    rows, t0 = [], time.time()
    for method, k, budget, m in conds:
        got = []
        for i in range(0, len(samples), a.batch):
            part = samples[i:i + a.batch]
            got += run_search(model, part, [s.seed for s in part], "best-of-n" if method == "single" else method,
                              budget, resolve(model, steps=steps), SearchConfig(k=k, m=m), scorers)
        st = summarize(got)
        n = (config_for_budget(SearchConfig(method="early-beam", k=k, m=m), budget, steps).n
             if method == "early-beam" else budget)
        rows.append({"method": method, "k": k, "m": m, "particles": n,
                     "nfe_runs": sum(r["nfe"] for r in got) / len(got) / steps,
                     **{x: st[x] for x in ("n", "solve_rate", "ci_low", "ci_high", "mean_score")}})
        r = rows[-1]
        print(f"{method:10s} k={k!s:4s} m={m} N={n:3d} NFE {r['nfe_runs']:.2f} runs  "
              f"solve {100 * r['solve_rate']:.0f}% [{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}]  "
              f"score {r['mean_score']:.3f}", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "beam_step.json").write_text(json.dumps({"args": vars(a), "steps": steps, "rows": rows,
                                                    "seconds": round(time.time() - t0, 1)}, indent=1))
    lines = [f"early-beam's beam step on {a.model} / {a.task}" + (f" {a.size}" if a.size else "") +
             f": {a.count} tuning samples (seeds {a.seed}..{a.seed + a.count - 1}), budget {a.budget} plain runs, "
             f"{steps} steps", "",
             "| method | k | beams kept | particles | NFE (runs) | solve rate [95%] | mean score |",
             "|---|---:|---:|---:|---:|---|---:|"]
    lines += [f"| {r['method']} | {'' if r['k'] is None else r['k']} | "
              f"{r['m'] if r['method'] == 'early-beam' else ''} | {r['particles']} | {r['nfe_runs']:.2f} | "
              f"{100 * r['solve_rate']:.0f}% [{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}] | "
              f"{r['mean_score']:.3f} |" for r in rows]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
