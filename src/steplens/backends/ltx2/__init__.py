"""The LTX-2 adapter: LTX2ImageToVideoPipeline (LTX-2, LTX-2.3, VBVR-LTX2.3) on the steplens backend layer.

Needs the 'wan' extra (diffusers >= 0.37 with LTX-2, transformers). `steplens.backends.ltx2.tiny` builds a tiny
offline pipeline.

    model = LTX2PipelineModel(pipe)                   # or load_model("diffusers:DIR") / load_ltx2_model(DIR)
    latents = model.generate(samples, seeds, sampling=resolve(model, steps=20, guidance=3.0), callback=..., hooks=...)
    pixels = model.decode(latents)                    # what every steplens experiment takes
    with trace_pipeline(pipe, hooks=Hooks(model).record("blocks.1", branch="uncond")) as tr:   # steplens.backends
        video, audio = pipe(**kwargs, return_dict=False)

What steplens does with LTX-2's audio, its guidance modes, its packed tokens and its dynamic shift: see
steplens.backends.ltx2.model (the user's view) and steplens.backends.ltx2.loop (the mechanics).
"""

from .loop import PIPELINES, LTX2Loop, check_pipeline, check_scheduler, decode_latents, denormalize, pack, unpack
from .model import LTX2PipelineModel

load_ltx2_model = LTX2PipelineModel.load

__all__ = ["LTX2Loop", "LTX2PipelineModel", "PIPELINES", "check_pipeline", "check_scheduler",
           "decode_latents", "denormalize", "load_ltx2_model", "pack", "unpack"]
