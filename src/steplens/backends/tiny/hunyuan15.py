"""A tiny but real diffusers HunyuanVideo-1.5 image-to-video pipeline, built offline from configs (nothing is
downloaded): HunyuanVideo15ImageToVideoPipeline with HunyuanVideo15Transformer3DModel, AutoencoderKLHunyuanVideo15,
FlowMatchEulerDiscreteScheduler, ClassifierFreeGuidance and a SigLIP vision encoder, at the sizes of diffusers' own
HunyuanVideo-1.5 fast tests. Weights are random, drawn from `seed`; the global torch RNG is left as it was. There
are no text encoders: pass prompt embeddings (both streams, with masks).

The VAE compresses 4x in space and 2x in time (diffusers' test VAE; 100x faster to decode than the real 16x / 4x
geometry, which `real_geometry=True` builds: five 8-channel stages).

    pipe = tiny_hunyuan15_i2v(seed=0)
    model = HunyuanVideo15Model(pipe, glyph_length=4)     # steplens.backends.hunyuan15
"""

from __future__ import annotations

import torch

TEXT_DIM, GLYPH_DIM, IMAGE_DIM = 16, 32, 12  # the transformer's text_embed_dim, text_embed_2_dim, image_embed_dim

TRANSFORMER = dict(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                   num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=TEXT_DIM,
                   text_embed_2_dim=GLYPH_DIM, image_embed_dim=IMAGE_DIM, rope_axes_dim=(2, 2, 4), target_size=64,
                   task_type="i2v")
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
           spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
           upsample_match_channel=False)
REAL_VAE = dict(VAE, block_out_channels=(8,) * 5, spatial_compression_ratio=16, temporal_compression_ratio=4,
                downsample_match_channel=True, upsample_match_channel=True)
VISION = dict(hidden_size=IMAGE_DIM, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16,
              patch_size=8)
SHIFT, GUIDANCE = 5.0, 6.0  # the scheduler's shift and the guider's scale (HunyuanVideo-1.5 480p I2V: 5, 6)


def tiny_hunyuan15_i2v(seed: int = 0, num_layers: int = 2, real_geometry: bool = False):
    """A tiny HunyuanVideo15ImageToVideoPipeline (no text encoders)."""
    try:
        from diffusers import (AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler,
                               HunyuanVideo15ImageToVideoPipeline, HunyuanVideo15Transformer3DModel)
        from diffusers.guiders import ClassifierFreeGuidance
        from transformers import SiglipVisionConfig, SiglipVisionModel
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the HunyuanVideo-1.5 backend needs diffusers >= 0.36 with HunyuanVideo-1.5 and "
                          "transformers (the 'wan' extra: pip install 'steplens[wan]')") from e

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = HunyuanVideo15Transformer3DModel(**{**TRANSFORMER, "num_layers": num_layers}).eval()
        torch.manual_seed(seed + 1)
        vae = AutoencoderKLHunyuanVideo15(**(REAL_VAE if real_geometry else VAE)).eval()
        torch.manual_seed(seed + 2)
        image_encoder = SiglipVisionModel(SiglipVisionConfig(**VISION)).eval()
    try:  # transformers >= 5 without torchvision: the PIL processor (what SiglipImageProcessor falls back to)
        from transformers import SiglipImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import SiglipImageProcessor as ImageProcessor
    size = VISION["image_size"]
    pipe = HunyuanVideo15ImageToVideoPipeline(
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT), guider=ClassifierFreeGuidance(guidance_scale=GUIDANCE),
        image_encoder=image_encoder, feature_extractor=ImageProcessor(size={"height": size, "width": size}))
    pipe.set_progress_bar_config(disable=True)
    return pipe
