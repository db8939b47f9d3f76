"""The Wan adapter: WanImageToVideoPipeline (Wan2.1 I2V, Wan2.2-I2V-A14B's two experts, Wan2.2-TI2V-5B) on the
steplens backend layer (steplens.backends).

    model = WanPipelineModel(pipe)                  # or load_model("wan:DIR")
    latents = model.generate(samples, seeds, sampling=resolve(model, steps=20, shift=3.0, guidance=5.0), callback=...)
    pixels = model.decode(latents)                  # what every steplens experiment takes (see wan/model.py)
    with trace_pipeline(pipe, hooks=Hooks(model).record("blocks.1", branch="uncond")) as tr:   # steplens.backends
        video = pipe(**kwargs).frames
    WanTransformerModel(model).velocity(x, sigma, cond)  # the same transformers for steplens' own sampler

Needs the 'wan' extra (diffusers, transformers). `steplens.backends.wan.tiny` builds tiny offline pipelines.
"""

from .loop import PIPELINES, WanLoop, check_pipeline, decode_latents
from .model import WanPipelineModel
from .sampler import WanCond, WanTransformerModel

load_wan_model = WanPipelineModel.load

__all__ = ["PIPELINES", "WanCond", "WanLoop", "WanPipelineModel", "WanTransformerModel", "check_pipeline",
           "decode_latents", "load_wan_model"]
