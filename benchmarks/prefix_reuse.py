"""What prefix reuse saves: NFE of the probes with reuse over without, and their results bit for bit.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/prefix_reuse.py [--count 2] [--wan-count 1] [--quick]

For `probe noise` (its default conditions), `probe propagation` (every injection step) and `probe swap` (its default
steps and every block) on
- the embedded model (a random tiny DiT, arch `test`, as the tests build it) at 20 steps, CFG off, maze 3x3;
- a tiny diffusers Wan2.2 (two experts, CFG 5, FlowMatch Euler, steplens.backends.wan.tiny) at 50 steps,
each probe runs twice into fresh folders, with reuse on and off (steplens.tape.no_reuse); printed: the NFE counted
(results.json "cost"), the ratio, the wall time of each, and whether every stored row (all but its NFE fields) is
the same bit for bit. `--quick`: 6 and 8 steps (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from steplens.probes import get_probe  # noqa: E402
from steplens.probes.base import ProbeSettings  # noqa: E402
from steplens.tape import no_reuse  # noqa: E402


def rows(out: Path) -> list[dict]:
    got = [json.loads(x) for x in (out / "store" / "rows.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if k not in ("nfe", "nfe_without_reuse")} for r in got),
                  key=lambda r: (r["condition"], r["sample"]))


def measure(model, label: str, name: str, s: ProbeSettings, options: dict, root: Path) -> dict:
    p = get_probe(name)
    t0 = time.perf_counter()
    on = p.run(model, root / f"{label}-{name}-on", s, progress=False, **options)
    t1 = time.perf_counter()
    with no_reuse():
        off = p.run(model, root / f"{label}-{name}-off", s, progress=False, **options)
    t2 = time.perf_counter()
    same = rows(root / f"{label}-{name}-on") == rows(root / f"{label}-{name}-off")
    c = on["cost"]
    assert off["cost"]["nfe"] == c["nfe_without_reuse"], (off["cost"], c)
    return {"model": label, "probe": name, "steps": s.steps, "samples": s.count, "conditions": len(on["table"]),
            "nfe": c["nfe"], "nfe_without_reuse": c["nfe_without_reuse"],
            "ratio": round(c["nfe"] / c["nfe_without_reuse"], 3), "seconds_on": round(t1 - t0, 1),
            "seconds_off": round(t2 - t1, 1), "bit_identical": same}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2, help="samples on the embedded model")
    ap.add_argument("--wan-count", type=int, default=1, help="samples on the tiny Wan2.2")
    ap.add_argument("--quick", action="store_true", help="6 and 8 steps instead of 20 and 50")
    ap.add_argument("--only", default="embedded,wan", help="embedded, wan or both")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from conftest import random_net  # the tests' tiny embedded network

    from steplens.models.wrap import EmbeddedModel

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "embedded" in a.only:
            model = EmbeddedModel(random_net(0), name="test")
            s = ProbeSettings(count=a.count, steps=6 if a.quick else 20, size=3, frames=4, batch=a.count)
            for name, upd in (("noise", {}), ("propagation", {}), ("swap", {"task": "maze-two-goals"})):
                out.append(measure(model, "embedded", name, s.model_copy(update=upd), {}, root))
                print(json.dumps(out[-1]), flush=True)
        if "wan" in a.only:
            from steplens.backends.wan import WanPipelineModel
            from steplens.backends.wan.tiny import tiny_wan22_i2v

            pipe = tiny_wan22_i2v(seed=0, scheduler="euler")
            pipe.set_progress_bar_config(disable=True)
            model = WanPipelineModel(pipe)
            s = ProbeSettings(count=a.wan_count, steps=8 if a.quick else 50, size=3, frames=3, batch=a.wan_count,
                              guidance=5.0)
            for name, upd in (("noise", {}), ("propagation", {}), ("swap", {"task": "maze-two-goals"})):
                out.append(measure(model, "tiny Wan2.2", name, s.model_copy(update=upd), {}, root))
                print(json.dumps(out[-1]), flush=True)
    cols = list(out[0])
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in out:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
