"""The embedded model's "VAE": pixel space without the top and left wall border.

Every maze frame has a one-pixel wall border, so dropping its first row and column is lossless
and leaves a 2n x 2n image whose 2x2 patches are exactly the n x n cells (a cell with its right
and lower passage). Wan's VAE plays this role for the diffusers backend: the sampler works on
latents, and frames come from `decode`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BorderCodec:
    wall = -1.0  # black in [-1, 1]

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(..., H, W) pixels in [-1, 1] -> (..., H-1, W-1) latent."""
        return video[..., 1:, 1:]

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(..., h, w) latent -> (..., h+1, w+1) pixels with the wall border restored."""
        return F.pad(latent, (1, 0, 1, 0), value=self.wall)
