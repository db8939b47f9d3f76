"""Sampling presets: which steps, shift, guidance, scheduler, expert switch, negative prompt and size a run uses.

    from steplens.presets import resolve
    sampling = resolve(model, "vbvr", steps=None, shift=None, guidance=None)   # explicit values override
    sampling.steps, sampling.shift, sampling.guidance, sampling.sources        # what the run will use, and why

Three presets:

* `pipeline` (the default): the model's own settings, read from the model, never the embedded model's values
  on a diffusers pipeline. For a `wan:` pipeline: its scheduler as loaded (UniPC in the hub's Wan configs), the
  scheduler's own flow shift, `num_inference_steps` and `guidance_scale` from the pipeline's `__call__`
  signature (50 and 5.0 for Wan's image-to-video pipeline), its own `boundary_ratio` (two-expert Wan2.2), the
  pipeline's empty negative prompt. For the embedded model: what it was trained and measured with (20 Euler
  steps, shift 3, no CFG).
* `vbvr`: the study's sampling of VBVR-Wan2.2 (its authors' DiffSynth tooling): FlowMatch Euler, 50 steps,
  shift 5, CFG 5, the Wan2.2 expert switch at 0.875 (t >= 875 runs the high-noise expert), Wan's standard
  negative prompt, frames from the sample's ground_truth.mp4 and the size of its first_frame.png (rounded up
  to the pipeline's multiple). It applies to `wan:` pipelines only.
* `distilled`: Wan2.2-I2V-A14B as users run it distilled (the Wan2.2-Lightning and LightX2V 4-step LoRAs, one per
  expert, through --lora / --lora-2): FlowMatch Euler over exactly σ = 1.0, 0.9375, 0.8333…, 0.625 (the shift-5
  grid σ = 5s / (1 + 4s) at timesteps t = 1000, 750, 500, 250, s = t / 1000), CFG off, the expert switch at
  0.875 (t = 875: the high-noise expert runs steps 0-1, the low-noise expert steps 2-3), the size of the first
  frame as in `vbvr` (so the two chains compare at one resolution). It applies to `wan:` pipelines only (one
  expert is fine: no switch): the embedded model has its own few-step students (their weights carry their σ
  list), and LTX-2 / HunyuanVideo-1.5 have neither Wan's timestep grid nor these LoRAs.

An explicit σ list (`sigmas`: --sigmas, the `distilled` preset, or a model's own, e.g. a distilled student's
info["sampling"]) overrides steps and shift: the run takes len(sigmas) steps, one at each σ, the last step
landing on 0. Explicit --steps / --shift other than the list's (its length, the shift recorded beside it) drop a
preset's or model's σ list (the run then takes the flow grid of those); --sigmas with --steps or --shift is
refused where they disagree.

The two do not give the same videos: UniPC (a multistep solver) and Euler take different paths from the
same noise, and the hub's boundary differs from 0.875. The Euler σ grid is diffusers'
FlowMatchEulerDiscreteScheduler's (σ from 1 down to 1/1000 before the shift), which may differ from
DiffSynth's own grid in the last digits.

Explicit options (--steps, --shift, --guidance, --height/--width, --negative-prompt) override a preset; every
value's source ("preset vbvr", "model", "option") is kept in `sources` and written into run configs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PRESETS = {
    "pipeline": "the model's own settings (a wan: pipeline's scheduler, steps, CFG, shift and boundary; the "
                "embedded model's 20 Euler steps, shift 3, no CFG)",
    "vbvr": "the study's VBVR-Wan2.2 sampling: FlowMatch Euler, 50 steps, shift 5, CFG 5, expert switch at 0.875, "
            "Wan's negative prompt, size of the first frame",
    "distilled": "Wan2.2 as users run it distilled (Lightning / LightX2V 4-step LoRAs): Euler at sigma 1, 0.9375, "
                 "0.8333, 0.625 (shift 5 at t = 1000, 750, 500, 250), CFG off, expert switch at 0.875 (step 2), size "
                 "of the first frame",
}

# Wan's standard negative prompt (the Wan2.x repositories' and DiffSynth's examples use it; VBVR's tooling samples
# with "a fixed negative prompt"): oversaturated, overexposed, static, blurry details, subtitles, ... walking backwards.
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的"
                       "肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")

VBVR = {"scheduler": "euler", "steps": 50, "shift": 5.0, "guidance": 5.0, "boundary": 0.875,
        "negative_prompt": WAN_NEGATIVE_PROMPT, "size": "first-frame"}


def shift_sigma(t: float, shift: float, num_train_timesteps: int = 1000) -> float:
    """σ of the shifted flow grid at timestep t: shift·s / (1 + (shift − 1)·s), s = t / num_train_timesteps."""
    s = t / num_train_timesteps
    return shift * s / (1 + (shift - 1) * s)


# The distilled Wan2.2 sampling (Wan2.2-Lightning / LightX2V 4-step LoRAs): the shift-5 grid at 1000/750/500/250.
DISTILLED_TIMESTEPS = (1000, 750, 500, 250)
DISTILLED = {"scheduler": "euler", "steps": 4, "shift": 5.0, "guidance": 1.0, "boundary": 0.875,
             "sigmas": [shift_sigma(t, 5.0) for t in DISTILLED_TIMESTEPS], "size": "first-frame"}


@dataclass
class Sampling:
    """What a run samples with. `extra`: model configuration beyond steps/shift/guidance (scheduler, boundary,
    negative_prompt, height, width, size, sigmas: an explicit σ list, one per step, overriding steps and shift;
    `sigmas` is None when there is none); `sources`: for each setting, where its value came from."""

    preset: str
    steps: int
    shift: float | None  # None: the scheduler's own (LTX-2's resolution-dependent shift)
    guidance: float
    extra: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    @property
    def sigmas(self) -> list[float] | None:
        """The explicit σ list the run takes (one per step), or None: the flow grid of `steps` and `shift`."""
        return self.extra.get("sigmas")

    def describe(self) -> dict:
        """For run configs and reports: every value and its source."""
        return {"preset": self.preset, "steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                **{k: v for k, v in self.extra.items() if k != "negative_prompt"},
                **({"negative_prompt": self.extra["negative_prompt"]} if "negative_prompt" in self.extra else {}),
                "sources": dict(self.sources)}


def check_preset(name: str | None) -> str:
    name = name or "pipeline"
    if name not in PRESETS:
        raise ValueError(f"--preset {name!r} does not exist; presets: "
                         + "; ".join(f"{k} ({v})" for k, v in PRESETS.items()))
    return name


def check_size_pair(height: int | None, width: int | None) -> None:
    if (height is None) != (width is None):
        raise ValueError("--height and --width go together (got only "
                         + ("--height" if height is not None else "--width") + ")")
    for what, v in (("--height", height), ("--width", width)):
        if v is not None and v < 1:
            raise ValueError(f"{what} {v}: must be >= 1 (pixels; a multiple of the pipeline's)")


def check_sigma_options(sigmas, steps: int | None = None, shift: float | None = None) -> list[float] | None:
    """--sigmas checked (steplens.io.checks.sigma_list) and against --steps / --shift given with it: the σ list sets
    the steps (len) and stands in for the shift, so both are refused where they disagree with it."""
    from .io.checks import sigma_list
    from .sampling import flow_sigmas

    sig = sigma_list(sigmas)
    if sig is None:
        return None
    if steps is not None and steps != len(sig):
        raise ValueError(f"--steps {steps} and --sigmas {_text(sig)} disagree: --sigmas sets the steps (one per σ: "
                         f"{len(sig)}); give one or the other")
    if shift is not None:
        grid = flow_sigmas(len(sig), float(shift))[:-1].tolist()
        if any(abs(a - b) > 1e-6 for a, b in zip(grid, sig)):
            raise ValueError(f"--shift {shift:g} and --sigmas {_text(sig)} disagree: --sigmas overrides the shift "
                             f"(shift {shift:g} at {len(sig)} steps gives σ {_text(grid)}); give one or the other")
    return sig


def _text(sig) -> str:
    return ",".join(f"{s:.6g}" for s in sig)


def own(model, steps: int | None = None, shift: float | None = None,
        guidance: float | None = None) -> tuple[int, float | None, float]:
    """(steps, shift, guidance): the given values, the model's own (`model.sampling_defaults()`) where None; a
    shift of None (or NaN in the defaults) stays None: the scheduler's own. For the Python API's callers that
    need a number (a hook's step count, a report), never a copy of a model's defaults."""
    d = model.sampling_defaults()
    steps = int(d["steps"] if steps is None else steps)
    shift = d.get("shift") if shift is None else shift
    shift = None if shift is None or math.isnan(float(shift)) else float(shift)
    return steps, shift, float(d["guidance"] if guidance is None else guidance)


def resolve(model, preset: str | None = None, steps: int | None = None, shift: float | None = None,
            guidance: float | None = None, height: int | None = None, width: int | None = None,
            negative_prompt: str | None = None, configure: bool = True, sigmas=None) -> Sampling:
    """The settings a run on `model` uses under `preset`, explicit values overriding it; with `configure`, the
    model is set up for them (scheduler, expert switch, negative prompt, size, σ list: model.configure_sampling).
    `sigmas`: an explicit σ list (--sigmas) overriding steps and shift (see the module doc)."""
    preset = check_preset(preset)
    sigmas = check_sigma_options(sigmas, steps, shift)
    own = dict(model.sampling_defaults())
    is_pipeline = model.is_pipeline  # the model contract (steplens.contract)
    if preset == "distilled":
        if is_pipeline and model.backend != "wan":
            raise ValueError(f"--preset distilled is Wan2.2 as users run it distilled (Lightning / LightX2V LoRAs: "
                             f"Wan's timesteps 1000/750/500/250 at shift 5, expert switch 0.875) and applies to Wan "
                             f"pipelines; {model.name!r} is a {model.backend} pipeline, whose scheduler and distilled "
                             f"checkpoints follow their own σ schedule (--sigmas gives one explicitly where the "
                             f"backend takes it)")
        if not is_pipeline:
            raise ValueError(f"--preset distilled is Wan2.2's distilled sampling (Lightning / LightX2V LoRAs) and "
                             f"applies to wan:PATH pipelines; model {model.name!r} is not a distilled Wan: it samples "
                             f"with its own settings ({own['steps']} steps, shift {own['shift']}"
                             + (", its own σ list" if own.get("sigmas") else "") + "), or give --sigmas")
    if sigmas is not None or preset == "distilled":
        if is_pipeline and "sigmas" not in model.sampling_options:
            raise ValueError(f"{'--sigmas' if sigmas is not None else '--preset distilled'}: model {model.name!r} "
                             f"({model.backend}) does not take an explicit σ list: its pipeline computes its own "
                             f"schedule; use --steps and --shift")
    if preset == "vbvr":
        if is_pipeline and model.backend != "wan":
            raise ValueError(f"--preset vbvr is the study's sampling of VBVR-Wan2.2 (FlowMatch Euler, expert switch "
                             f"0.875) and applies to Wan pipelines; {model.name!r} is a {model.backend} pipeline "
                             f"(--preset pipeline: its own settings)")
        if not is_pipeline:
            raise ValueError(f"--preset vbvr is the study's sampling of VBVR-Wan2.2 (CFG 5, shift 5, 50 steps) and "
                             f"applies to wan:PATH pipelines; model {model.name!r} samples with its own settings "
                             f"(--preset pipeline: {own['steps']} steps, shift {own['shift']}, guidance "
                             f"{own['guidance']})")
        base, origin = {**own, **VBVR}, "preset vbvr"
        base.pop("sigmas", None)  # the study's 50-step grid, not a σ list the model had
        if not model.has_two_experts:
            base.pop("boundary")
    elif preset == "distilled":
        base, origin = {**own, **DISTILLED}, "preset distilled"
        if not model.has_two_experts:
            base.pop("boundary")
    else:
        base, origin = own, "model"
    sources = {k: origin for k in base}
    explicit = {"steps": steps, "shift": shift, "guidance": guidance, "height": height, "width": width,
                "negative_prompt": negative_prompt}
    if not is_pipeline and (height is not None or width is not None or negative_prompt is not None):
        given = [f"--{k.replace('_', '-')}" for k in ("height", "width", "negative_prompt") if explicit[k] is not None]
        raise ValueError(f"{', '.join(given)} apply to wan:PATH pipelines; model {model.name!r} samples at its "
                         f"samples' native size with its prompt conditioning")
    check_size_pair(height, width)
    listed = base.get("sigmas")
    if listed is not None:
        n = len(listed) - (1 if len(listed) > 1 and float(listed[-1]) == 0 else 0)
        own_shift = base.get("shift")
        if (steps is not None and steps != n) or (shift is not None and own_shift is not None
                                                  and float(shift) != float(own_shift)):
            base.pop("sigmas")  # explicit --steps / --shift other than the list's drop a preset's or model's σ list
            sources.pop("sigmas", None)
    for k, v in explicit.items():
        if v is not None:
            base[k], sources[k] = v, "option"
    if sigmas is not None:
        base["sigmas"], sources["sigmas"] = sigmas, "option"
        if is_pipeline and base.get("scheduler") != "euler":
            base["scheduler"], sources["scheduler"] = "euler", "option (--sigmas: FlowMatch Euler at each σ)"
    if base.get("sigmas") is not None:
        base["sigmas"] = [float(x) for x in base["sigmas"]]
        if base["sigmas"][-1] == 0:
            base["sigmas"] = base["sigmas"][:-1]  # a stored list may end at 0: the implied end of the last step
        base["steps"], sources["steps"] = len(base["sigmas"]), sources["sigmas"]
    else:
        base.pop("sigmas", None)
    if height is not None:
        base.pop("size", None)
        sources.pop("size", None)
    extra = {k: v for k, v in base.items() if k not in ("steps", "shift", "guidance")}
    shift = base["shift"]
    shift = None if shift is None or math.isnan(float(shift)) else float(shift)  # None: the scheduler's own
    sampling = Sampling(preset, int(base["steps"]), shift, float(base["guidance"]), extra, sources)
    if configure and "sigmas" in model.sampling_options:
        # the σ list the run takes, or () for none: a list an earlier resolve set on this model does not linger
        extra = {**extra, "sigmas": sampling.sigmas if sampling.sigmas is not None else ()}
    if configure and is_pipeline:
        model.configure_sampling(**extra, shift=sampling.shift)
    elif configure and "sigmas" in extra:
        model.configure_sampling(sigmas=extra["sigmas"], shift=sampling.shift)
    return sampling


def sampling_of(model) -> dict:
    """A model's own sampling (steps, shift, guidance, and its σ list where it has one)."""
    steps, shift, guidance = own(model)
    d = model.sampling_defaults()
    return {"steps": steps, "shift": shift, "guidance": guidance,
            **({"sigmas": [float(s) for s in d["sigmas"]]} if d.get("sigmas") is not None else {})}


def align_by_sigma(student_sigmas, teacher_sigmas) -> list[int]:
    """For each student step, the teacher step nearest in σ (ties: the earlier, noisier one)."""
    return [min(range(len(teacher_sigmas)), key=lambda j: (abs(float(teacher_sigmas[j]) - float(s)), j))
            for s in student_sigmas]


def step_sigmas_of(model) -> list[float] | None:
    """The σ of each of a model's own steps (its σ list, else the flow grid of its steps and shift); None where the
    scheduler keeps its own grid (a pipeline whose shift is its scheduler's)."""
    from .sampling import flow_sigmas

    samp = sampling_of(model)
    if samp.get("sigmas") is not None:
        return [round(float(x), 6) for x in samp["sigmas"] if x > 0][: samp["steps"]]
    if samp["shift"] is None:
        return None
    return [round(float(x), 6) for x in flow_sigmas(samp["steps"], samp["shift"])[:-1]]
