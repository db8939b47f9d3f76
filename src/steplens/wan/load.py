"""Loading a diffusers Wan image-to-video pipeline for `--model wan:PATH`.

    pipe = load_pipeline("runs/wan22-folder", device="cuda", dtype="bfloat16", offload="model")
    model = load_wan_model("Wan-AI/Wan2.2-I2V-A14B-Diffusers", device="cuda", dtype="bfloat16")  # hub id, if reachable

Supported: Wan2.1-I2V, Wan2.2-I2V-A14B, and Wan2.2-TI2V-5B (expand_timesteps=True; its hub folder names the class
WanPipeline, and is loaded as a WanImageToVideoPipeline).

PATH is a local folder written by `pipe.save_pretrained(PATH)` (or a hub id where the hub can be reached).
Its model_index.json is read first, so a folder holding another pipeline is refused before any weights load.

dtype: "float32" (the default, as diffusers loads), "bfloat16" or "float16" for the transformers and the text
encoder; the VAE and the CLIP image encoder stay float32, as the Wan model cards load them.
offload: "none" (the whole pipeline on `device`), "model" (enable_model_cpu_offload: one component at a time
on the accelerator) or "sequential" (enable_sequential_cpu_offload: submodule by submodule, least memory,
slowest); both need accelerate and an accelerator device.
"""

from __future__ import annotations

import importlib.util

import torch

from .model import SUPPORTED_PIPELINES, WanPipelineModel, check_pipeline

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OFFLOADS = ("none", "model", "sequential")
FLOAT32_COMPONENTS = ("vae", "image_encoder")


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
            raise ValueError(f"offload={offload!r} needs accelerate: pip install accelerate (or 'steplens[wan]')")
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


def read_pipeline_config(path: str) -> tuple[str, dict]:
    """(where to load from, model_index.json) of a local pipeline folder or a hub id; refuses what is not a
    supported Wan image-to-video pipeline, naming the class found."""
    from ..pipelines import LOADERS, read_index

    source, config = read_index(path, "Wan", f"wan:{path}")
    cls = config.get("_class_name")
    if cls == "WanPipeline" and config.get("expand_timesteps"):  # the hub's Wan2.2-TI2V-5B: loaded for image-to-video
        cls = "WanImageToVideoPipeline"
    if cls not in SUPPORTED_PIPELINES:
        raise ValueError(f"wan:{path} holds a {cls or 'pipeline without _class_name'}; steplens' Wan backend supports "
                         f"{', '.join(SUPPORTED_PIPELINES)} (Wan2.1-I2V, Wan2.2-I2V-A14B, Wan2.2-TI2V-5B); other "
                         f"backends load {', '.join(LOADERS)}")
    return source, config


def load_pipeline(path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                  offload: str | None = "none"):
    """A WanImageToVideoPipeline from a local folder (or hub id), in `dtype`, placed on `device` or offloaded."""
    torch_dtype = check_dtype(dtype)
    offload = check_offload(offload, device)
    dev = check_device(device)
    source, config = read_pipeline_config(path)
    try:
        from diffusers import WanImageToVideoPipeline
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers Wan backend needs the 'wan' extra: pip install 'steplens[wan]'") from e
    from ..pipelines import load_folder

    return load_folder(WanImageToVideoPipeline, source, config, torch_dtype, FLOAT32_COMPONENTS, check_pipeline,
                       offload, dev, "Wan")


def load_wan_model(path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
                   offload: str | None = "none", name: str | None = None, lora=None, lora_2=None,
                   **model_kwargs) -> WanPipelineModel:
    """load_pipeline(...) wrapped as a WanPipelineModel (the steplens model interface). `lora` / `lora_2`:
    'PATH[:SCALE]' LoRAs for the first and the second transformer (steplens.wan.lora)."""
    from .lora import apply_loras, parse_spec

    for spec, option in ((lora, "--lora"), (lora_2, "--lora-2")):  # named before any weights load
        if spec is not None:
            parse_spec(spec, option)
    pipe = load_pipeline(path, device, dtype, offload)
    loras = apply_loras(pipe, lora, lora_2)
    info = {"path": str(path), "dtype": str(check_dtype(dtype)).replace("torch.", ""), "offload": offload or "none",
            "device": str(device), "loras": loras}
    model = WanPipelineModel(pipe, name=name or f"wan:{path}", info=info, **model_kwargs)
    model.check_prompt_encoding()  # every steplens command encodes prompts: say now if ftfy is missing
    if model.prompt_source == "hashed":
        import warnings

        warnings.warn(f"wan:{path} has no text encoder: prompts are embedded by steplens.wan.prompts."
                      f"HashedPromptEmbeds (deterministic, but meaningless to the model)", stacklevel=2)
    return model
