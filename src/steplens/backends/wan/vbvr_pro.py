"""The VBVR-Pro Wan checkpoints as users hold them (issue 34 item 6): each public checkpoint's sampling, as its
authors' inference code runs it, and its weight format. Data only, shaped like steplens.presets' VBVR / DISTILLED
(steps, shift, guidance, scheduler, boundary, negative_prompt, size) plus where it comes from:

    source     the public text each value is read from (repository, path, commit)
    confirmed  the settings that text states; every other setting is *unconfirmed* (a library default the code
               leaves in place, or the checkpoint's own config, not readable here)
    format     "diffusers" (a merged, complete diffusers folder), "diffsynth-lora" (LoRA files in DiffSynth's key
               format, loaded on the base model with alpha 1), "diffusers+pipeline" (merged, with its own pipeline.py)
    files      the LoRA files a diffsynth-lora release ships: {"lora": first (or only) transformer, "lora_2": Wan2.2's
               transformer_2}; steplens.backends.wan.lora reads their keys
    base       the base model a LoRA release is loaded on

None for a setting means the checkpoint's own (its scheduler config, its model_index boundary_ratio), as everywhere
in steplens. The facts and their sources: docs/reference/vbvr-pro-checkpoints.md. VBVR-Pro-LTX2.3 (LTX-2) is listed
there, not here (not a Wan checkpoint).
"""

from __future__ import annotations

# Video-Reason/VBVR-Pro, example.py at 2a073bf4e73c4794777ee35eecedeaef5ee174ac ("unified single-example inference
# for every VBVR-Pro release"): its DEFAULT_NEGATIVE_PROMPT for every Wan release.
EXAMPLE = "Video-Reason/VBVR-Pro example.py@2a073bf4e73c4794777ee35eecedeaef5ee174ac"
REPRODUCE = "Video-Reason/VBVR-Pro rl_training/scripts/eval/vbvr_pro/reproduce.fish@ee382e1a8c8a740e7427d131b2f3be53d209bfa1"
NEGATIVE_PROMPT = ("Bright tones, overexposed, static, blurred details, subtitles, low quality, motion blur, distorted, "
                   "artifacts")

# the diffusers releases (run_wan_diffusers): the pipeline's own scheduler and boundary, 50 steps, CFG 5, 832x480,
# 81 frames, seed 42, written at 15 fps; the image resized to the size
_DIFFUSERS = {"steps": 50, "shift": None, "guidance": 5.0, "scheduler": None, "negative_prompt": NEGATIVE_PROMPT,
              "size": (480, 832), "frames": 81, "fps": 15, "seed": 42, "format": "diffusers", "files": None,
              "source": f"{EXAMPLE}: run_wan_diffusers, MODEL_SPECS",
              "confirmed": ("steps", "guidance", "negative_prompt", "size", "frames", "fps", "seed", "format")}

# the DiffSynth LoRA releases (run_wan_diffsynth): DiffSynth-Studio's WanVideoPipeline with the LoRA(s) at alpha 1,
# 50 steps, 512x512, 49 frames, seed 42, tiled VAE, 15 fps; cfg_scale and sigma_shift not passed: DiffSynth's
# defaults (5.0 and 5.0, FlowMatch Euler, in the WanVideoPipeline.__call__ versions seen; the DiffSynth commit the
# vbvr_pro_models/DiffSynth-Studio submodule pins is not public here)
_DIFFSYNTH = {"steps": 50, "shift": 5.0, "guidance": 5.0, "scheduler": "euler", "negative_prompt": NEGATIVE_PROMPT,
              "size": (512, 512), "frames": 49, "fps": 15, "seed": 42, "format": "diffsynth-lora",
              "source": f"{EXAMPLE}: run_wan_diffsynth, MODEL_SPECS",
              "confirmed": ("steps", "negative_prompt", "size", "frames", "fps", "seed", "format", "files", "base")}

# the TI2V-5B RL releases: their own pipeline.py (custom_pipeline, trust_remote_code), 30 steps, CFG 1, 512x512,
# 81 frames at 16 fps, seed 0, sampler cps-0.7 by default (the paper's matrix: cps 0.1/0.3/0.7/0.9, euler, unipc)
_RL = {"steps": 30, "shift": None, "guidance": 1.0, "scheduler": "cps-0.7", "boundary": None, "negative_prompt": None,
       "size": (512, 512), "frames": 81, "fps": 16, "seed": 0, "format": "diffusers+pipeline", "files": None,
       "pipeline_sha256": "968acf1b214bce097f4d034bf26923dbf496ac319c1adb6560c16089f2ab0e50",
       "source": f"{EXAMPLE}: run_wan_rl_diffusers; {REPRODUCE}",
       "confirmed": ("steps", "guidance", "scheduler", "size", "frames", "fps", "seed", "format", "revision",
                     "pipeline_sha256")}

PRESETS: dict[str, dict] = {
    "vbvr-pro-wan2.2-i2v-a14b": {**_DIFFUSERS, "boundary": None, "hub": "Video-Reason/VBVR-Pro-Wan2.2-I2V-A14B",
                                 "base": "Wan-AI/Wan2.2-I2V-A14B"},
    "vbvr-pro-wan2.2-i2v-a14b-diffsynth": {
        **_DIFFSYNTH, "boundary": 0.9, "hub": "Video-Reason/VBVR-Pro-Wan2.2-I2V-A14B-diffsynth",
        "base": "Wan-AI/Wan2.2-I2V-A14B",
        "files": {"lora": "high_noise_lora.safetensors", "lora_2": "low_noise_lora.safetensors"},
        "confirmed": _DIFFSYNTH["confirmed"] + ("boundary",)},
    "vbvr-pro-wan2.1-i2v-14b": {**_DIFFUSERS, "boundary": None, "hub": "Video-Reason/VBVR-Pro-Wan2.1-I2V-14B",
                                "base": "Wan-AI/Wan2.1-I2V-14B-720P"},
    "vbvr-pro-wan2.1-i2v-14b-diffsynth": {
        **_DIFFSYNTH, "boundary": None, "hub": "Video-Reason/VBVR-Pro-Wan2.1-I2V-14B-diffsynth",
        "base": "Wan-AI/Wan2.1-I2V-14B-720P", "files": {"lora": "lora.safetensors"}},
    "vbvr-pro-wan2.2-ti2v-5b": {**_DIFFUSERS, "boundary": None, "hub": "Video-Reason/VBVR-Pro-Wan2.2-TI2V-5B",
                                "base": "Wan-AI/Wan2.2-TI2V-5B"},
    "vbvr-pro-wan2.2-ti2v-5b-diffsynth": {
        **_DIFFSYNTH, "boundary": None, "hub": "Video-Reason/VBVR-Pro-Wan2.2-TI2V-5B-diffsynth",
        "base": "Wan-AI/Wan2.2-TI2V-5B", "files": {"lora": "lora.safetensors"}},
    "vbvr-pro-wan2.2-ti2v-5b-rlvr": {**_RL, "hub": "Video-Reason/VBVR-Pro-Wan2.2-TI2V-5B-RLVR",
                                     "revision": "003373efcbc356e263f4c8d10b3dbb8f5cd7c6d0",
                                     "base": "Wan-AI/Wan2.2-TI2V-5B"},
    "vbvr-pro-wan2.2-ti2v-5b-rlvlm-qwen3.6-27b-reward": {
        **_RL, "hub": "Video-Reason/VBVR-Pro-Wan2.2-TI2V-5B-RLVLM-Qwen3.6-27B-Reward",
        "revision": "1282a14cf5379f97ff77326373285533a9e2387d", "base": "Wan-AI/Wan2.2-TI2V-5B"},
}

SETTINGS = ("steps", "shift", "guidance", "scheduler", "boundary", "negative_prompt", "size")


def unconfirmed(name: str) -> list[str]:
    """The sampling settings of a preset that no public text states (a library default or the checkpoint's own)."""
    p = PRESETS[name]
    return [k for k in SETTINGS if k not in p["confirmed"]]
