"""A diffusers pipeline as a steplens model: what every backend's model shares (steplens.contract.VideoModel).

    model = WanPipelineModel(pipe)          # a backend's subclass, or load_model("wan:DIR")
    model.block_names, model.modules()      # hook points and the denoisers they live in
    lat = model.generate(samples, seeds, sampling=resolve(model, steps=20, guidance=5.0), callback=steps.append,
                         hooks=hooks)         # steplens.presets.resolve: the settings, resolved once
    px = model.decode(lat)                  # (B, 3, frames, H, W) in [-1, 1] at the samples' native size

`PipelineModel` holds the pipeline, its name and info, the prompt provider, the upscale choices and the geometry
(steplens.backends.geometry), the hook points (`blocks.i` of `blocks_attr`), the sampling defaults, and runs
`generate` as one pipeline call: the sampling applied for that call only (`applied`: a scheduler swapped in, its
shift, a σ list, the expert switch, the negative prompt, the call size; all put back after), the core's
`call_inputs`, the backend's own per-call preparation (`call_context`), and the backend's loop (`loop_class`) when a
callback or hooks are given. A backend subclass gives the class attributes below and what its pipeline needs (`call_context`,
`final_latents`, where its pipeline keeps the geometry factors, `decode_latents`; its own `call_inputs` arguments).
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Callable

import torch

from ..contract import ModelDefaults
from ..sampling import check_finite
from .checks import (check_call, check_dtype, check_pipeline_class, check_size, check_upscale, scheduler_shift,
                     scheduler_with_shift)
from .geometry import PipelineGeometry
from .prefix import FramePrefix
from .prompts import prompt_embedder
from .steps import transformer_components


class BlockView(torch.nn.Module):
    """A denoiser's submodules under their own names plus `blocks` (= its `attr`, e.g. `transformer_blocks`), so that
    hook points `blocks.i` resolve with get_submodule. It shares the modules (no copy) and is never run."""

    def __init__(self, transformer: torch.nn.Module, attr: str):
        super().__init__()
        for name, child in transformer.named_children():
            self.add_module(name, child)
        self.add_module("blocks", getattr(transformer, attr))
        object.__setattr__(self, "transformer", transformer)  # not a submodule: named_modules stays the blocks' own

    @property
    def runs(self) -> torch.nn.Module:
        """The module the pipeline calls (what steplens.tape wraps to count, record and replay its forwards)."""
        return self.transformer

    def forward(self, *args, **kwargs):  # pragma: no cover - a naming view only
        raise RuntimeError("BlockView is a naming view for hooks; call the pipeline's transformer instead")


class PipelineModel(FramePrefix, ModelDefaults, PipelineGeometry):
    """A diffusers pipeline as a steplens model; subclass it per family (see steplens.backends)."""

    # -- what a backend gives --------------------------------------------------------------------------------------
    backend: str = ""  # the family's short name (`model.backend`): "wan", "ltx2"
    family: str = ""  # how messages name it: "Wan", "LTX-2"
    fps: float = 16.0  # the frame rate of the decoded video where a sample gives none (Wan's 16)
    pipeline_classes: tuple[str, ...] = ()  # the diffusers classes it takes (model_index.json `_class_name`)
    variants: str = ""  # what those cover, for refusals: " (Wan2.1-I2V, ...)"
    loop_class: type | None = None  # its steplens.backends.loop.PipelineLoop subclass
    float32_components: tuple[str, ...] = ()  # components loaded in float32 whatever the dtype (VAEs, ...)
    dynamic_shift: bool = False  # its scheduler shifts dynamically by default: shift None keeps that
    max_sequence_length: int = 512  # the text encoder's token window, where the pipeline encodes prompts
    sampling_options = frozenset({"scheduler", "negative_prompt"})  # the settings of a Sampling generate applies
    unsupported_words: str = "not supported"  # how generate refuses other settings ("not supported yet")
    takes_call_size: bool = False  # generate takes a Sampling's height/width (a fixed call size: --height/--width)
    presets: dict = {}  # name -> steplens.presets.Preset: the family's named samplings beyond `pipeline`
    spec_aliases: tuple[str, ...] = ()  # --model prefixes besides diffusers: that name a folder (load words with it)
    blocks_attr: str = "blocks"  # the denoisers' attribute holding their blocks: hook point `blocks.i` is its item i
    is_pipeline = True

    @staticmethod
    def decode_latents(pipe, latents: torch.Tensor, output_type: str = "pt"):
        """Decode latents exactly as the pipeline decodes its final latents ("raw": the VAE's (B, 3, T, H, W))."""
        raise NotImplementedError

    @classmethod
    def pipeline_class(cls):
        """The diffusers class to load a folder with."""
        import diffusers

        return getattr(diffusers, cls.pipeline_classes[0])

    @classmethod
    def check_pipeline(cls, pipe) -> None:
        """Refuse, with a TypeError / ValueError naming what is wrong, a pipeline this backend does not take."""
        check_pipeline_class(pipe, cls.pipeline_classes, cls.family, cls.variants)

    @classmethod
    def class_for(cls, config: dict) -> str | None:
        """The pipeline class a folder's model_index.json is loaded as (default: its `_class_name`)."""
        return config.get("_class_name")

    @classmethod
    def check_loras(cls, lora, lora_2) -> None:
        """Refuse LoRA specs the backend cannot load, before any weights load (default: LoRAs are not supported)."""
        for spec, option in ((lora, "--lora"), (lora_2, "--lora-2")):
            if spec is not None:
                raise ValueError(f"{option} {spec!r}: LoRAs are not supported yet for {cls.family}; merge the LoRA "
                                 f"into the transformer and save the pipeline folder instead")

    @classmethod
    def apply_loras(cls, pipe, lora, lora_2, unmatched: str = "refuse") -> dict:
        return {}

    @classmethod
    def folder_size_multiple(cls, path: str) -> tuple[tuple[int, int], str] | None:
        """((mh, mw), why): the pixel multiples a call's height and width must be, read from a pipeline folder's
        component configs without loading it (for refusing --height/--width before the weights load); None where
        the backend does not say (checked once the pipeline is loaded)."""
        return None

    @classmethod
    def folder_geometry(cls, path: str) -> tuple[list[str], int, Callable[[int], int]] | None:
        """(block_names, temporal_factor, frames_from_video) of a pipeline folder, asked of this adapter without loading its weights
        (for --plan): the VAE and the transformers built from their configs with empty weights (accelerate's
        init_empty_weights: no memory), the pipeline class around them (the other components None), and the
        adapter's own `temporal_factor`, `blocks_attr` and `frames_from_video` asked on that. None where the folder does not hold them (a
        hub id) or they do not build so (the plan then says it needs the model)."""
        import importlib
        import json
        import types
        from pathlib import Path

        root = Path(path).expanduser()
        try:
            index = json.loads((root / "model_index.json").read_text())
            from accelerate import init_empty_weights

            built = {}
            for comp, spec in index.items():
                if (comp == "vae" or comp.startswith("transformer")) and isinstance(spec, list) and spec[0]:
                    klass = getattr(importlib.import_module(spec[0]), spec[1])
                    with init_empty_weights():
                        built[comp] = klass.from_config(klass.load_config(root / comp))
            pipe_cls = cls.pipeline_class()
            params = [k for k in inspect.signature(pipe_cls.__init__).parameters if k != "self"]
            pipe = pipe_cls(**{k: built.get(k) for k in params})
            factor = cls.temporal_factor.fget(types.SimpleNamespace(pipe=pipe))
            blocks = getattr(built["transformer"], cls.blocks_attr)
        except Exception:  # noqa: BLE001 - any folder this cannot read: None, and the plan says it needs the model
            return None
        view = types.SimpleNamespace(pipe=pipe, temporal_factor=int(factor))
        return [f"blocks.{i}" for i in range(len(blocks))], int(factor), lambda n: cls.frames_from_video(view, n)

    @classmethod
    def folder_size_max(cls, path: str) -> tuple[tuple[int, int], str] | None:
        """((max height, max width), why): the largest call size the transformer can place (e.g. its rotary table's
        length), read from a folder's configs without loading; None where the backend has no such bound."""
        return None

    @staticmethod
    def folder_config(path: str, component: str) -> dict | None:
        """A component's config.json in a pipeline folder (None where absent or unreadable: a hub id, say)."""
        import json
        from pathlib import Path

        try:
            config = json.loads((Path(path).expanduser() / component / "config.json").read_text())
        except (OSError, ValueError):
            return None
        return config if isinstance(config, dict) else None

    step_progress = False  # generate shows a progress bar over the steps (`run` and `eval` set it on their model)

    # -- construction ----------------------------------------------------------------------------------------------
    def __init__(self, pipe, name: str | None = None, *, prompt_embeds: Callable | None = None,
                 negative_prompt: str = "", scale: int | None = None, min_size: int | None = None,
                 max_sequence_length: int | None = None, info: dict | None = None):
        """Reads only the pipeline (check_pipeline, its components, text_dim), never what a subclass sets up: a
        subclass may set its own state before or after calling it (the hook view is made on first use)."""
        self.check_pipeline(pipe)
        self.pipe = pipe
        self.name = name or getattr(pipe, "name_or_path", None) or (
            f"{type(pipe).__name__}({'+'.join(transformer_components(pipe))})")  # = the keys of modules()
        check_upscale(scale, min_size)
        self.scale, self.min_size = scale, min_size
        self.negative_prompt = negative_prompt
        if max_sequence_length is not None:
            self.max_sequence_length = max_sequence_length
        self.prompt_embeds, self.prompt_source = prompt_embedder(pipe, prompt_embeds, self.text_dim)
        self.info = {"prompt": self.prompt_source, **(info or {})}
        self._scales: dict[tuple[int, int], int] = {}  # decoded (H, W) -> pixel scale, from generate
        self._native: dict[tuple[int, int], tuple[int, int]] = {}  # call (H, W) -> native (h, w), from generate

    @classmethod
    def load(cls, path: str, device: str = "cpu", dtype: str | torch.dtype | None = "float32",
             offload: str | None = "none", name: str | None = None, lora=None, lora_2=None, lora_unmatched: str = "refuse",
             **model_kwargs):
        """A pipeline folder (or hub id) loaded as this backend's model: `dtype`, placed on `device` or offloaded,
        LoRAs applied (where the backend takes them; `lora_unmatched="allow"` applies one that leaves some of its
        layers unmatched, refused by default), `model_kwargs` the model's options (`model_options`)."""
        from .load import load_pipeline

        cls.check_options(model_kwargs)  # named before any weights load
        cls.check_loras(lora, lora_2)
        pipe = load_pipeline(cls, path, device, dtype, offload)
        loras = cls.apply_loras(pipe, lora, lora_2, lora_unmatched)
        from .load import pipeline_identity

        dtype_name = str(check_dtype(dtype)).replace("torch.", "")
        name = name or f"diffusers:{path}"  # the canonical prefix (an adapter's alias where the user wrote one)
        ident = pipeline_identity(name, path, dtype,
                                  {comp: (p, scale) for comp, (p, scale, *_) in loras.items()})
        info = {"path": str(path), "dtype": dtype_name, "offload": offload or "none", "device": str(device),
                "loras": loras, "identity": ident}
        model = cls(pipe, name=name, info=info, **model_kwargs)
        model.check_prompt_encoding()  # every steplens command encodes prompts: say now what is missing
        if model.prompt_source == "hashed":
            import warnings

            warnings.warn(f"{name or path} has no text encoder: prompts are embedded by steplens.backends.prompts."
                          f"HashedPromptEmbeds (deterministic, but meaningless to the model)", stacklevel=2)
        return model

    @classmethod
    def model_options(cls) -> list[str]:
        """The options a model of this backend takes (keyword-only arguments of its and its bases' __init__), which
        `load` and steplens.backends.load_pipeline_model pass on."""
        names = set()
        for klass in cls.__mro__:
            if issubclass(klass, PipelineModel) and "__init__" in vars(klass):
                params = inspect.signature(klass.__init__).parameters.values()
                names |= {p.name for p in params if p.kind is p.KEYWORD_ONLY}
        return sorted(names - {"info"})  # info: load's own

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Refuse, by name, options this backend's model does not take."""
        unknown = sorted(set(options) - set(cls.model_options()))
        if unknown:
            raise ValueError(f"model option {', '.join(map(repr, unknown))}: not taken by steplens' {cls.family} "
                             f"backend ({cls.__name__}); its options: {', '.join(cls.model_options())}")

    # -- hooks -----------------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The pipeline's denoisers by component name (`transformer`, and `transformer_2` for a second expert); where
        their blocks are not `.blocks` (`blocks_attr`), a BlockView of each, in which `blocks.i` names block i."""
        found = transformer_components(self.pipe)
        if self.blocks_attr == "blocks":
            return found
        views = self.__dict__.setdefault("_views", {})  # made on first use: no order of construction to keep
        for name, module in found.items():
            view = views.get(name)
            if view is None or view.transformer is not module or view.blocks is not getattr(module, self.blocks_attr):
                views[name] = BlockView(module, self.blocks_attr)  # new, or the component was swapped
        return {name: views[name] for name in found}

    @property
    def experts(self) -> list[str]:
        return list(self.modules())

    @property
    def transformer(self) -> torch.nn.Module:
        """The first denoiser."""
        return next(iter(transformer_components(self.pipe).values()))

    @property
    def block_names(self) -> list[str]:
        """`blocks.i` of the (first) transformer's `blocks_attr`; Hooks checks that each expert has the point it
        hooks."""
        return [f"blocks.{i}" for i in range(len(getattr(self.transformer, self.blocks_attr)))]

    def loop(self, hooks=None, on_step=None, **kwargs):
        """The backend's interception loop on this pipeline (a context manager)."""
        return self.loop_class(self.pipe, hooks, on_step=on_step, **kwargs)

    def run(self, hooks=None, **pipe_kwargs):
        """Call the pipeline with `hooks` attached; returns the pipeline's output."""
        if hooks is None:
            return self.pipe(**pipe_kwargs)
        with self.loop(hooks):
            return self.pipe(**pipe_kwargs)

    # -- sampling settings (steplens.presets) ----------------------------------------------------------------------
    def sampling_defaults(self) -> dict:
        """The pipeline's own settings: steps from its __call__ default, CFG (`default_guidance`), the scheduler's flow
        shift (NaN when it shifts dynamically), the scheduler class, the negative prompt in use."""
        sched = self.pipe.scheduler
        out = {"steps": int(self._call_default("num_inference_steps")), "shift": scheduler_shift(sched),
               "guidance": self.default_guidance(), "scheduler": type(sched).__name__,
               "negative_prompt": self.negative_prompt}
        return out

    def default_guidance(self) -> float:
        """The pipeline's own CFG scale: its guider component's `guidance_scale` where it guides through one
        (diffusers' guiders, e.g. HunyuanVideo-1.5), else its __call__'s `guidance_scale` default."""
        guider = self.pipe.components.get("guider")
        if guider is not None:
            return float(guider.guidance_scale)
        return float(self._call_default("guidance_scale"))

    def _call_default(self, name: str):
        param = inspect.signature(type(self.pipe).__call__).parameters.get(name)
        if param is None or param.default is inspect.Parameter.empty:
            raise TypeError(f"{type(self.pipe).__name__}.__call__ has no default {name}; steplens' {self.family} "
                            f"backend must say its own ({type(self).__name__}.sampling_defaults / default_guidance)")
        return param.default

    def check_sampling(self, sampling) -> None:
        """Refuse, naming them, the settings of `sampling` this family cannot apply (not in `sampling_options`)."""
        size = ["height", "width"] if isinstance(sampling.size, tuple) else ["size"] if sampling.size else []
        given = [k for k in ("scheduler", "boundary") if getattr(sampling, k) is not None] + size + (
            ["negative_prompt"] if sampling.negative_prompt is not None else [])
        refused = [k for k in given if k not in self.sampling_options]
        if refused:
            raise ValueError(f"{', '.join(refused)}: {self.unsupported_words} for {self.family} "
                             f"(steplens.backends.{self.backend})")
        if sampling.sigmas is not None and "sigmas" not in self.sampling_options:
            raise ValueError(f"an explicit σ list (sigmas) is not supported for {self.family} "
                             f"(steplens.backends.{self.backend}): its pipeline computes its own schedule; use "
                             f"steps and shift")

    def scheduler_for(self, name: str | None):
        """The scheduler a call runs for a Sampling's `scheduler` (None or the pipeline's own class name: the
        pipeline's own); the default refuses any other."""
        own = type(self.pipe.scheduler).__name__
        if name is not None and name != own:
            raise ValueError(f"scheduler {name!r}: {self.family} runs its own {own}")
        return self.pipe.scheduler

    @contextmanager
    def applied(self, sampling):
        """For the block, the pipeline set up for `sampling` (steplens.presets.Sampling): its scheduler (`scheduler_for`)
        with its shift, its σ list, its expert switch, negative prompt and call size; everything put back on exit, also
        after an exception, so that the model keeps no sampling state between calls. Entered again inside itself (a
        trace attached around generate) it changes nothing more."""
        self.check_sampling(sampling)
        pipe, saved = self.pipe, (self.pipe.scheduler, self.negative_prompt, self.size, self.size_rule)
        boundary = pipe.config.get("boundary_ratio") if sampling.boundary is not None else None
        try:
            sched = self.scheduler_for(sampling.scheduler)
            if sampling.shift is not None or self.dynamic_shift:
                sched = scheduler_with_shift(sched, sampling.shift, dynamic=self.dynamic_shift)
            if sampling.sigmas is not None and type(sched).__name__ != "FlowMatchEulerDiscreteScheduler":
                raise ValueError(f"an explicit σ list runs FlowMatch Euler, one step per σ; {self.name}'s scheduler is "
                                 f"{type(sched).__name__}: give scheduler='euler' with it (--sigmas and a preset with "
                                 f"a σ list do)")
            if sched is not pipe.scheduler:
                if self.attached():
                    raise RuntimeError("the sampling asks for another scheduler than the one attached to the pipeline "
                                       "(hooks or a trace): enter model.applied(sampling) before attaching")
                pipe.scheduler = sched
            if sampling.boundary is not None:
                if not 0 < float(sampling.boundary) < 1:
                    raise ValueError(f"boundary {sampling.boundary} must be in (0, 1): a fraction of the training "
                                     f"timesteps")
                pipe.register_to_config(boundary_ratio=float(sampling.boundary))
            if sampling.negative_prompt is not None:
                self.negative_prompt = str(sampling.negative_prompt)
            if isinstance(sampling.size, tuple):
                self.size = check_size(*sampling.size, self.spatial_multiple,
                                       f"VAE {self.vae_spatial} x patch")
            elif sampling.size is not None:
                if sampling.size != "first-frame":
                    raise ValueError(f"size {sampling.size!r}: 'first-frame' is the only size rule")
                self.size_rule = sampling.size
            with (self._explicit_sigmas(list(sampling.sigmas)) if sampling.sigmas is not None else nullcontext()):
                yield
        finally:
            pipe.scheduler, self.negative_prompt, self.size, self.size_rule = saved
            if sampling.boundary is not None:
                pipe.register_to_config(boundary_ratio=boundary)

    # -- geometry (steplens.backends.geometry): where the pipeline keeps its factors -----------------------------------
    @property
    def temporal_factor(self) -> int:
        """Video frames per latent frame after the first: diffusers' usual `vae_scale_factor_temporal`."""
        return self.pipe.vae_scale_factor_temporal

    @property
    def vae_spatial(self) -> int:
        """Pixels per latent cell: diffusers' usual `vae_scale_factor_spatial`."""
        return self.pipe.vae_scale_factor_spatial

    # -- generating ------------------------------------------------------------------------------------------------
    @property
    def text_dim(self) -> int:
        """The prompt embeddings' last dimension."""
        return int(self.transformer.config.text_dim)

    def check_prompt_encoding(self) -> None:
        """Say, before any work, what encoding prompts with the pipeline's text encoder needs (default: nothing)."""

    def check_scheduler(self) -> None:
        """Refuse, before any work, a pipeline or scheduler the backend's loop cannot read."""
        self.loop_class.check(self.pipe)

    def call_inputs(self, samples, seeds, frames: int | None = None, steps: int | None = None,
                    guidance: float | None = None) -> tuple[list, list[torch.Generator], dict]:
        """(the samples' first frames as PIL images of the call size (`first_frames`), one seeded CPU generator per
        sample, the call's settings: height, width, num_frames, num_inference_steps, guidance_scale); steps and
        guidance default to the pipeline's own (sampling_defaults). A backend adds its own call arguments."""
        from ..io.video import check_frames

        own = self.sampling_defaults() if steps is None or guidance is None else {}
        steps = own["steps"] if steps is None else steps
        guidance = own["guidance"] if guidance is None else guidance
        frames = check_frames(frames or samples[0].frames)
        seeds = check_call(samples, seeds, steps, guidance, self.family)
        self.check_prefixes(samples, frames)  # K leading frames it cannot be given: refused before the pipeline runs
        height, width = self.call_size(samples)
        images = self.first_frames(samples, height, width)
        kw = {"height": height, "width": width, "num_frames": self.video_frames(frames), "num_inference_steps": steps,
              "guidance_scale": float(guidance)}
        return images, [torch.Generator().manual_seed(s) for s in seeds], kw

    def call_context(self, stack: ExitStack, samples, images, generators, kw: dict) -> dict:
        """Enter what the backend needs around one generate call; the pipeline's keyword arguments."""
        raise NotImplementedError

    def final_latents(self, out):
        """generate's result from the pipeline's return value."""
        return out[0]

    # -- explicit σ lists (sampling_options has "sigmas": the Wan backend) ---------------------------------------
    @contextmanager
    def _explicit_sigmas(self, sigmas: list[float]):
        """For the block, the scheduler's set_timesteps makes exactly these σ (+ the final 0) and t = σ·T: FlowMatch
        Euler then steps from each σ to the next. The scheduler object stays (a trace attached before sees it)."""
        sched = self.pipe.scheduler
        if type(sched).__name__ != "FlowMatchEulerDiscreteScheduler":
            raise ValueError(f"an explicit σ list runs FlowMatch Euler, one step per σ; {self.name}'s scheduler is "
                             f"{type(sched).__name__}: give scheduler='euler' with it")

        def wrap(original):
            def set_timesteps(*args, **kwargs):
                out = original(*args, **kwargs)
                device = sched.sigmas.device
                sig = torch.tensor([*sigmas, 0.0], dtype=torch.float32, device=device)
                sched.sigmas = sig
                sched.timesteps = sig[:-1] * float(sched.config.num_train_timesteps)
                return out

            set_timesteps.__wrapped__ = original
            return set_timesteps

        from .patches import InstancePatches

        with InstancePatches((sched, "set_timesteps", wrap)):
            yield

    @torch.no_grad()
    def generate(self, samples, seeds, frames: int | None = None, sampling=None, callback=None,
                 hooks=None) -> torch.Tensor:
        """Sample the videos of `samples` from `seeds` in one pipeline call, with `sampling` (steplens.presets.Sampling;
        None: the pipeline's own, `resolve(model)`) applied for this call only (`applied`); returns the final latents.
        Its σ list, where it has one, is what the scheduler runs instead of its grid (FlowMatch Euler; families whose
        sampling_options have "sigmas")."""
        from ..presets import sampled

        self.check_scheduler()  # refused before any work, hooks or not
        sampling = sampled(self, sampling)
        steps = len(sampling.sigmas) if sampling.sigmas is not None else sampling.steps
        with ExitStack() as stack:
            stack.enter_context(self.applied(sampling))  # before the loop: it holds on to the pipeline's scheduler
            self.check_scheduler()  # the scheduler that runs, refused before any work, hooks or not
            images, generators, kw = self.call_inputs(samples, seeds, frames, steps, sampling.guidance)
            call = self.call_context(stack, samples, images, generators, kw)
            bar = None
            if self.step_progress:  # a sample of a 14B model takes minutes: say where it is
                from tqdm import tqdm

                bar = stack.enter_context(tqdm(total=kw["num_inference_steps"], desc="steps", leave=False))
            checked = self._finite_steps(callback, bar)
            if callback is not None or hooks is not None:  # (forwards() gets its step context from either loop)
                stack.enter_context(self.loop(hooks, on_step=checked))
            elif not self.attached():  # a loop of its own only to check each step (no copies kept)
                stack.enter_context(self.loop(None, on_step=checked, keep=lambda t: t))
            lat = self.final_latents(self.pipe(**call))
        check_finite(lat, f"{self.name}'s final latent")
        return lat

    def attached(self) -> bool:
        """Whether a steplens loop (hooks attached with `with hooks:`, a trace) holds the pipeline now."""
        from .loop import _ACTIVE

        return id(self.pipe) in _ACTIVE

    def _finite_steps(self, callback, bar=None):
        """on_step checking each step's latent and guided velocity for NaN/inf, as steplens' sampler does (a NaN
        LoRA, an fp16 overflow), then calling `callback` (and advancing `bar`, a progress bar over the steps): a run
        stops at the step it went wrong, naming it."""
        def on_step(step):
            check_finite(step.x, f"{self.name}'s latent", step.i)
            check_finite(step.v, f"{self.name}'s guided velocity", step.i)
            if callback is not None:
                callback(step)
            if bar is not None:
                bar.update(1)
        return on_step

    # -- decoding --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> the pipeline's decoded video (B, 3, num_frames, H, W) in [-1, 1], float32, sample by sample."""
        return torch.cat([self.decode_latents(self.pipe, latents[i:i + 1], "raw").float()
                          for i in range(len(latents))])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, experts={self.experts}, blocks={len(self.block_names)})"
