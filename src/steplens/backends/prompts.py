"""Prompt embeddings for pipelines that have no text encoder (e.g. the tiny offline test pipelines).

A *provider* is any callable `provider(texts: list[str]) -> Tensor (B, L, text_dim)`. A pipeline model uses the
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


def prompt_embedder(pipe, provider, text_dim: int):
    """(provider or None, source) for a pipeline model: the given provider ("provider"); None when the pipeline
    encodes prompts itself ("text_encoder": it has a text encoder and a tokenizer); else a fixed hashed
    embedding per text ("hashed": HashedPromptEmbeds)."""
    if provider is not None:
        return provider, "provider"
    if getattr(pipe, "text_encoder", None) is not None and getattr(pipe, "tokenizer", None) is not None:
        return None, "text_encoder"
    return HashedPromptEmbeds(text_dim), "hashed"
