"""The diffusers Wan backend: trace and hook real Wan pipelines (Wan2.1 I2V, Wan2.2-I2V-A14B, Wan2.2-TI2V-5B)
along their denoising steps.

Needs the 'wan' extra (diffusers, transformers). `steplens.wan.tiny` builds tiny offline pipelines.

    hooks = Hooks(WanPipelineModel(pipe)).record("blocks.1", steps=[0, 3], branch="uncond")
    with attach(pipe, hooks):
        video = pipe(**kwargs).frames

    model = WanPipelineModel(pipe)                  # or load_model("wan:DIR") / load_wan_model(DIR, dtype=...)
    latents = model.generate(samples, seeds, steps=20, shift=3.0, guidance=5.0, callback=..., hooks=...)
    pixels = model.decode(latents)                  # what every steplens experiment takes (see wan/model.py)
    WanTransformerModel(model).velocity(x, sigma, cond)  # the same transformers for steplens' own sampler
"""

from .hooks import SUPPORTED_SCHEDULERS, PipelineHooks, attach, check_scheduler
from .model import SUPPORTED_PIPELINES, WanPipelineModel, check_pipeline
from .load import load_pipeline, load_wan_model
from .prompts import HashedPromptEmbeds
from .sampler import WanCond, WanTransformerModel
from .trace import PipelineTrace, WanRun, WanStep, decode_latents, trace_pipeline, transformer_components

__all__ = ["HashedPromptEmbeds", "PipelineHooks", "PipelineTrace", "SUPPORTED_PIPELINES", "SUPPORTED_SCHEDULERS",
           "WanCond", "WanPipelineModel", "WanRun", "WanStep", "WanTransformerModel", "attach", "check_pipeline",
           "check_scheduler", "decode_latents", "load_pipeline", "load_wan_model", "trace_pipeline",
           "transformer_components"]
