"""A tiny but real diffusers LTX-2 image-to-video pipeline, built offline from configs (nothing is downloaded).

It uses the real diffusers classes (LTX2ImageToVideoPipeline, LTX2VideoTransformer3DModel, AutoencoderKLLTX2Video,
AutoencoderKLLTX2Audio, LTX2TextConnectors, LTX2Vocoder, FlowMatchEulerDiscreteScheduler) with a handful of
parameters (the sizes of diffusers' own LTX-2 fast tests), so that the steplens backend can be tested bit for
bit against the real pipeline on a laptop CPU. Weights are random, drawn from `seed`; the global torch RNG is
left as it was. There is no text encoder: pass prompt embeddings (and their attention mask).

What is kept from the real LTX-2 so that the geometry and the schedule are the real ones:
* the video VAE compresses 32x in space and 8x in time (pixel patch 4, three 2x spatio-temporal stages), so a
  (2n+1)-pixel maze upscaled x32 gives one latent pixel, i.e. one transformer token, per maze pixel, and
  sample frame f is video frame 8f;
* the scheduler is configured as the hub's LTX-2 scheduler: FlowMatch Euler with dynamic (resolution-dependent,
  exponential) shifting between base_shift 0.95 (1024 tokens) and max_shift 2.05 (4096 tokens), stretched to
  terminate at shift_terminal 0.1.

    pipe = tiny_ltx2_i2v(seed=0)
    video, audio = pipe(**tiny_inputs(pipe, seed=0), return_dict=False)
"""

from __future__ import annotations

import numpy as np
import torch

CAPTION_CHANNELS = 32  # connectors' caption_channels (the text encoder's hidden size)
TEXT_LAYERS = 2  # connectors' text_proj_in_factor (the text encoder's layers + 1, stacked)
TEXT_DIM = CAPTION_CHANNELS * TEXT_LAYERS  # the prompt embeddings' last dimension
TEXT_LEN = 8  # tokens of the prompt embeddings tiny_inputs passes

TRANSFORMER = dict(in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
                   attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
                   audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
                   num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=CAPTION_CHANNELS,
                   rope_double_precision=False, rope_type="split")
CONNECTORS = dict(caption_channels=CAPTION_CHANNELS, text_proj_in_factor=TEXT_LAYERS,
                  video_connector_num_attention_heads=4, video_connector_attention_head_dim=8,
                  video_connector_num_layers=1, video_connector_num_learnable_registers=None,
                  audio_connector_num_attention_heads=4, audio_connector_attention_head_dim=8,
                  audio_connector_num_layers=1, audio_connector_num_learnable_registers=None,
                  connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
                  causal_temporal_positioning=False, rope_type="split")
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8),
           decoder_block_out_channels=(8, 8, 8), layers_per_block=(1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1),
           spatio_temporal_scaling=(True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
           decoder_inject_noise=(False, False, False, False), downsample_type=("spatiotemporal",) * 3,
           upsample_residual=(False, False, False), upsample_factor=(1, 1, 1), timestep_conditioning=False,
           patch_size=4, patch_size_t=1, encoder_causal=True, decoder_causal=False)
AUDIO_VAE = dict(base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None,
                 in_channels=2, resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height",
                 dropout=0.0, mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True,
                 mel_bins=8)
VOCODER = dict(hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
               resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], leaky_relu_negative_slope=0.1,
               output_sampling_rate=16000)
# the hub's LTX-2 scheduler (Lightricks/LTX-2 scheduler_config.json)
SCHEDULER = dict(use_dynamic_shifting=True, time_shift_type="exponential", base_shift=0.95, max_shift=2.05,
                 base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1)


def _require():
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401  (diffusers' LTX-2 pipelines import it even without a text encoder)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers LTX-2 backend needs the 'wan' extra: pip install 'steplens[wan]'") from e
    from diffusers import LTX2ImageToVideoPipeline  # noqa: F401  (diffusers >= 0.37)


def make_scheduler(**overrides):
    """FlowMatchEulerDiscreteScheduler configured as the hub's LTX-2 scheduler (dynamic shifting, terminal 0.1)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(**{**SCHEDULER, **overrides})


def tiny_ltx2_i2v(seed: int = 0, num_layers: int = 2):
    """A tiny LTX2ImageToVideoPipeline (video + audio transformer of `num_layers` blocks, no text encoder)."""
    _require()
    from diffusers import (AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2ImageToVideoPipeline,
                           LTX2VideoTransformer3DModel)
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = LTX2VideoTransformer3DModel(**{**TRANSFORMER, "num_layers": num_layers}).eval()
        torch.manual_seed(seed + 1)
        connectors = LTX2TextConnectors(**CONNECTORS).eval()
        torch.manual_seed(seed + 2)
        vae = AutoencoderKLLTX2Video(**VAE).eval()
        torch.manual_seed(seed + 3)
        audio_vae = AutoencoderKLLTX2Audio(**AUDIO_VAE).eval()
        torch.manual_seed(seed + 4)
        vocoder = LTX2Vocoder(in_channels=AUDIO_VAE["output_channels"] * AUDIO_VAE["mel_bins"], **VOCODER).eval()
    pipe = LTX2ImageToVideoPipeline(scheduler=make_scheduler(), vae=vae, audio_vae=audio_vae, text_encoder=None,
                                    tokenizer=None, connectors=connectors, transformer=transformer, vocoder=vocoder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_image(seed: int = 0, height: int = 64, width: int = 64):
    """A seeded random RGB PIL image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def tiny_inputs(pipe, seed: int = 0, frames: int = 17, height: int = 64, width: int = 64, steps: int = 3,
                guidance_scale: float = 3.0, output_type: str = "latent") -> dict:
    """Keyword arguments for `pipe(...)`: a PIL image, prompt embeddings and masks passed directly (no tokenizer),
    `steps` steps, CFG on (video and audio at `guidance_scale`; two branches per forward), STG and modality
    guidance off, no H.264 re-compression of the image (image_crf=0), a seeded generator. Call again for a
    fresh generator."""
    g = torch.Generator().manual_seed(seed + 1000)
    prompt = torch.randn(1, TEXT_LEN, TEXT_DIM, generator=g)
    negative = torch.randn(1, TEXT_LEN, TEXT_DIM, generator=g)
    mask = torch.ones(1, TEXT_LEN, dtype=torch.long)
    return dict(image=tiny_image(seed, height, width), prompt_embeds=prompt, prompt_attention_mask=mask,
                negative_prompt_embeds=negative, negative_prompt_attention_mask=mask, height=height, width=width,
                num_frames=frames, num_inference_steps=steps, guidance_scale=guidance_scale,
                audio_guidance_scale=guidance_scale, guidance_rescale=0.0, audio_guidance_rescale=0.0,
                stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0, audio_modality_scale=1.0, image_crf=0,
                generator=torch.Generator().manual_seed(seed), output_type=output_type)
