"""The learning-rate schedule of the trainer: linear warm-up, constant, then an optional cosine decay."""

from __future__ import annotations

import math


def decay_start(steps: int, decay_steps: int) -> float:
    """The step from which the LR decays (inf: never)."""
    return max(0, steps - decay_steps) if decay_steps else math.inf


def lr_at(cfg, step: int) -> float:
    """Linear warm-up, then constant; over the last `decay_steps` of `steps`, a cosine down towards 0."""
    lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
    start = decay_start(cfg.steps, cfg.decay_steps)
    if step >= start:
        lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start + 1) / (cfg.decay_steps + 1))))
    return lr
