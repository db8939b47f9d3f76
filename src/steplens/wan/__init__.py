"""The diffusers Wan backend: trace real Wan pipelines (Wan2.1 / Wan2.2) along their denoising steps.

Needs the 'wan' extra (diffusers, transformers). `steplens.wan.tiny` builds tiny offline pipelines.
"""

from .trace import PipelineTrace, WanRun, WanStep, decode_latents, trace_pipeline, transformer_components

__all__ = ["PipelineTrace", "WanRun", "WanStep", "decode_latents", "trace_pipeline", "transformer_components"]
