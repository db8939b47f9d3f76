"""Prompt embeddings for Wan pipelines that have no text encoder (e.g. the tiny offline test pipelines).

A *provider* is any callable `provider(texts: list[str]) -> Tensor (B, L, text_dim)`. WanPipelineModel uses the
pipeline's own text encoder when it has one; otherwise a provider given to it, else `HashedPromptEmbeds`:
a fixed Gaussian embedding per text, seeded by the text's SHA-256, so the same prompt gives the same
embedding in every process and on every machine (and different prompts differ). It carries no meaning: it
only makes a pipeline without a text encoder runnable and deterministic.
"""

from __future__ import annotations

import hashlib

import torch

HASHED_LENGTH = 16  # tokens per hashed prompt embedding


class HashedPromptEmbeds:
    """provider(texts) -> (B, length, dim) float32: one seeded N(0, scale^2) embedding per distinct text."""

    def __init__(self, dim: int, length: int = HASHED_LENGTH, scale: float = 1.0):
        if dim < 1 or length < 1:
            raise ValueError(f"dim and length must be >= 1, got dim={dim}, length={length}")
        self.dim, self.length, self.scale = int(dim), int(length), float(scale)

    @staticmethod
    def seed_of(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = []
        for text in texts:
            g = torch.Generator().manual_seed(self.seed_of(text))
            out.append(torch.randn(self.length, self.dim, generator=g) * self.scale)
        return torch.stack(out)

    def __repr__(self) -> str:
        return f"HashedPromptEmbeds(dim={self.dim}, length={self.length})"
