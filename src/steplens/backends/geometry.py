"""How a task sample's frame and frame count map onto a diffusers pipeline call and its token grid, and back
(shared by every backend).

`PipelineGeometry` is a mixin for a pipeline model. The model provides where its pipeline keeps the factors:
`patch_size` (t, h, w), `temporal_factor` (video frames per latent frame after the first), `vae_spatial` (pixels per
latent cell), `latent_channels`; and `scale` and `min_size` (the user's upscale choices), `_scales` ({call (H, W):
upscale k}) and `_native` ({call (H, W): native (h, w)}), both filled by `first_frames` when its generate makes the
call's images. From those follow `token_pixels` (the pixels one token covers: vae_spatial x patch),
`spatial_multiple` (the pixel multiples a call's height and width must be; default token_pixels, a pipeline with its
own rule overrides it) and `latent_shape`.

* a native (h, w) frame is upscaled (nearest neighbour) by the smallest integer k making both sides multiples of
  `spatial_multiple`, times the smallest factor reaching `min_size` (or k = `scale` if set);
* a sample of F frames is F latent frames: num_frames = r (F - 1) + 1 video frames (r = temporal_factor), and a
  ground-truth video of n frames maps to ceil((n - 1) / r) + 1 sample frames;
* tokens are ordered (frame, h, w); `token_mask` maps a pixel mask on the native frame to the tokens covering it.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class PipelineGeometry:
    scale: int | None = None
    min_size: int | None = None
    size: tuple[int, int] | None = None  # a fixed call size (a Sampling's height/width, for one call), where supported
    size_rule: str | None = None  # "first-frame": the size of the samples' first_frame.png (the vbvr preset)

    @property
    def token_pixels(self) -> tuple[int, int]:
        """(h, w) pixels one token covers: the VAE's spatial factor x the patch."""
        _, ph, pw = self.patch_size
        return self.vae_spatial * ph, self.vae_spatial * pw

    @property
    def spatial_multiple(self) -> tuple[int, int]:
        """Pixel sizes a call's height and width must be multiples of (default: one token, token_pixels)."""
        return self.token_pixels

    def latent_shape(self, samples, frames: int) -> tuple[int, ...]:
        """(B, latent_channels, frames, h, w) of the latents generate returns for these samples."""
        h, w = self._frame_size(samples)
        k, s = self.pixel_scale(h, w), self.vae_spatial
        return (len(samples), self.latent_channels, frames, h * k // s, w * k // s)

    def call_size(self, samples) -> tuple[int, int]:
        """(height, width) of the pipeline call for these samples: the fixed `size` if set; the size of the samples'
        first_frame.png rounded up to the pipeline's multiple under size_rule "first-frame"; else the native frame
        upscaled by the integer pixel_scale."""
        h, w = self._frame_size(samples)
        mh, mw = self.spatial_multiple
        if self.size is not None:
            return self.size
        if self.size_rule == "first-frame":
            k = max(int(getattr(samples[0], "scale", 1) or 1), 1)
            return -(-h * k // mh) * mh, -(-w * k // mw) * mw
        k = self.pixel_scale(h, w)
        return h * k, w * k

    def first_frames(self, samples, height: int, width: int) -> list:
        """The samples' first frames as RGB PIL images of the call size (height, width): upscaled (nearest neighbour)
        by k where that is an integer upscale k (kept in `_scales` for decode), else resized bicubic (`_native`)."""
        from PIL import Image

        from ..io.video import upscale

        h, w = self._frame_size(samples)
        k = height // h if height % h == 0 and width % w == 0 and height // h == width // w else None
        if k is not None:
            self._scales[height, width] = k
            return [Image.fromarray(np.ascontiguousarray(upscale(s.first_frame, k)), "RGB") for s in samples]
        self._native[height, width] = (h, w)  # not an integer upscale (--height/--width, a frame off the multiple)
        return [Image.fromarray(np.ascontiguousarray(s.first_frame), "RGB").resize((width, height), Image.BICUBIC)
                for s in samples]

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
