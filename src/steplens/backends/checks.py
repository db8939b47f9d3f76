"""The checks every diffusers backend makes before any work: schedulers, shifts, call inputs, dtypes, devices.

Each refuses bad input with an error naming the value and what is allowed.
"""

from __future__ import annotations

import importlib.util
import math
import numbers

import torch

from .steps import transformer_components

SUPPORTED_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler", "UniPCMultistepScheduler")
SHIFT_KEYS = {"FlowMatchEulerDiscreteScheduler": "shift", "UniPCMultistepScheduler": "flow_shift"}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OFFLOADS = ("none", "model", "sequential")


def check_pipeline_class(pipe, classes: tuple[str, ...], family: str, variants: str = "") -> None:
    """Refuse a pipeline that is not of (a subclass of) one of the diffusers `classes` (a TypeError naming it and the
    supported ones) or has no transformer (a ValueError)."""
    if not any(k.__name__ in classes for k in type(pipe).__mro__):
        raise TypeError(f"steplens' {family} backend does not support the pipeline class {type(pipe).__name__}; "
                        f"supported: {', '.join(classes)}{variants}")
    if not transformer_components(pipe):
        raise ValueError(f"the {type(pipe).__name__} has no transformer (no `transformer*` component)")


def check_scheduler(scheduler) -> str:
    """"euler" or "unipc" for a scheduler whose steps steplens reads as flow matching (x0_hat = x_s - sigma v);
    otherwise an error naming it and what is supported."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return "euler"
    if isinstance(scheduler, UniPCMultistepScheduler):
        cfg = scheduler.config
        problems = []
        if cfg.prediction_type != "flow_prediction":
            problems.append(f"prediction_type={cfg.prediction_type!r} (needs 'flow_prediction')")
        if not cfg.predict_x0:
            problems.append("predict_x0=False (needs True)")
        if cfg.thresholding:
            problems.append("thresholding=True (x0_hat would not be x_s - sigma v)")
        if problems:
            raise ValueError("steplens supports UniPCMultistepScheduler only in flow-matching form "
                             "(prediction_type='flow_prediction', use_flow_sigmas=True); this one has "
                             + "; ".join(problems))
        return "unipc"
    raise TypeError(f"steplens does not trace or hook the scheduler {type(scheduler).__name__} (it needs flow "
                    f"matching, x0_hat = x_s - sigma v); supported: {', '.join(SUPPORTED_SCHEDULERS)} (set e.g. "
                    f"pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config), or "
                    f"--preset vbvr)")


def check_euler(scheduler, family: str) -> None:
    """Refuse all but a deterministic FlowMatch Euler scheduler (for families that run only that one)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        raise TypeError(f"steplens' {family} backend supports FlowMatchEulerDiscreteScheduler ({family}'s own "
                        f"scheduler), not {type(scheduler).__name__}")
    cfg = scheduler.config
    if cfg.stochastic_sampling or cfg.invert_sigmas:
        raise ValueError(f"steplens' {family} backend needs a deterministic FlowMatch Euler scheduler "
                         f"(stochastic_sampling=False, invert_sigmas=False); this one has stochastic_sampling="
                         f"{cfg.stochastic_sampling}, invert_sigmas={cfg.invert_sigmas}")


def scheduler_shift(scheduler) -> float:
    """The scheduler's fixed flow shift; NaN when it has none to read (dynamic shifting, another scheduler)."""
    key = SHIFT_KEYS.get(type(scheduler).__name__)
    if key is None or getattr(scheduler.config, "use_dynamic_shifting", False):
        return float("nan")
    return float(scheduler.shift if key == "shift" else scheduler.config.flow_shift)


def scheduler_with_shift(scheduler, shift: float | None, *, dynamic: bool = False):
    """The scheduler itself if its flow shift is `shift`, else a copy (from its config) with that shift.

    dynamic=False: a scheduler with dynamic (resolution-dependent) shifting is refused. dynamic=True (families whose
    own schedule is dynamic, e.g. LTX-2): shift None / NaN keeps the scheduler's own shift, a number replaces it by
    that fixed shift (use_dynamic_shifting=False)."""
    if dynamic and (shift is None or (isinstance(shift, float) and math.isnan(shift))):
        return scheduler
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not shift > 0:
        own = ", or None for the scheduler's own (dynamic) shift" if dynamic else ""
        raise ValueError(f"shift must be a number > 0{own}; got {shift!r}")
    name = type(scheduler).__name__
    key = SHIFT_KEYS.get(name)
    cfg = scheduler.config
    if key is None:
        raise TypeError(f"cannot set the flow shift of a {name}; steplens sets it on {', '.join(SHIFT_KEYS)} "
                        f"(e.g. pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config))")
    if getattr(cfg, "use_dynamic_shifting", False):
        if not dynamic:
            raise ValueError(f"the pipeline's {name} uses dynamic (resolution-dependent) shifting; steplens needs a "
                             f"fixed shift (use_dynamic_shifting=False)")
        return type(scheduler).from_config(cfg, use_dynamic_shifting=False, **{key: float(shift)})
    if key == "flow_shift" and not cfg.use_flow_sigmas:
        raise ValueError(f"the pipeline's {name} does not use flow sigmas (use_flow_sigmas=False), so it has no "
                         f"flow shift to set; flow-matching pipelines run it with use_flow_sigmas=True")
    if scheduler_shift(scheduler) == float(shift):
        return scheduler
    return type(scheduler).from_config(cfg, **{key: float(shift)})


def check_call(samples, seeds, steps, guidance, family: str) -> list[int]:
    """The seeds as ints; refuses a seed count that is not the sample count, steps that are not an integer >= 1,
    and guidance < 1 (diffusers pipelines apply CFG only above 1)."""
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(samples):
        raise ValueError(f"{len(seeds)} seeds given for {len(samples)} samples")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
    if guidance < 1.0:
        raise ValueError(f"guidance {guidance} < 1: the {family} pipeline applies classifier-free guidance only for "
                         f"guidance > 1 (1 = off)")
    return seeds


def check_upscale(scale, min_size) -> None:
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if min_size is not None and min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size!r}")


def check_size(height, width, multiple: tuple[int, int], why: str) -> tuple[int, int]:
    """(height, width) of a fixed call size: both or neither, positive multiples of the pipeline's."""
    if (height is None) != (width is None):
        raise ValueError("height and width go together")
    mh, mw = multiple
    for what, v, m in (("--height", height, mh), ("--width", width, mw)):
        if isinstance(v, bool) or not isinstance(v, int) or v < m or v % m:
            raise ValueError(f"{what} {v!r}: must be a positive multiple of {m} for this pipeline ({why})")
    return int(height), int(width)


def check_embeddings(emb, n: int, dim: int, expects: str) -> None:
    """A prompt provider's output: a (n, L, dim) tensor; `expects` ("... expects {dim}") says who needs that dim."""
    if not isinstance(emb, torch.Tensor) or emb.dim() != 3 or emb.shape[0] != n:
        raise ValueError(f"the prompt_embeds provider must return a (B, L, D) tensor for {n} texts, got "
                         f"{getattr(emb, 'shape', type(emb).__name__)}")
    if emb.shape[-1] != dim:
        raise ValueError(f"the prompt_embeds provider returned D = {emb.shape[-1]}; {expects.format(dim=dim)}")


def check_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif str(dtype) in DTYPES:
        return DTYPES[str(dtype)]
    raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")


def check_offload(offload: str | None, device: str = "cpu") -> str:
    offload = offload or "none"
    if offload not in OFFLOADS:
        raise ValueError(f"unknown offload {offload!r}; allowed: {', '.join(OFFLOADS)}")
    if offload != "none":
        if importlib.util.find_spec("accelerate") is None:
            raise ValueError(f"offload={offload!r} needs accelerate: pip install accelerate")
        if torch.device(device).type == "cpu":
            raise ValueError(f"offload={offload!r} moves components between CPU memory and an accelerator; pass an "
                             f"accelerator device (e.g. --device cuda), or use offload 'none' to run on the CPU")
    return offload


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev
