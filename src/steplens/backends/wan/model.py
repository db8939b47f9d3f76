"""A diffusers Wan pipeline seen as a steplens model: hooks, and the `generate` / `decode` every experiment uses.

    model = WanPipelineModel(pipe)      # WanImageToVideoPipeline: Wan2.1 I2V, Wan2.2-A14B's two experts, TI2V-5B
    model.block_names                   # ["blocks.0", …, "blocks.39"]
    model.modules()                     # {"transformer": …, "transformer_2": …} (the experts that exist)
    hooks = Hooks(model).record("blocks.3", steps=[0, 5], branch="uncond", expert="transformer_2")
    video = model.run(hooks, **pipe_kwargs).frames      # = with attach(pipe, hooks): pipe(**pipe_kwargs)

    lat = model.generate(samples, seeds, sampling=resolve(model, "vbvr", steps=20), callback=steps.append,
                         hooks=hooks)   # steplens.presets.resolve: the sampling, applied for this call only
    px = model.decode(lat)              # (B, 3, frames, H, W) in [-1, 1] at the samples' native size

Module hooks go on each expert's `blocks.i` (WanTransformerBlock: its output is the residual stream
(B, L, D), tokens ordered frame, h, w); the sampler points `latent` and `x0` and the step context are
provided by the Wan loop (steplens.backends.wan.loop), which wraps the pipeline while the hooks are attached.

How a task sample becomes a pipeline call (`generate`):

* resolution: the native first frame (H, W) is upscaled (nearest neighbour) by the smallest integer k that
  makes both sides multiples of vae_scale_factor_spatial * patch size (16 for Wan2.1 / A14B, 32 for TI2V-5B's
  16x VAE), times the smallest factor reaching `min_size` if one is set (or k = `scale` if given). A (2n+1)^2
  maze is odd-sized, so k = 16 (TI2V: 32) and one transformer token covers exactly one maze pixel (min_size=480
  gives a 5x5 maze 528 px);
* frames: the sample's frame count F becomes F *latent* frames, i.e. num_frames = 4 (F - 1) + 1 video
  frames (Wan's VAE: latent frame 0 is video frame 0, latent frame j >= 1 holds video frames 4j-3 .. 4j);
  sample frame f is video frame 4f, and the last sample frame is the last video frame. So the latent and the
  token grid have exactly F frames, as for the embedded model;
* prompt: the pipeline's own text encoder when it has one (and no `prompt_embeds` provider was given),
  else the provider (texts -> (B, L, text_dim)); default for a pipeline without a text encoder:
  steplens.backends.prompts.HashedPromptEmbeds. The negative prompt (CFG's uncond branch) is `negative_prompt`
  ("" as in the pipeline);
* noise: one CPU torch.Generator per sample, seeded by seeds[i], as the pipeline draws it (`randn_tensor`);
* the batch: WanImageToVideoPipeline conditions a call on one image. `generate` runs the B samples as one
  call (one transformer forward per CFG branch over the whole batch, so batch-wide edits such as the
  ensemble's averaging see every row) by running, for the duration of the call, the pipeline's per-image
  steps once per sample: `encode_prompt`, `encode_image` (Wan2.1's CLIP) and `prepare_latents` (noise,
  VAE-encoded first frame and mask) are called with that sample's image, prompt and generator exactly as a
  single-sample call would call them, and their rows are concatenated. A batch of one, or one image repeated
  with several seeds (an ensemble's members), is the plain pipeline call bit for bit; a row of a batch of
  different samples is that sample's single call up to the float rounding of batched matmuls (and does not
  depend on the other rows' samples or seeds);
* sampling (steplens.presets.Sampling), for the call only (`applied`): scheduler "euler" swaps in a FlowMatch Euler
  scheduler; the shift swaps in a copy of the scheduler with that shift (FlowMatchEuler's `shift`, UniPC's
  `flow_shift`; schedulers without a settable flow shift are refused); a σ list makes Euler step at exactly those σ;
  the expert switch `boundary`, the negative prompt and a fixed call size (height, width, or "first-frame") hold for
  the call; all are put back after it;
* guidance: CFG scale (`guidance_scale`, and `guidance_scale_2` for the low-noise expert); 1 = off. The
  pipeline applies CFG only above 1, so guidance < 1 is refused;
* callback(StepInfo) per step and hooks through the Wan loop (steplens.backends.wan.loop): x_s, the guided v and
  x0_hat as the scheduler gets them;
* Wan2.2-TI2V-5B (expand_timesteps=True): prepare_latents also returns the first-frame mask (batch 1, kept
  once); the latent's frame 0 is the clean image latent, and x0_hat has it too (steplens.backends.wan.ti2v).

`decode` gives what the experiments score: the VAE's video (exactly as the pipeline decodes), at video frames
0, 4, 8, ... (one per sample frame), averaged over k x k pixel blocks back to the native size.
`decode_video` gives the full decoded video (all frames, upscaled size) in [-1, 1].
"""

from __future__ import annotations

from contextlib import ExitStack

import torch

from ..checks import check_embeddings
from ..model import PipelineModel
from ..patches import InstancePatches, bound_arguments
from .loop import PIPELINES, VARIANTS, WanLoop, decode_latents
from .presets import PRESETS
from .ti2v import join_rows


class WanPipelineModel(PipelineModel):
    """A WanImageToVideoPipeline as a steplens model (steplens.contract.VideoModel).

    prompt_embeds: a provider texts -> (B, L, text_dim) used instead of the pipeline's text encoder (default:
        the text encoder if the pipeline has one, else HashedPromptEmbeds).
    negative_prompt: the uncond branch's prompt under CFG.
    scale / min_size: the pixel upscale of the samples' first frames (see the module doc).
    """

    backend, family, pipeline_classes, variants = "wan", "Wan", PIPELINES, VARIANTS
    presets = PRESETS  # vbvr, distilled (steplens.backends.wan.presets)
    spec_aliases = ("wan",)  # wan:PATH, steplens' prefix for any diffusers folder before diffusers:PATH
    takes_call_size = True  # --height/--width: a fixed call size (multiples of folder_size_multiple)
    loop_class = WanLoop
    float32_components = ("vae", "image_encoder")  # as the Wan model cards load them
    decode_latents = staticmethod(decode_latents)

    @classmethod
    def class_for(cls, config: dict) -> str | None:
        """The hub's Wan2.2-TI2V-5B folder names WanPipeline (with expand_timesteps): loaded for image-to-video."""
        name = config.get("_class_name")
        return "WanImageToVideoPipeline" if name == "WanPipeline" and config.get("expand_timesteps") else name

    @classmethod
    def check_loras(cls, lora, lora_2) -> None:
        from ..lora import parse_spec

        for spec, option in ((lora, "--lora"), (lora_2, "--lora-2")):
            if spec is not None:
                parse_spec(spec, option)

    @classmethod
    def apply_loras(cls, pipe, lora, lora_2, unmatched: str = "refuse") -> dict:
        """'PATH[:SCALE]' LoRAs for the first and the second transformer (steplens.backends.wan.lora)."""
        from .lora import apply_loras

        return apply_loras(pipe, lora, lora_2, unmatched)

    @classmethod
    def folder_size_multiple(cls, path: str):
        """VAE spatial factor (vae/config.json's scale_factor_spatial, diffusers' default 8) x the transformer's
        patch (transformer/config.json's patch_size)."""
        import json
        from pathlib import Path

        try:
            vae = json.loads((Path(path).expanduser() / "vae" / "config.json").read_text())
            patch = json.loads((Path(path).expanduser() / "transformer" / "config.json").read_text())["patch_size"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a hub id or an unusual folder: checked after loading
        s = int(vae.get("scale_factor_spatial") or 8)
        return (s * int(patch[1]), s * int(patch[2])), f"VAE {s} x patch {patch[1]}"

    @classmethod
    def folder_size_max(cls, path: str):
        """The rotary position table covers rope_max_seq_len patches per axis (transformer/config.json, diffusers'
        default 1024): a wider or taller call fails inside the transformer's forward."""
        found, tr = cls.folder_size_multiple(path), cls.folder_config(path, "transformer")
        if found is None or tr is None:
            return None
        n = int(tr.get("rope_max_seq_len") or 1024)
        (mh, mw), why = found
        return (n * mh, n * mw), (f"rope_max_seq_len {n} patches per axis in transformer/config.json; {why}")

    @property
    def sampling_options(self) -> frozenset:
        base = {"scheduler", "negative_prompt", "height", "width", "size", "sigmas"}
        return frozenset(base | ({"boundary"} if self.has_two_experts else set()))

    def sampling_defaults(self) -> dict:
        """The pipeline's own settings: steps and CFG from its __call__ signature, the scheduler's flow shift,
        the scheduler class, boundary_ratio (two experts), the negative prompt in use."""
        out = super().sampling_defaults()
        if self.has_two_experts:
            out["boundary"] = self.pipe.config.boundary_ratio
        return out

    def scheduler_for(self, name: str | None):
        """"euler": a FlowMatchEulerDiscreteScheduler in place of the pipeline's (for the call: `applied`); None or the
        pipeline's own class name: its own."""
        sched = self.pipe.scheduler
        if name is None or name == type(sched).__name__:
            return sched
        if name != "euler":
            raise ValueError(f"scheduler {name!r}: steplens sets 'euler' (FlowMatchEulerDiscreteScheduler) or keeps "
                             f"the pipeline's {type(sched).__name__}")
        from diffusers import FlowMatchEulerDiscreteScheduler

        fresh = FlowMatchEulerDiscreteScheduler(num_train_timesteps=int(sched.config.num_train_timesteps))
        def settings(x):
            return {k: v for k, v in x.config.items() if k not in ("shift", "_use_default_values")}

        if type(sched) is FlowMatchEulerDiscreteScheduler and settings(sched) == settings(fresh):
            return sched  # the one a call set up already (a trace attached around generate): kept
        return fresh

    # -- geometry --------------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    @property
    def latent_channels(self) -> int:
        return self.pipe.vae.config.z_dim

    # -- generating ------------------------------------------------------------------------------------------
    def _embed(self, texts: list[str], device, dtype) -> torch.Tensor:
        emb = self.prompt_embeds(list(texts))
        check_embeddings(emb, len(texts), self.text_dim, "the transformer expects text_dim {dim}")
        return emb.to(device=device, dtype=dtype) if dtype is not None else emb.to(device)

    def check_prompt_encoding(self) -> None:
        """The pipeline's prompt cleaning (diffusers' Wan `prompt_clean`) needs ftfy; say so before a NameError."""
        import importlib.util

        if self.prompt_embeds is None and importlib.util.find_spec("ftfy") is None:
            raise ImportError("encoding prompts with the pipeline's text encoder needs ftfy (diffusers' Wan prompt "
                              "cleaning): pip install ftfy, or give WanPipelineModel a prompt_embeds provider")

    # frame-prefix conditioning (steplens.backends.wan.prefix): the pipeline's own mask takes any K leading frames
    prefix_why = None

    def prefix_refused(self) -> str | None:
        if getattr(self.pipe.config, "expand_timesteps", False):
            return ("Wan2.2-TI2V-5B conditions on its first frame through the clean latent of frame 0 "
                    "(expand_timesteps), not a mask: K > 1 leading frames are not supported yet")
        return None

    def _per_sample_steps(self, images, prompts, generators, prefixes=None) -> InstancePatches:
        """For one pipeline call: encode_prompt / encode_image / prepare_latents run once per sample (see the
        module doc), so that a call with num_videos_per_prompt=B gets B different images, prompts and noises."""
        pipe, n = self.pipe, len(images)
        negatives = [self.negative_prompt] * n

        def wrap_encode_prompt(original):
            def encode_prompt(*args, **kwargs):
                a = bound_arguments(original, args, kwargs)
                cfg, device, dtype = a["do_classifier_free_guidance"], a["device"], a["dtype"]
                if self.prompt_embeds is None:  # the pipeline's own text encoder
                    return original(prompt=list(prompts), negative_prompt=negatives if cfg else None,
                                    do_classifier_free_guidance=cfg, num_videos_per_prompt=1,
                                    max_sequence_length=a["max_sequence_length"], device=device, dtype=dtype)
                device = device or pipe._execution_device
                return self._embed(prompts, device, dtype), (self._embed(negatives, device, dtype) if cfg else None)

            return encode_prompt

        def wrap_encode_image(original):
            def encode_image(image, device=None):
                return torch.cat([original(img, device) for img in images])

            return encode_image

        def wrap_prepare_latents(original):
            def prepare_latents(*args, **kwargs):
                a = bound_arguments(original, args, kwargs)
                if a["batch_size"] != n or a.get("latents") is not None or a.get("last_image") is not None:
                    raise RuntimeError("steplens' per-sample prepare_latents got an unexpected call")
                rows = []
                for img, g, given in zip(images, generators, prefixes or [None] * n):
                    pre = pipe.video_processor.preprocess(img, height=a["height"], width=a["width"])
                    row = original(pre.to(a["device"], dtype=torch.float32), 1, a["num_channels_latents"],
                                   a["height"], a["width"], a["num_frames"], a["dtype"], a["device"], g)
                    if given is not None:  # K leading frames: the condition of all of them (noise as drawn)
                        from .prefix import prefix_condition

                        frames = [pipe.video_processor.preprocess(f, height=a["height"], width=a["width"])
                                  .to(a["device"], dtype=torch.float32) for f in given]
                        row = (row[0], prefix_condition(pipe, frames, a["num_frames"], a["dtype"], a["device"]))
                    rows.append(row)
                return join_rows(rows)  # TI2V: (latents, condition) rows and one first_frame_mask

            return prepare_latents

        return InstancePatches((pipe, "encode_prompt", wrap_encode_prompt), (pipe, "encode_image", wrap_encode_image),
                               (pipe, "prepare_latents", wrap_prepare_latents))

    def call_inputs(self, samples, seeds, frames: int | None = None, steps: int | None = None,
                    guidance: float | None = None) -> tuple[list, list[torch.Generator], dict]:
        """The core's (PipelineModel.call_inputs), plus output_type "latent" and the text encoder's
        max_sequence_length."""
        images, generators, kw = super().call_inputs(samples, seeds, frames, steps, guidance)
        return images, generators, {**kw, "output_type": "latent", "max_sequence_length": self.max_sequence_length}

    def pipeline_inputs(self, sample, seed: int, frames: int | None = None, steps: int | None = None,
                        guidance: float | None = None) -> dict:
        """The plain single-sample pipeline call equivalent to generate([sample], [seed], ...): `pipe(**kw)` (at
        the pipeline's current shift) returns the same latents, bit for bit."""
        images, generators, kw = self.call_inputs([sample], [seed], frames, steps, guidance)
        guidance = kw["guidance_scale"]
        kw.update(image=images[0], generator=generators[0])
        if self.prompt_embeds is None:
            kw.update(prompt=sample.prompt, negative_prompt=self.negative_prompt)
        else:
            kw["prompt_embeds"] = self.prompt_embeds([sample.prompt])
            if guidance > 1.0:
                kw["negative_prompt_embeds"] = self.prompt_embeds([self.negative_prompt])
        return kw

    def call_context(self, stack: ExitStack, samples, images, generators, kw: dict) -> dict:
        """The per-sample steps (see the module doc) around a call with num_videos_per_prompt = B."""
        self.check_prompt_encoding()
        prefixes = self.prefix_images(samples, kw["height"], kw["width"])
        stack.enter_context(self._per_sample_steps(images, [s.prompt for s in samples], generators,
                                                   prefixes if any(p is not None for p in prefixes) else None))
        # batch_size 1 x num_videos_per_prompt B: the pipeline repeats nothing per image (the per-sample steps give B
        # rows); the one-row prompt_embeds only sets batch_size (encode_prompt returns the real ones)
        return dict(image=images[0], prompt_embeds=torch.zeros(1, 1, self.text_dim), generator=generators,
                    num_videos_per_prompt=len(images), return_dict=False, **kw)
