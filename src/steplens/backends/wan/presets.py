"""The Wan family's sampling presets (`WanPipelineModel.presets`; steplens.presets resolves them).

* `vbvr`: the study's sampling of VBVR-Wan2.2 (its authors' DiffSynth tooling): FlowMatch Euler, 50 steps, shift 5,
  CFG 5, the Wan2.2 expert switch at 0.875 (t >= 875 runs the high-noise expert), Wan's standard negative prompt,
  frames from the sample's ground_truth.mp4 and the size of its first_frame.png (rounded up to the pipeline's
  multiple). The pipeline's own sampling (`pipeline`: UniPC as the hub's Wan configs load it, the scheduler's flow
  shift, 50 steps and CFG 5 from the pipeline's `__call__`, its own `boundary_ratio`, an empty negative prompt) does
  not give the same videos: UniPC (a multistep solver) and Euler take different paths from the same noise, and the
  hub's boundary differs from 0.875. The Euler σ grid is diffusers' FlowMatchEulerDiscreteScheduler's (σ from 1 down
  to 1/1000 before the shift), which may differ from DiffSynth's own grid in the last digits.
* `distilled`: Wan2.2-I2V-A14B as users run it distilled (the Wan2.2-Lightning and LightX2V 4-step LoRAs, one per
  expert, through --lora / --lora-2): FlowMatch Euler over exactly σ = 1.0, 0.9375, 0.8333…, 0.625 (the shift-5 grid
  σ = 5s / (1 + 4s) at timesteps t = 1000, 750, 500, 250, s = t / 1000), CFG off, the expert switch at 0.875 (t = 875:
  the high-noise expert runs steps 0-1, the low-noise expert steps 2-3), the size of the first frame as in `vbvr` (so
  the two chains compare at one resolution). One expert is fine: no switch.
"""

from __future__ import annotations

from ...presets import Preset, shift_sigma

# Wan's standard negative prompt (the Wan2.x repositories' and DiffSynth's examples use it; VBVR's tooling samples
# with "a fixed negative prompt"): oversaturated, overexposed, static, blurry details, subtitles, ... walking backwards.
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的"
                       "肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")

VBVR = {"scheduler": "euler", "steps": 50, "shift": 5.0, "guidance": 5.0, "boundary": 0.875,
        "negative_prompt": WAN_NEGATIVE_PROMPT, "size": "first-frame"}

# The distilled Wan2.2 sampling (Wan2.2-Lightning / LightX2V 4-step LoRAs): the shift-5 grid at 1000/750/500/250.
DISTILLED_TIMESTEPS = (1000, 750, 500, 250)
DISTILLED = {"scheduler": "euler", "steps": 4, "shift": 5.0, "guidance": 1.0, "boundary": 0.875,
             "sigmas": [shift_sigma(t, 5.0) for t in DISTILLED_TIMESTEPS], "size": "first-frame"}

def _vbvr_pro() -> dict[str, Preset]:
    """The VBVR-Pro Wan checkpoints as their authors' inference code samples them (steplens.backends.wan.vbvr_pro:
    values, sources and what is unconfirmed), for the releases steplens runs: the merged diffusers folders (the
    checkpoint's own scheduler, shift and expert switch) and the DiffSynth LoRA releases (FlowMatch Euler; load the
    LoRA files with --lora / --lora-2 on the base model). The RL releases sample through their own pipeline.py
    (`cps` sampler, trust_remote_code) and are documented there only."""
    from .vbvr_pro import PRESETS as PRO, SETTINGS, unconfirmed

    out = {}
    for name, p in PRO.items():
        if p["format"] not in ("diffusers", "diffsynth-lora"):
            continue
        settings = {k: p[k] for k in SETTINGS if p.get(k) is not None}
        two = "A14B" in p["base"]  # the expert switch exists on the two-expert models only
        own = [k for k in ("scheduler", "shift", "boundary") if p.get(k) is None and (two or k != "boundary")]
        unsure = [k for k in unconfirmed(name) if two or k != "boundary"]
        files = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in (p.get("files") or {}).items())
        h, w = p["size"]
        out[name] = Preset(f"{p['hub']} as its authors run it ({p['source'].split(':')[0]}): {p['steps']} steps, CFG "
                           f"{p['guidance']:g}, {h}x{w}, {p['frames']} frames in their script, their negative prompt"
                           + (f", {', '.join(own)} the checkpoint's own" if own else "")
                           + (f"; on {p['base']} with {files}" if files else "")
                           + (f"; unconfirmed: {', '.join(unsure)}" if unsure else ""),
                           settings)
    return out


PRESETS = {
    "vbvr": Preset("the study's sampling of VBVR-Wan2.2: FlowMatch Euler, 50 steps, shift 5, CFG 5, expert switch at "
                   "0.875, Wan's negative prompt, size of the first frame", VBVR),
    "distilled": Preset("Wan2.2 as users run it distilled (Lightning / LightX2V 4-step LoRAs): Euler at sigma 1, "
                        "0.9375, 0.8333, 0.625 (shift 5 at t = 1000, 750, 500, 250), CFG off, expert switch at 0.875 "
                        "(step 2), size of the first frame", DISTILLED),
    **_vbvr_pro(),
}
