"""The diffusers Wan backend: trace and hook real Wan pipelines (Wan2.1 / Wan2.2) along their denoising steps.

Needs the 'wan' extra (diffusers, transformers). `steplens.wan.tiny` builds tiny offline pipelines.

    hooks = Hooks(WanPipelineModel(pipe)).record("blocks.1", steps=[0, 3], branch="uncond")
    with attach(pipe, hooks):
        video = pipe(**kwargs).frames
"""

from .hooks import SUPPORTED_SCHEDULERS, PipelineHooks, attach, check_scheduler
from .model import SUPPORTED_PIPELINES, WanPipelineModel, check_pipeline
from .trace import PipelineTrace, WanRun, WanStep, decode_latents, trace_pipeline, transformer_components

__all__ = ["PipelineHooks", "PipelineTrace", "SUPPORTED_PIPELINES", "SUPPORTED_SCHEDULERS", "WanPipelineModel",
           "WanRun", "WanStep", "attach", "check_pipeline", "check_scheduler", "decode_latents", "trace_pipeline",
           "transformer_components"]
