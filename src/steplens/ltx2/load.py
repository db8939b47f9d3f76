"""Loading a diffusers LTX-2 image-to-video pipeline folder as a steplens model.

    model = load_ltx2_model("runs/ltx23-folder", device="cuda", dtype="bfloat16")

PATH is a local folder written by `pipe.save_pretrained(PATH)` whose model_index.json names
LTX2ImageToVideoPipeline (or a hub id where the hub can be reached). dtype applies to the transformer, the
connectors and the text encoder; the video and audio VAEs and the vocoder stay float32. offload as for Wan
("none", "model", "sequential"; the latter two need accelerate and an accelerator).
"""

from __future__ import annotations


import torch

from .loop import SUPPORTED_PIPELINES, check_pipeline
from .model import LTX2PipelineModel

FLOAT32_COMPONENTS = ("vae", "audio_vae", "vocoder")


def read_ltx2_config(path: str) -> tuple[str, dict]:
    """(where to load from, model_index.json); refuses a folder that is not an LTX-2 image-to-video pipeline."""
    from ..pipelines import read_index

    source, config = read_index(path, "LTX-2")
    cls = config.get("_class_name")
    if cls not in SUPPORTED_PIPELINES:
        raise ValueError(f"{path} holds a {cls or 'pipeline without _class_name'}; steplens' LTX-2 backend supports "
                         f"{', '.join(SUPPORTED_PIPELINES)}")
    return source, config


def load_ltx2_pipeline(path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                       offload: str | None = "none"):
    """An LTX2ImageToVideoPipeline from a local folder (or hub id), in `dtype`, placed on `device` or offloaded."""
    from ..wan.load import check_device, check_dtype, check_offload

    torch_dtype = check_dtype(dtype)
    offload = check_offload(offload, device)
    dev = check_device(device)
    source, config = read_ltx2_config(path)
    from diffusers import LTX2ImageToVideoPipeline

    from ..pipelines import load_folder

    return load_folder(LTX2ImageToVideoPipeline, source, config, torch_dtype, FLOAT32_COMPONENTS, check_pipeline,
                       offload, dev, "LTX-2")


def load_ltx2_model(path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                    offload: str | None = "none", name: str | None = None, lora=None, lora_2=None,
                    **model_kwargs) -> LTX2PipelineModel:
    """load_ltx2_pipeline(...) wrapped as an LTX2PipelineModel. LoRAs are not supported yet for LTX-2 (`lora`), and
    LTX-2 has one transformer (`lora_2` is refused)."""
    if lora_2 is not None:
        raise ValueError(f"--lora-2 {lora_2!r}: LTX-2 has one transformer; --lora-2 is for Wan2.2's second expert")
    if lora is not None:
        raise ValueError(f"--lora {lora!r}: LoRAs are not supported yet for LTX-2 (steplens.ltx2); merge the LoRA into "
                         f"the transformer and save the pipeline folder instead")
    pipe = load_ltx2_pipeline(path, device, dtype, offload)
    from ..wan.load import check_dtype

    info = {"path": str(path), "dtype": str(check_dtype(dtype)).replace("torch.", ""), "offload": offload or "none",
            "device": str(device), "loras": []}
    model = LTX2PipelineModel(pipe, name=name or f"wan:{path}", info=info, **model_kwargs)
    if model.prompt_source == "hashed":
        import warnings

        warnings.warn(f"{path} has no text encoder: prompts are embedded by steplens.wan.prompts.HashedPromptEmbeds "
                      f"(deterministic, but meaningless to the model)", stacklevel=2)
    return model
