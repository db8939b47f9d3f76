"""What steplens costs on a diffusers Wan pipeline, on the tiny offline Wan2.2 (two experts) pipeline, CPU.

    .venv/bin/python benchmarks/wan_overhead.py [--reps 20] [--size 5] [--frames 3] [--steps 10] [--threads 1]

1. traced / plain: the pipeline call under trace_pipeline (x_s, v, x0_hat kept at every step) with Hooks
   recording the per-token energy of 2 blocks (both CFG branches, every step), over the same call without
   them. Target <= 1.03.
2. steplens loop / diffusers loop: WanTransformerModel.generate (steplens' sample_euler on the pipeline's
   transformers) over WanPipelineModel.generate (the pipeline's own loop, FlowMatchEuler), same samples and
   seeds, same latents. Target <= 1.0.

The two sides of a ratio alternate (A B, then B A, ...) in one process after a warm-up, each rep gives one
ratio, and the median ratio is reported with the medians of the wall times (robust to a busy machine).
Workload: a maze sample (size n -> (2n+1)*16 px, `frames` latent frames), CFG 5, `steps` Euler steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def interleaved(a, b, reps: int) -> dict:
    """Median over reps of time(a) / time(b), the two alternating in order; wall time, and this process's CPU
    time (less sensitive to other jobs on the machine)."""
    a(), b()  # warm-up
    wall = {a: [], b: []}
    cpu = {a: [], b: []}
    for r in range(reps):
        for which in ((a, b) if r % 2 == 0 else (b, a)):
            t0, c0 = time.perf_counter(), time.process_time()
            which()
            wall[which].append(time.perf_counter() - t0)
            cpu[which].append(time.process_time() - c0)

    def summary(t):
        ratios = [x / y for x, y in zip(t[a], t[b])]
        return {"ratio_median": statistics.median(ratios), "a_median_s": statistics.median(t[a]),
                "b_median_s": statistics.median(t[b]), "ratio_of_minima": min(t[a]) / min(t[b])}

    return {"wall": summary(wall), "cpu": summary(cpu), "reps": reps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--size", type=int, default=5)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from steplens.hooks import Hooks
    from steplens.presets import resolve
    from steplens.tasks import get_task
    from steplens.backends import trace_pipeline
    from steplens.backends.wan import WanPipelineModel
    from steplens.backends.wan.sampler import WanTransformerModel
    from steplens.backends.wan.tiny import tiny_wan22_i2v

    pipe = tiny_wan22_i2v(seed=0)
    pipe.set_progress_bar_config(disable=True)
    model = WanPipelineModel(pipe)
    sample = get_task("maze").sample(0, a.size, a.frames)
    kwargs = model.pipeline_inputs(sample, 0, steps=a.steps, guidance=a.guidance)
    gen_seed = 0

    def plain():
        kwargs["generator"] = torch.Generator().manual_seed(gen_seed)
        return pipe(**kwargs).frames

    def traced():
        kwargs["generator"] = torch.Generator().manual_seed(gen_seed)
        hooks = Hooks(model, a.steps).record(model.block_names[:2], reduce="energy")
        with trace_pipeline(pipe, hooks=hooks) as tr:
            out = pipe(**kwargs).frames
        assert len(tr.steps) == a.steps and len(hooks.records) == 2 * 2 * a.steps
        return out

    if not torch.equal(plain(), traced()):
        raise SystemExit("the traced pipeline computed something else")
    res = {"workload": {"size": a.size, "frames": a.frames, "steps": a.steps, "guidance": a.guidance,
                        "tokens": model.token_grid(model.latent_shape([sample], a.frames)), "threads": a.threads}}
    res["traced_over_plain"] = interleaved(traced, plain, a.reps)

    adapter = WanTransformerModel(model)
    args = dict(sampling=resolve(model, steps=a.steps, shift=3.0, guidance=a.guidance))
    mine = dict(sampling=resolve(adapter, steps=a.steps, shift=3.0, guidance=a.guidance))
    if not torch.equal(adapter.generate([sample], [0], **mine), model.generate([sample], [0], **args)):
        raise SystemExit("the steplens loop computed something else than the pipeline")
    res["steplens_over_diffusers"] = interleaved(lambda: adapter.generate([sample], [0], **mine),
                                                 lambda: model.generate([sample], [0], **args), a.reps)

    w = res["workload"]
    print(f"tiny Wan2.2 (2 experts x 2 blocks), maze {a.size}x{a.size}, {a.frames} latent frames, tokens "
          f"{w['tokens']}, {a.steps} steps, CFG {a.guidance}, {a.threads} thread(s), {a.reps} interleaved reps")
    for key, label, target in (("traced_over_plain", "traced pipeline / plain pipeline", 1.03),
                               ("steplens_over_diffusers", "steplens loop / diffusers loop", 1.0)):
        r, c = res[key]["wall"], res[key]["cpu"]
        print(f"{label}: wall-time median ratio {r['ratio_median']:.3f} ({r['a_median_s'] * 1e3:.0f} ms vs "
              f"{r['b_median_s'] * 1e3:.0f} ms, ratio of minima {r['ratio_of_minima']:.3f}); CPU-time median ratio "
              f"{c['ratio_median']:.3f}; target <= {target}")
    if a.json:
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
