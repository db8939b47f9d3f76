"""A diffusers Wan pipeline seen as a steplens model: what `steplens.hooks.Hooks` needs to hook it.

    model = WanPipelineModel(pipe)      # WanImageToVideoPipeline: Wan2.1 I2V, or Wan2.2-A14B's two experts
    model.block_names                   # ["blocks.0", …, "blocks.39"]
    model.modules()                     # {"transformer": …, "transformer_2": …} (the experts that exist)
    hooks = Hooks(model).record("blocks.3", steps=[0, 5], branch="uncond", expert="transformer_2")
    video = model.run(hooks, **pipe_kwargs).frames      # = with attach(pipe, hooks): pipe(**pipe_kwargs)

Module hooks go on each expert's `blocks.i` (WanTransformerBlock: its output is the residual stream
(B, L, D), tokens ordered frame, h, w); the sampler points `latent` and `x0` and the step context are
provided by steplens.wan.hooks.attach, which wraps the pipeline while the hooks are attached.
"""

from __future__ import annotations

import torch

from .trace import transformer_components

SUPPORTED_PIPELINES = ("WanImageToVideoPipeline",)


def check_pipeline(pipe) -> None:
    """Raise a TypeError/ValueError naming what is not supported about this pipeline."""
    try:
        from diffusers import WanImageToVideoPipeline
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers Wan backend needs the 'wan' extra: pip install 'steplens[wan]'") from e
    if not isinstance(pipe, WanImageToVideoPipeline):
        raise TypeError(f"steplens.wan hooks do not support the pipeline class {type(pipe).__name__}; supported: "
                        f"{', '.join(SUPPORTED_PIPELINES)} (Wan2.1 I2V with one transformer, Wan2.2-A14B I2V with "
                        f"two experts `transformer`/`transformer_2`)")
    if getattr(pipe.config, "expand_timesteps", False):
        raise ValueError("steplens.wan hooks do not support WanImageToVideoPipeline with expand_timesteps=True "
                         "(Wan2.2-TI2V-5B: the first frame is blended into the latent and the timestep is per token); "
                         "supported: Wan2.1 I2V and Wan2.2-A14B I2V (expand_timesteps=False)")
    if not transformer_components(pipe):
        raise ValueError(f"the {type(pipe).__name__} has no transformer (neither `transformer` nor `transformer_2`)")


class WanPipelineModel:
    """The adapter `Hooks` talks to: `block_names`, `modules()` -> {expert name: nn.Module}, `name`."""

    backend = "wan"

    def __init__(self, pipe, name: str | None = None):
        check_pipeline(pipe)
        self.pipe = pipe
        experts = self.modules()
        self.name = name or getattr(pipe, "name_or_path", None) or (
            f"{type(pipe).__name__}({'+'.join(experts)})")

    def modules(self) -> dict[str, torch.nn.Module]:
        """The pipeline's denoisers by component name: {"transformer": …} for Wan2.1, plus "transformer_2"
        for Wan2.2-A14B (the low-noise expert, used once t < boundary_ratio · num_train_timesteps)."""
        return transformer_components(self.pipe)

    @property
    def experts(self) -> list[str]:
        return list(self.modules())

    @property
    def block_names(self) -> list[str]:
        """`blocks.i` of the (first) transformer; Hooks checks that each expert has the point it hooks."""
        first = next(iter(self.modules().values()))
        return [f"blocks.{i}" for i in range(len(first.blocks))]

    def run(self, hooks=None, **pipe_kwargs):
        """Call the pipeline with `hooks` attached (steplens.wan.hooks.attach); returns the pipeline's output."""
        if hooks is None:
            return self.pipe(**pipe_kwargs)
        from .hooks import attach

        with attach(self.pipe, hooks):
            return self.pipe(**pipe_kwargs)

    def __repr__(self) -> str:
        return f"WanPipelineModel({self.name!r}, experts={self.experts}, blocks={len(self.block_names)})"
