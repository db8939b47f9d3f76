"""What a run samples with, resolved once: `Sampling`, a frozen value, and the presets it may start from.

    from steplens.presets import resolve
    sampling = resolve(model, "vbvr", steps=None, shift=None, guidance=None)   # explicit values override
    sampling.steps, sampling.shift, sampling.guidance, sampling.sources        # what the run will use, and why
    model.generate(samples, seeds, sampling=sampling)                           # the one channel to the model

`resolve` is pure: it reads the model (`sampling_defaults()`, its adapter's `presets`) and configures nothing. The
value goes with every call (`generate`, trace, hooks' step checks, probes, methods); a pipeline applies it for
that call only (a scheduler swapped in, an expert switch set, restored afterwards), so a model keeps no sampling
state between calls.

Presets are data each model family declares (`presets` on its model class: name -> `Preset`, a one-line
description and the settings); `pipeline` (the default: the model's own settings, read from the model) is every
model's. A preset a model does not have is refused naming the presets it has (`check_preset`).

An explicit σ list (`sigmas`: --sigmas, a preset's, or a model's own, e.g. a distilled student's
info["sampling"]) overrides steps and shift: the run takes len(sigmas) steps, one at each σ, the last step
landing on 0. Explicit --steps / --shift other than the list's (its length, the shift recorded beside it) drop a
preset's or model's σ list (the run then takes the flow grid of those); --sigmas with --steps or --shift is
refused where they disagree.

Explicit options (--steps, --shift, --guidance, --height/--width, --negative-prompt) override a preset; every
value's source ("preset NAME", "model", "option") is kept in `sources` and written into run configs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A named sampling a model family declares: a one-line description (shown in --help and refusals) and its
    settings (any of steps, shift, guidance, scheduler, boundary, negative_prompt, size, sigmas)."""

    description: str
    settings: Mapping = field(default_factory=dict)


PIPELINE = "pipeline"
UNIVERSAL = {PIPELINE: Preset("the model's own settings: its scheduler, steps, CFG, shift and expert switch, as "
                              "loaded or as its weights carry them")}


class Sources(Mapping):
    """Where each setting came from, in the order the settings were resolved: an immutable mapping."""

    __slots__ = ("_items",)

    def __init__(self, items=()):
        object.__setattr__(self, "_items", tuple((str(k), str(v)) for k, v in dict(items).items()))

    def __getitem__(self, key):
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self):
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other) -> bool:
        return dict(self) == dict(other) if isinstance(other, Mapping) else NotImplemented

    def __setattr__(self, *_):
        raise AttributeError("Sources is immutable")

    def __reduce__(self):
        return (Sources, (dict(self._items),))

    def __repr__(self) -> str:
        return f"Sources({dict(self._items)!r})"


SETTINGS = ("scheduler", "boundary", "negative_prompt", "size", "height", "width", "sigmas")  # beyond steps/shift/CFG


@dataclass(frozen=True)
class Sampling:
    """Every setting a run samples with, resolved once (`resolve`) and passed with every call.

    preset: the preset it started from; steps; shift (None: the scheduler's own, e.g. LTX-2's resolution-dependent
    shift); guidance (1 = CFG off); sigmas: an explicit σ list, one per step (no final 0), overriding steps and
    shift, or None; scheduler: the scheduler to run ("euler": FlowMatch Euler; a pipeline's own class name; None:
    the model's); boundary: the expert switch (a fraction of the training timesteps; two-expert pipelines);
    negative_prompt: CFG's uncond prompt (None: the model's); size: (height, width) of the call, or "first-frame"
    (the size of the samples' first_frame.png), or None (the samples' native frame upscaled); sources: where each
    value came from."""

    preset: str
    steps: int
    shift: float | None
    guidance: float
    sigmas: tuple[float, ...] | None = None
    scheduler: str | None = None
    boundary: float | None = None
    negative_prompt: str | None = None
    size: tuple[int, int] | str | None = None
    sources: Sources = field(default_factory=Sources)

    def __post_init__(self):
        if self.sigmas is not None and not isinstance(self.sigmas, tuple):
            object.__setattr__(self, "sigmas", tuple(float(x) for x in self.sigmas))
        if isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        if not isinstance(self.sources, Sources):
            object.__setattr__(self, "sources", Sources(self.sources))

    def _value(self, key: str):
        if key == "sigmas":
            return None if self.sigmas is None else list(self.sigmas)
        if key in ("height", "width"):
            return self.size[key == "width"] if isinstance(self.size, tuple) else None
        return getattr(self, key)

    @property
    def extra(self) -> dict:
        """The settings beyond steps, shift and guidance that were resolved (scheduler, boundary, negative_prompt,
        size or height/width, sigmas), in their order: empty for a model that samples with its own numbers only."""
        return {k: self._value(k) for k in self.sources if k in SETTINGS}

    def describe(self) -> dict:
        """For run configs and reports: every value and its source."""
        extra = self.extra
        return {"preset": self.preset, "steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                **{k: v for k, v in extra.items() if k != "negative_prompt"},
                **({"negative_prompt": extra["negative_prompt"]} if "negative_prompt" in extra else {}),
                "sources": dict(self.sources)}

    @classmethod
    def from_description(cls, d: Mapping) -> "Sampling":
        """The value a `describe()` wrote (a run config's "sampling"): the same Sampling again."""
        size = (int(d["height"]), int(d["width"])) if d.get("height") is not None else d.get("size")
        return cls(d["preset"], int(d["steps"]), None if d.get("shift") is None else float(d["shift"]),
                   float(d["guidance"]), sigmas=d.get("sigmas"), scheduler=d.get("scheduler"),
                   boundary=d.get("boundary"), negative_prompt=d.get("negative_prompt"), size=size,
                   sources=Sources(d.get("sources") or {}))

    def with_numbers(self, steps: int | None = None, shift: float | None = None,
                     guidance: float | None = None) -> "Sampling":
        """This sampling with other steps, shift or guidance (None: kept), as an option would set them: a σ list
        goes where the steps or the shift are not its own (the run then takes the flow grid of those)."""
        upd, src = {}, dict(self.sources)
        for k, v in (("steps", steps), ("shift", shift), ("guidance", guidance)):
            if v is not None and v != getattr(self, k):
                upd[k], src[k] = (int(v) if k == "steps" else float(v)), "option"
        if not upd:
            return self
        if self.sigmas is not None and ("steps" in upd or "shift" in upd):
            upd["sigmas"] = None
            src.pop("sigmas", None)
        return dataclasses.replace(self, **upd, sources=Sources(src))


def shift_sigma(t: float, shift: float, num_train_timesteps: int = 1000) -> float:
    """σ of the shifted flow grid at timestep t: shift·s / (1 + (shift − 1)·s), s = t / num_train_timesteps."""
    s = t / num_train_timesteps
    return shift * s / (1 + (shift - 1) * s)


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


def presets_of(model) -> dict[str, Preset]:
    """The presets a model (or a model class) has: `pipeline`, every model's, and those its family declares."""
    return {**UNIVERSAL, **(getattr(model, "presets", None) or {})}


def check_preset(name: str | None, presets: Mapping[str, Preset] = UNIVERSAL, what: str = "this model",
                 elsewhere: Mapping[str, tuple[str, Preset]] | None = None) -> str:
    """`name` (None: `pipeline`) if it is one of `presets` (the model's: `presets_of`), else the one refusal: the
    presets `what` has, and, where another family declares the name (`elsewhere`: name -> (family, Preset)), what
    it is and whose."""
    name = name or PIPELINE
    if name in presets:
        return name
    listed = "; ".join(f"{k} ({p.description})" for k, p in presets.items())
    owner = (elsewhere or {}).get(name)
    if owner is not None:
        family, p = owner
        raise ValueError(f"--preset {name} is {p.description} and applies to {family} pipelines; {what} has presets: "
                         f"{listed}")
    raise ValueError(f"--preset {name!r} does not exist; presets: {listed}" if elsewhere is not None else
                     f"--preset {name!r} is not a preset of {what}; its presets: {listed}")


def resolve(model, preset: str | None = None, steps: int | None = None, shift: float | None = None,
            guidance: float | None = None, height: int | None = None, width: int | None = None,
            negative_prompt: str | None = None, sigmas=None) -> Sampling:
    """The settings a run on `model` uses under `preset` (one of `presets_of(model)`), explicit values overriding
    it; pure: the model is read, never changed. `sigmas`: an explicit σ list (--sigmas) overriding steps and shift
    (see the module doc)."""
    is_pipeline = model.is_pipeline  # the model contract (steplens.contract)
    preset = check_preset(preset, presets_of(model), f"model {model.name!r} ({model.backend})")
    sigmas = check_sigma_options(sigmas, steps, shift)
    own = dict(model.sampling_defaults())
    settings = dict(presets_of(model)[preset].settings)
    if sigmas is not None or settings.get("sigmas") is not None:
        if is_pipeline and "sigmas" not in model.sampling_options:
            raise ValueError(f"{'--sigmas' if sigmas is not None else '--preset ' + preset}: model {model.name!r} "
                             f"({model.backend}) does not take an explicit σ list: its pipeline computes its own "
                             f"schedule; use --steps and --shift")
    base, origin = {**own, **settings}, ("model" if preset == PIPELINE else f"preset {preset}")
    if "steps" in settings and "sigmas" not in settings:
        base.pop("sigmas", None)  # the preset's grid of steps, not a σ list the model had
    if "boundary" in settings and not model.has_two_experts:
        base.pop("boundary")  # one expert: no switch
    sources = {k: origin for k in base}
    explicit = {"steps": steps, "shift": shift, "guidance": guidance, "height": height, "width": width,
                "negative_prompt": negative_prompt}
    if not is_pipeline and (height is not None or width is not None or negative_prompt is not None):
        given = [f"--{k.replace('_', '-')}" for k in ("height", "width", "negative_prompt") if explicit[k] is not None]
        raise ValueError(f"{', '.join(given)} apply to diffusers:PATH pipelines; model {model.name!r} samples at its "
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
        sources.pop("sigmas", None)
    if height is not None:
        base.pop("size", None)
        sources.pop("size", None)
    shift = base["shift"]
    shift = None if shift is None or math.isnan(float(shift)) else float(shift)  # None: the scheduler's own
    size = (int(base["height"]), int(base["width"])) if base.get("height") is not None else base.get("size")
    return Sampling(preset, int(base["steps"]), shift, float(base["guidance"]), sigmas=base.get("sigmas"),
                    scheduler=base.get("scheduler"), boundary=base.get("boundary"),
                    negative_prompt=base.get("negative_prompt"), size=size, sources=Sources(sources))


def sampled(model, sampling: Sampling | None = None) -> Sampling:
    """`sampling`, or the model's own (`resolve(model)`) where None: what a call without one samples with."""
    return resolve(model) if sampling is None else sampling


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
