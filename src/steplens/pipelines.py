"""What the diffusers backends (steplens.wan, steplens.ltx2) share: how a task sample's frame and frame count map
onto a pipeline call and its token grid, and back.

`PipelineGeometry` is a mixin for a pipeline model. The model provides `spatial_multiple` (the pixel multiples a
call's height and width must be), `token_pixels` (the pixels one token covers: VAE factor x patch), `patch_size`
(t, h, w), `temporal_factor` (video frames per latent frame after the first), `scale` and `min_size` (the user's
upscale choices) and `_scales` ({call (H, W): upscale k}, filled by its generate).

* a native (h, w) frame is upscaled (nearest neighbour) by the smallest integer k making both sides multiples of
  `spatial_multiple`, times the smallest factor reaching `min_size` (or k = `scale` if set);
* a sample of F frames is F latent frames: num_frames = r (F - 1) + 1 video frames (r = temporal_factor), and a
  ground-truth video of n frames maps to ceil((n - 1) / r) + 1 sample frames;
* tokens are ordered (frame, h, w); `token_mask` maps a pixel mask on the native frame to the tokens covering it.
"""

from __future__ import annotations

import math

import torch


class PipelineGeometry:
    scale: int | None = None
    min_size: int | None = None

    def pixel_scale(self, height: int, width: int) -> int:
        """The integer nearest-neighbour upscale k of a (height, width) native frame."""
        mh, mw = self.spatial_multiple
        if self.scale is not None:
            if (height * self.scale) % mh or (width * self.scale) % mw:
                raise ValueError(f"scale {self.scale} makes a {height}x{width} frame {height * self.scale}x"
                                 f"{width * self.scale} pixels, not multiples of ({mh}, {mw}) as the pipeline needs")
            return self.scale
        k = math.lcm(mh // math.gcd(height, mh), mw // math.gcd(width, mw))
        if self.min_size:
            k *= max(1, -(-self.min_size // (min(height, width) * k)))
        return k

    def video_frames(self, frames: int) -> int:
        """num_frames of the pipeline call for a sample of `frames` frames: one latent frame per sample frame."""
        return self.temporal_factor * (frames - 1) + 1

    def frames_from_video(self, n: int) -> int:
        """Sample (latent) frames for a ground-truth video of n frames: the fewest whose video has at least n frames,
        ceil((n - 1) / r) + 1 with r the VAE's temporal factor (Wan 4: 81 video frames -> 21; LTX-2 8: 121 -> 16)."""
        r = self.temporal_factor
        return max(2, -(-(int(n) - 1) // r) + 1)

    def token_grid(self, latent_shape) -> tuple[int, int, int]:
        """(frames, h, w) of the token grid for a latent of this shape (tokens are ordered frame, h, w)."""
        pt, ph, pw = self.patch_size
        _, _, t, h, w = latent_shape
        return (-(-t // pt), -(-h // ph), -(-w // pw))

    def token_mask(self, pixel_mask: torch.Tensor) -> torch.Tensor:
        """A (H, W) bool mask on the native frame -> (h, w) bool mask of the tokens that cover any of it."""
        h, w = pixel_mask.shape
        k = self.pixel_scale(h, w)
        up = pixel_mask.float().repeat_interleave(k, 0).repeat_interleave(k, 1)
        th, tw = self.token_pixels
        up = torch.nn.functional.pad(up, (0, (-up.shape[1]) % tw, 0, (-up.shape[0]) % th))
        return torch.nn.functional.max_pool2d(up[None, None], (th, tw))[0, 0] > 0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, T, h, w) -> pixels (B, 3, T, H, W) in [-1, 1]: the model's decoded video (`decode_video`)
        at video frames 0, r, 2r, ... (one per latent frame), back at the native frame size: averaged over k x k
        blocks, or pooled adaptively where the call size was not an integer upscale (`_native`, --height/--width)."""
        video = self.decode_video(latents)[:, :, :: self.temporal_factor]
        size = tuple(video.shape[-2:])
        native = getattr(self, "_native", {}).get(size)
        if native is not None and size not in self._scales:
            return torch.nn.functional.adaptive_avg_pool3d(video, (video.shape[2], *native))
        k = self._scale_of_video(*size)
        if k > 1:
            video = torch.nn.functional.avg_pool3d(video, (1, k, k))
        return video

    @staticmethod
    def _frame_size(samples) -> tuple[int, int]:
        if not samples:
            raise ValueError("no samples to generate")
        h, w = samples[0].first_frame.shape[:2]
        if any(s.first_frame.shape[:2] != (h, w) for s in samples):
            raise ValueError("all samples of a batch must have the same frame size")
        return h, w

    def _scale_of_video(self, height: int, width: int) -> int:
        """The pixel scale of a decoded (height, width) video: as generate chose it, else the largest consistent
        one (1 if none is)."""
        if (height, width) in self._scales:
            return self._scales[height, width]
        g = math.gcd(height, width)
        for k in sorted((d for d in range(1, g + 1) if g % d == 0), reverse=True):
            try:
                if self.pixel_scale(height // k, width // k) == k:
                    return k
            except ValueError:
                continue
        return 1


def load_folder(cls, source: str, config: dict, torch_dtype, float32_components, check, offload: str, device,
                what: str):
    """`cls.from_pretrained(source)` as steplens loads every backend: `torch_dtype` for all but
    `float32_components` (VAEs, image encoders, vocoders stay float32), components saved as None passed as None,
    `check(pipe)` (a TypeError becomes a ValueError), then placed on `device` or CPU-offloaded onto it."""
    if torch_dtype != torch.float32:
        present = [c for c in float32_components if (config.get(c) or [None])[0] is not None]
        torch_dtype = {"default": torch_dtype, **{c: torch.float32 for c in present}}
    # components saved as None (e.g. no text encoder) are passed as None: from_pretrained wants every component
    absent = {k: None for k, v in config.items() if not k.startswith("_") and isinstance(v, (list, tuple))
              and len(v) == 2 and v[0] is None and v[1] is None}
    try:
        pipe = cls.from_pretrained(source, dtype=torch_dtype, **absent)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"could not load the {what} pipeline from {source}: {e}") from None
    try:
        check(pipe)
    except TypeError as e:
        raise ValueError(str(e)) from None
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def looks_like_path(spec: str) -> bool:
    """Whether a --model spec names a local path (else it may be a hub id 'owner/name')."""
    return spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") != 1


def read_index(path: str, what: str, spec: str | None = None) -> tuple[str, dict]:
    """(where to load from, model_index.json) of a local diffusers pipeline folder or a hub id (only its index is
    fetched); refuses a file, a folder without an index, a missing folder, an unreadable index, by name. `what`
    names the backend ("Wan", "LTX-2"), `spec` how the user wrote the model (default: the path)."""
    import json
    from pathlib import Path

    spec = spec or path
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{spec} is a file; expected a diffusers pipeline folder (with model_index.json), "
                             f"as written by pipe.save_pretrained(DIR)")
        index = p / "model_index.json"
        if not index.is_file():
            raise FileNotFoundError(f"{p} has no model_index.json: not a diffusers pipeline folder (write one with "
                                    f"pipe.save_pretrained(DIR))")
        try:
            return str(p), json.loads(index.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{index} is not a readable model_index.json: {e}") from None
    if looks_like_path(path):
        raise FileNotFoundError(f"{what} pipeline folder not found: {p}")
    from diffusers import DiffusionPipeline

    try:
        return path, dict(DiffusionPipeline.load_config(path))
    except Exception as e:  # noqa: BLE001 - hub errors come in many types; report them as one
        raise ValueError(f"could not read the pipeline {path!r} (neither a local folder nor a reachable hub id): "
                         f"{e}") from None


def prompt_embedder(pipe, provider, text_dim: int):
    """(provider or None, source) for a pipeline model: the given provider ("provider"); None when the pipeline
    encodes prompts itself ("text_encoder": it has a text encoder and a tokenizer); else a fixed hashed
    embedding per text ("hashed": steplens.wan.prompts.HashedPromptEmbeds)."""
    if provider is not None:
        return provider, "provider"
    if getattr(pipe, "text_encoder", None) is not None and getattr(pipe, "tokenizer", None) is not None:
        return None, "text_encoder"
    from .wan.prompts import HashedPromptEmbeds

    return HashedPromptEmbeds(text_dim), "hashed"


# model_index.json `_class_name` -> "module:function" loading that folder as a steplens model; a folder whose class
# is not listed goes to the Wan loader, which names what it supports. A new backend adds its line here.
LOADERS = {"LTX2ImageToVideoPipeline": "steplens.ltx2.load:load_ltx2_model"}
DEFAULT_LOADER = "steplens.wan.load:load_wan_model"


def pipeline_loader(path: str):
    """The backend loader for a diffusers folder (by its index's `_class_name`; hub ids and unreadable indexes go
    to the default loader, which reads them itself and names what is wrong)."""
    import importlib
    import json
    from pathlib import Path

    try:
        cls = json.loads((Path(path).expanduser() / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        cls = None
    module, _, name = LOADERS.get(cls, DEFAULT_LOADER).partition(":")
    return getattr(importlib.import_module(module), name)
