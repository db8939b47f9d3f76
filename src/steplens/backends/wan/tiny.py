"""Tiny but real diffusers Wan pipelines, built offline from configs (nothing is downloaded).

They use the real diffusers classes (WanImageToVideoPipeline, WanTransformer3DModel, AutoencoderKLWan,
the real schedulers) with a handful of parameters, so that tracing code can be tested bit for bit
against the real pipeline on a laptop CPU. Weights are random, drawn from `seed`; the global torch RNG
is left as it was.

    pipe = tiny_wan22_i2v(seed=0)                  # two experts, boundary_ratio 0.875, no image encoder
    pipe = tiny_wan21_i2v(seed=0)                  # one transformer + a tiny CLIP vision encoder
    pipe = tiny_wan22_ti2v(seed=0)                 # TI2V-5B-style: expand_timesteps, Wan2.2 VAE (z 48, x16)
    video = pipe(**tiny_inputs(pipe, seed=0)).frames
"""

from __future__ import annotations

import numpy as np
import torch

# transformer: 2 heads x 12 dims (inner 24), in 36 = 16 noisy + 4 mask + 16 first-frame latents
TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=36,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
# Wan2.2's VAE (TI2V-5B): residual blocks, 2x2 pixel patches in (12 = 3 x 2 x 2 channels), z 48, 16x spatial
VAE22 = dict(base_dim=4, decoder_base_dim=4, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
             temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
             scale_factor_spatial=16, scale_factor_temporal=4,
             latents_mean=[(i % 7 - 3) / 10 for i in range(48)], latents_std=[1 + (i % 5) / 4 for i in range(48)])
CLIP_VISION = dict(hidden_size=8, projection_dim=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                   image_size=32, patch_size=8, num_channels=3)
TEXT_LEN = 8  # tokens of the prompt embeddings tiny_inputs passes (the real Wan pads to 512)
SHIFT = 3.0  # with 4 steps both schedulers put steps on both sides of boundary_ratio 0.875


def _require():
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401  (diffusers' Wan pipelines import it even without a text encoder)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers Wan backend needs the 'wan' extra: pip install 'steplens[wan]'") from e


def make_scheduler(kind: str = "euler", shift: float = SHIFT):
    """The two schedulers Wan is run with: "euler" (FlowMatchEulerDiscreteScheduler) or "unipc"
    (UniPCMultistepScheduler with flow sigmas, as in the hub's Wan configs)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    if kind == "unipc":
        return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
    raise ValueError(f"scheduler must be 'euler' or 'unipc', got {kind!r}")


def _transformer(seed: int, **extra):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(**{**TRANSFORMER, **extra}).eval()


def _vae(seed: int, config: dict = VAE):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(**config).eval()


def tiny_wan22_i2v(seed: int = 0, scheduler: str = "euler", shift: float = SHIFT, num_layers: int = 2):
    """Wan2.2-A14B-style image-to-video: two experts `transformer` (high noise, t >= 875) and
    `transformer_2` (low noise), no image encoder, no text encoder (pass prompt embeddings)."""
    _require()
    from diffusers import WanImageToVideoPipeline

    with torch.random.fork_rng(devices=[]):
        vae = _vae(seed)
        high = _transformer(seed + 1, num_layers=num_layers)
        low = _transformer(seed + 2, num_layers=num_layers)
    return WanImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae, scheduler=make_scheduler(scheduler, shift),
        image_processor=None, image_encoder=None, transformer=high, transformer_2=low, boundary_ratio=0.875,
    )


def _clip(seed: int):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    try:  # transformers >= 5 without torchvision: the PIL backend, imported directly (no fallback warning)
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:  # older transformers
        from transformers import CLIPImageProcessor as Processor

    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION)).eval()
    size = CLIP_VISION["image_size"]
    processor = Processor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return encoder, processor


def tiny_wan21_i2v(seed: int = 0, scheduler: str = "euler", shift: float = SHIFT, num_layers: int = 2):
    """Wan2.1-I2V-style: one transformer conditioned on the image through a (tiny) CLIP vision encoder;
    the pipeline feeds the encoder's penultimate hidden states to the transformer's image cross-attention."""
    _require()
    from diffusers import WanImageToVideoPipeline

    inner = TRANSFORMER["num_attention_heads"] * TRANSFORMER["attention_head_dim"]
    with torch.random.fork_rng(devices=[]):
        vae = _vae(seed)
        transformer = _transformer(seed + 1, num_layers=num_layers, image_dim=CLIP_VISION["hidden_size"],
                                   added_kv_proj_dim=inner)
        encoder, processor = _clip(seed + 3)
    return WanImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae, scheduler=make_scheduler(scheduler, shift),
        image_processor=processor, image_encoder=encoder, transformer=transformer, transformer_2=None,
        boundary_ratio=None,
    )


def tiny_wan22_ti2v(seed: int = 0, scheduler: str = "euler", shift: float = SHIFT, num_layers: int = 2):
    """Wan2.2-TI2V-5B-style: WanImageToVideoPipeline(expand_timesteps=True) with Wan2.2's VAE (z_dim 48, 16x
    spatial compression), one transformer of 48 input channels (no mask / condition channels: the first latent
    frame is replaced by the image latent, and its tokens get timestep 0), no image encoder, no text encoder.
    Frame sides must be multiples of 32 (16 x patch 2)."""
    _require()
    from diffusers import WanImageToVideoPipeline

    z = VAE22["z_dim"]
    with torch.random.fork_rng(devices=[]):
        vae = _vae(seed, VAE22)
        transformer = _transformer(seed + 1, num_layers=num_layers, in_channels=z, out_channels=z)
    return WanImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae, scheduler=make_scheduler(scheduler, shift),
        image_processor=None, image_encoder=None, transformer=transformer, transformer_2=None, boundary_ratio=None,
        expand_timesteps=True,
    )


def tiny_image(seed: int = 0, height: int = 32, width: int = 32):
    """A seeded random RGB PIL image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def tiny_inputs(pipe, seed: int = 0, frames: int = 5, height: int = 32, width: int = 32, steps: int = 4,
                guidance_scale: float = 5.0, output_type: str = "pt") -> dict:
    """Keyword arguments for `pipe(...)`: a PIL image, prompt embeddings passed directly (no tokenizer),
    `steps` steps, CFG on (two branches per step), a seeded generator. Call again for a fresh generator.
    height and width must be multiples of the VAE's spatial factor x the patch size (16; 32 for TI2V)."""
    transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    text_dim = transformer.config.text_dim
    multiple = pipe.vae_scale_factor_spatial * transformer.config.patch_size[1]
    if height % multiple or width % multiple:
        raise ValueError(f"height and width must be multiples of {multiple} for this pipeline, got {height}x{width}")
    g = torch.Generator().manual_seed(seed + 1000)
    prompt = torch.randn(1, TEXT_LEN, text_dim, generator=g)
    negative = torch.randn(1, TEXT_LEN, text_dim, generator=g)
    return dict(
        image=tiny_image(seed, height, width),
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(seed),
        output_type=output_type,
    )
