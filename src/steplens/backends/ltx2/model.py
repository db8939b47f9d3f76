"""A diffusers LTX-2 image-to-video pipeline seen as a steplens model: hooks, `generate` and `decode`.

    model = LTX2PipelineModel(pipe)     # an LTX2ImageToVideoPipeline (LTX-2, LTX-2.3, VBVR-LTX2.3, ...)
    model.block_names                   # ["blocks.0", …]: the transformer's `transformer_blocks.i`
    model.modules()                     # {"transformer": a view in which `blocks.i` is transformer_blocks.i}
    hooks = Hooks(model).record("blocks.3", steps=[0, 5], branch="uncond")
    lat = model.generate(samples, seeds, sampling=resolve(model, steps=20, guidance=3.0), callback=steps.append)
    px = model.decode(lat)              # (B, 3, frames, H, W) in [-1, 1] at the samples' native size

The latent steplens sees is the video latent, (B, C, T, h, w), normalised as the denoising loop has it (LTX packs
it as (B, T*h*w, C) tokens ordered frame, h, w; steplens unpacks it). Latent frame 0 is the clean first-frame
latent, held fixed by the pipeline: its x0_hat is itself and its velocity 0 (steplens.backends.ltx2.loop). `generate`
returns the final latent in that space (the pipeline's own output_type="latent" is the same tensor denormalised:
steplens.backends.ltx2.denormalize).

Block hooks: `blocks.i` is LTX2VideoTransformerBlock i. It returns (video stream, audio stream); steplens hooks
record and edit the video stream (B, T*h*w, D). The audio stream is not reachable by name.

Audio: LTX-2 denoises an audio latent jointly with the video (the same transformer forward, audio-video
cross-attention). steplens runs it as the pipeline does: its noise is drawn from each sample's generator right
after the video noise, it has its own scheduler (the pipeline's deepcopy), its CFG uses the same scale as the
video (`audio_guidance`, default: the video's), and it is neither traced, hooked nor returned.

Guidance: CFG at `guidance` (1 = off: one branch, and then the audio's CFG is off too unless `audio_guidance`
says otherwise). With CFG the pipeline runs ONE forward on [uncond rows; cond rows]: its step context has
branches ("uncond", "cond"), so Hooks records both branches under their names as for Wan. LTX-2's other guidance
terms are off by default: spatio-temporal guidance (stg_scale 0, an extra forward with branch "stg"), modality-
isolation guidance (modality_scale 1, branch "modality"), and the guidance rescale (guidance_rescale 0; the
pipeline's default is 0.7). They can be set on the model (constructor arguments).

How a task sample becomes a pipeline call (`generate`):

* resolution: the native first frame (H, W) is upscaled (nearest neighbour) by the smallest integer k making both
  sides multiples of 32 (the pipeline requires it, and it is LTX-2's VAE factor: one token per 32x32 pixels), then
  by the smallest factor reaching `min_size` if set (or k = `scale`). A (2n+1)-pixel maze gets k = 32: one token
  per maze pixel;
* frames: F sample frames are F latent frames, num_frames = r (F - 1) + 1 video frames with r the VAE's temporal
  factor (8 for LTX-2); sample frame f is video frame r f;
* prompt: the pipeline's own text encoder when it has one (and no provider was given), else a provider
  (texts -> (B, L, D), D = connectors' caption_channels x text_proj_in_factor; default HashedPromptEmbeds), with an
  all-ones attention mask; the uncond branch's prompt is `negative_prompt` ("");
* noise: one CPU torch.Generator per sample, seeded by seeds[i]; the pipeline draws the video noise and then the
  audio noise of row i from generator i. The B samples go in ONE pipeline call with a list of B images, so a batch
  of one is the plain pipeline call bit for bit, and row i of a batch is that sample's single call up to the float
  rounding of batched matmuls;
* first frame: `image_crf` 0 (the default) hands the pipeline the image as it is; LTX-2's own default re-compresses
  it with H.264 at CRF 33 (LTX-2.5: 18) as in training, which needs PyAV; steplens applies that re-compression per
  image itself (as the pipeline would) when image_crf is set;
* shift: LTX-2's scheduler shifts its sigmas *dynamically*: the shift is exp(mu) with mu interpolated from the
  video token count (base_shift at base_image_seq_len tokens, max_shift at max_image_seq_len), then the schedule
  is stretched to end at shift_terminal. shift=None (or NaN) keeps that. A number replaces it, for the call only,
  by a fixed shift (a scheduler copy with use_dynamic_shifting=False, shift=s: sigma' = s sigma / (1 + (s-1)
  sigma); shift_terminal, if configured, still applies). So shift=3 is NOT LTX-2's own schedule;
* steps / guidance default to the pipeline's own (30 steps, CFG 3: sampling_defaults);
* callback(StepInfo) per step and hooks through steplens.backends.ltx2.LTX2Loop;
* K leading frames (a sample from `steplens.tasks.continue_from_frames`): latent frames 0 .. K-1 are the K frames'
  latents, marked in the pipeline's conditioning mask and held at every step as it holds frame 0
  (steplens.backends.ltx2.prefix); K = 1 is the plain call.

`decode` gives what the experiments score: the VAE's video (as the pipeline decodes), at video frames 0, r, 2r,
... (one per sample frame), averaged over k x k pixel blocks back to the native size. `decode_video` gives the
full decoded video in [-1, 1].
"""

from __future__ import annotations

import math
from contextlib import ExitStack

import numpy as np
import torch

from ..checks import check_embeddings
from ..model import PipelineModel
from ..patches import InstancePatches, bound_arguments
from .loop import PIPELINES, LTX2Loop, attached_loop, check_pipeline, decode_latents

PIPELINE_MULTIPLE = 32  # LTX2ImageToVideoPipeline.check_inputs: height and width divisible by 32


class LTX2PipelineModel(PipelineModel):
    """An LTX2ImageToVideoPipeline as a steplens model (the interface of WanPipelineModel).

    prompt_embeds: a provider texts -> (B, L, D) used instead of the pipeline's text encoder (default: the text
        encoder if the pipeline has one, else HashedPromptEmbeds(D)).
    negative_prompt: the uncond branch's prompt under CFG.
    scale / min_size: the pixel upscale of the samples' first frames (see the module doc).
    frame_rate: the pipeline's frame_rate (RoPE positions and the audio length); 24 as the pipeline.
    image_crf: H.264 re-compression of the first frame (0: none, the default; None: the pipeline's default).
    audio_guidance: the audio's CFG scale (None: the video's `guidance`).
    guidance_rescale, stg_scale, stg_blocks, modality_scale: LTX-2's other guidance terms (off by default).
    """

    backend, family, pipeline_classes = "ltx2", "LTX-2", PIPELINES
    loop_class = LTX2Loop
    blocks_attr = "transformer_blocks"
    float32_components = ("vae", "audio_vae", "vocoder")
    dynamic_shift = True  # shift None keeps LTX-2's resolution-dependent shift
    max_sequence_length = 1024
    unsupported_words = "not supported yet"  # a Sampling's boundary, height/width, size (generate refuses them)
    decode_latents = staticmethod(decode_latents)
    check_pipeline = staticmethod(check_pipeline)

    @classmethod
    def check_loras(cls, lora, lora_2) -> None:
        if lora_2 is not None:
            raise ValueError(f"--lora-2 {lora_2!r}: LTX-2 has one transformer; --lora-2 is for Wan2.2's second expert")
        super().check_loras(lora, None)

    # frame-prefix conditioning (steplens.backends.ltx2.prefix): the pipeline's conditioning mask and per-step re-pin
    prefix_why = None

    def prefix_refused(self) -> str | None:
        if self.patch_size != (1, 1, 1):
            return (f"its transformer's patch size {self.patch_size} is not 1 x 1 x 1, and steplens reads the "
                    f"conditioning mask token by token")
        return None

    def __init__(self, pipe, name: str | None = None, *, frame_rate: float = 24.0, image_crf: int | None = 0,
                 audio_guidance: float | None = None, guidance_rescale: float = 0.0, stg_scale: float = 0.0,
                 stg_blocks: list[int] | None = None, modality_scale: float = 1.0, **kwargs):
        super().__init__(pipe, name or getattr(pipe, "name_or_path", None) or "LTX2ImageToVideoPipeline", **kwargs)
        if image_crf is not None and (isinstance(image_crf, bool) or not isinstance(image_crf, int) or image_crf < 0):
            raise ValueError(f"image_crf must be an integer >= 0 (0: no re-compression) or None, got {image_crf!r}")
        if stg_scale > 0 and not stg_blocks:
            raise ValueError(f"stg_scale {stg_scale} needs stg_blocks (the block indices STG perturbs, e.g. [28])")
        self.frame_rate, self.image_crf, self.audio_guidance = float(frame_rate), image_crf, audio_guidance
        self.fps = self.frame_rate  # the decoded video's frame rate
        self.guidance_rescale, self.stg_scale, self.modality_scale = guidance_rescale, stg_scale, modality_scale
        self.stg_blocks = list(stg_blocks or [])

    # -- geometry --------------------------------------------------------------------------------------------
    @property
    def text_dim(self) -> int:
        """The prompt embeddings' last dimension: the text encoder's hidden size x its stacked layers."""
        c = self.pipe.connectors.config
        return int(c.caption_channels * c.text_proj_in_factor)

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return (self.pipe.transformer_temporal_patch_size, self.pipe.transformer_spatial_patch_size,
                self.pipe.transformer_spatial_patch_size)

    @property
    def temporal_factor(self) -> int:
        return self.pipe.vae_temporal_compression_ratio

    @property
    def vae_spatial(self) -> int:
        return self.pipe.vae_spatial_compression_ratio

    @property
    def latent_channels(self) -> int:
        return self.transformer.config.in_channels

    @property
    def spatial_multiple(self) -> tuple[int, int]:
        """Pixel sizes the frame's sides must be multiples of: 32 (the pipeline's rule), and the VAE x patch."""
        m = math.lcm(PIPELINE_MULTIPLE, self.token_pixels[0])
        return m, m

    @classmethod
    def folder_size_multiple(cls, path: str):
        """spatial_multiple from a folder's configs: 32 and the VAE's spatial compression (vae/config.json's
        spatial_compression_ratio, else its patch_size x 2 per spatio-temporal downsampling, as diffusers derives
        it) x the transformer's patch_size."""
        vae, tr = cls.folder_config(path, "vae"), cls.folder_config(path, "transformer")
        try:
            s = int(vae.get("spatial_compression_ratio") or
                    int(vae.get("patch_size", 4)) * 2 ** sum(bool(x) for x in vae.get("spatio_temporal_scaling",
                                                                                      (True,) * 4)))
            p = int(tr.get("patch_size", 1))
        except (AttributeError, TypeError, ValueError):
            return None  # a hub id or an unusual folder: checked after loading
        m = math.lcm(PIPELINE_MULTIPLE, s * p)
        return (m, m), f"LTX-2's rule {PIPELINE_MULTIPLE}; VAE {s} x patch {p}"

    # -- generating ------------------------------------------------------------------------------------------
    def _embed(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.prompt_embeds(list(texts))
        check_embeddings(emb, len(texts), self.text_dim,
                         "LTX-2's connectors expect {dim} (caption_channels x text_proj_in_factor)")
        conn = self.pipe.connectors
        emb = emb.to(getattr(conn, "device", emb.device), getattr(conn, "dtype", emb.dtype))
        return emb, torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)

    def _crf(self, images: list) -> list:
        """The first frames re-compressed with H.264 as LTX-2 was trained (image_crf; 0: as they are)."""
        if not (self.image_crf is None or self.image_crf):
            return images
        from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf, resolve_default_image_crf
        from PIL import Image

        crf = self.image_crf if self.image_crf is not None else resolve_default_image_crf(self.pipe.text_encoder)
        return [Image.fromarray(apply_image_conditioning_crf(np.asarray(img), crf), "RGB") for img in images]

    def call_inputs(self, samples, seeds, frames: int | None = None, steps: int | None = None,
                    guidance: float | None = None) -> tuple[list, list[torch.Generator], dict]:
        """The core's (PipelineModel.call_inputs; first frames re-compressed per image_crf), plus LTX-2's own
        arguments: frame rate, the audio's and the other guidance terms, max_sequence_length."""
        images, generators, kw = super().call_inputs(samples, seeds, frames, steps, guidance)
        if kw["num_inference_steps"] == 1 and self.pipe.scheduler.config.shift_terminal:
            raise ValueError(f"1 sampling step: the scheduler stretches its sigmas to end at shift_terminal="
                             f"{self.pipe.scheduler.config.shift_terminal}, which is undefined for one step (diffusers "
                             f"divides 0 by 0); use 2 or more steps")
        guidance = kw["guidance_scale"]
        audio = guidance if self.audio_guidance is None else float(self.audio_guidance)
        kw.update(frame_rate=self.frame_rate, audio_guidance_scale=audio, guidance_rescale=self.guidance_rescale,
                  audio_guidance_rescale=self.guidance_rescale, stg_scale=self.stg_scale,
                  audio_stg_scale=self.stg_scale, spatio_temporal_guidance_blocks=self.stg_blocks or None,
                  modality_scale=self.modality_scale, audio_modality_scale=self.modality_scale, image_crf=0,
                  max_sequence_length=self.max_sequence_length)
        return self._crf(images), generators, kw

    def _prompts(self, prompts: list[str], cfg: bool) -> dict:
        if self.prompt_embeds is None:
            return dict(prompt=list(prompts), negative_prompt=[self.negative_prompt] * len(prompts))
        emb, mask = self._embed(prompts)
        out = dict(prompt_embeds=emb, prompt_attention_mask=mask)
        if cfg:
            neg, neg_mask = self._embed([self.negative_prompt] * len(prompts))
            if neg.shape != emb.shape:
                raise ValueError(f"the provider's negative prompt embeddings {tuple(neg.shape)} differ in shape from "
                                 f"the prompts' {tuple(emb.shape)}; LTX-2 needs them equal")
            out.update(negative_prompt_embeds=neg, negative_prompt_attention_mask=neg_mask)
        return out

    def pipeline_inputs(self, sample, seed: int, frames: int | None = None, steps: int | None = None,
                        guidance: float | None = None) -> dict:
        """The plain single-sample pipeline call equivalent to generate([sample], [seed], ...): `pipe(**kw)` returns
        the same final latent, denormalised (steplens.backends.ltx2.denormalize of generate's)."""
        if sample.known_frames > 1:
            raise ValueError(f"{sample.name} is given {sample.known_frames} leading frames; the plain pipeline call "
                             f"conditions on the first frame alone (generate gives it all {sample.known_frames})")
        images, generators, kw = self.call_inputs([sample], [seed], frames, steps, guidance)
        cfg = kw["guidance_scale"] > 1 or kw["audio_guidance_scale"] > 1
        return dict(image=images[0], generator=generators[0], output_type="latent", **kw,
                    **self._prompts([sample.prompt], cfg))

    def _capture_final(self, out: list) -> InstancePatches:
        """The normalised final latent: what the pipeline hands to _denormalize_latents after the loop."""
        def wrap(original):
            def _denormalize_latents(latents, *args, **kwargs):
                out.append(latents)
                return original(latents, *args, **kwargs)

            return _denormalize_latents

        return InstancePatches((self.pipe, "_denormalize_latents", wrap))

    def call_context(self, stack: ExitStack, samples, images, generators, kw: dict) -> dict:
        """One call with a list of B images; the normalised final latent is caught on its way to the VAE."""
        cfg = kw["guidance_scale"] > 1 or kw["audio_guidance_scale"] > 1
        prompts = self._prompts([s.prompt for s in samples], cfg)
        self._final: list = []
        stack.enter_context(self._capture_final(self._final))
        given = self.prefix_images(samples, kw["height"], kw["width"])
        if any(g is not None for g in given):
            stack.enter_context(self._given_frames([None if g is None else self._crf(g) for g in given]))
        return dict(image=images, generator=generators, output_type="latent", return_dict=False, **kw, **prompts)

    def _given_frames(self, given: list) -> InstancePatches:
        """prepare_latents with row i's K_i leading frames (PIL images, `given[i]`, None: its first frame alone) in
        its latent frames 0 .. K_i-1 and its conditioning mask (steplens.backends.ltx2.prefix); the loop attached
        holds them at every step."""
        from .prefix import condition_rows, prefix_latents

        pipe = self.pipe

        def wrap(original):
            def prepare_latents(*args, **kwargs):
                a = bound_arguments(original, args, kwargs)
                if a.get("latents") is not None:
                    raise RuntimeError("steplens' K-frame prepare_latents got latents to start from")
                latents, mask = original(*args, **kwargs)
                image, (height, width) = a["image"], (a["height"], a["width"])
                rows = []
                for i, frames in enumerate(given):
                    if frames is None:
                        rows.append(None)
                        continue
                    pre = [image[i:i + 1]] + [pipe.video_processor.preprocess(f, height=height, width=width)
                                              .to(image.device, image.dtype) for f in frames[1:]]
                    rows.append(prefix_latents(pipe, pre, a["dtype"]))
                grid = ((a["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1,
                        height // pipe.vae_spatial_compression_ratio, width // pipe.vae_spatial_compression_ratio)
                out = condition_rows(pipe, latents, mask, grid, rows)
                loop = attached_loop(pipe)  # a loop attached before this call wraps the pipeline's own: tell it
                return loop.prepared(out, args, kwargs) if loop is not None else out

            return prepare_latents

        return InstancePatches((pipe, "prepare_latents", wrap))

    def final_latents(self, out) -> torch.Tensor:
        """The final video latents (B, C, frames, H/32, W/32), normalised as the denoising loop has them."""
        final, self._final = self._final, []
        if len(final) != 1:  # pragma: no cover - guards against a diffusers change
            raise RuntimeError(f"expected one final latent from the LTX-2 pipeline, got {len(final)}")
        return final[0]

    def __repr__(self) -> str:
        return f"LTX2PipelineModel({self.name!r}, blocks={len(self.block_names)})"
