"""The diffusers LTX-2 backend: trace and hook LTX2ImageToVideoPipeline (LTX-2, LTX-2.3, VBVR-LTX2.3) along its steps.

Needs the 'wan' extra (diffusers >= 0.37 with LTX-2, transformers). `steplens.ltx2.tiny` builds a tiny offline
pipeline.

    model = LTX2PipelineModel(pipe)                   # or load_ltx2_model(DIR, dtype="bfloat16")
    latents = model.generate(samples, seeds, steps=20, guidance=3.0, callback=..., hooks=...)
    pixels = model.decode(latents)                    # what every steplens experiment takes

    hooks = Hooks(model).record("blocks.1", steps=[0, 3], branch="uncond")
    with attach(pipe, hooks):                         # or trace_ltx2(pipe, hooks=hooks) to record the steps too
        video, audio = pipe(**kwargs, return_dict=False)

What steplens does with LTX-2's audio, its guidance modes, its packed tokens and its dynamic shift: see
steplens.ltx2.model (the user's view) and steplens.ltx2.loop (the mechanics).
"""

from .decode import decode_latents, denormalize
from .load import load_ltx2_model, load_ltx2_pipeline, read_ltx2_config
from .loop import SUPPORTED_PIPELINES, LTX2Loop, check_pipeline, check_scheduler, pack, unpack
from .model import BlockView, LTX2PipelineModel, scheduler_with_shift
from .trace import LTX2Trace, attach, trace_ltx2

__all__ = ["BlockView", "LTX2Loop", "LTX2PipelineModel", "LTX2Trace", "SUPPORTED_PIPELINES", "attach",
           "check_pipeline", "check_scheduler", "decode_latents", "denormalize", "load_ltx2_model",
           "load_ltx2_pipeline", "pack", "read_ltx2_config", "scheduler_with_shift", "trace_ltx2", "unpack"]
