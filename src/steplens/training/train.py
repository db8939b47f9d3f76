"""Flow-matching training of the embedded model: resumable, checkpointed to safetensors.

x_s = (1 - s) x0 + s eps, target v = eps - x0. Every random draw of step k comes from a
generator seeded by (run seed, k), so a run stopped and resumed from its checkpoint follows
the same trajectory, bit for bit, as one never stopped.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..experiments.evaluate import evaluate_samples, solve_rate
from ..presets import resolve
from ..io import interrupt
from ..models import BorderCodec, DiTConfig, VideoDiT, get_arch
from ..models.adapter import AdapterConfig, add_adapter
from ..models.prompt import PAD
from ..models.wrap import EmbeddedModel
from ..tasks import continue_from_frames, draw, draw_many, generator_task
from .checkpoint import load_checkpoint, save_checkpoint
from .data import TRAIN_SEED_BASE, sample_conditioning, video_batch
from .lr import decay_start, lr_at  # noqa: F401  (decay_start: part of the trainer's API)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, never silently ignored

    arch: str = "tiny-maze"
    tasks: dict[str, float] = Field(default_factory=lambda: {"maze": 1.0})
    sizes: dict[int, float] = Field(default_factory=lambda: {3: 0.1, 4: 0.2, 5: 0.35, 6: 0.25, 7: 0.1})
    task_sizes: dict[str, dict[int, float]] = Field(default_factory=dict)  # per task, instead of `sizes`
    frames: dict[int, float] = Field(default_factory=lambda: {2: 0.15, 3: 0.2, 4: 0.5, 5: 0.15})
    # K, the clean leading frames a batch is given (1: image-to-video); drawn per batch among the K below its frames
    prefix: dict[int, float] = Field(default_factory=lambda: {1: 1.0})
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    decay_steps: int = 0  # the LR falls along a cosine to 0 over the last decay_steps of `steps` (0: it stays)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    steps: int = 20000
    seed: int = 0
    path_weight: float = 3.0  # extra loss weight on pixels that differ from the first frame
    p_uncond: float = 0.1  # prompt dropout, for classifier-free guidance
    time_mean: float = 0.5  # logit-normal mean of the training sigma (> 0 leans to high noise)
    time_uniform: float = 0.2  # fraction of sigmas drawn uniformly instead
    eval_every: int = 500
    eval_count: int = 100
    eval_size: int = 5
    eval_sizes: dict[str, int] = Field(default_factory=dict)  # per task, instead of eval_size (e.g. its default)
    eval_frames: int = 4
    eval_steps: int = 20
    eval_shift: float = 3.0
    ckpt_every: int = 50
    threads: int | None = None
    init: str | None = None  # start from these weights (a shipped name or a .safetensors file), e.g. to fine-tune
    # keep these weights' image-to-video function (a shipped name or a .safetensors file): on a K = 1 batch the loss
    # regresses onto their velocity instead of the flow-matching target (learning without forgetting), so a
    # frame-prefix fine-tune learns K > 1 without drifting at K = 1
    anchor: str | None = None
    # train a LoRA (steplens.models.adapter) on the frozen `init` weights instead of the weights themselves, switched
    # on only when a call is given K > 1 leading frames: the model stays its init bit for bit at K = 1
    adapter: AdapterConfig | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v):
        if not v or any(k < 1 for k in v) or any(not math.isfinite(p) or p < 0 for p in v.values()) or \
                sum(v.values()) <= 0:
            raise ValueError(f"prefix: weights of K >= 1 leading frames, finite, non-negative, with a positive sum, "
                             f"got {v}")
        return v

    @model_validator(mode="after")
    def _prefix_fits(self):
        """Every frame count can draw a K (K = 1 among them, or an adapter's K > 1 below it)."""
        if self.adapter is not None:
            if not self.init:
                raise ValueError("adapter: an adapter trains on frozen weights: give them as `init` (a shipped name "
                                 "or a .safetensors file), e.g. \"init\": \"tiny-reasoner\"")
            if self.anchor:
                raise ValueError("adapter and anchor: an adapter leaves K = 1 to its init bit for bit, so there is "
                                 "nothing to anchor; drop `anchor`")
            if self.prefix.get(1, 0) > 0:
                raise ValueError(f"prefix {self.prefix} with an adapter: it is off when given the first frame alone, "
                                 f"so a K = 1 batch teaches it nothing; give K = 1 the weight 0 (or leave it out)")
        elif self.prefix.get(1, 0) <= 0:
            raise ValueError(f"prefix: weights of K >= 1 leading frames with K = 1 among them (every frame count has "
                             f"it; only an `adapter` trains on K > 1 alone), got {self.prefix}")
        for f in self.frames:
            if not any(k < f and w > 0 for k, w in self.prefix.items()):
                raise ValueError(f"frames: a {f}-frame batch has no K below {f} in prefix {self.prefix} (K leading "
                                 f"frames leave at least one to generate)")
        return self

    @field_validator("sizes", "frames", "tasks")
    @classmethod
    def _positive(cls, v):
        if not v or any(not math.isfinite(p) or p < 0 for p in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"a distribution needs finite non-negative weights with a positive sum, got {v}")
        return v

    @field_validator("frames")
    @classmethod
    def _frame_counts(cls, v):
        bad = sorted(k for k in v if k < 2)
        if bad:
            raise ValueError(f"frames: a sample has at least 2 frames (the first frame and the answer), got {bad[0]}")
        return v

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, v):
        for name in v:
            generator_task(name)  # a task with a generator: named, with the available ones, if not
        return v

    @model_validator(mode="after")
    def _task_sizes(self):
        for name, dist in self.task_sizes.items():
            if name not in self.tasks:
                raise ValueError(f"task_sizes names {name!r}, which is not in tasks ({', '.join(self.tasks)})")
            if not dist or any(not math.isfinite(w) or w < 0 for w in dist.values()) or sum(dist.values()) <= 0:
                raise ValueError(f"task_sizes[{name!r}] needs finite non-negative weights with a positive sum, "
                                 f"got {dist}")
            lo, hi = generator_task(name).sizes
            bad = [k for k in dist if not lo <= k <= hi]
            if bad:
                raise ValueError(f"task_sizes[{name!r}]: size {bad[0]} out of range; {name} takes {lo}..{hi}")
        for name in self.tasks:
            lo, hi = generator_task(name).sizes
            bad = [k for k in self.sizes if not lo <= k <= hi]
            if name not in self.task_sizes and bad:
                raise ValueError(f"sizes {sorted(self.sizes)} do not suit task {name!r} (sizes {lo}..{hi}): give "
                                 f"task_sizes[{name!r}]")
        for name, size in self.eval_sizes.items():
            if name not in self.tasks:
                raise ValueError(f"eval_sizes names {name!r}, which is not in tasks ({', '.join(self.tasks)})")
            try:
                generator_task(name).sample(0, size)
            except ValueError as e:
                raise ValueError(f"eval_sizes[{name!r}]: {e}") from None
        return self

    def sizes_of(self, task: str) -> dict[int, float]:
        return self.task_sizes.get(task, self.sizes)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v):
        get_arch(v)
        return v

    @field_validator("batch", "eval_count", "eval_steps", "ckpt_every", "eval_frames", "eval_size")
    @classmethod
    def _at_least_one(cls, v, info):
        lo = 2 if info.field_name == "eval_frames" else 1  # a sample's first frame and its answer
        if v < lo:
            raise ValueError(f"{info.field_name} must be >= {lo}, got {v}")
        return v

    @field_validator("steps", "warmup", "eval_every", "decay_steps")  # eval_every 0: never evaluate
    @classmethod
    def _non_negative(cls, v, info):
        if v < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {v}")
        return v

    @field_validator("threads")
    @classmethod
    def _threads(cls, v):
        if v is not None and v < 1:
            raise ValueError(f"threads must be >= 1, got {v}")
        return v

    @field_validator("lr", "grad_clip", "eval_shift")
    @classmethod
    def _positive_float(cls, v, info):
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{info.field_name} must be a finite number > 0, got {v}")
        return v

    @field_validator("weight_decay", "path_weight", "ema_decay", "p_uncond", "time_uniform", "time_mean")
    @classmethod
    def _finite(cls, v, info):
        if not math.isfinite(v):
            raise ValueError(f"{info.field_name} must be finite, got {v}")
        if info.field_name in ("ema_decay", "p_uncond", "time_uniform") and not 0 <= v <= 1:
            raise ValueError(f"{info.field_name} must be in [0, 1], got {v}")
        if info.field_name in ("weight_decay", "path_weight") and v < 0:
            why = " (a negative weight trains against the answer)" if info.field_name == "path_weight" else ""
            raise ValueError(f"{info.field_name} must be >= 0{why}, got {v}")
        return v

    @classmethod
    def from_file(cls, path: Path) -> "TrainConfig":
        """Read a JSON config; every error names the file and the field."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except ValidationError as e:
            msgs = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(top level)'}: {err['msg']}"
                             + (f" (got {err['input']!r})" if err.get("type") not in ("json_invalid",) else "")
                             for err in e.errors())
            raise ValueError(f"training config {path}: {msgs}") from None


def _choice(rng: np.random.Generator, dist: dict):
    keys = list(dist)
    p = np.array([dist[k] for k in keys], dtype=np.float64)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def draw_batch(cfg: TrainConfig, step: int, codec: BorderCodec, device="cpu", rank: int = 0, world: int = 1):
    """The batch of step `step` (of process `rank` of `world`): same (task, size, frames) for all items
    and all processes, drawn from (seed, step); the items and noise from (seed, step[, rank])."""
    rng = np.random.default_rng([cfg.seed, step])
    name = _choice(rng, cfg.tasks)
    task = generator_task(name)
    n, frames = int(_choice(rng, cfg.sizes_of(name))), int(_choice(rng, cfg.frames))
    if world > 1:
        rng = np.random.default_rng([cfg.seed, step, rank])
    base = TRAIN_SEED_BASE + cfg.seed * 10**12 + (step * world + rank) * cfg.batch
    items = [draw(task, base + i, "train", n, frames) for i in range(cfg.batch)]  # training inputs only, by content
    x0 = video_batch(items, codec, device)
    known = 1
    if set(cfg.prefix) != {1}:  # its own generator: a K = 1 run draws exactly what it drew before `prefix` existed
        fits = {k: w for k, w in cfg.prefix.items() if k < frames and w > 0}
        known = int(_choice(np.random.default_rng([cfg.seed, step, 71]), fits))
    cond = sample_conditioning(items, codec, device, known)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    eps = torch.randn(x0.shape, generator=gen).to(device)
    u = torch.rand(cfg.batch, generator=gen)
    logit = torch.sigmoid(torch.randn(cfg.batch, generator=gen) + cfg.time_mean)
    sigma = torch.where(torch.rand(cfg.batch, generator=gen) < cfg.time_uniform, u, logit).to(device)
    drop = (torch.rand(cfg.batch, generator=gen) < cfg.p_uncond).to(device)
    cond.prompt_ids = torch.where(drop[:, None], torch.full_like(cond.prompt_ids, PAD), cond.prompt_ids)
    return x0, eps, sigma, cond


def loss_fn(model, cfg: TrainConfig, x0, eps, sigma, cond, anchor=None):
    """The weighted flow-matching loss; with an `anchor` net, a K = 1 batch regresses onto its velocity instead."""
    s = sigma[:, None, None, None, None]
    xs = (1 - s) * x0 + s * eps
    v = model(xs, sigma, cond)
    if anchor is not None and cond.prefix is None:
        with torch.no_grad():
            target = anchor(xs, sigma, cond)
    else:
        target = eps - x0
    changed = (x0 - cond.first_frame[:, :, None]).abs().amax(1, keepdim=True) > 1e-3
    w = 1 + cfg.path_weight * changed.float()
    return (w * (v - target) ** 2).mean()


def eval_size_for(task_name: str, size: int) -> int:
    """`size` where the task takes it (range and its own rules, e.g. even only), else the task's default size."""
    task = generator_task(task_name)
    try:
        task.sample(0, size)
        return size
    except ValueError:
        return task.default_size


class Trainer:
    """One training run. With world > 1 (torchrun), every process trains on its own batch and the
    gradients are averaged with an all-reduce; process 0 alone saves, evaluates and logs."""

    def __init__(self, cfg: TrainConfig, out: Path, device="cpu", rank: int = 0, world: int = 1):
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.rank, self.world = rank, world
        torch.manual_seed(cfg.seed)
        self.model = VideoDiT(get_arch(cfg.arch)).to(device)
        self.ema = VideoDiT(get_arch(cfg.arch)).to(device)
        if cfg.adapter is not None:  # the frozen init, then the LoRA layers on it (their keys in every checkpoint)
            self.model.load_state_dict(self._checked_state(cfg.init, "init"))
            add_adapter(self.model, cfg.adapter, trainable=True)
            add_adapter(self.ema, cfg.adapter)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.codec = BorderCodec()
        self.step = 0
        self.anchor = None
        if cfg.anchor:
            self.anchor = VideoDiT(get_arch(cfg.arch)).to(device).requires_grad_(False).eval()
            self.anchor.load_state_dict(self._checked_state(cfg.anchor, "anchor"))
        ckpt = self.out / "checkpoint.safetensors"
        if ckpt.exists():
            self.step = load_checkpoint(ckpt, self.model, self.ema, self.opt, expect_config=cfg.model_dump(),
                                        defaults=TrainConfig.model_construct().model_dump())
        elif cfg.init and cfg.adapter is None:
            self._init_from(cfg.init)

    def _checked_state(self, spec: str, key: str) -> dict:
        """The state dict of weights `spec` (the config's `key`: a shipped name or a .safetensors file), refused where
        missing or of another architecture than this run's."""
        from ..models.load import SHIPPED, checked_shipped_path
        from ..models.weights import load_weights

        try:
            state, arch, _ = load_weights(checked_shipped_path(spec) if spec in SHIPPED else spec)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"the training config's `{key}` {spec!r}: {e}; give a shipped model "
                                    f"({', '.join(SHIPPED)}) or a .safetensors weights file") from None
        if DiTConfig.from_dict(arch) != get_arch(self.cfg.arch):
            raise ValueError(f"{key} weights {spec!r} have another architecture than {self.cfg.arch!r}: {arch}")
        return state

    def _init_from(self, spec: str) -> None:
        state = self._checked_state(spec, "init")
        self.model.load_state_dict(state)
        self.ema.load_state_dict(state)

    def save(self) -> None:
        if self.rank != 0:
            return
        save_checkpoint(self.out / "checkpoint.safetensors", self.model, self.ema, self.opt, self.step,
                        self.cfg.model_dump(), get_arch(self.cfg.arch).to_dict())

    def train_step(self) -> float:
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = lr_at(cfg, self.step)
        x0, eps, sigma, cond = draw_batch(cfg, self.step, self.codec, self.device, self.rank, self.world)
        loss = loss_fn(self.model, cfg, x0, eps, sigma, cond, self.anchor)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)  # frozen weights have no grad
        self.opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - d)
        self.step += 1
        return loss.item()

    def _average_gradients(self) -> None:
        import torch.distributed as dist

        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for g in grads:
            g.copy_(flat[i: i + g.numel()].view_as(g))
            i += g.numel()

    def log(self, record: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def eval_prefixes(self) -> list[int]:
        """The K > 1 leading frames (of the ground truth) the periodic evaluation also gives the model, where the
        run teaches it to continue a prefix: the smallest and the largest K > 1 it trains on that leave frames to
        generate (the largest leaves only the last frame: where the shipped adapter lost symmetry, K = T - 1)."""
        ks = sorted(k for k, w in self.cfg.prefix.items() if k > 1 and w > 0 and k < self.cfg.eval_frames)
        return sorted({ks[0], ks[-1]}) if ks else []

    def evaluate(self) -> dict:
        """Solve rates of the EMA weights on the validation part, given the first frame (`eval_solve_rate_<task>`;
        left out for an adapter, which is its init there bit for bit) and, for a frame-prefix run, the first K frames
        (`eval_solve_rate_k<K>_<task>`, at each of `eval_prefixes`; `eval_prefix`: the smallest)."""
        cfg = self.cfg
        m = EmbeddedModel(self.ema, self.codec, info={"train_config": cfg.model_dump(mode="json")})  # what it learns
        sampling = resolve(m, steps=cfg.eval_steps, shift=cfg.eval_shift)
        ks = self.eval_prefixes()
        rec = {"eval_size": cfg.eval_size, "eval_count": cfg.eval_count, "eval_sizes": {},
               **({"eval_prefix": ks[0], "eval_prefixes": ks} if ks else {})}
        for i, task in enumerate(cfg.tasks):
            n = rec["eval_sizes"][task] = cfg.eval_sizes.get(task) or eval_size_for(task, cfg.eval_size)
            if cfg.adapter is None:
                res = solve_rate(m, task, seeds=range(cfg.eval_count), n=n, frames=cfg.eval_frames,
                                 sampling=sampling, progress=False, part="val")
                # the first task's also as eval_solve_rate: the one key of logs written before several tasks
                rec.update({**({"eval_solve_rate": res["solve_rate"]} if i == 0 else {}),
                            f"eval_solve_rate_{task}": res["solve_rate"]})
            drawn = draw_many(generator_task(task), range(cfg.eval_count), "val", n, cfg.eval_frames) if ks else []
            for k in ks:
                samples = [continue_from_frames(s, s.ground_truth, k) for s in drawn]
                _, summary = evaluate_samples(m, samples, sampling, progress=False)
                rec[f"eval_solve_rate_k{k}_{task}"] = summary["solve_rate"]
        return rec

    def run(self, until: int | None = None, progress: bool = True) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        until = cfg.steps if until is None else min(until, cfg.steps)
        bar = tqdm(total=until, initial=self.step, disable=not progress or self.rank != 0, desc="train")
        t0, losses = time.time(), []
        while self.step < until:
            interrupt.check()  # a Ctrl-C whose exception was lost still stops here
            losses.append(self.train_step())
            bar.update(1)
            if (self.step % cfg.ckpt_every == 0 or self.step == until) and self.rank == 0:
                self.save()
                rec = {"step": self.step, "loss": float(np.mean(losses)), "lr": lr_at(cfg, self.step - 1),
                       "sec_per_step": (time.time() - t0) / len(losses), "time": time.time()}
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    rec.update(self.evaluate())
                    bar.write(f"step {self.step}: held-out solve rates " + ", ".join(
                        f"{k}={v:.3f}" for k, v in rec.items() if k.startswith("eval_solve_rate_")))
                self.log(rec)
                t0, losses = time.time(), []
        bar.close()




