"""The diffusers backends: real video pipelines (Wan, LTX-2, ...) as steplens models, traced and hooked by step.

    from steplens.backends import attach, load_pipeline_model, trace_pipeline
    model = load_pipeline_model("wan:DIR")                  # = steplens.models.load_model("wan:DIR")
    with trace_pipeline(model.pipe, decode_steps=[-1], hooks=Hooks(model).record("blocks.1")) as tr:
        model.pipe(**kwargs)                                # tr.steps: PipelineStep (x_s, v, x0_hat, expert, ...)
    with attach(model.pipe, hooks):                         # hooks only
        model.pipe(**kwargs)

Three kinds of modules (tests/test_layout.py): the core imports no adapter and no tiny builder; an adapter imports
no other adapter and no tiny builder; a tiny builder imports only the core and its own adapter:

* the shared core, no family in it: `loop` (the one interception loop under trace and hooks), `steps` (PipelineStep,
  PipelineRun, PipelineTrace, trace_pipeline, attach), `patches` (instance patches; the forward side through
  diffusers' own HookRegistry / ModelHook; bound_arguments), `checks` (pipeline classes, schedulers, shifts, call
  inputs, dtype / offload / device), `load` (model_index.json, from_pretrained with dtype / offload, model options),
  `lora` (LoRA files onto transformers), `geometry` (samples <-> call size and images, frames, token grid, latent
  shape), `prompts` (HashedPromptEmbeds), `decode` (the VAE end of decode_latents), `model` (PipelineModel: the
  steplens.contract.VideoModel of a pipeline), `registry` (pipeline class -> backend, entry-point group
  `steplens.backends`);
* adapters, each holding only what is its family's: `wan/` (Wan2.1 I2V, Wan2.2-A14B, TI2V-5B; plus steplens' own
  sampler on Wan's transformers and Wan LoRA formats), `ltx2/` (LTX-2), `hunyuan15.py` (HunyuanVideo-1.5 I2V);
* tiny test builders (real diffusers classes, random weights): `<family>/tiny.py` of a folder adapter,
  `tiny/<family>.py` of a one-file adapter.

Writing an adapter (a new family, e.g. CogVideoX)
-------------------------------------------------
One file `steplens/backends/<family>.py` (or a folder) plus an entry point in pyproject.toml:

    [project.entry-points."steplens.backends"]
    myfamily = "steplens.backends.myfamily:MyPipelineModel"

It defines:

1. a loop, `class MyLoop(PipelineLoop)`: `check(cls, pipe) -> scheduler kind` (classmethod: refuse the wrong class
   or scheduler, e.g. `MyPipelineModel.check_pipeline(pipe)` and `check_scheduler` / `check_euler` from `checks`).
   The defaults fit the plain flow-matching pipeline (Wan's shape): x_s is the `latents` handed to `scheduler.step`
   and the first channels of the transformer input, one forward per CFG branch named by `cache_context` ("cond" /
   "uncond", or a guider's "pred_cond" / "pred_uncond"), x0_hat = x_s - sigma v, an x0 edit landing on x0' at
   sigma 0. Override only what differs: `forward_branches` (the CFG batch layout), `forward_input` / `latent_seen` /
   `latent_input` (where x_s sits in the transformer input), `x0_view`, `step_points` / `step_record` /
   `scheduled` (a different latent layout at scheduler.step), `prepared` / `stepped` / `patch` (more of the
   pipeline to follow, e.g. pack / unpack). LTX-2 (`ltx2/loop.py`) overrides most of them; Wan only what TI2V-5B
   changes; HunyuanVideo-1.5 only `check`.
2. `decode_latents(pipe, latents, output_type="pt")`: the family's denormalisation, then `decode.vae_decode` ("raw":
   the VAE's (B, 3, T, H, W) in [-1, 1]).
3. the model, `class MyPipelineModel(PipelineModel)` with class attributes `backend` ("myfamily"), `family`
   ("MyFamily", for messages), `pipeline_classes` (("MyImageToVideoPipeline",)), `loop_class`, `decode_latents`
   (staticmethod); optionally `blocks_attr` (where the transformer keeps its blocks, default "blocks": the core
   names them `blocks.i` for hooks, through a view if needed), `float32_components`, `dynamic_shift`,
   `max_sequence_length`, `sampling_options` (the settings of a `steplens.presets.Sampling` its generate applies)
   / `unsupported_words`, `scheduler_for` (a Sampling's scheduler name -> the scheduler a call runs), `presets`
   (name -> `steplens.presets.Preset`: the family's named samplings, e.g. Wan's `vbvr` and `distilled` in
   `wan/presets.py`), `check_loras` / `apply_loras`, `class_for`. A model keeps no sampling state: `applied(sampling)`
   sets the pipeline up for one call and puts everything back (override `scheduler_for`, not `applied`). Where the pipeline keeps its factors: `patch_size`, `latent_channels`, `text_dim`, and
   `temporal_factor` / `vae_spatial` if not diffusers' usual `vae_scale_factor_temporal` / `_spatial` (the core
   derives token_pixels, spatial_multiple, latent_shape). `call_context(stack, samples, images, generators, kw) ->
   the pipeline's keyword arguments` (enter per-call patches on `stack`, e.g. `InstancePatches((obj, attr,
   make_wrapper), ...)`); extend `call_inputs` (the core's: first frames at the call size, generators, height,
   width, num_frames, num_inference_steps, guidance_scale) with the family's own call arguments; `final_latents(out)`
   if the latents are not `out[0]`; `default_guidance` if the CFG default is neither the guider's nor __call__'s.
   Its own options are keyword-only `__init__` arguments (passing `**kwargs` on to PipelineModel): `load` and
   `load_pipeline_model(spec, **options)` take them (`model_options()`). `PipelineModel` gives the rest of the
   steplens.contract.VideoModel (check with `steplens.contract.check_model`).
4. a tiny test builder `tiny/myfamily.py` (real diffusers classes, random weights, no text encoder) for offline
   tests, and its entry in tests/backends/test_backends_contract.py's BUILDERS: traced == untraced bit for bit, hooks fire
   on the right step / branch, generate == the plain pipeline call.

The smallest adapter to copy: HunyuanVideo-1.5 (`hunyuan15.py`, one file, and `tiny/hunyuan15.py`).

What diffusers' hooks carry, and what they cannot: a stateful `ModelHook` with `new_forward`, registered on each
denoiser through `HookRegistry`, runs the forward under the step context and receives the `cache_context` name (the
CFG branch). `scheduler.step`, `scheduler.set_timesteps`, `pipe.prepare_latents` (and LTX-2's `_pack_latents`, the
scheduler's `__deepcopy__`) are no `nn.Module` forwards, so the loop wraps them as instance attributes.

diffusers versions: steplens patches private pipeline internals (`prepare_latents`, `_pack_latents`,
`_denormalize_latents`, `encode_prompt`, scheduler state such as UniPC's `last_sample`, the hook `StateManager`'s
`_context`), so pyproject.toml bounds diffusers to the versions tested: 0.42.x (0.42.1).
"""

from .load import load_pipeline, load_pipeline_model
from .loop import PipelineLoop
from .model import PipelineModel
from .prompts import HashedPromptEmbeds
from .registry import backend_for, backends, register_backend
from .steps import PipelineRun, PipelineStep, PipelineTrace, attach, trace_pipeline, transformer_components

__all__ = ["HashedPromptEmbeds", "PipelineLoop", "PipelineModel", "PipelineRun", "PipelineStep", "PipelineTrace",
           "attach", "backend_for", "backends", "load_pipeline", "load_pipeline_model", "register_backend",
           "trace_pipeline", "transformer_components"]
