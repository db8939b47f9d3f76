"""HunyuanVideo-1.5 image-to-video (diffusers' HunyuanVideo15ImageToVideoPipeline) as a steplens backend.

    model = HunyuanVideo15Model(pipe)       # or load_model("wan:DIR") on a saved pipeline folder
    lat = model.generate(samples, seeds, sampling=resolve(model, steps=50, guidance=6.0), callback=steps.append)
    px = model.decode(lat)                  # (B, 3, frames, H, W) in [-1, 1] at the samples' native size

The denoising loop is the plain flow-matching one of steplens.backends.loop (Wan's shape): x_s is the pipeline's
`latents` (B, C, T, h, w), scaled by the VAE's scaling_factor, handed to `scheduler.step` (FlowMatch Euler) and the
first C channels of the transformer input [latents, image condition, mask] (the clean first-frame latent and a mask
on latent frame 0: frame 0 is noised and denoised like the others); x0_hat = x_s - sigma v. The pipeline's guider
(ClassifierFreeGuidance) runs CFG as two forwards per step, cond first, named "pred_cond" / "pred_uncond" by
`cache_context`: steplens' branches "cond" / "uncond". Hook points `blocks.i` are the transformer's
`transformer_blocks.i` (dual-stream blocks; hooks see their video stream (B, T*h*w, D), tokens ordered frame, h, w).

How a task sample becomes a pipeline call (`generate`), where the pipeline differs from Wan / LTX-2:

* size: the pipeline takes no height / width; it picks the aspect-ratio bucket of the image at `target_size`.
  steplens sets the call size for the call (the native first frame upscaled by the integer k of
  steplens.backends.geometry: one token per 16 x 16 pixels), so the bucket is the image's own size;
* batch: the pipeline conditions a call on ONE image (its SigLIP embedding and VAE latent repeated per row).
  `generate` runs the B samples as one call (one forward per CFG branch over the whole batch) with the pipeline's
  per-image steps `encode_image` and `prepare_cond_latents_and_mask` run once per sample, rows concatenated. A
  batch of one, or one image with several seeds, is the plain pipeline call bit for bit;
* guidance: the guider's scale, not a call argument: set on the pipeline's guider for the call (1 = off: one
  forward per step);
* prompts: the pipeline's two text encoders (Qwen2.5-VL and ByT5 for quoted "glyph" text) when it has them, else a
  provider (texts -> (B, L, text_embed_dim), default HashedPromptEmbeds) with an all-ones mask and an empty glyph
  stream (`glyph_length` zero tokens, masked: what the pipeline gives a prompt without quoted text);
* shift: the scheduler's fixed shift (hub: 5 at 480p), replaced for the call by a copy at `shift`;
* latents are in the transformer's dtype (a bfloat16 model gives bfloat16 x_s; x0_hat is computed in float32).
* K leading frames (a sample from `steplens.tasks.continue_from_frames`): the pipeline's condition is a latent and a
  mask per latent frame, concatenated to the transformer input (`prepare_cond_latents_and_mask`: the image latent in
  frame 0, mask 1 there). Given K frames, `prefix_condition` fills latent frames 0 .. K-1 with the K frames' latents
  (the VAE reads them as a video: sample frame j >= 1 fills video frames r(j-1)+1 .. rj, r the temporal factor) and
  marks them; K = 1 is the pipeline's own condition, bit for bit. The SigLIP image embedding stays the first frame's;
* meanflow checkpoints (transformer use_meanflow): v is the mean velocity to the next step; x_s - sigma v is then
  Euler's extrapolation to sigma 0, not the model's x0.

`decode` is the pipeline's decoding (latents / scaling_factor, vae.decode) at video frames 0, 4, 8, ... averaged
over k x k pixel blocks back to the native size; `decode_video` the full decoded video in [-1, 1].
"""

from __future__ import annotations

from contextlib import ExitStack

import torch

from .checks import check_embeddings, check_euler
from .decode import vae_decode, vae_device
from .loop import PipelineLoop
from .model import PipelineModel
from .patches import InstancePatches, bound_arguments

PIPELINES = ("HunyuanVideo15ImageToVideoPipeline",)
FAMILY = "HunyuanVideo-1.5"


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt"):
    """Decode latents (B, C, T, h, w) as the pipeline decodes its final latents: / scaling_factor, then the core's
    vae_decode ("raw": the VAE's (B, 3, frames, H, W) in [-1, 1])."""
    vae = pipe.vae
    return vae_decode(pipe, latents.to(vae_device(pipe), vae.dtype) / vae.config.scaling_factor, output_type)


def prefix_condition(pipe, frames: list, height: int, width: int, latents: torch.Tensor, dtype, device):
    """(latent condition, mask) of K PIL frames (the call size) for one row whose latents are `latents`
    (1, C, T, h, w), as HunyuanVideo15ImageToVideoPipeline.prepare_cond_latents_and_mask builds them for one image
    (its `_get_image_latents` on a video of the K frames)."""
    from diffusers.pipelines.hunyuan_video1_5.pipeline_hunyuan_video1_5_image2video import retrieve_latents

    vae, r = pipe.vae, pipe.vae_scale_factor_temporal
    pre = [pipe.video_processor.preprocess(f, height=height, width=width).to(device, dtype=vae.dtype) for f in frames]
    video = torch.stack([pre[0]] + [f for f in pre[1:] for _ in range(r)], dim=2)  # video frames 0 .. r(K-1)
    given = retrieve_latents(vae.encode(video), sample_mode="argmax") * vae.config.scaling_factor
    k, (_, _, t, h, w) = given.shape[2], latents.shape
    cond = torch.zeros(1, given.shape[1], t, h, w, dtype=dtype, device=device)
    cond[:, :, :k] = given.to(device=device, dtype=dtype)
    mask = torch.zeros(1, 1, t, h, w, dtype=dtype, device=device)
    mask[:, :, :k] = 1.0
    return cond, mask


class HunyuanLoop(PipelineLoop):
    """PipelineLoop on a HunyuanVideo15ImageToVideoPipeline: the default loop as it is (the guider's "pred_cond" /
    "pred_uncond" forwards are the core's CFG branches), FlowMatch Euler only."""

    @classmethod
    def check(cls, pipe) -> str:
        HunyuanVideo15Model.check_pipeline(pipe)
        check_euler(pipe.scheduler, FAMILY)
        return "euler"


class HunyuanVideo15Model(PipelineModel):
    """A HunyuanVideo15ImageToVideoPipeline as a steplens model (steplens.contract.VideoModel).

    prompt_embeds: a provider texts -> (B, L, text_embed_dim) used instead of the pipeline's text encoders (default:
        the text encoders if the pipeline has them, else HashedPromptEmbeds).
    negative_prompt: the uncond branch's prompt under CFG.
    scale / min_size: the pixel upscale of the samples' first frames (steplens.backends.geometry).
    glyph_length: tokens of the (empty, masked) glyph stream given with provider embeddings (default: the
        pipeline's tokenizer_2_max_length, 256; masked tokens carry no weight).
    """

    backend, family, pipeline_classes = "hunyuan15", FAMILY, PIPELINES
    loop_class = HunyuanLoop
    blocks_attr = "transformer_blocks"
    float32_components = ("vae", "image_encoder")
    decode_latents = staticmethod(decode_latents)
    fps = 24.0  # HunyuanVideo-1.5's frame rate

    prefix_why = None  # K leading frames: the pipeline's condition latent and mask, per latent frame (prefix_condition)

    def __init__(self, pipe, name: str | None = None, *, glyph_length: int | None = None, **kwargs):
        super().__init__(pipe, name, **kwargs)
        glyph_length = pipe.tokenizer_2_max_length if glyph_length is None else glyph_length
        if isinstance(glyph_length, bool) or not isinstance(glyph_length, int) or glyph_length < 1:
            raise ValueError(f"glyph_length must be an integer >= 1, got {glyph_length!r}")
        self.glyph_length = glyph_length

    @classmethod
    def folder_size_multiple(cls, path: str):
        """token_pixels from a folder's configs: the VAE's spatial_compression_ratio (diffusers' default 16) x the
        transformer's patch_size."""
        vae, tr = cls.folder_config(path, "vae"), cls.folder_config(path, "transformer")
        try:
            s, p = int(vae.get("spatial_compression_ratio") or 16), int(tr.get("patch_size", 1))
        except (AttributeError, TypeError, ValueError):
            return None  # a hub id or an unusual folder: checked after loading
        return (s * p, s * p), f"VAE {s} x patch {p}"

    # -- geometry --------------------------------------------------------------------------------------------------
    @property
    def text_dim(self) -> int:
        return int(self.transformer.config.text_embed_dim)

    @property
    def patch_size(self) -> tuple[int, int, int]:
        c = self.transformer.config
        return (c.patch_size_t, c.patch_size, c.patch_size)

    @property
    def latent_channels(self) -> int:
        return self.pipe.vae.config.latent_channels

    # -- generating ------------------------------------------------------------------------------------------------
    def check_prompt_encoding(self) -> None:
        if self.prompt_embeds is None and (self.pipe.text_encoder_2 is None or self.pipe.tokenizer_2 is None):
            raise ValueError(f"the {FAMILY} pipeline has a text encoder but no text_encoder_2 / tokenizer_2 (ByT5) to "
                             f"encode prompts with; give the model a prompt_embeds provider")

    def _embed(self, texts: list[str]) -> dict:
        emb = self.prompt_embeds(list(texts))
        check_embeddings(emb, len(texts), self.text_dim, f"{FAMILY}'s transformer expects text_embed_dim {{dim}}")
        glyph_dim = self.transformer.config.text_embed_2_dim
        n = len(texts)
        return dict(prompt_embeds=emb, prompt_embeds_mask=torch.ones(emb.shape[:2], dtype=torch.long),
                    prompt_embeds_2=torch.zeros(n, self.glyph_length, glyph_dim),
                    prompt_embeds_mask_2=torch.zeros(n, self.glyph_length, dtype=torch.long))

    def prompt_inputs(self, prompts: list[str], cfg: bool) -> dict:
        """The pipeline's prompt arguments: the texts (its own encoders) or provider embeddings, both branches."""
        negatives = [self.negative_prompt] * len(prompts)
        if self.prompt_embeds is None:
            return dict(prompt=list(prompts), negative_prompt=negatives)
        out = self._embed(prompts)
        if cfg:
            out.update({f"negative_{k}": v for k, v in self._embed(negatives).items()})
        return out

    def _per_sample(self, images, height: int, width: int, given=None) -> InstancePatches:
        """For one call: the size (height, width), and the per-image steps once per sample (see the module doc);
        `given`: per sample its K > 1 leading frames (PIL images), else None."""
        pipe, n = self.pipe, len(images)

        def resize(imgs):
            return [pipe.video_processor.resize(img, height=height, width=width, resize_mode="crop") for img in imgs]

        resized, given = resize(images), [None if g is None else resize(g) for g in (given or [None] * n)]

        def wrap_size(original):
            def calculate_default_height_width(*args, **kwargs):
                return height, width

            return calculate_default_height_width

        def wrap_encode_image(original):
            def encode_image(*args, **kwargs):
                a = bound_arguments(original, args, kwargs)
                if a["batch_size"] != n:
                    raise RuntimeError(f"steplens' per-sample encode_image got batch {a['batch_size']}, not {n}")
                return torch.cat([original(img, 1, a["device"], a["dtype"]) for img in resized])

            return encode_image

        def wrap_condition(original):
            def prepare_cond_latents_and_mask(*args, **kwargs):
                a = bound_arguments(original, args, kwargs)
                lat = a["latents"]
                rows = [original(lat[i:i + 1], img, 1, a["height"], a["width"], a["dtype"], a["device"])
                        if given[i] is None else
                        prefix_condition(pipe, given[i], a["height"], a["width"], lat[i:i + 1], a["dtype"], a["device"])
                        for i, img in enumerate(resized)]
                return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])

            return prepare_cond_latents_and_mask

        return InstancePatches((pipe.video_processor, "calculate_default_height_width", wrap_size),
                               (pipe, "encode_image", wrap_encode_image),
                               (pipe, "prepare_cond_latents_and_mask", wrap_condition))

    def call_context(self, stack: ExitStack, samples, images, generators, kw: dict) -> dict:
        """The guider at the call's guidance, the call size and the per-sample steps; the pipeline's arguments."""
        self.check_prompt_encoding()
        kw = dict(kw)
        height, width, guidance = kw.pop("height"), kw.pop("width"), kw.pop("guidance_scale")
        stack.enter_context(InstancePatches((self.pipe.guider, "guidance_scale", lambda own: guidance)))  # for the call
        stack.enter_context(self._per_sample(images, height, width, self.prefix_images(samples, height, width)))
        return dict(image=images[0], generator=generators, output_type="latent", return_dict=False, **kw,
                    **self.prompt_inputs([s.prompt for s in samples], guidance > 1))
