"""The training-free multi-seed ensemble, as a sampler option.

N seeds of the same sample run in one batch. At chosen steps (default: the early ones), a chosen
quantity is replaced by its per-token mean across the N seeds, or moved toward it by alpha:
h <- h + alpha (mean_N(h) - h). alpha = 0 is plain N-seed sampling, alpha = 1 the study's averaging.

What is averaged (`target`):
- "block": the residual stream a block returns (the study: blocks 20-29 of Wan's 40).
  Subtlety: once the residual stream is averaged at block a, every later block gets the same input in
  all N seeds, so averaging blocks a..b is the same as averaging block a alone (for alpha = 1).
- "update": each block's own update (output - input) instead: averaging blocks a..b then differs from
  averaging block a, since the streams stay apart and only the blocks' contributions are shared.
- "latent" (x_s), "x0" (x0_hat) or "v" (the velocity): at the sampler level, no block involved.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, field_validator

from ..hooks import Hooks

SEED_STRIDE = 10_000_019  # member k of sample seed s draws its noise from seed s + k * SEED_STRIDE
Target = Literal["block", "update", "latent", "x0", "v"]


def default_blocks(depth: int) -> list[int]:
    """The study's blocks 20-29 of 40, scaled: the quarter of the blocks starting at the middle."""
    a = depth // 2
    return list(range(a, a + max(1, depth // 4)))


def default_steps(num_steps: int) -> list[int]:
    """The early steps: the first 15%, rounded up (at least one): 3 of 20, 8 of 50."""
    return list(range(max(1, -(-15 * num_steps // 100))))


class EnsembleConfig(BaseModel):
    n_seeds: int = 3
    target: Target = "block"
    blocks: list[int] | None = None  # block indices; default: default_blocks(depth)
    steps: list[int] | None = None  # step indices; default: default_steps(num_steps)
    alpha: float = 1.0

    @field_validator("n_seeds")
    @classmethod
    def _n(cls, v):
        if v < 1:
            raise ValueError(f"n_seeds must be >= 1, got {v}")
        return v

    @field_validator("blocks", "steps")
    @classmethod
    def _some(cls, v, info):
        if v is not None and len(v) == 0:
            raise ValueError(f"{info.field_name}=[] selects no {info.field_name[:-1]}: the ensemble would average "
                             f"nothing; give indices, or None for the default")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {v}")
        return v


def member_seeds(seeds: list[int], n: int) -> list[int]:
    """Seeds of the N members of each sample, grouped by sample: member 0 uses the sample's own seed."""
    return [s + k * SEED_STRIDE for s in seeds for k in range(n)]


def mean_toward(n: int, alpha: float, group=None, world: int = 1):
    """fn(t, ctx): each group of n consecutive batch rows moved toward its mean by alpha.

    Distributed (world > 1): this process holds n of the world * n members of each sample; the mean
    over all members is taken with an all-reduce over `group`.
    """
    def fn(t: torch.Tensor, ctx) -> torch.Tensor:
        if n * world == 1 or alpha == 0.0:
            return t
        g = t.reshape(-1, n, *t.shape[1:])
        if world > 1:
            import torch.distributed as dist

            m = g.sum(dim=1, keepdim=True)
            dist.all_reduce(m, group=group)
            m = m / (n * world)
        else:
            m = g.mean(dim=1, keepdim=True)
        out = m.expand_as(g) if alpha == 1.0 else g + alpha * (m - g)
        return out.reshape(t.shape)
    return fn


def check_ensemble(cfg: EnsembleConfig, model, num_steps: int | None) -> None:
    """Refuse blocks or steps the model or schedule does not have, before any sampling (a model or steps of None,
    before the model loads: negative indices only, the rest once it has)."""
    depth = len(model.block_names) if model is not None else None
    bad = [b for b in (cfg.blocks or []) if b < 0 or (depth is not None and b >= depth)]
    if bad and cfg.target in ("block", "update"):
        raise ValueError(f"--ens-blocks: block {bad[0]} out of range: "
                         + (f"the model has blocks 0..{depth - 1}" if depth is not None else "blocks count from 0"))
    bad = [k for k in (cfg.steps or []) if k < 0 or (num_steps is not None and k >= num_steps)]
    if bad:
        raise ValueError(f"--ens-steps: step {bad[0]} out of range: " + (
            f"sampling has steps 0..{num_steps - 1}" if num_steps is not None else "steps count from 0"))


def ensemble_hooks(model, cfg: EnsembleConfig, num_steps: int, hooks: Hooks | None = None, world: int = 1,
                   group=None) -> Hooks:
    hooks = hooks or Hooks(model, num_steps)
    steps = default_steps(num_steps) if cfg.steps is None else cfg.steps
    fn = mean_toward(cfg.n_seeds // world, cfg.alpha, group, world)
    if cfg.target in ("block", "update"):
        depth = len(model.block_names)
        blocks = default_blocks(depth) if cfg.blocks is None else cfg.blocks
        bad = [b for b in blocks if not 0 <= b < depth]
        if bad:
            raise ValueError(f"block {bad[0]} out of range: the model has blocks 0..{depth - 1}")
        hooks.edit([f"blocks.{b}" for b in blocks], fn, steps=steps, on="output" if cfg.target == "block" else "update")
    else:
        hooks.edit(cfg.target, fn, steps=steps)
    return hooks


def generate_ensemble(model, samples, seeds: list[int], cfg: EnsembleConfig, sampling=None, frames: int | None = None,
                      hooks: Hooks | None = None) -> torch.Tensor:
    """All N members of every sample: latents (B, N, C, T, h, w), sampled with `sampling` (steplens.presets.Sampling;
    None: the model's own)."""
    from ..presets import sampled

    sampling = sampled(model, sampling)  # the hooks need the step count
    n = cfg.n_seeds
    rep = [s for s in samples for _ in range(n)]
    h = ensemble_hooks(model, cfg, sampling.steps, hooks)
    with h:
        lat = model.generate(rep, member_seeds(list(seeds), n), frames, sampling, hooks=h)
    return lat.reshape(len(samples), n, *lat.shape[1:])


def generate_ensemble_distributed(model, samples, seeds: list[int], cfg: EnsembleConfig, sampling=None,
                                  frames: int | None = None, group=None) -> torch.Tensor:
    """The ensemble with its N members split over the processes of a torch.distributed group (torchrun;
    gloo on CPU, NCCL on GPUs); means by all-reduce. Every process returns all members (B, N, ...)."""
    import torch.distributed as dist

    from ..presets import sampled

    sampling = sampled(model, sampling)
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    if cfg.n_seeds % world:
        raise ValueError(f"the world size {world} does not divide n_seeds={cfg.n_seeds}: each process must hold "
                         f"the same number of members")
    n = cfg.n_seeds // world
    mine = list(range(rank * n, (rank + 1) * n))
    rep = [s for s in samples for _ in range(n)]
    local_seeds = [s + k * SEED_STRIDE for s in seeds for k in mine]
    h = ensemble_hooks(model, cfg, sampling.steps, world=world, group=group)
    with h:
        lat = model.generate(rep, local_seeds, frames, sampling, hooks=h)
    lat = lat.reshape(len(samples), n, *lat.shape[1:]).contiguous()
    parts = [torch.empty_like(lat) for _ in range(world)]
    dist.all_gather(parts, lat, group=group)
    return torch.cat(parts, dim=1)


# -- choosing among the members -----------------------------------------------------------------
# Members are compared as decoded RGB videos, for any task; a task with a palette (steplens.tasks.palette) has
# its frames snapped to it first, so votes and agreement count colours of that palette exactly.
VOTE_LEVELS = 16  # without a palette, a vote counts colours quantised to 16 levels per channel


def member_videos(model, latents: torch.Tensor) -> np.ndarray:
    """(B, N, ...) latents -> (B, N, T, H, W, 3) float RGB 0..255 of every member's decoded video."""
    from ..io.video import to_rgb

    px = model.decode(latents.flatten(0, 1))  # (B*N, 3, T, H, W)
    rgb = to_rgb(px.movedim(2, 1).flatten(0, 1))  # (B*N*T, H, W, 3)
    return rgb.reshape(*latents.shape[:2], px.shape[2], *rgb.shape[1:])


def labels_of(frames: np.ndarray, palette: np.ndarray | None) -> np.ndarray:
    """Integer labels to compare members by: palette indices, or quantised RGB codes without a palette."""
    from ..regions import snap

    if palette is not None:
        return snap(np.clip(frames, 0, 255), palette)
    q = np.clip(frames, 0, 255).astype(np.int64) * VOTE_LEVELS // 256
    return (q[..., 0] * VOTE_LEVELS + q[..., 1]) * VOTE_LEVELS + q[..., 2]


def consensus_index(frames: np.ndarray) -> np.ndarray:
    """Per sample, the member whose last frame agrees most with the other members' (no ground truth).

    `frames` (B, N, ...): integer labels are compared by pixelwise agreement; float pixels by mean
    squared distance (the member closest to all others)."""
    b, n = frames.shape[:2]
    flat = frames.reshape(b, n, -1)
    if np.issubdtype(flat.dtype, np.integer):
        close = (flat[:, :, None] == flat[:, None, :]).mean(-1)  # (B, N, N); self-agreement adds 1 to every member
        return close.sum(-1).argmax(-1)
    # sum_k |x_j - x_k|^2 = N |x_j|^2 - 2 x_j . sum_k x_k + const: no (B, N, N, pixels) tensor for real videos
    flat = flat.astype(np.float64)
    dist = n * (flat ** 2).sum(-1) - 2 * np.einsum("bjp,bp->bj", flat, flat.sum(1))
    return dist.argmin(-1)


def majority_vote(labels: np.ndarray) -> np.ndarray:
    """Per sample, the per-pixel most frequent label over the members (ties: lowest label): (B, ...)."""
    counts = np.stack([(labels == k).sum(1) for k in range(int(labels.max()) + 1)], axis=-1)
    return counts.argmax(-1)


def vote_video(videos: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel majority vote over the members' videos (B, N, T, H, W, 3) -> (B, T, H, W, 3) uint8.

    With a palette: the most frequent palette colour (ties: the palette's first). Without: the most frequent
    quantised colour (ties: the first member's), drawn as the mean colour of the members that chose it."""
    if palette is not None:
        return np.asarray(palette, np.uint8)[majority_vote(labels_of(videos, palette))]
    codes = labels_of(videos, None)  # (B, N, T, H, W)
    agree = (codes[:, :, None] == codes[:, None, :])  # (B, N, N, T, H, W)
    best = agree.sum(2).argmax(1)  # (B, T, H, W): a member holding the majority code
    win = np.take_along_axis(codes, best[:, None], 1)  # (B, 1, T, H, W)
    sel = (codes == win)[..., None]
    mean = (videos * sel).sum(1) / sel.sum(1)
    return np.clip(np.round(mean), 0, 255).astype(np.uint8)
