"""The embedded backend: a VideoDiT with its codec, turning task items into latents and back."""

from __future__ import annotations

import torch

from ..data import conditioning
from ..sampling import flow_sigmas, initial_noise, sample_euler
from .codec import BorderCodec
from .dit import VideoDiT


class EmbeddedModel:
    """What the sampler and the experiments talk to: velocity(x, sigma, cond) plus I/O helpers."""

    backend = "embedded"

    def __init__(self, net: VideoDiT, codec: BorderCodec | None = None, device="cpu", name: str = "embedded"):
        self.net = net.to(device).eval()
        self.codec = codec or BorderCodec()
        self.device = device
        self.name = name

    @property
    def block_names(self) -> list[str]:
        return self.net.block_names

    @property
    def modules(self) -> torch.nn.Module:
        return self.net

    def velocity(self, x, sigma, cond):
        return self.net(x, sigma, cond)

    def condition(self, items):
        return conditioning(items, self.codec, self.device)

    def latent_shape(self, items, frames: int) -> tuple[int, ...]:
        side = items[0].size_px - 1
        if any(it.size_px - 1 != side for it in items):
            raise ValueError("all items of a batch must have the same size")
        return (len(items), self.net.cfg.channels, frames, side, side)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(latent)

    def generate(self, items, frames: int, seeds, steps: int = 20, shift: float = 3.0, guidance: float = 1.0,
                 callback=None, edit=None) -> torch.Tensor:
        """Sample the videos of `items` from `seeds`; returns the final latents (B, C, T, h, w)."""
        from ..tasks.maze import check_frames

        check_frames(frames)
        cond = self.condition(items)
        x = initial_noise(self.latent_shape(items, frames), seeds, self.device)
        sigmas = flow_sigmas(steps, shift)
        uncond = cond.null_prompt() if guidance != 1.0 else None
        return sample_euler(self, x, sigmas, cond, callback, guidance=guidance, uncond=uncond, edit=edit)
