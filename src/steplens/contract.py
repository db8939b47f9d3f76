"""The model contract: what every experiment may ask of a model, and what a model family must give.

Everything that runs a model (the sampler's callers, hooks, traces, probes, the ensemble, `compare`, `study`,
the demo and the CLI) talks to it through `VideoModel` below and nothing else: no ``getattr``/``hasattr``
guesses. The embedded model (`steplens.models.wrap.EmbeddedModel`) and every diffusers backend
(`steplens.backends`) implement it; a new model family implements it too (one adapter file, see
ARCHITECTURE.md). `ModelDefaults` gives the optional parts their documented default, so a family writes
only what is its own.

Writing a model family
----------------------
A model is an object with:

- ``name`` (str): how the user named it (``tiny-maze``, ``wan:/models/vbvr``), written into run configs.
- ``backend`` (str): the family's name (``embedded``, or a diffusers adapter's own), recorded in run configs and
  shown in reports; nothing decides by it (a family's differences are its adapter's attributes).
- ``info`` (dict): what the model knows about itself, JSON-able (training config, prompt source, LoRAs). Its
  ``identity`` entry, filled by the loader, is the model's part of an output folder's configuration (see
  ``identity``): the model, a content hash of its weights (or of a pipeline folder's index and configs), dtype,
  each LoRA (path, sha256, scale, transformer).
- ``block_names`` (list of str): the denoiser's blocks as hook points, ``blocks.0`` … ``blocks.{L-1}``,
  each a ``get_submodule`` name of every module of ``modules()``.
- ``modules() -> {expert name or None: nn.Module}``: the denoisers hooks attach to. One denoiser:
  ``{None: net}`` (embedded) or ``{"transformer": …}`` (a pipeline); two experts (Wan2.2-A14B):
  ``{"transformer": …, "transformer_2": …}``, and the step context says which one runs.
- ``sampling_defaults() -> dict``: the model's own sampling, at least ``steps`` (int), ``shift`` (float, or
  NaN / None for a scheduler's own), ``guidance`` (float, 1 = CFG off); a pipeline adds its own ``scheduler``,
  ``boundary`` (two experts), ``negative_prompt``; ``sigmas`` (list of float, no final 0) where the model samples
  at an explicit σ list of its own (a distilled student). The only place a family's defaults live: everything else
  asks here (``steplens.presets.resolve``).
- ``generate(samples, seeds, frames=None, sampling=None, callback=None, hooks=None) -> latents (B, C, T, h, w)``: one
  video per sample from the noise of ``seeds[i]``, sampled with ``sampling`` (a frozen ``steplens.presets.Sampling``:
  steps or σ list, shift, guidance, scheduler, expert switch, negative prompt, size; ``None``: the model's own,
  ``resolve(model)``). A model keeps no sampling state: what ``sampling`` asks (a scheduler swapped in, an expert
  switch, a negative prompt, a call size) holds for that call only, and is put back after it, also after an
  exception. A setting the family cannot apply is refused (ValueError), as is a σ list it cannot run. Each step is
  handed to ``callback(StepInfo)`` (``steplens.sampling.StepInfo``: step index, σ, x_s, guided v, x̂0 = x_s − σ·v)
  and runs inside a ``steplens.context.StepContext`` so that ``hooks`` (``steplens.hooks.Hooks`` on this model)
  record and edit by step, CFG branch and expert (``hooks.check_run(sampling.steps)``: a hook past the run is
  refused).
- ``decode(latents) -> (B, 3, T, H, W)`` in [-1, 1]: what scorers see, one frame per latent frame, at the
  samples' native size.
- ``latent_shape(samples, frames) -> (B, C, T, h, w)``; ``token_grid(latent_shape) -> (t, h, w)`` of the
  tokens (ordered frame, h, w); ``token_mask(pixel_mask (H, W) bool) -> (h, w) bool``: the tokens covering
  any of those native pixels (answer-region energy, the ensemble's regions).
- ``frames_from_video(n) -> int``: the sample frames (latent frames) for a ground-truth video of ``n``
  frames (embedded: n; Wan: ⌈(n−1)/4⌉+1).

Optional, with their meaning when absent (the defaults of `ModelDefaults`):

- ``trained_tasks`` (list of str): the task families the weights were trained on; ``[]``: unknown (study and
  demo then use the default task).
- ``experts`` (list of str): the named experts of ``modules()``; ``has_two_experts``: ``len(experts) > 1``.
- ``sampling_options`` (frozenset of str): the settings of a ``Sampling`` its ``generate`` applies beyond
  steps/shift/guidance (``scheduler``, ``boundary``, ``negative_prompt``, ``height``, ``width``, ``size``,
  ``sigmas``: an explicit σ list it can run; the embedded model takes only ``sigmas``); empty: the model samples its
  samples at their native size with its own conditioning, and ``resolve`` refuses those options.
- ``presets`` (dict: name -> ``steplens.presets.Preset``): the named samplings the family declares beyond
  ``pipeline`` (every model's own); empty by default. ``--preset`` is checked against them (``check_preset``).
- ``decode_video(latents) -> (B, 3, frames, H, W)``: the full decoded video (every video frame, call size);
  default: ``decode`` (the embedded model makes one frame per frame).
- ``fps`` (float): the frame rate of ``decode_video``'s video where a sample does not give one (its
  ground_truth.mp4's); default 4 (the embedded model), 16 for Wan pipelines, the pipeline's frame rate for LTX-2.
- ``is_pipeline`` (bool): whether the model wraps a diffusers pipeline (its sampling follows the pipeline's
  scheduler, not ``steplens.sampling``); default False.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class VideoModel(Protocol):
    """The model contract (see the module docstring for what each member means)."""

    name: str
    backend: str
    info: dict

    @property
    def block_names(self) -> list[str]: ...

    def modules(self) -> dict[str | None, torch.nn.Module]: ...

    def sampling_defaults(self) -> dict: ...

    def generate(self, samples: Sequence[Any], seeds: Sequence[int], frames: int | None = None,
                 sampling: Any = None, callback: Callable | None = None, hooks: Any = None) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...

    def latent_shape(self, samples: Sequence[Any], frames: int) -> tuple[int, ...]: ...

    def token_grid(self, latent_shape: Sequence[int]) -> tuple[int, int, int]: ...

    def token_mask(self, pixel_mask: torch.Tensor) -> torch.Tensor: ...

    def frames_from_video(self, n: int) -> int: ...

    # optional members (ModelDefaults gives their meaning when a family leaves them out)
    @property
    def trained_tasks(self) -> list[str]: ...

    @property
    def experts(self) -> list[str]: ...

    @property
    def has_two_experts(self) -> bool: ...

    sampling_options: frozenset
    presets: dict
    is_pipeline: bool
    fps: float

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor: ...


class ModelDefaults:
    """The optional members of `VideoModel` with their documented defaults: inherit it, override what you have."""

    sampling_options: frozenset = frozenset()
    presets: dict = {}  # name -> steplens.presets.Preset, beyond `pipeline`
    is_pipeline: bool = False
    fps: float = 4.0

    @property
    def trained_tasks(self) -> list[str]:
        return []

    @property
    def experts(self) -> list[str]:
        return [k for k in self.modules() if k is not None]

    @property
    def has_two_experts(self) -> bool:
        return len(self.experts) > 1

    def check_sampling(self, sampling) -> None:
        """Refuse a Sampling's settings this model cannot apply (beyond steps, shift, guidance: `sampling_options`)."""
        size = ["height", "width"] if isinstance(sampling.size, tuple) else ["size"] if sampling.size else []
        given = [k for k in ("scheduler", "boundary", "negative_prompt", "sigmas") if getattr(sampling, k) is not None]
        refused = [k for k in given + size if k not in self.sampling_options]
        if refused:
            raise ValueError(f"{', '.join(refused)}: model {self.name!r} ({self.backend}) takes no sampling settings "
                             f"beyond steps, shift and guidance" + (" and a σ list" if "sigmas" in self.sampling_options
                                                                    else ""))

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode(latents)


def identity(model) -> dict:
    """The model's part of an output folder's configuration, JSON-able: what every writer (`run`'s run_config.json,
    the probe and compare stores) records and compares, so that a rerun with another model, weights, LoRA, LoRA
    scale or dtype into the folder is refused. `model.info["identity"]` as its loader filled it; a model built in
    Python without a loader: its name alone."""
    return {"model": model.name, **(model.info.get("identity") or {})}


def check_model(model) -> None:
    """Refuse, with the missing members named, an object that does not implement the model contract."""
    missing = [m for m in ("name", "backend", "info", "block_names", "modules", "sampling_defaults", "generate",
                           "decode", "latent_shape", "token_grid", "token_mask", "frames_from_video",
                           "trained_tasks", "experts", "has_two_experts", "sampling_options", "presets", "is_pipeline",
                           "decode_video")
               if not hasattr(model, m)]
    if missing:
        raise TypeError(f"{type(model).__name__} does not implement the steplens model contract "
                        f"(steplens.contract.VideoModel): missing {', '.join(missing)}")
