"""The per-family declarations the shared backend tests (backend_mixin.BackendTests) run on: how to build a family's
tiny offline pipeline (steplens/backends/*/tiny.py), its steplens model, its plain pipeline call spelled out
(`direct`), what "untouched" means for it (`assert_pristine`), its guidance, branches and geometry. Not a test
module: the family test files (test_<family>.py, test_<family>_own.py) import it, never each other."""

from __future__ import annotations

import torch
from PIL import Image

from steplens.backends.prompts import HashedPromptEmbeds
from steplens.context import current
from steplens.io.video import upscale
from steplens.tasks import get_task

MAZE = get_task("maze")


def maze(seed, n=3, frames=3):
    return MAZE.sample(seed, n, frames)


class Family:
    """What the shared tests need to know about one diffusers family (every field is read by BackendTests)."""

    steps: int  # the steps of the tiny runs
    cfg: float  # the CFG scale of the tiny runs (> 1)
    cond_first: list  # the branches each forward of a CFG step holds, in call order: [("cond",), ("uncond",)] ...
    latent_shape: tuple  # generate([maze 7x7, 3 frames]): the latent
    video_shape: tuple  # decode_video of it
    pool: tuple  # decode = avg_pool3d(video[:, :, ::frame_stride], (1, *pool)): frame stride, pixels per maze px
    trace_shapes: tuple  # the plain call of `plain`: (x0 latent, blocks.1 record, decoded video)
    free = slice(None)  # the latent frames the scheduler moves (LTX-2 holds frame 0, the image latent)
    x0_atol = 0.0  # x0_hat = x - σ v on those frames: 0 = bit for bit
    x0_edit = True  # an x0 edit lands exactly (Wan2.2-TI2V mixes the image latent back in: its own tests)
    x0_edit_atol = 0.0  # an x0 edit before the last step: v = (x - x0') / σ and the Euler step, 0 = bit for bit
    other_shift = 3.0  # a shift that is not the family's default
    probe_batch = 1  # samples per probe batch (and count)
    cond_atol = 0.0  # the cond branch of a CFG run vs a CFG-off run: 0 = bit for bit
    ensemble_atol = 0.0  # members' outputs after x0_hat is averaged at the last step: 0 = bit for bit
    ensemble_spread = 0.0  # members' outputs differ by more than this without averaging
    sweep_steps = (2, 3)
    methods_shift: float  # the shift compare's methods run at
    cli_shift: float | None  # the shift a CLI run on the saved folder records

    @staticmethod
    def build(seed=0):
        raise NotImplementedError

    def model(self, pipe, **kw):
        raise NotImplementedError

    def plain(self, pipe, guidance):
        """The pipeline's own call on the family's tiny inputs: a tuple of output tensors."""
        raise NotImplementedError

    def output(self, pipe, latent):
        """A steplens latent as the pipeline returns it for output_type="latent"."""
        return latent

    def shifted(self, scheduler, shift):
        """The scheduler a fixed `shift` stands for."""
        return type(scheduler).from_config(scheduler.config, shift=shift)

    experts = ["transformer"]  # the model's experts

    def expert_at(self, pipe, k):
        """The expert the pipeline runs at step k."""
        return "transformer"

    def blocks(self, pipe):
        return pipe.transformer.transformer_blocks

    def assert_pristine(self, pipe):
        raise NotImplementedError


class Hunyuan15(Family):
    steps, cfg, glyph = 3, 6.0, 4  # glyph: tokens of the (masked) glyph stream, short to keep the tests fast
    cond_first = [("cond",), ("uncond",)]  # one forward per CFG branch, cond first (the guider's pred_cond)
    latent_shape, video_shape, pool = (1, 4, 3, 7, 7), (1, 3, 5, 28, 28), (2, 4)
    trace_shapes = ((1, 4, 3, 7, 7), (1, 3 * 7 * 7, 16), (1, 5, 3, 28, 28))
    ensemble_atol, ensemble_spread, cli_shift, methods_shift = 1e-5, 1e-2, 5.0, 5.0

    @staticmethod
    def build(seed=0, **kw):
        from steplens.backends.tiny.hunyuan15 import tiny_hunyuan15_i2v

        return tiny_hunyuan15_i2v(seed=seed, **kw)

    def model(self, pipe, **kw):
        from steplens.backends.hunyuan15 import HunyuanVideo15Model

        return HunyuanVideo15Model(pipe, glyph_length=self.glyph, **kw)

    def plain(self, pipe, guidance):
        return (self.direct(pipe, [maze(0)], [0], guidance=guidance),)

    def direct(self, pipe, samples, seeds, guidance=None, steps=None, frames=3, k=4, output_type="latent",
               scheduler=None, **extra):
        """The plain pipeline call, spelled out: one image (the maze upscaled xk, nearest) at its own size (the
        bucket of target_size = its side), hashed prompt embeddings with an all-ones mask, an empty glyph stream,
        2 (frames - 1) + 1 video frames, one CPU generator per row, the guider at `guidance`."""
        from steplens.backends.tiny.hunyuan15 import GLYPH_DIM, TEXT_DIM

        guidance, steps, g = self.cfg if guidance is None else guidance, steps or self.steps, self.glyph
        text = HashedPromptEmbeds(TEXT_DIM)
        n = len(samples)
        glyph, glyph_mask = torch.zeros(n, g, GLYPH_DIM), torch.zeros(n, g, dtype=torch.long)
        emb = text([s.prompt for s in samples])
        mask = torch.ones(emb.shape[:2], dtype=torch.long)
        kw = dict(image=Image.fromarray(upscale(samples[0].first_frame, k)), prompt_embeds=emb,
                  prompt_embeds_mask=mask, prompt_embeds_2=glyph, prompt_embeds_mask_2=glyph_mask,
                  num_frames=pipe.vae_scale_factor_temporal * (frames - 1) + 1, num_inference_steps=steps,
                  output_type=output_type, return_dict=False,
                  generator=[torch.Generator().manual_seed(x) for x in seeds])
        if guidance > 1:
            kw.update(negative_prompt_embeds=text([""] * n), negative_prompt_embeds_mask=mask,
                      negative_prompt_embeds_2=glyph, negative_prompt_embeds_mask_2=glyph_mask)
        kw.update(extra)
        saved = pipe.scheduler, pipe.guider, pipe.target_size
        pipe.scheduler = scheduler or saved[0]
        pipe.guider, pipe.target_size = saved[1].new(guidance_scale=guidance), k * samples[0].size_px
        try:
            return pipe(**kw)[0]
        finally:
            pipe.scheduler, pipe.guider, pipe.target_size = saved

    def assert_pristine(self, pipe):
        assert not {"step", "set_timesteps"} & set(vars(pipe.scheduler))
        assert not {"prepare_latents", "encode_image", "prepare_cond_latents_and_mask"} & set(vars(pipe))
        assert "calculate_default_height_width" not in vars(pipe.video_processor)
        assert "forward" not in vars(pipe.transformer)  # diffusers' cache_context leaves an empty HookRegistry
        assert not getattr(getattr(pipe.transformer, "_diffusers_hook", None), "hooks", None)
        assert all(len(b._forward_hooks) == 0 for b in pipe.transformer.transformer_blocks)
        assert pipe.guider.guidance_scale == self.cfg and current() is None


class LTX2(Family):
    steps, cfg = 3, 3.0
    cond_first = [("uncond", "cond")] * 2  # one forward on [uncond; cond]; the hook gets one branch at a time
    latent_shape, video_shape, pool = (1, 4, 3, 7, 7), (1, 3, 17, 224, 224), (8, 32)
    trace_shapes = ((1, 4, 3, 2, 2), (1, 12, 16), (1, 17, 3, 64, 64))  # 17 frames of 64 px: 3 x 2x2 tokens
    free, cond_atol, cli_shift, methods_shift = slice(1, None), 1e-5, None, 3.0

    @staticmethod
    def build(seed=0):
        from steplens.backends.ltx2.tiny import tiny_ltx2_i2v

        return tiny_ltx2_i2v(seed=seed)

    def model(self, pipe, **kw):
        from steplens.backends.ltx2 import LTX2PipelineModel

        return LTX2PipelineModel(pipe, **kw)

    def run(self, pipe, **kw):
        """(video latents, audio latents) of a plain call with tiny_inputs (CFG on, output_type latent)."""
        from steplens.backends.ltx2.tiny import tiny_inputs

        return pipe(**tiny_inputs(pipe, **kw), return_dict=False)

    def plain(self, pipe, guidance):
        return tuple(self.run(pipe, guidance_scale=guidance))

    def output(self, pipe, latent):
        from steplens.backends.ltx2 import denormalize

        return denormalize(pipe, latent)

    def shifted(self, scheduler, shift):  # a fixed shift replaces LTX-2's dynamic one
        assert scheduler.config.use_dynamic_shifting
        return type(scheduler).from_config(scheduler.config, use_dynamic_shifting=False, shift=shift)

    def direct(self, pipe, samples, seeds, guidance=None, steps=None, frames=3, output_type="latent", scheduler=None):
        """The plain pipeline call, spelled out: the maze upscaled x32 (nearest), hashed prompt embeddings with an
        all-ones mask, 8 (frames - 1) + 1 video frames, one CPU generator per row, STG / modality / rescale off."""
        from steplens.backends.ltx2.tiny import TEXT_DIM

        guidance, steps = self.cfg if guidance is None else guidance, steps or self.steps
        text = HashedPromptEmbeds(TEXT_DIM)
        n = len(samples)
        images = [Image.fromarray(upscale(s.first_frame, 32)) for s in samples]
        emb = text([s.prompt for s in samples])
        mask = torch.ones(emb.shape[:2], dtype=torch.long)
        kw = dict(image=images[0] if n == 1 else images, prompt_embeds=emb, prompt_attention_mask=mask,
                  height=32 * samples[0].size_px, width=32 * samples[0].size_px, num_frames=8 * (frames - 1) + 1,
                  num_inference_steps=steps, guidance_scale=guidance, audio_guidance_scale=guidance,
                  guidance_rescale=0.0, audio_guidance_rescale=0.0, stg_scale=0.0, audio_stg_scale=0.0,
                  modality_scale=1.0, audio_modality_scale=1.0, image_crf=0, output_type=output_type,
                  generator=torch.Generator().manual_seed(seeds[0]) if n == 1 else
                  [torch.Generator().manual_seed(x) for x in seeds])
        if guidance > 1:
            kw.update(negative_prompt_embeds=text([""] * n), negative_prompt_attention_mask=mask)
        original = pipe.scheduler
        pipe.scheduler = scheduler or original
        try:
            return pipe(**kw, return_dict=False)[0]
        finally:
            pipe.scheduler = original

    def assert_pristine(self, pipe):
        assert not {"step", "set_timesteps", "__deepcopy__"} & set(vars(pipe.scheduler))
        assert not {"prepare_latents", "_pack_latents", "_denormalize_latents"} & set(vars(pipe))
        assert "forward" not in vars(pipe.transformer) and "cache_context" not in vars(pipe.transformer)
        assert all(len(b._forward_hooks) == 0 for b in pipe.transformer.transformer_blocks)
        assert current() is None




class Wan(Family):
    """The Wan adapter's families (WanImageToVideoPipeline): one or two experts, `blocks`, a flow_shift."""

    cond_first = [("cond",), ("uncond",)]  # one forward per CFG branch, cond first
    steps, cfg, size, scale, other_shift, methods_shift, cli_shift, sweep_steps = 4, 5.0, 32, 16, 5.0, 3.0, 3.0, (1, 2)

    def model(self, pipe, **kw):
        from steplens.backends.wan import WanPipelineModel

        return WanPipelineModel(pipe, **kw)

    def inputs(self, pipe, **kw):
        from steplens.backends.wan.tiny import tiny_inputs

        return tiny_inputs(pipe, height=self.size, width=self.size, **kw)

    def run(self, pipe, **kw):
        return pipe(**self.inputs(pipe, **kw)).frames

    def plain(self, pipe, guidance):
        return (self.run(pipe, output_type="latent", guidance_scale=guidance),)

    def shifted(self, scheduler, shift):
        return type(scheduler).from_config(scheduler.config, **{"shift" if hasattr(scheduler, "shift") else
                                                                  "flow_shift": shift})

    def direct(self, pipe, samples, seeds, guidance=None, steps=None, frames=3, output_type="latent", scheduler=None):
        """The plain pipeline call, spelled out: one image (the maze upscaled x`scale`, nearest), the hashed prompt
        embeddings, 4 (frames - 1) + 1 video frames, one CPU generator per row."""
        guidance, steps, s, k = self.cfg if guidance is None else guidance, steps or self.steps, samples[0], self.scale
        assert all(x is s for x in samples)  # the pipeline conditions a call on one image
        text = HashedPromptEmbeds(pipe.transformer.config.text_dim)
        kw = dict(image=Image.fromarray(upscale(s.first_frame, k)), prompt_embeds=text([s.prompt] * len(samples)),
                  height=k * s.size_px, width=k * s.size_px, num_frames=4 * (frames - 1) + 1,
                  num_inference_steps=steps, guidance_scale=guidance, output_type=output_type,
                  generator=[torch.Generator().manual_seed(x) for x in seeds])
        if guidance > 1:
            kw["negative_prompt_embeds"] = text([""] * len(samples))
        original = pipe.scheduler
        pipe.scheduler = scheduler or original
        try:
            return pipe(**kw).frames
        finally:
            pipe.scheduler = original

    def blocks(self, pipe):
        return pipe.transformer.blocks

    def assert_pristine(self, pipe):
        from steplens.backends import transformer_components

        for attr in ("step", "set_timesteps"):
            assert attr not in vars(pipe.scheduler)
        assert "prepare_latents" not in vars(pipe)
        for module in transformer_components(pipe).values():
            assert "forward" not in vars(module) and "cache_context" not in vars(module)
            assert all(len(b._forward_hooks) == 0 for b in module.blocks)
        assert current() is None


class Wan22(Wan):
    """Wan2.2-I2V-A14B (VBVR-Wan2.2's base): two experts, the high-noise one above the boundary."""

    experts = ["transformer", "transformer_2"]
    latent_shape, video_shape, pool = (1, 16, 3, 14, 14), (1, 3, 9, 112, 112), (4, 16)
    trace_shapes = ((1, 16, 2, 4, 4), (1, 2 * 2 * 2, 24), (1, 5, 3, 32, 32))
    ensemble_spread = 1e-2

    @staticmethod
    def build(seed=0, scheduler="euler"):
        from steplens.backends.wan.tiny import tiny_wan22_i2v

        return tiny_wan22_i2v(seed=seed, scheduler=scheduler)

    def expert_at(self, pipe, k):
        ref = type(pipe.scheduler).from_config(pipe.scheduler.config)
        ref.set_timesteps(self.steps)
        boundary = pipe.config.boundary_ratio * ref.config.num_train_timesteps
        return "transformer" if ref.timesteps[k] >= boundary else "transformer_2"


class WanTI2V(Wan):
    """Wan2.2-TI2V-5B (WanImageToVideoPipeline, expand_timesteps): frame 0 of x0_hat is the clean image latent."""

    size, scale = 64, 32  # tiny_inputs' frame: 4x4 latent (16x VAE), 2x2 tokens; a maze pixel: 16x VAE x 2 patch
    latent_shape, video_shape, pool = (1, 48, 3, 14, 14), (1, 3, 9, 224, 224), (4, 32)
    trace_shapes = ((1, 48, 2, 4, 4), (1, 2 * 2 * 2, 24), (1, 5, 3, 64, 64))
    free, x0_atol, x0_edit, probe_batch, ensemble_atol, ensemble_spread = slice(1, None), 1e-5, False, 2, 1e-5, 1e-2

    @staticmethod
    def build(seed=0, scheduler="euler"):
        from steplens.backends.wan.tiny import tiny_wan22_ti2v

        return tiny_wan22_ti2v(seed=seed, scheduler=scheduler)

    def image_latent(self, pipe, kw) -> torch.Tensor:
        """The condition of this call as the pipeline's own prepare_latents makes it: the image's latent
        (1, 48, 1, h, w), the first latent frame of the pipeline's output."""
        img = pipe.video_processor.preprocess(kw["image"], height=kw["height"], width=kw["width"]).float()
        _, cond, mask = pipe.prepare_latents(img, 1, pipe.vae.config.z_dim, kw["height"], kw["width"],
                                             kw["num_frames"], torch.float32, torch.device("cpu"),
                                             torch.Generator().manual_seed(0))
        assert mask.shape[:2] == (1, 1) and mask[:, :, 0].sum() == 0 and bool((mask[:, :, 1:] == 1).all())
        return cond
