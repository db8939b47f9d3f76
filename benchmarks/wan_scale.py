"""What steplens costs at real size: a Wan2.2-I2V-A14B-shaped pipeline with random weights, 480p, 81 frames.

NOT RUN ON A GPU YET: only the tiny CPU mode (`--tiny`) has been run, on the 2-core development machine (the prefix
reuse part too: bit-identical there).

The pipeline is built here, offline, from the published configs: two WanTransformer3DModel experts
(`transformer`, high noise; `transformer_2`, low noise; boundary_ratio 0.875) of 40 blocks, 40 heads x 128
(model width 5120), FFN 13824, 36 input channels (16 noisy + 4 mask + 16 first-frame latent), text_dim 4096,
qk_norm rms_norm_across_heads, and the Wan2.1 VAE (AutoencoderKLWan's defaults). Weights are random (nothing
is downloaded) and laid out as `from_pretrained(..., torch_dtype=bfloat16)` lays them out: bf16, except the
modules diffusers keeps in float32 (`_keep_in_fp32_modules`: time embedder, norms, scale_shift_tables); the
VAE stays float32 as the Wan model cards load it. No text encoder: prompt embeddings (1, 512, 4096) are passed
directly (seeded Gaussians, steplens.backends.HashedPromptEmbeds of length 512). Scheduler: FlowMatchEuler, shift 5;
CFG 5 (two transformer forwards per step, cond and uncond). The published I2V-A14B runs with boundary 0.900
(`--boundary-ratio 0.9`); for the cost per step it does not matter which expert a step uses.

Measured, in one process, after one warm-up call of each variant (`--warmup-steps` steps), `--reps` times
with the variants' order alternating:

1. untraced: `pipe(**kwargs)` (output_type="latent": the VAE decode is not timed; the VAE *encode* of the
   81-frame conditioning video in prepare_latents is part of every call);
2. traced: the same call inside `steplens.backends.trace_pipeline(pipe, hooks=hooks)`: x_s, v and x0_hat of every
   step copied to CPU memory (the default device="cpu"), with `Hooks(...).record(all blocks,
   reduce="energy")`: the per-token energy of every block, both CFG branches, whichever expert runs;
3. ensemble: `steplens.methods.ensemble.generate_ensemble` with N = 3 (`--n`): one `WanPipelineModel.generate` call
   over 3 seeds of one sample, batched (batch 3 per CFG branch), with the study's averaging (block outputs
   of blocks 20-29 replaced by their mean over the 3 seeds during the first 15% of the steps), as
   `steplens compare` runs its "ensemble" method;
4. sequential: the same 3 member seeds as 3 single-seed `WanPipelineModel.generate` calls, one after the other;
5. prefix reuse (`--reuse-samples 2`, 0 to skip): the noise probe's `step k` condition on 2 samples in one batch,
   with the clean run's recorded prefix replayed (steplens.tape) and recomputed whole, for k = steps // 2 and
   steps - 1: wall time, NFE, bit-identity, peak memory; and the noise probe's default conditions for these 2
   samples at 50 steps from its plan (NFE with and without reuse), priced at the untraced seconds per NFE.

Reported per variant: seconds per denoising step (the median interval between consecutive scheduler steps,
measured with a device synchronisation after each step: one step = two transformer forwards + the update, plus
steplens' recording where traced; with N = 3 one batched step serves 3 seeds), the whole call's seconds, the
call extrapolated to 40 and 50 steps (call + (S - steps) x step), peak GPU memory
(torch.cuda.max_memory_allocated, reset before every call; on CPU "n/a") and the process's peak RSS (VmHWM,
reset before every call through /proc/self/clear_refs; it includes the weights whenever they sit in host
memory, i.e. always on CPU and with --offload model). Ratios: traced / untraced (per step and per call),
ensemble / sequential (per call: the 3 seeds' wall time; per step: one batched step over 3 single steps).
Checks: the traced call returns the untraced latents bit for bit, generate([sample], [seed]) equals the plain
pipeline call, the trace saw every step and the hooks recorded 40 blocks x 2 branches x steps.

The command, on one H100 (80 GB: `--offload model` is needed, see Memory) or one H200 (141 GB):

    .venv/bin/python benchmarks/wan_scale.py --offload model --json benchmarks/results/wan_scale_h100.json
    .venv/bin/python benchmarks/wan_scale.py --offload none --json benchmarks/results/wan_scale_h200.json  # 141 GB

(defaults: --device cuda --dtype bfloat16 --layers 40 --height 480 --width 832 --frames 81 --steps 4
--reps 1 --n 3 --guidance 5 --shift 5). The environment needs torch with CUDA, diffusers (written against
0.42.1) and accelerate (`pip install -e ".[wan]"`, torch for your CUDA: see the Makefile's TORCH_SPEC).

Memory: the two experts are 2 x ~14.3 B parameters = 2 x ~28.6 GB in bf16 (about 57 GB; the script prints the
exact count), the VAE ~0.5 GB in float32; one (1, 32760, 5120) bf16 hidden state is 335 MB, so activations are a
few GB per CFG forward and about 3x that for the N = 3 batch. With `--offload none` all of it stays on the GPU:
that needs a 141 GB H200 (or larger). An 80 GB H100/A100 needs `--offload model` (diffusers'
enable_model_cpu_offload: one expert on the GPU at a time, ~29 GB, and the experts travel host <-> GPU at every
call, which the timings then include); the host then needs ~60 GB of RAM for the resting weights (plus what
the trace keeps: x_s, v, x0_hat of one step are 3 x 8.4 MB in float32). Building the random experts is done on
the GPU, one at a time (~29 GB transient), and is not timed.

Time (an estimate, not measured): a forward at 32,760 tokens is ~1.8 PFLOP (~0.9 in the linear layers, ~0.9 in
self-attention), so a CFG step is roughly 5-8 s on an H100/H200 (the Wan authors publish ~328 s for 40 steps on
one H100 with offload). The run: building the experts (~1 min), the warm-up (2 steps per variant, ~2-3 min) and
one rep of the four variants at 4 steps (1 + 1 + 3 + 3 sample-calls, ~4-5 min): about 8-10 minutes; under a
10-minute limit use `--warmup-steps 1` (both experts still run in the timed calls). Extrapolate with the seconds
per step; increase --steps to measure more steps directly.

Tiny mode, to check the script on a CPU (2 blocks, 2 heads x 16, FFN 64, 64 x 64 px, 5 frames, float32, CPU,
1 thread; the VAE and the 512 x 4096 prompt embeddings keep their real shapes):

    .venv/bin/python benchmarks/wan_scale.py --tiny        # 35-50 s on the 2-core dev machine, one thread
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from steplens.presets import resolve

# Wan2.2-I2V-A14B's transformer/config.json (each of `transformer` and `transformer_2`), as WanTransformer3DModel's
# arguments; the width is num_attention_heads x attention_head_dim = 5120
A14B_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=40,
    attention_head_dim=128,
    in_channels=36,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=13824,
    num_layers=40,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=None,
    added_kv_proj_dim=None,
    rope_max_seq_len=1024,
    pos_embed_seq_len=None,
)
# the Wan2.1 VAE (Wan2.2-A14B uses it): AutoencoderKLWan's defaults, spelled out
WAN21_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_downsample=[False, True, True], dropout=0.0)
BOUNDARY_RATIO = 0.875
TEXT_TOKENS = 512  # the pipeline's max_sequence_length: UMT5 embeddings are padded to 512 tokens
TINY = dict(layers=2, heads=2, head_dim=16, ffn=64, height=64, width=64, frames=5, device="cpu", dtype="float32")
FULL = dict(layers=40, heads=40, head_dim=128, ffn=13824, height=480, width=832, frames=81, device="cuda",
            dtype="bfloat16")
VARIANTS = ("untraced", "traced", "ensemble", "sequential")
GB = 1e9


# -- building the pipeline ---------------------------------------------------------------------------------------
def random_transformer(config: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """A WanTransformer3DModel with random weights, made directly on `device` in `dtype` (no float32 copy of
    the whole model ever exists): parameters are created empty (accelerate's init_empty_weights), then
    materialised in place, float32 for diffusers' `_keep_in_fp32_modules` as from_pretrained(torch_dtype=...)
    keeps them, and initialised as the model's own constructor would (each module's reset_parameters;
    scale_shift_table ~ N(0, 1/dim)). The RoPE buffers are computed as usual."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights(include_buffers=False):
        model = WanTransformer3DModel(**config)
    keep = list(model._keep_in_fp32_modules or []) if dtype != torch.float32 else []
    torch.manual_seed(seed)
    with torch.no_grad():
        for module_name, module in model.named_modules():
            own = [(n, p) for n, p in module._parameters.items() if p is not None]
            for name, p in own:
                full = f"{module_name}.{name}" if module_name else name
                dt = torch.float32 if any(k in full.split(".") for k in keep) else dtype
                module._parameters[name] = torch.nn.Parameter(torch.empty(p.shape, dtype=dt, device=device),
                                                              requires_grad=False)
            if own and hasattr(module, "reset_parameters"):
                module.reset_parameters()
            elif own:  # WanTransformer3DModel / WanTransformerBlock: only scale_shift_table
                for name, p in own:
                    p = module._parameters[name]
                    if name != "scale_shift_table":
                        raise RuntimeError(f"no initialiser for {module_name}.{name}: diffusers changed the Wan model")
                    p.copy_(torch.randn(p.shape, device=device, dtype=torch.float32) / p.shape[-1] ** 0.5)
    return model.to(device).eval()


def build_pipeline(a, device: torch.device, dtype: torch.dtype):
    """The Wan2.2-I2V-A14B-shaped WanImageToVideoPipeline; returns (pipe, info)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    config = {**A14B_TRANSFORMER, "num_layers": a.layers, "num_attention_heads": a.heads,
              "attention_head_dim": a.head_dim, "ffn_dim": a.ffn}
    t0 = time.perf_counter()
    experts = []
    for k in range(2):
        m = random_transformer(config, device, dtype, a.seed + 1 + k)
        if a.offload == "model":  # made on the GPU (fast), resting in host memory between uses
            m.to("cpu")
            torch.cuda.empty_cache()
        experts.append(m)
    torch.manual_seed(a.seed)
    vae = AutoencoderKLWan(**WAN21_VAE).eval()  # float32, as the model cards load it
    pipe = WanImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=a.shift),
        image_processor=None, image_encoder=None, transformer=experts[0], transformer_2=experts[1],
        boundary_ratio=a.boundary_ratio,
    )
    if a.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    sync(device)
    n_params = sum(p.numel() for p in experts[0].parameters())
    n_bytes = sum(p.numel() * p.element_size() for m in experts for p in m.parameters())
    return pipe, {"transformer_config": config, "vae_config": WAN21_VAE, "boundary_ratio": a.boundary_ratio,
                  "params_per_expert": n_params, "expert_weight_bytes_total": n_bytes,
                  "vae_params": sum(p.numel() for p in vae.parameters()), "build_s": time.perf_counter() - t0}


# -- measuring ---------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Memory:
    """Peak GPU memory (max_memory_allocated / reserved, reset per call) and the process's peak RSS (VmHWM, reset
    per call where /proc/self/clear_refs allows it; otherwise the lifetime maximum, labelled so)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rss_kind = ("process peak RSS during each call, all that was resident included (VmHWM, reset via "
                         "/proc/self/clear_refs)")
        if not self._reset_rss():
            self.rss_kind = "process max RSS since start (getrusage; not resettable here)"

    @staticmethod
    def _reset_rss() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _rss_peak() -> int:
        try:
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._reset_rss()

    def read(self) -> dict:
        out = {"rss_peak_bytes": self._rss_peak()}
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            out["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self.device)
            out["gpu_peak_reserved_bytes"] = torch.cuda.max_memory_reserved(self.device)
        return out


@contextmanager
def step_clock(pipe, device: torch.device):
    """Timestamps (after a device synchronisation) at the end of every scheduler step of the calls inside.
    Patched before steplens' trace / hooks, which then wrap it (steplens.backends.patches.InstancePatches puts it back)."""
    from steplens.backends.patches import InstancePatches

    stamps: list[float] = []

    def make(original):
        def step(*args, **kwargs):
            out = original(*args, **kwargs)
            sync(device)
            stamps.append(time.perf_counter())
            return out

        return step

    patches = InstancePatches()
    patches.patch(pipe.scheduler, "step", make)
    try:
        yield stamps
    finally:
        patches.restore()


def measure_call(fn, pipe, device, memory: Memory) -> tuple[dict, object]:
    """One pipeline call: wall seconds, the intervals between its scheduler steps, peak memory."""
    memory.reset()
    with step_clock(pipe, device) as stamps:
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        t1 = time.perf_counter()
    return {"call_s": t1 - t0, "step_intervals_s": np.diff(stamps).tolist(), "steps_seen": len(stamps),
            **memory.read()}, out


def measure_variant(calls, pipe, device, memory: Memory) -> tuple[dict, list]:
    """A variant = one or more calls in sequence (sequential: one per seed): summed time, all step intervals,
    the peak memory over its calls."""
    parts, outs = [], []
    for fn in calls:
        m, out = measure_call(fn, pipe, device, memory)
        parts.append(m)
        outs.append(out)
    res = {"call_s": sum(p["call_s"] for p in parts), "calls": len(parts),
           "step_intervals_s": [x for p in parts for x in p["step_intervals_s"]],
           "steps_seen": sum(p["steps_seen"] for p in parts)}
    for key in parts[0]:
        if key.endswith("_bytes"):
            res[key] = max(p[key] for p in parts)
    res["step_s"] = statistics.median(res["step_intervals_s"]) if res["step_intervals_s"] else float("nan")
    return res, outs


# -- the workload --------------------------------------------------------------------------------------------------
def make_variants(pipe, model, sample, a, device, latent_frames: int, steps: int):
    """{variant: list of zero-argument calls}, each call returning (latents, checks dict)."""
    from steplens.backends import trace_pipeline
    from steplens.hooks import Hooks
    from steplens.methods.ensemble import EnsembleConfig, default_blocks, default_steps, generate_ensemble, member_seeds

    kwargs = model.pipeline_inputs(sample, a.seed, latent_frames, steps=steps, guidance=a.guidance)
    tdtype = pipe.transformer.dtype
    for key in ("prompt_embeds", "negative_prompt_embeds"):  # the pipeline leaves them where they are given
        kwargs[key] = kwargs[key].to(device=device, dtype=tdtype)
    n_blocks = len(model.block_names)

    def untraced():
        kwargs["generator"] = torch.Generator().manual_seed(a.seed)
        return pipe(**kwargs).frames, {}

    def traced():
        kwargs["generator"] = torch.Generator().manual_seed(a.seed)
        hooks = Hooks(model, steps).record(model.block_names, reduce="energy")
        with trace_pipeline(pipe, hooks=hooks) as tr:  # device="cpu": x_s, v, x0_hat of every step in host memory
            out = pipe(**kwargs).frames
        experts = sorted({k[3] for k in hooks.records})
        checks = {"trace_steps": len(tr.steps), "trace_x0_device": str(tr.steps[0].x0.device),
                  "records": len(hooks.records), "records_expected": n_blocks * 2 * steps,
                  "record_experts": experts, "record_shape": list(next(iter(hooks.records.values())).shape),
                  "record_bytes": sum(v.numel() * v.element_size() for v in hooks.records.values())}
        return out, checks

    def ensemble():
        cfg = EnsembleConfig(n_seeds=a.n)
        lat = generate_ensemble(model, [sample], [a.seed], cfg, sampling=resolve(model, steps=steps, shift=a.shift, guidance=a.guidance),
                                frames=latent_frames)
        return lat, {"ensemble_blocks": default_blocks(n_blocks), "ensemble_steps": default_steps(steps),
                     "shape": list(lat.shape)}

    def single(seed):
        return lambda: (model.generate([sample], [seed], latent_frames, sampling=resolve(model, steps=steps, shift=a.shift, guidance=a.guidance)), {})

    return {"untraced": [untraced], "traced": [traced], "ensemble": [ensemble],
            "sequential": [single(s) for s in member_seeds([a.seed], a.n)]}


def make_sample(height: int, width: int, latent_frames: int, seed: int):
    from steplens.tasks.sample import Sample

    rng = np.random.default_rng(seed)
    # a smooth random image (a raw noise image would be an unusual VAE input; the cost does not depend on it)
    small = rng.integers(0, 256, (max(1, height // 32), max(1, width // 32), 3), dtype=np.uint8)
    img = np.ascontiguousarray(np.kron(small, np.ones((32, 32, 1), np.uint8))[:height, :width])
    img = np.pad(img, ((0, height - img.shape[0]), (0, width - img.shape[1]), (0, 0)), mode="edge")
    return Sample(task="wan-scale", first_frame=img, prompt="a benchmark prompt", frames=latent_frames, idx=0)


def measure_prefix_reuse(model, a, device, latent_frames: int) -> dict:
    """The noise probe's prefix reuse at this size: `--reuse-samples` samples in one batch, a clean run recorded
    (steplens.tape), then noise at step k (the probe's `step k` hooks: x_s replaced by fresh noise) for k in
    (steps // 2, steps - 1), each with the clean prefix replayed and computed whole; wall times, NFE, bit-identity.
    Then the noise probe's default conditions at 50 steps for these samples from its plan (no model needed); main
    prices them at the untraced call's seconds per NFE (its step time over the CFG branches: no VAE in it)."""
    from steplens.experiments.grid import ExperimentSettings
    from steplens.hooks import Hooks
    from steplens.probes import get_probe
    from steplens.probes.contract import PlanShape
    from steplens.probes.noise import fresh_noise
    from steplens.tape import ForwardTape, forwards

    n = a.reuse_samples
    samples = [make_sample(a.height, a.width, latent_frames, a.seed + i) for i in range(n)]
    seeds = [a.seed + i for i in range(n)]
    kw = dict(sampling=resolve(model, steps=a.steps, shift=a.shift, guidance=a.guidance))

    def timed(fn):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        return out, time.perf_counter() - t0

    tape = ForwardTape(batch=n)
    with forwards(model, record=tape) as c0:
        clean, t_clean = timed(lambda: model.generate(samples, seeds, latent_frames, **kw))
    rows = {"clean": {"nfe": c0.nfe, "seconds": t_clean}}
    same = True
    for k in sorted({a.steps // 2, a.steps - 1}):
        def hooks():
            return Hooks(model, a.steps).edit("latent", steps=[k], fn=lambda x, ctx: fresh_noise(x, seeds,
                                                                                                1 + ctx.step))
        with hooks() as h, forwards(model, replay=tape, upto=k) as c1:
            reused, t1 = timed(lambda: model.generate(samples, seeds, latent_frames, hooks=h, **kw))
        with hooks() as h, forwards(model) as c2:
            whole, t2 = timed(lambda: model.generate(samples, seeds, latent_frames, hooks=h, **kw))
        same = same and bool(torch.equal(reused, whole))
        rows[f"step {k}"] = {"nfe_reuse": c1.nfe, "seconds_reuse": t1, "nfe_whole": c2.nfe, "seconds_whole": t2}
    sec_per_nfe = t_clean / max(1, c0.nfe)  # the whole clean call: the VAE encode of the condition included
    shape = PlanShape(50, 2 if a.guidance != 1.0 else 1, latent_frames, tuple(model.block_names))
    plan = get_probe("noise").plan(ExperimentSettings(steps=50, guidance=a.guidance), shape, {})
    nfe_on = n * sum(b.nfe(50, shape.branches) for b in plan.values())
    nfe_off = n * sum(b.nfe(50, shape.branches, reuse=False) for b in plan.values())
    return {"samples": n, "steps": a.steps, "runs": rows, "bit_identical": same, "sec_per_nfe": sec_per_nfe,
            "noise_probe_at_50_steps": {"conditions": len(plan), "nfe": nfe_on, "nfe_without_reuse": nfe_off,
                                        "ratio": nfe_on / nfe_off}}


# -- reporting -----------------------------------------------------------------------------------------------------
def fmt_params(n: int) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e8 else f"{n / 1e6:.3f} M"


def fmt_bytes(x) -> str:
    return "n/a" if x is None else f"{x / GB:.2f} GB"


def ratio(x: float, y: float) -> float:
    return x / y if y else float("nan")


def summarise(reps: list[dict], steps: int, n: int) -> dict:
    """Medians over reps of each variant's numbers and of the paired ratios."""
    med = lambda xs: statistics.median(xs)  # noqa: E731
    out = {}
    for v in VARIANTS:
        rows = [r[v] for r in reps]
        s = {"step_s": med([r["step_s"] for r in rows]), "call_s": med([r["call_s"] for r in rows])}
        per_call = s["call_s"] / rows[0]["calls"]
        for target in (40, 50):  # the call at `target` steps: everything measured once, plus the missing steps
            s[f"call_at_{target}_steps_s"] = rows[0]["calls"] * (per_call + (target - steps) * s["step_s"])
        for key in rows[0]:
            if key.endswith("_bytes"):
                s[key] = max(r[key] for r in rows)
        out[v] = s
    r = {
        "traced_over_untraced_step": med([ratio(x["traced"]["step_s"], x["untraced"]["step_s"]) for x in reps]),
        "traced_over_untraced_call": med([ratio(x["traced"]["call_s"], x["untraced"]["call_s"]) for x in reps]),
        "ensemble_over_sequential_call": med([ratio(x["ensemble"]["call_s"], x["sequential"]["call_s"])
                                              for x in reps]),
        "ensemble_over_sequential_step": med([ratio(x["ensemble"]["step_s"], n * x["sequential"]["step_s"])
                                              for x in reps]),
    }
    for key in ("gpu_peak_allocated_bytes", "rss_peak_bytes"):
        if key in out["untraced"]:
            r[f"traced_over_untraced_{key}"] = ratio(out["traced"][key], out["untraced"][key])
            r[f"ensemble_over_sequential_{key}"] = ratio(out["ensemble"][key], out["sequential"][key])
    out["ratios"] = r
    return out


def print_report(res: dict) -> None:
    w, s, r = res["workload"], res["summary"], res["summary"]["ratios"]
    m = res["model"]
    tc = m["transformer_config"]
    cuda = res["env"]["device_type"] == "cuda"
    print(f"\nWan2.2-I2V-A14B-shaped pipeline, random weights: 2 experts x {tc['num_layers']} blocks, width "
          f"{tc['num_attention_heads'] * tc['attention_head_dim']}, {fmt_params(m['params_per_expert'])} params per "
          f"expert, weights {fmt_bytes(m['expert_weight_bytes_total'])} ({w['dtype']}); {w['height']}x{w['width']} "
          f"px, {w['frames']} frames -> {w['latent_frames']} latent frames, {w['tokens']} tokens; {w['steps']} steps, "
          f"CFG {w['guidance']}, shift {w['shift']}, FlowMatchEuler; {res['env']['device']}, offload {w['offload']}; "
          f"{w['reps']} rep(s) after a {w['warmup_steps']}-step warm-up")
    print(f"memory columns: GPU = torch.cuda.max_memory_allocated per call; RSS = {res['env']['rss_kind']}\n")
    head = f"{'variant':<40} {'s/step':>9} {'call s':>9} {'@40 steps':>10} {'@50 steps':>10} {'peak GPU':>10} " \
           f"{'peak RSS':>10}"
    print(head)
    print("-" * len(head))
    labels = {"untraced": "untraced (1 seed)",
              "traced": "traced: x0 every step + energy all blocks",
              "ensemble": f"ensemble N={w['n']} (one batched call)",
              "sequential": f"{w['n']} sequential single-seed calls"}
    for v in VARIANTS:
        x = s[v]
        gpu = fmt_bytes(x.get("gpu_peak_allocated_bytes")) if cuda else "n/a"
        print(f"{labels[v]:<40} {x['step_s']:>9.3f} {x['call_s']:>9.2f} {x['call_at_40_steps_s']:>10.1f} "
              f"{x['call_at_50_steps_s']:>10.1f} {gpu:>10} {fmt_bytes(x.get('rss_peak_bytes')):>10}")
    print(f"\n(s/step of '{labels['sequential']}' is one single-seed step; the call columns are the {w['n']} calls "
          f"together)")
    gpu_t = f", peak GPU {r['traced_over_untraced_gpu_peak_allocated_bytes']:.4f}" if cuda else ""
    gpu_e = f", peak GPU {r['ensemble_over_sequential_gpu_peak_allocated_bytes']:.4f}" if cuda else ""
    print(f"traced / untraced:      per step {r['traced_over_untraced_step']:.4f}, per call "
          f"{r['traced_over_untraced_call']:.4f}{gpu_t}")
    print(f"ensemble / sequential:  per call {r['ensemble_over_sequential_call']:.4f} (the {w['n']} seeds' wall time),"
          f" per step {r['ensemble_over_sequential_step']:.4f} (one batched step over {w['n']} single steps){gpu_e}")
    c = res["checks"]
    print(f"checks: traced == untraced latents: {c['traced_equals_untraced']}; generate(seed) == plain call: "
          f"{c['generate_equals_plain_call']}; trace steps {c['traced']['trace_steps']}/{w['steps']} (x0 on "
          f"{c['traced']['trace_x0_device']}); records {c['traced']['records']}/{c['traced']['records_expected']} "
          f"({fmt_bytes(c['traced']['record_bytes'])}, experts {c['traced']['record_experts']}); ensemble blocks "
          f"{c['ensemble']['ensemble_blocks'][0]}-{c['ensemble']['ensemble_blocks'][-1]} at steps "
          f"{c['ensemble']['ensemble_steps']}; finite outputs: {c['finite']}")


# -- main ----------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="check the script on a CPU: " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in TINY.items()) + " (options given explicitly still win)")
    for k in ("layers", "heads", "head_dim", "ffn", "height", "width", "frames"):
        ap.add_argument(f"--{k.replace('_', '-')}", type=int, default=None, help=f"default {FULL[k]}")
    ap.add_argument("--device", default=None, help=f"default {FULL['device']}")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                    help=f"of the transformers (the VAE stays float32); default {FULL['dtype']}")
    ap.add_argument("--offload", default="none", choices=["none", "model"],
                    help="model: diffusers' enable_model_cpu_offload (needed on an 80 GB GPU)")
    ap.add_argument("--steps", type=int, default=4, help="denoising steps per call (>= 2)")
    ap.add_argument("--warmup-steps", type=int, default=2, help="steps of the untimed warm-up call of each variant "
                                                                 "(0: no warm-up)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--n", type=int, default=3, help="ensemble size N")
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--boundary-ratio", type=float, default=BOUNDARY_RATIO)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: 1 on CPU, torch's own on GPU)")
    ap.add_argument("--json", default=None, metavar="OUT", help="write all numbers to this JSON file")
    ap.add_argument("--reuse-samples", type=int, default=2, help="samples of the prefix-reuse measurement (0: skip it)")
    a = ap.parse_args(argv)
    base = TINY if a.tiny else FULL
    for k in base:
        if getattr(a, k) is None:
            setattr(a, k, base[k])
    if a.steps < 2:
        ap.error("--steps must be >= 2 (seconds per step are intervals between steps)")
    if a.frames < 5 or (a.frames - 1) % 4:
        ap.error(f"--frames must be 4k + 1 (Wan's VAE: 81 -> 21 latent frames), >= 5; got {a.frames}")
    if a.height % 16 or a.width % 16:
        ap.error(f"--height and --width must be multiples of 16 (VAE 8 x patch 2); got {a.height}x{a.width}")
    if a.n < 2 or a.reps < 1 or a.warmup_steps < 0 or a.reuse_samples < 0:
        ap.error("--n must be >= 2, --reps >= 1, --warmup-steps >= 0, --reuse-samples >= 0")
    return a


def main(argv=None) -> None:
    a = parse_args(argv)
    from steplens.backends.checks import check_device, check_dtype, check_offload

    try:
        device = check_device(a.device)
        dtype = check_dtype(a.dtype)
        check_offload(a.offload, a.device)
    except ValueError as e:
        raise SystemExit(f"wan_scale.py: {e}") from None
    if a.threads is not None or device.type == "cpu":
        torch.set_num_threads(a.threads or 1)

    import diffusers

    from steplens.backends import HashedPromptEmbeds
    from steplens.backends.wan import WanPipelineModel

    print(f"building the pipeline ({a.layers} blocks x 2 experts, {a.dtype}, on {device}, offload {a.offload}) ...",
          flush=True)
    pipe, model_info = build_pipeline(a, device, dtype)
    text_dim = pipe.transformer.config.text_dim
    model = WanPipelineModel(pipe, name="wan22-a14b-random", scale=1,
                             prompt_embeds=HashedPromptEmbeds(text_dim, length=TEXT_TOKENS))
    latent_frames = model.frames_from_video(a.frames)
    sample = make_sample(a.height, a.width, latent_frames, a.seed)
    assert model.video_frames(latent_frames) == a.frames
    tokens = math.prod(model.token_grid(model.latent_shape([sample], latent_frames)))
    memory = Memory(device)
    print(f"built in {model_info['build_s']:.1f} s: {fmt_params(model_info['params_per_expert'])} params per expert; "
          f"{tokens} tokens per sample", flush=True)

    if a.warmup_steps:
        warm = make_variants(pipe, model, sample, a, device, latent_frames, a.warmup_steps)
        for v in VARIANTS:
            t0 = time.perf_counter()
            for fn in warm[v]:
                fn()
            sync(device)
            print(f"warm-up {v}: {time.perf_counter() - t0:.2f} s", flush=True)
        del warm

    variants = make_variants(pipe, model, sample, a, device, latent_frames, a.steps)
    reps, checks = [], {}
    for rep in range(a.reps):
        order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
        row = {}
        for v in order:
            res, outs = measure_variant(variants[v], pipe, device, memory)
            row[v] = res
            print(f"rep {rep} {v}: call {res['call_s']:.2f} s, step {res['step_s']:.3f} s"
                  + (f", peak GPU {fmt_bytes(res['gpu_peak_allocated_bytes'])}" if device.type == "cuda" else ""),
                  flush=True)
            if rep == 0:
                checks[v] = {"latents": [o[0] for o in outs], **outs[0][1]}
                if res["steps_seen"] != a.steps * len(outs):
                    raise SystemExit(f"{v}: saw {res['steps_seen']} scheduler steps, expected {a.steps * len(outs)}")
        reps.append(row)

    lat = {v: checks[v].pop("latents") for v in VARIANTS}
    check = {
        "traced_equals_untraced": bool(torch.equal(lat["traced"][0], lat["untraced"][0])),
        "traced_max_abs_diff": float((lat["traced"][0].float() - lat["untraced"][0].float()).abs().max()),
        "generate_equals_plain_call": bool(torch.equal(lat["sequential"][0].to(lat["untraced"][0].device),
                                                       lat["untraced"][0])),
        "finite": all(bool(torch.isfinite(x).all()) for xs in lat.values() for x in xs),
        **{k: checks[k] for k in ("traced", "ensemble")},
    }
    del lat
    t = check["traced"]
    if t["trace_steps"] != a.steps or t["records"] != t["records_expected"]:
        raise SystemExit(f"the trace/hooks missed something: {t}")

    reuse = None
    if a.reuse_samples:
        memory.reset()
        reuse = measure_prefix_reuse(model, a, device, latent_frames)
        reuse["memory"] = memory.read()
        if not reuse["bit_identical"]:
            raise SystemExit(f"prefix reuse changed the result: {reuse}")

    res = {
        "what": "steplens at real size: Wan2.2-I2V-A14B-shaped pipeline with random weights (benchmarks/wan_scale.py)",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else " ".join(argv),
        "workload": {"height": a.height, "width": a.width, "frames": a.frames, "latent_frames": latent_frames,
                     "tokens": tokens, "steps": a.steps, "warmup_steps": a.warmup_steps, "reps": a.reps, "n": a.n,
                     "guidance": a.guidance, "shift": a.shift, "dtype": a.dtype, "offload": a.offload,
                     "text_tokens": TEXT_TOKENS, "seed": a.seed, "tiny": a.tiny},
        "model": model_info,
        "env": {"device": (torch.cuda.get_device_name(device) if device.type == "cuda" else
                           f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"),
                "device_type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
                "diffusers": diffusers.__version__, "python": platform.python_version(), "rss_kind": memory.rss_kind,
                "gpu_total_bytes": (torch.cuda.get_device_properties(device).total_memory
                                    if device.type == "cuda" else None)},
        "summary": summarise(reps, a.steps, a.n),
        "reps": reps,
        "checks": check,
        "sec_per_nfe": {v: res_v["step_s"] / (2 if a.guidance != 1.0 else 1) for v, res_v in
                        summarise(reps, a.steps, a.n).items() if v in ("untraced", "traced")},
        "prefix_reuse": reuse,
    }
    if reuse:
        p, sec = reuse["noise_probe_at_50_steps"], res["sec_per_nfe"]["untraced"]
        p.update(sec_per_nfe=sec, hours_estimated=p["nfe"] * sec / 3600,
                 hours_without_reuse_estimated=p["nfe_without_reuse"] * sec / 3600)
    print_report(res)
    if reuse:
        print(f"\nseconds per NFE (one step, sample and CFG branch): untraced {res['sec_per_nfe']['untraced']:.3f}, "
              f"traced {res['sec_per_nfe']['traced']:.3f}; the clean {reuse['samples']}-sample call over its NFE "
              f"(VAE encode included): {reuse['sec_per_nfe']:.3f}")
        for name, r in reuse["runs"].items():
            print(f"prefix reuse, {name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in r.items()))
        print(f"reused == recomputed, bit for bit: {reuse['bit_identical']}; peak GPU "
              f"{fmt_bytes(reuse['memory'].get('gpu_peak_allocated_bytes'))}")
        print(f"noise probe, default conditions ({p['conditions']}), {reuse['samples']} samples at 50 steps: NFE "
              f"{p['nfe']:,} with reuse, {p['nfe_without_reuse']:,} without (ratio {p['ratio']:.3f}); estimated "
              f"{p['hours_estimated']:.2f} h vs {p['hours_without_reuse_estimated']:.2f} h at the untraced "
              f"{sec:.3f} s/NFE")
    if a.json:
        out = Path(a.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
