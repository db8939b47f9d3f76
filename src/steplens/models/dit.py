"""The embedded video DiT: a small model of the Wan family that knows no noise schedule.

Same anatomy as diffusers' WanTransformer3DModel, scaled down: 3D patches (1, 2, 2), tokens
ordered (frame, h, w), full spatio-temporal self-attention with 3D RoPE and RMS-normed q/k,
cross-attention to the prompt, timestep modulation (a shared projection plus a learned table
per block), and image-to-video conditioning by concatenating the clean first frame and a
mask to the noisy input channels. Blocks live in `self.blocks` and are addressed `blocks.i`;
a block maps the residual stream (B, L, D) to (B, L, D), like a Wan block.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .prompt import MAX_PROMPT_TOKENS, PAD, VOCAB_SIZE


@dataclass(frozen=True)
class DiTConfig:
    channels: int = 3  # video channels (RGB for the embedded model)
    patch: tuple[int, int, int] = (1, 2, 2)
    dim: int = 128
    depth: int = 8
    heads: int = 4
    ffn_mult: float = 4.0
    text_dim: int = 64
    vocab_size: int = VOCAB_SIZE
    max_prompt_tokens: int = MAX_PROMPT_TOKENS
    freq_dim: int = 128

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiTConfig":
        d = dict(d)
        d["patch"] = tuple(d.get("patch", (1, 2, 2)))
        return cls(**d)


@dataclass
class DiTCond:
    """What the embedded model is conditioned on: the clean first frame (or the first K frames) and the prompt."""

    first_frame: torch.Tensor  # (B, C, H, W), values in [-1, 1]
    prompt_ids: torch.Tensor  # (B, P) long
    prefix: torch.Tensor | None = None  # (B, C, K, H, W): the K leading clean frames (frame 0 = first_frame); None: K = 1

    def __len__(self) -> int:
        return self.first_frame.shape[0]

    @property
    def known(self) -> torch.Tensor:
        """The clean leading frames (B, C, K, H, W)."""
        return self.first_frame[:, :, None] if self.prefix is None else self.prefix

    def repeat(self, k: int) -> "DiTCond":
        return DiTCond(self.first_frame.repeat_interleave(k, 0), self.prompt_ids.repeat_interleave(k, 0),
                       None if self.prefix is None else self.prefix.repeat_interleave(k, 0))

    def null_prompt(self) -> "DiTCond":
        """The unconditional branch for classifier-free guidance: same frames, empty prompt."""
        return DiTCond(self.first_frame, torch.full_like(self.prompt_ids, PAD), self.prefix)

    def cat(self, other: "DiTCond") -> "DiTCond":
        if (self.prefix is None) != (other.prefix is None):
            raise ValueError("cannot join conditionings with and without a frame prefix")
        prefix = None if self.prefix is None else torch.cat([self.prefix, other.prefix])
        return DiTCond(torch.cat([self.first_frame, other.first_frame]), torch.cat([self.prompt_ids, other.prompt_ids]),
                       prefix)


def rope_freqs(head_dim: int, grid: tuple[int, int, int], device) -> torch.Tensor:
    """Complex rotations (L, head_dim/2) for tokens at (t, h, w), split over the 3 axes as in Wan."""
    d_hw = 2 * (head_dim // 6 // 2)
    parts = [head_dim - 2 * d_hw, d_hw, d_hw]
    axes = []
    for n, d in zip(grid, parts):
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=device, dtype=torch.float64) / d))
        axes.append(torch.outer(torch.arange(n, device=device, dtype=torch.float64), inv))
    t, h, w = grid
    ang = torch.cat([
        axes[0][:, None, None, :].expand(t, h, w, -1),
        axes[1][None, :, None, :].expand(t, h, w, -1),
        axes[2][None, None, :, :].expand(t, h, w, -1),
    ], dim=-1).reshape(t * h * w, -1)
    return torch.polar(torch.ones_like(ang), ang).to(torch.complex64)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x (B, heads, L, head_dim) rotated pairwise by freqs (L, head_dim/2)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs).flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, ctx_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(ctx_dim or dim, dim)
        self.v = nn.Linear(ctx_dim or dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=1e-6)
        self.norm_k = nn.RMSNorm(dim, eps=1e-6)

    def forward(self, x, ctx=None, rope=None, key_mask=None):
        ctx = x if ctx is None else ctx
        q, k, v = self.norm_q(self.q(x)), self.norm_k(self.k(ctx)), self.v(ctx)
        q, k, v = (rearrange(t, "b l (h d) -> b h l d", h=self.heads) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o(rearrange(out, "b h l d -> b l (h d)"))


class Block(nn.Module):
    """One Wan-style block: modulated self-attention, cross-attention, modulated FFN."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.self_attn = Attention(d, cfg.heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.cross_attn = Attention(d, cfg.heads)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.ffn_mult)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.modulation = nn.Parameter(torch.zeros(1, 6, d))

    def forward(self, x, context, temb, rope, context_mask=None):
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation + temb).unbind(1)
        h = self.norm1(x) * (1 + scale1[:, None]) + shift1[:, None]
        x = x + gate1[:, None] * self.self_attn(h, rope=rope)
        x = x + self.cross_attn(self.norm2(x), ctx=context, key_mask=context_mask)
        h = self.norm3(x) * (1 + scale2[:, None]) + shift2[:, None]
        return x + gate2[:, None] * self.ffn(h)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    ang = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)


class VideoDiT(nn.Module):
    """velocity(x, sigma, cond): x (B, C, T, H, W) noisy video, sigma (B,) or scalar in [0, 1]."""

    def __init__(self, cfg: DiTConfig = DiTConfig()):
        super().__init__()
        self.cfg = cfg
        c, d = cfg.channels, cfg.dim
        self.patch_embedding = nn.Conv3d(2 * c + 1, d, kernel_size=cfg.patch, stride=cfg.patch)
        self.word_embedding = nn.Embedding(cfg.vocab_size, cfg.text_dim)
        self.word_position = nn.Parameter(torch.randn(cfg.max_prompt_tokens, cfg.text_dim) * 0.02)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.out_modulation = nn.Parameter(torch.zeros(1, 2, d))
        self.proj_out = nn.Linear(d, c * math.prod(cfg.patch))
        # adaLN-zero: every block starts as the identity and the output as zero velocity.
        for m in (self.time_projection[-1], self.proj_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    @property
    def block_names(self) -> list[str]:
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def embed_prompt(self, prompt_ids: torch.Tensor):
        if prompt_ids.shape[1] > self.cfg.max_prompt_tokens:
            raise ValueError(f"prompt has {prompt_ids.shape[1]} tokens, at most {self.cfg.max_prompt_tokens} are allowed")
        words = self.word_embedding(prompt_ids) + self.word_position[: prompt_ids.shape[1]]
        mask = prompt_ids != PAD
        mask = mask | ~mask.any(dim=1, keepdim=True)  # an empty prompt still attends (to the pads)
        return self.text_embedding(words), mask

    def velocity(self, x: torch.Tensor, sigma, cond: DiTCond) -> torch.Tensor:
        return self(x, sigma, cond)

    def embed(self, x: torch.Tensor, sigma, cond: DiTCond) -> tuple[torch.Tensor, dict]:
        """Input tokens (B, L, D) and what every block and the head need."""
        b, c, t, h, w = x.shape
        if c != self.cfg.channels:
            raise ValueError(f"video has {c} channels, the model takes {self.cfg.channels}")
        ph, pw = self.cfg.patch[1:]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        # image-to-video conditioning: [noisy video | the known frames (the first, or the first K) | their mask]
        known = cond.known
        if known.shape[2] > 1 and known.shape[2] >= t:
            raise ValueError(f"{known.shape[2]} known frames leave nothing to generate in a {t}-frame video")
        ref = torch.zeros_like(x)
        ref[:, :, : known.shape[2]] = known.to(x.dtype)
        mask = torch.zeros_like(x[:, :1])
        mask[:, :, : known.shape[2]] = 1
        inp = F.pad(torch.cat([x, ref, mask], dim=1), (0, (-w) % pw, 0, (-h) % ph))
        tokens = self.patch_embedding(inp)
        grid = tuple(tokens.shape[2:])
        temb = self.time_embedding(timestep_embedding(sigma * 1000, self.cfg.freq_dim))
        context, context_mask = self.embed_prompt(cond.prompt_ids.to(x.device))
        aux = {"context": context, "context_mask": context_mask, "temb": temb, "grid": grid, "size": (t, h, w),
               "temb6": self.time_projection(temb).unflatten(1, (6, self.cfg.dim)),
               "rope": rope_freqs(self.cfg.dim // self.cfg.heads, grid, x.device)}
        return rearrange(tokens, "b d t h w -> b (t h w) d"), aux

    def head(self, tokens: torch.Tensor, aux: dict) -> torch.Tensor:
        """Last residual stream (B, L, D) -> velocity (B, C, T, H, W)."""
        pt, ph, pw = self.cfg.patch
        shift, scale = (self.out_modulation + aux["temb"][:, None]).unbind(1)
        out = self.proj_out(self.norm_out(tokens) * (1 + scale[:, None]) + shift[:, None])
        gt, gh, gw = aux["grid"]
        out = rearrange(out, "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)",
                        t=gt, h=gh, w=gw, pt=pt, ph=ph, pw=pw, c=self.cfg.channels)
        t, h, w = aux["size"]
        return out[:, :, :t, :h, :w]

    def forward(self, x: torch.Tensor, sigma, cond: DiTCond) -> torch.Tensor:
        tokens, aux = self.embed(x, sigma, cond)
        for block in self.blocks:
            tokens = block(tokens, aux["context"], aux["temb6"], aux["rope"], aux["context_mask"])
        return self.head(tokens, aux)
