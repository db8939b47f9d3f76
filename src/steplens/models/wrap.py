"""The embedded backend: a VideoDiT with its codec, turning samples into latents and back."""

from __future__ import annotations

import numpy as np
import torch

from ..contract import ModelDefaults
from ..io.video import to_model
from ..sampling import check_finite, flow_sigmas, initial_noise, sample_euler
from .codec import BorderCodec
from .dit import DiTCond, VideoDiT
from .prompt import encode_prompts


def conditioning(first_frames: list[np.ndarray], prompts: list[str], codec: BorderCodec, device=None,
                 prefixes: list[np.ndarray] | None = None) -> DiTCond:
    """The clean first frames (as latents) and the prompts; `prefixes`: each sample's K leading frames ((K, H, W, 3)
    uint8, the same K for all), when it is given more than its first frame."""
    first = torch.stack([to_model(f) for f in first_frames])
    prefix = None
    if prefixes is not None and prefixes[0] is not None and len(prefixes[0]) > 1:
        if len({len(p) for p in prefixes}) != 1:
            raise ValueError(f"the samples of a batch are given different numbers of leading frames: "
                             f"{sorted({len(p) for p in prefixes})}; batch samples of one K together")
        prefix = codec.encode(torch.stack([to_model(p) for p in prefixes])).to(device)
    return DiTCond(codec.encode(first).to(device), encode_prompts(prompts).to(device), prefix)


class EmbeddedModel(ModelDefaults):
    """The model contract (steplens.contract.VideoModel) on a VideoDiT: velocity(x, sigma, cond) for the sampler,
    plus the contract's I/O helpers. One denoiser (`modules()` -> {None: net}), no pipeline, no CFG by default."""

    backend = "embedded"

    def __init__(self, net: VideoDiT, codec: BorderCodec | None = None, device="cpu", name: str = "embedded",
                 info: dict | None = None):
        self.net = net.to(device).eval()
        self.codec = codec or BorderCodec()
        self.device = device
        self.name = name
        self.info = info or {}

    @property
    def block_names(self) -> list[str]:
        return self.net.block_names

    @property
    def trained_tasks(self) -> list[str]:
        """The tasks its weights say it was trained on (weight > 0 in the training config), in the config's order."""
        tasks = (self.info.get("train_config") or {}).get("tasks") or {}
        return [n for n, w in tasks.items() if w > 0]

    def modules(self) -> dict[str | None, torch.nn.Module]:
        """The one denoiser hooks attach to (its named submodules `blocks.i`)."""
        return {None: self.net}

    @property
    def module(self) -> torch.nn.Module:
        """The nn.Module whose named submodules (`blocks.i`) hooks attach to (`modules()[None]`)."""
        return self.net

    def velocity(self, x, sigma, cond):
        return self.net(x, sigma, cond)

    # The embedded model's sampling: what the shipped models are trained and measured with. The only place these
    # numbers live; everything else asks `sampling_defaults()` (or passes None to `generate`).
    SAMPLING = {"steps": 20, "shift": 3.0, "guidance": 1.0}

    def sampling_defaults(self) -> dict:
        """The model's own sampling settings (steplens.presets 'pipeline'): those its weights carry in
        info["sampling"] (a distilled student's steps, shift, guidance and σ list: steplens.training.distill), else
        20 Euler steps, shift 3, no CFG. `sigmas`, when present: the σ of each step (the final 0 dropped)."""
        out = dict(self.SAMPLING)
        stored = self.info.get("sampling") if isinstance(self.info.get("sampling"), dict) else {}
        for key, cast in (("steps", int), ("shift", float), ("guidance", float)):
            if stored.get(key) is not None:
                out[key] = cast(stored[key])
        if stored.get("sigmas") is not None:
            from ..io.checks import sigma_list

            out["sigmas"] = sigma_list(stored["sigmas"], f"model {self.name!r}: info['sampling']['sigmas']")
            out["steps"] = len(out["sigmas"])
        return out

    sampling_options = frozenset({"sigmas"})

    @staticmethod
    def step_sigmas(sampling) -> torch.Tensor:
        """The steps + 1 σ a call samples at (ending at 0): the sampling's σ list, else flow_sigmas(steps, shift)."""
        if sampling.sigmas is not None:
            from ..io.checks import sigma_list

            return torch.tensor([*sigma_list(sampling.sigmas, "sigmas"), 0.0], dtype=torch.float32)
        return flow_sigmas(sampling.steps, sampling.shift)

    @property
    def prefix_trained(self) -> int:
        """The most leading frames its weights were trained to be given (the training config's `prefix`; 1: the
        first frame alone, image-to-video)."""
        dist = (self.info.get("train_config") or {}).get("prefix") or {"1": 1.0}
        return max(int(k) for k, w in dist.items() if w > 0)

    def check_prefix(self, k: int, frames: int) -> None:
        """Refuse K leading frames this model cannot be given (with why), before any work."""
        if k < 1 or k >= frames:
            raise ValueError(f"K = {k} leading frames: K must be at least 1 and below the video's {frames} frames")
        if k > 1 and self.prefix_trained < 2:
            raise ValueError(f"model {self.name!r} was trained on first frames only (image-to-video, K = 1): given "
                             f"{k} leading frames it was never taught to continue them; use a frame-prefix model "
                             f"(trained with `prefix` in its training config), e.g. tiny-reasoner-frames")

    def condition(self, samples):
        if any(s.prefix is not None and len(s.prefix) > 1 for s in samples):
            for s in samples:
                self.check_prefix(s.known_frames, s.frames or s.known_frames + 1)
        return conditioning([s.first_frame for s in samples], [s.prompt for s in samples], self.codec, self.device,
                            [s.prefix for s in samples])

    def latent_shape(self, samples, frames: int) -> tuple[int, ...]:
        h, w = samples[0].first_frame.shape[:2]
        if any(s.first_frame.shape[:2] != (h, w) for s in samples):
            raise ValueError("all samples of a batch must have the same frame size")
        return (len(samples), self.net.cfg.channels, frames, h - 1, w - 1)

    def token_grid(self, latent_shape) -> tuple[int, int, int]:
        """(frames, h, w) of the token grid for a latent of this shape (tokens are ordered frame, h, w)."""
        pt, ph, pw = self.net.cfg.patch
        _, _, t, h, w = latent_shape
        return (-(-t // pt), -(-h // ph), -(-w // pw))

    def token_mask(self, pixel_mask: torch.Tensor) -> torch.Tensor:
        """A (H, W) bool mask on the frame -> (h, w) bool mask of the tokens that cover any of it."""
        lat = self.codec.encode(pixel_mask.float())
        _, ph, pw = self.net.cfg.patch
        lat = torch.nn.functional.pad(lat, (0, (-lat.shape[1]) % pw, 0, (-lat.shape[0]) % ph))
        return torch.nn.functional.max_pool2d(lat[None, None], (ph, pw))[0, 0] > 0

    def frames_from_video(self, n: int) -> int:
        """Frames to generate for a ground-truth video of n frames: the embedded model makes one frame per frame."""
        return int(n)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, T, h, w) -> pixels (B, C, T, H, W) in [-1, 1]; non-finite pixels raise FloatingPointError."""
        video = self.codec.decode(latent)
        check_finite(video, f"{self.name}'s decoded video")
        return video

    def generate(self, samples, seeds, frames: int | None = None, sampling=None, callback=None,
                 hooks=None) -> torch.Tensor:
        """Sample the videos of `samples` from `seeds` with `sampling` (steplens.presets.Sampling; None: the model's
        own, `resolve(model)`); returns the final latents (B, C, T, h, w). Its σ list, where it has one, overrides
        steps and shift (`step_sigmas`)."""
        from ..io.video import check_frames

        from ..presets import sampled

        sampling = sampled(self, sampling)
        self.check_sampling(sampling)
        guidance = sampling.guidance
        sigmas = self.step_sigmas(sampling)
        if hooks is not None:  # a hook at a step past the run would never fire: refused, naming the range
            hooks.check_run(len(sigmas) - 1, "this run")
        frames = check_frames(frames or samples[0].frames)
        cond = self.condition(samples)
        x = initial_noise(self.latent_shape(samples, frames), seeds, self.device)
        uncond = cond.null_prompt() if guidance != 1.0 else None
        own = hooks is not None and hooks.attach_module_points()  # block points fire without `with hooks:`, as on
        try:                                                        # pipelines
            return sample_euler(self, x, sigmas, cond, callback, guidance=guidance, uncond=uncond, hooks=hooks)
        finally:
            if own:
                hooks.detach()
