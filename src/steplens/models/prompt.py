"""A fixed word-level vocabulary for the embedded model's prompts (no tokenizer download)."""

from __future__ import annotations

import re

import torch

WORDS = """
<pad> <unk> draw the shortest path from green start to red goal without crossing any wall walls
blue orange yellow purple reach go a an of and in on at maze cell cells solve find way route
through move step steps line left right up down top bottom corner first last frame video
black white square dot exit entrance show trace connect avoid never over via only one two
x o tic tac toe win winning mark three row column diagonal board player
object moves behind grey where it comes out same colour shape
complete pattern half mirrors
""".split()  # words are only ever appended: a trained model's ids never move
PAD, UNK = 0, 1
VOCAB = {w: i for i, w in enumerate(WORDS)}
VOCAB_SIZE = 128  # room for words added later without changing the embedding shape
MAX_PROMPT_TOKENS = 24
assert len(WORDS) <= VOCAB_SIZE


def encode_prompts(prompts: list[str], length: int = MAX_PROMPT_TOKENS) -> torch.Tensor:
    """Token ids (B, length), padded with <pad>; unknown words map to <unk>."""
    ids = torch.full((len(prompts), length), PAD, dtype=torch.long)
    for i, text in enumerate(prompts):
        words = re.findall(r"[a-z]+", text.lower())
        if len(words) > length:
            raise ValueError(f"prompt has {len(words)} words, at most {length} are allowed: {text!r}")
        ids[i, : len(words)] = torch.tensor([VOCAB.get(w, UNK) for w in words], dtype=torch.long)
    return ids
