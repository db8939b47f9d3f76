"""Flow-matching samplers as small pure functions.

Convention (as in Wan / diffusers' FlowMatchEulerDiscreteScheduler): x_s = (1 - s) x0 + s noise,
the model predicts v = noise - x0, so x0_hat = x_s - s v. A sampler walks sigmas from 1 to 0
and hands every step to `callback(StepInfo)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from .context import StepContext, step_context


@dataclass
class StepInfo:
    i: int  # step index, 0-based
    sigma: float
    sigma_next: float
    x: torch.Tensor  # x_s, the latent the model saw at this step
    v: torch.Tensor  # the (guided) velocity
    x0: torch.Tensor  # x0_hat = x_s - sigma * v
    expert: str | None = None  # the expert that ran (two-expert models), None for one denoiser


def flow_sigmas(steps: int, shift: float = 1.0, device=None) -> torch.Tensor:
    """steps + 1 sigmas from 1 to 0, warped by Wan's shift: s' = shift s / (1 + (shift - 1) s)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift!r}")
    s = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return (shift * s / (1 + (shift - 1) * s)).to(torch.float32).to(device)


class StepHooks(Protocol):
    """What a sampler asks of `hooks`: edit points on the latent x_s and on x0_hat at each step."""

    def on_latent(self, ctx: StepContext, x: torch.Tensor) -> torch.Tensor: ...

    def on_velocity(self, ctx: StepContext, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...

    def on_x0(self, ctx: StepContext, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor: ...


def guided_velocity(model, x, sigma, cond, guidance: float = 1.0, uncond: Any = None, step: int = 0,
                    expert: str | None = None) -> torch.Tensor:
    """Classifier-free guidance, both branches in one batch (cond first, then uncond).

    The call runs inside a StepContext that tells hooks the step and the batch layout.
    """
    if guidance == 1.0 or uncond is None:
        with step_context(StepContext(step, float(sigma), ("cond",), expert)):
            return model.velocity(x, sigma, cond)
    with step_context(StepContext(step, float(sigma), ("cond", "uncond"), expert)):
        v_c, v_u = model.velocity(torch.cat([x, x]), sigma, cond.cat(uncond)).chunk(2)
    return v_u + guidance * (v_c - v_u)


def check_finite(x: torch.Tensor, what: str, step: int | None = None) -> None:
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        where = "" if step is None else f" at step {step}"
        raise FloatingPointError(f"{what} has {bad} non-finite values (NaN/inf){where}")


@torch.no_grad()
def sample_euler(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    cond: Any,
    callback: Callable[[StepInfo], None] | None = None,
    *,
    guidance: float = 1.0,
    uncond: Any = None,
    hooks: StepHooks | None = None,
) -> torch.Tensor:
    """Euler over the flow ODE.

    `hooks` (see steplens.hooks) may edit the latent x_s before the model sees it, then the velocity,
    then x0_hat (v is then re-derived as (x_s - x0_hat) / sigma); block hooks fire inside the model call.
    """
    check_finite(x, "the initial latent")
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        ctx = StepContext(i, s)
        if hooks is not None:
            x = hooks.on_latent(ctx, x)
        v = guided_velocity(model, x, s, cond, guidance, uncond, step=i)
        check_finite(v, "the model's velocity", i)
        if hooks is not None:
            v = hooks.on_velocity(ctx, x, v)
        x0 = x - s * v
        if hooks is not None:
            edited = hooks.on_x0(ctx, x, x0)
            if edited is not x0:
                x0, v = edited, (x - edited) / s
        if callback is not None:
            callback(StepInfo(i, s, s_next, x, v, x0))
        x = x + (s_next - s) * v
    return x


def initial_noise(shape, seeds: list[int] | int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise, one generator per sample so that sample i depends only on seeds[i]."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if len(seeds) != shape[0]:
        raise ValueError(f"{len(seeds)} seeds given for a batch of {shape[0]}")
    out = [torch.randn(shape[1:], generator=torch.Generator().manual_seed(int(s)), dtype=dtype) for s in seeds]
    return torch.stack(out).to(device)
