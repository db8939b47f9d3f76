"""A diffusers Wan pipeline seen as a steplens model: hooks, and the `generate` / `decode` every experiment uses.

    model = WanPipelineModel(pipe)      # WanImageToVideoPipeline: Wan2.1 I2V, Wan2.2-A14B's two experts, TI2V-5B
    model.block_names                   # ["blocks.0", …, "blocks.39"]
    model.modules()                     # {"transformer": …, "transformer_2": …} (the experts that exist)
    hooks = Hooks(model).record("blocks.3", steps=[0, 5], branch="uncond", expert="transformer_2")
    video = model.run(hooks, **pipe_kwargs).frames      # = with attach(pipe, hooks): pipe(**pipe_kwargs)

    lat = model.generate(samples, seeds, steps=20, shift=3.0, guidance=5.0, callback=steps.append, hooks=hooks)
    px = model.decode(lat)              # (B, 3, frames, H, W) in [-1, 1] at the samples' native size

Module hooks go on each expert's `blocks.i` (WanTransformerBlock: its output is the residual stream
(B, L, D), tokens ordered frame, h, w); the sampler points `latent` and `x0` and the step context are
provided by steplens.wan.hooks.attach, which wraps the pipeline while the hooks are attached.

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
  steplens.wan.prompts.HashedPromptEmbeds. The negative prompt (CFG's uncond branch) is `negative_prompt`
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
* shift: the scheduler is swapped, for the call only, for a copy with that shift (FlowMatchEuler's `shift`,
  UniPC's `flow_shift`); schedulers without a settable flow shift are refused;
* guidance: CFG scale (`guidance_scale`, and `guidance_scale_2` for the low-noise expert); 1 = off. The
  pipeline applies CFG only above 1, so guidance < 1 is refused;
* callback(StepInfo) per step through the trace machinery (steplens.wan.trace): x_s, the guided v and
  x0_hat as the scheduler gets them; hooks through steplens.wan.hooks.attach;
* Wan2.2-TI2V-5B (expand_timesteps=True): prepare_latents also returns the first-frame mask (batch 1, kept
  once); the latent's frame 0 is the clean image latent, and x0_hat has it too (steplens.wan.ti2v).

`decode` gives what the experiments score: the VAE's video (exactly as the pipeline decodes), at video frames
0, 4, 8, ... (one per sample frame), averaged over k x k pixel blocks back to the native size.
`decode_video` gives the full decoded video (all frames, upscaled size) in [-1, 1].
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from .ti2v import join_rows
from ..pipelines import PipelineGeometry, prompt_embedder
from .trace import InstancePatches, PipelineTrace, decode_latents, transformer_components

SUPPORTED_PIPELINES = ("WanImageToVideoPipeline",)
SHIFT_KEYS = {"FlowMatchEulerDiscreteScheduler": "shift", "UniPCMultistepScheduler": "flow_shift"}


def check_pipeline(pipe) -> None:
    """Raise a TypeError/ValueError naming what is not supported about this pipeline."""
    try:
        from diffusers import WanImageToVideoPipeline
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers Wan backend needs the 'wan' extra: pip install 'steplens[wan]'") from e
    if not isinstance(pipe, WanImageToVideoPipeline):
        raise TypeError(f"steplens.wan hooks do not support the pipeline class {type(pipe).__name__}; supported: "
                        f"{', '.join(SUPPORTED_PIPELINES)} (Wan2.1 I2V with one transformer, Wan2.2-A14B I2V with "
                        f"two experts `transformer`/`transformer_2`, Wan2.2-TI2V-5B with expand_timesteps=True)")
    if not transformer_components(pipe):
        raise ValueError(f"the {type(pipe).__name__} has no transformer (neither `transformer` nor `transformer_2`)")


def scheduler_with_shift(scheduler, shift: float):
    """The scheduler itself if its flow shift is `shift`, else a copy (from its config) with that shift."""
    name = type(scheduler).__name__
    key = SHIFT_KEYS.get(name)
    cfg = scheduler.config
    if key is None:
        raise TypeError(f"cannot set the flow shift of a {name}; steplens sets it on {', '.join(SHIFT_KEYS)} "
                        f"(e.g. pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config))")
    if getattr(cfg, "use_dynamic_shifting", False):
        raise ValueError(f"the pipeline's {name} uses dynamic (resolution-dependent) shifting; steplens needs a "
                         f"fixed shift (use_dynamic_shifting=False)")
    if key == "flow_shift" and not cfg.use_flow_sigmas:
        raise ValueError(f"the pipeline's {name} does not use flow sigmas (use_flow_sigmas=False), so it has no "
                         f"flow shift to set; Wan runs it with use_flow_sigmas=True")
    current = scheduler.shift if key == "shift" else cfg.flow_shift
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift!r}")
    if float(current) == float(shift):
        return scheduler
    return type(scheduler).from_config(cfg, **{key: float(shift)})


class StepCallbacks(PipelineTrace):
    """A trace that hands each step (a WanStep, i.e. a StepInfo) to `callback` as it happens, keeping nothing."""

    def __init__(self, pipe, callback: Callable, hooks=None):
        super().__init__(pipe, (), device=None, hooks=hooks)
        self.callback = callback

    def _record(self, scheduler, v, timestep, x, new_run: bool):
        super()._record(scheduler, v, timestep, x, new_run)
        steps = self.runs[-1].steps
        self.callback(steps[-1])
        steps[-1] = replace(steps[-1], x=None, v=None, x0=None)  # the callback keeps what it wants


def _bind(fn, args, kwargs) -> dict:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


class WanPipelineModel(PipelineGeometry):
    """A WanImageToVideoPipeline as a steplens model.

    For hooks: `block_names`, `modules()` -> {expert name: nn.Module}, `name`, `run(hooks, **pipe_kwargs)`.
    For experiments (the EmbeddedModel interface): `generate`, `decode`, `token_grid`, `token_mask`.

    prompt_embeds: a provider texts -> (B, L, text_dim) used instead of the pipeline's text encoder (default:
        the text encoder if the pipeline has one, else HashedPromptEmbeds).
    negative_prompt: the uncond branch's prompt under CFG.
    scale / min_size: the pixel upscale of the samples' first frames (see the module doc).
    """

    backend = "wan"

    def __init__(self, pipe, name: str | None = None, *, prompt_embeds: Callable | None = None,
                 negative_prompt: str = "", scale: int | None = None, min_size: int | None = None,
                 max_sequence_length: int = 512, info: dict | None = None):
        check_pipeline(pipe)
        self.pipe = pipe
        experts = self.modules()
        self.name = name or getattr(pipe, "name_or_path", None) or (
            f"{type(pipe).__name__}({'+'.join(experts)})")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
            raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
        if min_size is not None and min_size < 1:
            raise ValueError(f"min_size must be >= 1, got {min_size!r}")
        self.scale, self.min_size = scale, min_size
        self.negative_prompt = negative_prompt
        self.max_sequence_length = max_sequence_length
        self.prompt_embeds, self.prompt_source = prompt_embedder(pipe, prompt_embeds, self.transformer.config.text_dim)
        self.info = {"prompt": self.prompt_source, **(info or {})}
        self._scales: dict[tuple[int, int], int] = {}  # decoded (H, W) -> pixel scale, from generate
        self._native: dict[tuple[int, int], tuple[int, int]] = {}  # call (H, W) -> native (h, w), from generate
        self.size: tuple[int, int] | None = None  # a fixed call size (configure_sampling height/width)
        self.size_rule: str | None = None  # "first-frame": the size of the samples' first_frame.png

    # -- hooks -----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The pipeline's denoisers by component name: {"transformer": …} for Wan2.1 / TI2V-5B, plus "transformer_2"
        for Wan2.2-A14B (the low-noise expert, used once t < boundary_ratio · num_train_timesteps)."""
        return transformer_components(self.pipe)

    @property
    def experts(self) -> list[str]:
        return list(self.modules())

    @property
    def transformer(self) -> torch.nn.Module:
        """The first expert (`transformer`, or `transformer_2` if it is the only one)."""
        return next(iter(self.modules().values()))

    @property
    def block_names(self) -> list[str]:
        """`blocks.i` of the (first) transformer; Hooks checks that each expert has the point it hooks."""
        return [f"blocks.{i}" for i in range(len(self.transformer.blocks))]

    # -- sampling settings (steplens.presets) -------------------------------------------------------------------
    @property
    def has_two_experts(self) -> bool:
        return len(self.modules()) > 1

    def sampling_defaults(self) -> dict:
        """The pipeline's own settings: steps and CFG from its __call__ signature, the scheduler's flow shift,
        the scheduler class, boundary_ratio (two experts), the negative prompt in use."""
        params = inspect.signature(type(self.pipe).__call__).parameters
        sched = self.pipe.scheduler
        key = SHIFT_KEYS.get(type(sched).__name__)
        shift = (sched.shift if key == "shift" else sched.config.flow_shift) if key else float("nan")
        out = {"steps": int(params["num_inference_steps"].default), "shift": float(shift),
               "guidance": float(params["guidance_scale"].default), "scheduler": type(sched).__name__,
               "negative_prompt": self.negative_prompt}
        if self.has_two_experts:
            out["boundary"] = self.pipe.config.boundary_ratio
        return out

    def configure_sampling(self, scheduler: str | None = None, boundary: float | None = None,
                           negative_prompt: str | None = None, height: int | None = None, width: int | None = None,
                           size: str | None = None, shift: float | None = None) -> None:
        """Set what a preset or option asks for, for the rest of this model's life: scheduler "euler" (a
        FlowMatchEulerDiscreteScheduler replaces the pipeline's; a class name equal to the pipeline's keeps it),
        the expert switch `boundary` (a ratio of num_train_timesteps, two-expert pipelines only), the negative
        prompt, a fixed call size (height, width: multiples of spatial_multiple), or size="first-frame", and the
        scheduler's flow `shift` (so that a trace or hooks attached before generate see the scheduler that runs)."""
        pipe = self.pipe
        if scheduler is not None and scheduler != type(pipe.scheduler).__name__:
            if scheduler != "euler":
                raise ValueError(f"scheduler {scheduler!r}: steplens sets 'euler' (FlowMatchEulerDiscreteScheduler) "
                                 f"or keeps the pipeline's {type(pipe.scheduler).__name__}")
            from diffusers import FlowMatchEulerDiscreteScheduler

            pipe.scheduler = FlowMatchEulerDiscreteScheduler(
                num_train_timesteps=int(pipe.scheduler.config.num_train_timesteps))
        if shift is not None:
            pipe.scheduler = scheduler_with_shift(pipe.scheduler, float(shift))
        if boundary is not None:
            if not self.has_two_experts:
                raise ValueError(f"an expert switch (boundary {boundary}) needs a two-expert pipeline "
                                 f"(Wan2.2-A14B); {self.name} has one transformer")
            if not 0 < float(boundary) < 1:
                raise ValueError(f"boundary {boundary} must be in (0, 1): a fraction of the training timesteps")
            pipe.register_to_config(boundary_ratio=float(boundary))
        if negative_prompt is not None:
            self.negative_prompt = str(negative_prompt)
        if (height is None) != (width is None):
            raise ValueError("height and width go together")
        if height is not None:
            mh, mw = self.spatial_multiple
            for what, v, m in (("--height", height, mh), ("--width", width, mw)):
                if isinstance(v, bool) or not isinstance(v, int) or v < m or v % m:
                    raise ValueError(f"{what} {v!r}: must be a positive multiple of {m} for this pipeline "
                                     f"(VAE {self.pipe.vae_scale_factor_spatial} x patch)")
            self.size = (int(height), int(width))
        if size is not None:
            if size != "first-frame":
                raise ValueError(f"size {size!r}: 'first-frame' is the only size rule")
            self.size_rule = size

    def run(self, hooks=None, **pipe_kwargs):
        """Call the pipeline with `hooks` attached (steplens.wan.hooks.attach); returns the pipeline's output."""
        if hooks is None:
            return self.pipe(**pipe_kwargs)
        from .hooks import attach

        with attach(self.pipe, hooks):
            return self.pipe(**pipe_kwargs)

    # -- geometry --------------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    @property
    def temporal_factor(self) -> int:
        return self.pipe.vae_scale_factor_temporal

    @property
    def token_pixels(self) -> tuple[int, int]:
        return self.spatial_multiple

    @property
    def spatial_multiple(self) -> tuple[int, int]:
        """Pixel sizes the frame's height and width must be multiples of (vae scale x patch: 16 for Wan2.1 /
        A14B, 32 for TI2V-5B)."""
        s = self.pipe.vae_scale_factor_spatial
        _, ph, pw = self.patch_size
        return s * ph, s * pw

    def latent_shape(self, samples, frames: int) -> tuple[int, ...]:
        h, w = self._frame_size(samples)
        k, s = self.pixel_scale(h, w), self.pipe.vae_scale_factor_spatial
        return (len(samples), self.pipe.vae.config.z_dim, frames, h * k // s, w * k // s)

    def call_size(self, samples) -> tuple[int, int]:
        """(height, width) of the pipeline call for these samples: `configure_sampling(height=, width=)` if set;
        the size of the samples' first_frame.png rounded up to the pipeline's multiple under size="first-frame"
        (the vbvr preset); else the native frame upscaled by the integer pixel_scale."""
        h, w = self._frame_size(samples)
        mh, mw = self.spatial_multiple
        if self.size is not None:
            return self.size
        if self.size_rule == "first-frame":
            k = max(int(getattr(samples[0], "scale", 1) or 1), 1)
            return -(-h * k // mh) * mh, -(-w * k // mw) * mw
        k = self.pixel_scale(h, w)
        return h * k, w * k

    # -- generating ------------------------------------------------------------------------------------------
    def _embed(self, texts: list[str], device, dtype) -> torch.Tensor:
        emb = self.prompt_embeds(list(texts))
        if not isinstance(emb, torch.Tensor) or emb.dim() != 3 or emb.shape[0] != len(texts):
            raise ValueError(f"the prompt_embeds provider must return a (B, L, text_dim) tensor for {len(texts)} "
                             f"texts, got {getattr(emb, 'shape', type(emb).__name__)}")
        dim = self.transformer.config.text_dim
        if emb.shape[-1] != dim:
            raise ValueError(f"the prompt_embeds provider returned text_dim {emb.shape[-1]}, the transformer expects "
                             f"{dim}")
        return emb.to(device=device, dtype=dtype) if dtype is not None else emb.to(device)

    def check_prompt_encoding(self) -> None:
        """The pipeline's prompt cleaning (diffusers' Wan `prompt_clean`) needs ftfy; say so before a NameError."""
        import importlib.util

        if self.prompt_embeds is None and importlib.util.find_spec("ftfy") is None:
            raise ImportError("encoding prompts with the pipeline's text encoder needs ftfy (diffusers' Wan prompt "
                              "cleaning): pip install ftfy, or give WanPipelineModel a prompt_embeds provider")

    @contextmanager
    def _per_sample_steps(self, images, prompts, generators):
        """For one pipeline call: encode_prompt / encode_image / prepare_latents run once per sample (see the
        module doc), so that a call with num_videos_per_prompt=B gets B different images, prompts and noises."""
        pipe, n = self.pipe, len(images)
        negatives = [self.negative_prompt] * n

        def wrap_encode_prompt(original):
            def encode_prompt(*args, **kwargs):
                a = _bind(original, args, kwargs)
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
                a = _bind(original, args, kwargs)
                if a["batch_size"] != n or a.get("latents") is not None or a.get("last_image") is not None:
                    raise RuntimeError("steplens' per-sample prepare_latents got an unexpected call")
                rows = []
                for img, g in zip(images, generators):
                    pre = pipe.video_processor.preprocess(img, height=a["height"], width=a["width"])
                    rows.append(original(pre.to(a["device"], dtype=torch.float32), 1, a["num_channels_latents"],
                                         a["height"], a["width"], a["num_frames"], a["dtype"], a["device"], g))
                return join_rows(rows)  # TI2V: (latents, condition) rows and one first_frame_mask

            return prepare_latents

        patches = InstancePatches()
        try:
            patches.patch(pipe, "encode_prompt", wrap_encode_prompt)
            patches.patch(pipe, "encode_image", wrap_encode_image)
            patches.patch(pipe, "prepare_latents", wrap_prepare_latents)
            yield
        finally:
            patches.restore()

    @contextmanager
    def _shift(self, shift: float):
        pipe = self.pipe
        original = pipe.scheduler
        shifted = scheduler_with_shift(original, shift)
        if shifted is original:
            yield
            return
        pipe.scheduler = shifted
        try:
            yield
        finally:
            pipe.scheduler = original

    def call_inputs(self, samples, seeds, frames: int | None = None, steps: int | None = None,
                    guidance: float | None = None) -> tuple[list, list[torch.Generator], dict]:
        """(first frames as upscaled PIL images, one seeded CPU generator per sample, the shared keyword arguments
        of the pipeline call: height, width, num_frames, num_inference_steps, guidance_scale, ...). steps and
        guidance default to the pipeline's own (sampling_defaults)."""
        own = self.sampling_defaults() if steps is None or guidance is None else {}
        steps = own["steps"] if steps is None else steps
        guidance = own["guidance"] if guidance is None else guidance
        from PIL import Image

        from ..video import check_frames
        from ..video import upscale

        frames = check_frames(frames or samples[0].frames)
        seeds = [int(s) for s in seeds]
        if len(seeds) != len(samples):
            raise ValueError(f"{len(seeds)} seeds given for {len(samples)} samples")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
        if guidance < 1.0:
            raise ValueError(f"guidance {guidance} < 1: the Wan pipeline applies classifier-free guidance only for "
                             f"guidance > 1 (1 = off)")
        h, w = self._frame_size(samples)
        H, W = self.call_size(samples)
        k = H // h if H % h == 0 and W % w == 0 and H // h == W // w else None
        if k is not None:
            self._scales[H, W] = k
            images = [Image.fromarray(np.ascontiguousarray(upscale(s.first_frame, k)), "RGB") for s in samples]
        else:  # not an integer upscale (--height/--width, or a first frame off the pipeline's multiple)
            self._native[H, W] = (h, w)
            images = [Image.fromarray(np.ascontiguousarray(s.first_frame), "RGB").resize((W, H), Image.BICUBIC)
                      for s in samples]
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        kw = dict(height=H, width=W, num_frames=self.video_frames(frames), num_inference_steps=steps,
                  guidance_scale=float(guidance), output_type="latent", max_sequence_length=self.max_sequence_length)
        return images, generators, kw

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

    @torch.no_grad()
    def generate(self, samples, seeds, frames: int | None = None, steps: int | None = None,
                 shift: float | None = None, guidance: float | None = None, callback=None,
                 hooks=None) -> torch.Tensor:
        """Sample the videos of `samples` from `seeds` in one pipeline call; returns the final latents
        (B, z, frames, H/s, W/s) (s = 8; TI2V-5B: z 48, s = 16) as the pipeline returns them (output_type="latent").
        steps, shift and guidance default to the pipeline's own (sampling_defaults: its __call__ defaults, its
        scheduler's shift)."""
        from .hooks import check_scheduler

        check_scheduler(self.pipe.scheduler)  # refused before any work, hooks or not
        images, generators, kw = self.call_inputs(samples, seeds, frames, steps, guidance)
        self.check_prompt_encoding()
        text_dim = self.transformer.config.text_dim
        with ExitStack() as stack:
            if shift is not None:
                stack.enter_context(self._shift(shift))  # before the hooks: they hold on to the pipeline's scheduler
            stack.enter_context(self._per_sample_steps(images, [s.prompt for s in samples], generators))
            if callback is not None:
                stack.enter_context(StepCallbacks(self.pipe, callback, hooks))
            elif hooks is not None:
                from .hooks import attach

                stack.enter_context(attach(self.pipe, hooks))
            # batch_size 1 x num_videos_per_prompt B: the pipeline repeats nothing per image (the per-sample steps
            # give B rows); the one-row prompt_embeds only sets batch_size (encode_prompt returns the real ones)
            return self.pipe(image=images[0], prompt_embeds=torch.zeros(1, 1, text_dim), generator=generators,
                             num_videos_per_prompt=len(images), return_dict=False, **kw)[0]

    # -- decoding --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> the pipeline's decoded video (B, 3, num_frames, H, W) in [-1, 1], float32, sample by sample
        (the VAE as the pipeline runs it: steplens.wan.decode_latents)."""
        return torch.cat([decode_latents(self.pipe, latents[i:i + 1], "raw").float() for i in range(len(latents))])

    def __repr__(self) -> str:
        return f"WanPipelineModel({self.name!r}, experts={self.experts}, blocks={len(self.block_names)})"
