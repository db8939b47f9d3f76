"""A Wan I2V pipeline's transformers as a steplens sampler model: `velocity(x, sigma, cond)`.

    model = WanTransformerModel(pipe)                      # or WanTransformerModel(WanPipelineModel(pipe, ...))
    x, cond, uncond = model.prepare(samples, seeds, frames=5, guidance=5.0)
    out = sample_euler(model, x, model.sigmas(20, shift=3.0), cond, callback, guidance=5.0, uncond=uncond)
    # = the pipeline's latents with FlowMatchEulerDiscreteScheduler (bit for bit in float32)
    lat = model.generate(samples, seeds, sampling=resolve(model, steps=20, shift=3.0, guidance=5.0))  # the same

What the pipeline does around its transformers, done here with the pipeline's own pieces:
* conditioning (`prepare`): per sample, the prompt embeddings (text encoder or provider, as WanPipelineModel),
  Wan2.1's CLIP image embeddings (`encode_image`), and `prepare_latents`: the noise from the sample's
  generator and the I2V condition, 4 mask channels (first frame known) + the VAE latent of the first frame
  followed by zeros, 20 channels that the transformer's 36 input channels take after the 16 noisy ones
  (Wan2.2-TI2V-5B: the condition is the image latent (B, 48, 1, h, w) alone);
* `velocity`: the timestep t = sigma * num_train_timesteps (float32, as FlowMatchEuler makes its timesteps),
  the expert by t >= boundary_ratio * num_train_timesteps (Wan2.2-A14B: `transformer` for high noise,
  `transformer_2` after), input cat([x, condition]) in the transformer's dtype. Under CFG the sampler passes
  cond and uncond as one batch (StepContext branches ("cond", "uncond")); the adapter runs one forward per
  branch, as the pipeline does, inside `cache_context(branch)` and a step context naming the branch and the
  expert, so block hooks see what they see on the pipeline. Wan2.2-TI2V-5B (expand_timesteps): input
  mix(x) = x with latent frame 0 replaced by the condition, timestep 0 on frame 0's tokens and t elsewhere, and
  `generate` returns mix(x) with x0_hat = mix(x_s - sigma v) for callbacks and hooks (steplens.backends.wan.ti2v);
* `sigmas(steps, shift)`: FlowMatchEulerDiscreteScheduler's sigmas for that shift (its timesteps and the final
  0), taken from a fresh scheduler (the pipeline's is not touched).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch

from ...context import current, step_context
from ...contract import ModelDefaults
from . import ti2v
from .model import WanPipelineModel


@dataclass
class WanCond:
    """What the transformer is conditioned on, batch-first: prompt (B, L, text_dim), condition (B, 20, T, h, w)
    (TI2V-5B: the image latent (B, z, 1, h, w)),
    image (B, L_img, image_dim) for Wan2.1 (None for Wan2.2-A14B), negative (the CFG prompt) if any."""

    prompt: torch.Tensor
    condition: torch.Tensor
    image: torch.Tensor | None = None
    negative: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.prompt.shape[0]

    def null_prompt(self) -> "WanCond":
        if self.negative is None:
            raise ValueError("this conditioning has no negative prompt (prepare it with guidance > 1)")
        return WanCond(self.negative, self.condition, self.image, None)

    def cat(self, other: "WanCond") -> "WanCond":
        def c(a, b):
            return None if a is None or b is None else torch.cat([a, b])

        return WanCond(torch.cat([self.prompt, other.prompt]), torch.cat([self.condition, other.condition]),
                       c(self.image, other.image), c(self.negative, other.negative))

    def chunk(self, n: int) -> list["WanCond"]:
        if len(self) % n:
            raise ValueError(f"a batch of {len(self)} does not split into {n} branches")
        m = len(self) // n

        def part(t, i):
            return None if t is None else t[i * m:(i + 1) * m]

        return [WanCond(part(self.prompt, i), part(self.condition, i), part(self.image, i), part(self.negative, i))
                for i in range(n)]


class WanTransformerModel(ModelDefaults):
    """The steplens sampler's view of a Wan I2V pipeline: velocity(x, sigma, cond) + the model contract
    (steplens.contract.VideoModel; is_pipeline False: it samples with steplens' own Euler sampler)."""

    backend = "wan-transformer"

    def __init__(self, pipe_or_model, **model_kwargs):
        self.wan = pipe_or_model if isinstance(pipe_or_model, WanPipelineModel) else WanPipelineModel(
            pipe_or_model, **model_kwargs)
        self.pipe = self.wan.pipe
        self.name = f"{self.wan.name} (steplens Euler)"
        self.info = dict(self.wan.info)
        self._static = None  # (experts, input dtype), looked up once per prepare(): cheap velocity calls

    def _experts(self):
        if self._static is None:  # the pipeline casts the input to the first transformer's dtype, for both experts
            self._static = (self.modules(), self.wan.transformer.dtype)
        return self._static

    # the experiment / hooks interface, shared with the pipeline model
    def modules(self):
        return self.wan.modules()

    @property
    def block_names(self):
        return self.wan.block_names

    def token_grid(self, latent_shape):
        return self.wan.token_grid(latent_shape)

    def token_mask(self, pixel_mask):
        return self.wan.token_mask(pixel_mask)

    def decode(self, latents):
        return self.wan.decode(latents)

    def latent_shape(self, samples, frames):
        return self.wan.latent_shape(samples, frames)

    def frames_from_video(self, n):
        return self.wan.frames_from_video(n)

    def decode_video(self, latents):
        return self.wan.decode_video(latents)

    # -- schedule --------------------------------------------------------------------------------------------
    @property
    def num_train_timesteps(self) -> int:
        return int(self.pipe.scheduler.config.num_train_timesteps)

    def sigmas(self, steps: int, shift: float = 3.0) -> torch.Tensor:
        """steps + 1 sigmas (float32, ending at 0) of FlowMatchEulerDiscreteScheduler with this shift."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        from ..checks import scheduler_with_shift

        sched = self.pipe.scheduler
        if isinstance(sched, FlowMatchEulerDiscreteScheduler):
            fresh = type(sched).from_config(sched.config)
        else:
            fresh = FlowMatchEulerDiscreteScheduler(num_train_timesteps=self.num_train_timesteps)
        fresh = scheduler_with_shift(fresh, shift)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
        fresh.set_timesteps(steps, device="cpu")
        return fresh.sigmas.clone()

    def expert_for(self, t: torch.Tensor) -> str:
        """The component the pipeline runs at timestep t."""
        ratio = self.pipe.config.boundary_ratio
        if ratio is None or self.pipe.transformer_2 is None or t >= ratio * self.num_train_timesteps:
            return "transformer" if self.pipe.transformer is not None else "transformer_2"
        return "transformer_2"

    # -- conditioning ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, samples, seeds, frames: int | None = None, guidance: float = 1.0):
        """(x: the initial noise (B, z, T, h, w) float32, cond, uncond or None), per sample exactly as the
        pipeline prepares a single-sample call."""
        pipe, wan = self.pipe, self.wan
        self._static = None
        images, gens, kw = wan.call_inputs(samples, seeds, frames, 1, guidance)
        h, w, nf = kw["height"], kw["width"], kw["num_frames"]
        device = pipe._execution_device
        dtype = self.wan.transformer.dtype
        cfg = guidance > 1.0
        prompts, negatives = [s.prompt for s in samples], [wan.negative_prompt] * len(samples)
        if wan.prompt_embeds is None:
            wan.check_prompt_encoding()
            pe, ne = pipe.encode_prompt(prompt=prompts, negative_prompt=negatives if cfg else None,
                                        do_classifier_free_guidance=cfg, num_videos_per_prompt=1,
                                        max_sequence_length=wan.max_sequence_length, device=device)
        else:
            pe, ne = wan._embed(prompts, device, None), (wan._embed(negatives, device, None) if cfg else None)
        pe = pe.to(dtype)
        ne = ne.to(dtype) if ne is not None else None
        image = None
        if pipe.transformer is not None and pipe.transformer.config.image_dim is not None:
            image = torch.cat([pipe.encode_image(img, device) for img in images]).to(dtype)
        xs, conds = [], []
        for img, g in zip(images, gens):
            pre = pipe.video_processor.preprocess(img, height=h, width=w).to(device, dtype=torch.float32)
            x, c = pipe.prepare_latents(pre, 1, pipe.vae.config.z_dim, h, w, nf, torch.float32, device, g)[:2]
            xs.append(x)
            conds.append(c)
        cond = WanCond(pe, torch.cat(conds), image, ne)
        return torch.cat(xs), cond, (cond.null_prompt() if cfg else None)

    # -- the velocity ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def velocity(self, x: torch.Tensor, sigma, cond: WanCond) -> torch.Tensor:
        t = torch.as_tensor(sigma, dtype=torch.float32).reshape(()) * self.num_train_timesteps
        name = self.expert_for(t)
        experts, dtype = self._experts()
        expert = experts[name]
        ctx = current()
        branches = ctx.branches if ctx is not None and len(ctx.branches) > 1 else ("cond",)
        outs = []
        for br, xb, cb in zip(branches, x.chunk(len(branches)), cond.chunk(len(branches))):
            inner = step_context(ctx, branches=(br,), expert=name) if ctx is not None else nullcontext()
            cache = expert.cache_context(br) if hasattr(expert, "cache_context") else nullcontext()
            with inner, cache:
                if ti2v.is_ti2v(self.pipe):
                    inp, ts = ti2v.transformer_input(xb, cb.condition, t, self.wan.patch_size, dtype)
                else:
                    inp = torch.cat([xb, cb.condition.to(xb.device)], dim=1).to(dtype)
                    ts = t.to(xb.device).expand(xb.shape[0])
                out = expert(hidden_states=inp, timestep=ts,
                             encoder_hidden_states=cb.prompt, encoder_hidden_states_image=cb.image,
                             return_dict=False)[0]
            outs.append(out)
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    # -- sampling --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sampling_defaults(self) -> dict:
        """The pipeline's own steps, CFG and flow shift (steplens.presets), sampled with steplens' Euler."""
        return {**self.wan.sampling_defaults(), "scheduler": "euler"}

    def generate(self, samples, seeds, frames: int | None = None, sampling=None, callback=None,
                 hooks=None) -> torch.Tensor:
        """steplens' Euler sampler on the pipeline's transformers (= the pipeline with FlowMatchEuler), with `sampling`
        (steplens.presets.Sampling; None: the pipeline's own, sampled with Euler): its σ list, where it has one,
        overrides steps and shift; its expert switch, negative prompt and call size hold for this call only."""
        from ...presets import sampled
        from ...sampling import sample_euler

        sampling = sampled(self, sampling)
        with self.wan.applied(replace(sampling, scheduler=None, shift=None, sigmas=None)):  # switch, prompt, size
            x, cond, uncond = self.prepare(samples, seeds, frames, sampling.guidance)
            sigmas = (torch.tensor([*sampling.sigmas, 0.0], dtype=torch.float32) if sampling.sigmas is not None
                      else self.sigmas(sampling.steps, sampling.shift))
            euler = ti2v.sample_euler if ti2v.is_ti2v(self.pipe) else sample_euler  # TI2V: frame 0 is the image latent
            return euler(self, x, sigmas, cond, callback, guidance=sampling.guidance, uncond=uncond, hooks=hooks)

    def __repr__(self) -> str:
        return f"WanTransformerModel({self.wan.name!r}, experts={self.wan.experts})"
