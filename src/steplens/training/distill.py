"""Few-step students by trajectory distillation at matched sigmas: resumable, checkpointed to safetensors.

The teacher samples with `teacher_steps` Euler steps on Wan's shifted grid σ_0 = 1 > σ_1 > … > σ_N = 0
(N = teacher_steps, `flow_sigmas(N, shift)`). The student takes `student_steps` = N / k steps on the same grid
taken at every k-th index (σ_0, σ_k, σ_2k, …, σ_N), so each of its steps starts and ends exactly at a teacher σ
(20 → 4: k = 5, σ = 1, 0.9, 0.75, 0.5, 0 at shift 3; and that grid *is* `flow_sigmas(4, shift)`, so a plain
`steps=4, shift=3` sampler reproduces it bit for bit).

One training example (per item of the batch):

1. conditioning and ground truth from the task generators (the training part of each task's inputs, split by content: `train.draw_batch`; evaluated on the validation part), noise ε;
2. a segment j in 0..S-1 (S = student_steps), drawn per item (`segment_weights`);
3. the segment's start x at σ_{kj}: by default the *student's own* Euler steps from ε at σ = 1 (no grad; j
   forward passes: cheap, and it trains the student on the states it will meet when sampling, which removes
   the exposure bias of learning only from teacher states); `start: "teacher"` runs the teacher's kj substeps
   instead;
4. the target x' at σ_{k(j+1)}: the teacher's k Euler substeps from x (no grad);
5. the loss: one student Euler step x + (σ_{k(j+1)} − σ_{kj})·v_student(x, σ_{kj}) should land on x', i.e.
   v_student regresses onto (x' − x) / (σ_{k(j+1)} − σ_{kj}), in velocity units (the trainer's scale), with the
   trainer's per-pixel weight 1 + path_weight on "answer" pixels: those where the ground truth or the teacher's
   last x̂0 of the segment differs from the first frame (on a task with several right answers the teacher may
   draw another one than the ground truth; both are weighted).

Every random draw of step t comes from generators seeded by (seed, t): a run stopped at any checkpoint and
resumed follows the same trajectory, bit for bit, as one never stopped (as `steplens.training.train`).

The exported student (`export_student`) is a `steplens-weights-1` file whose metadata `info` JSON holds
`info["sampling"] = {"steps": S, "shift": …, "guidance": 1.0, "scheduler": "euler", "sigmas": [S + 1 floats]}`:
its own sampling defaults, the σ list exactly (float32 values written as JSON floats).

    python -m steplens.training.distill --out DIR --config configs/distill/tiny-reasoner-4step.json --threads 1
    python -m steplens.training.distill --out DIR --config FILE --export student.safetensors   # export only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..models import BorderCodec, DiTCond, DiTConfig, VideoDiT, get_arch
from ..models.adapter import adapter_of, build_net
from ..models.weights import load_weights, save_weights
from ..models.wrap import EmbeddedModel
from ..sampling import flow_sigmas
from .checkpoint import load_checkpoint, save_checkpoint
from .train import TrainConfig, draw_batch, eval_size_for, lr_at

CHECKPOINT = "checkpoint.safetensors"
STUDENT = "student.safetensors"
DEFAULT_EVAL_TASKS = ("maze", "maze-loops", "tictactoe", "symmetry-open")

# the keys a DistillConfig shares with TrainConfig (validated by it, and used by train.draw_batch / lr_at)
_SHARED = ("arch", "tasks", "sizes", "task_sizes", "frames", "batch", "lr", "warmup", "decay_steps", "weight_decay",
           "grad_clip", "ema_decay", "steps", "seed", "path_weight", "eval_every", "eval_count", "eval_size",
           "eval_sizes", "eval_frames", "ckpt_every", "threads")


def _errors_text(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(top level)'}: {err['msg']}"
                     + (f" (got {err['input']!r})" if err.get("type") not in ("json_invalid",) else "")
                     for err in e.errors())


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, never silently ignored

    teacher: str = "tiny-reasoner"  # a shipped name or a .safetensors weights / checkpoint file
    init: str | None = None  # the student's start (None: the teacher's weights)
    arch: str = "tiny-maze"  # the student's architecture (must be the teacher's when the student starts from it)
    teacher_steps: int = 20
    student_steps: int = 4
    shift: float = 3.0
    start: Literal["student", "teacher"] = "student"  # whose Euler steps reach a segment's start
    segment_weights: list[float] | None = None  # how often each student step is trained (None: uniform)
    mask_threshold: float = 0.25  # |x̂0 - first frame| above this (of [-1, 1]) marks a teacher-drawn answer pixel
    # as steplens.training.train.TrainConfig (same meaning, same checks):
    tasks: dict[str, float] = Field(default_factory=lambda: {"maze": 1.0})
    sizes: dict[int, float] = Field(default_factory=lambda: {3: 0.1, 4: 0.2, 5: 0.35, 6: 0.25, 7: 0.1})
    task_sizes: dict[str, dict[int, float]] = Field(default_factory=dict)
    frames: dict[int, float] = Field(default_factory=lambda: {2: 0.15, 3: 0.2, 4: 0.5, 5: 0.15})
    batch: int = 32
    lr: float = 2e-4
    warmup: int = 100
    decay_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = False  # True: the trainer's EMA warm-up (decay (1+t)/(10+t) early on); False: ema_decay from
    # step 0, so the EMA starts at the init (the teacher) and moves slowly off it
    steps: int = 5000
    seed: int = 0
    path_weight: float = 3.0
    eval_every: int = 250  # 0: never
    eval_count: int = 50
    eval_tasks: list[str] | None = None  # None: those of maze, maze-loops, tictactoe, symmetry-open in tasks
    eval_size: int = 5
    eval_sizes: dict[str, int] = Field(default_factory=dict)
    eval_frames: int = 4
    eval_teacher: bool = True  # at step 0, also evaluate the teacher at teacher_steps and at student_steps
    ckpt_every: int = 50
    threads: int | None = None

    @field_validator("teacher_steps", "student_steps")
    @classmethod
    def _steps(cls, v, info):
        if v < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {v}")
        return v

    @field_validator("shift")
    @classmethod
    def _shift(cls, v):
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"shift must be a finite number > 0, got {v}")
        return v

    @field_validator("mask_threshold")
    @classmethod
    def _mask_threshold(cls, v):
        if not math.isfinite(v) or not 0 < v <= 2:
            raise ValueError(f"mask_threshold must be in (0, 2] (a distance in [-1, 1] pixel units), got {v}")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.teacher_steps % self.student_steps:
            raise ValueError(f"student_steps ({self.student_steps}) must divide teacher_steps ({self.teacher_steps}) so "
                             f"that every student step starts and ends at a teacher sigma")
        w = self.segment_weights
        if w is not None:
            if len(w) != self.student_steps:
                raise ValueError(f"segment_weights needs one weight per student step ({self.student_steps}), got {len(w)}")
            if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
                raise ValueError(f"segment_weights needs finite non-negative weights with a positive sum, got {w}")
        try:
            self.train_view()
        except ValidationError as e:
            raise ValueError(_errors_text(e)) from None
        for name in self.eval_tasks or []:
            if name not in self.tasks:
                raise ValueError(f"eval_tasks names {name!r}, which is not in tasks ({', '.join(self.tasks)})")
        return self

    def train_view(self) -> TrainConfig:
        """The TrainConfig of the shared keys: it draws the batches (no prompt dropout: the student samples
        without CFG) and gives the learning-rate schedule."""
        return TrainConfig(**{k: getattr(self, k) for k in _SHARED}, p_uncond=0.0, eval_steps=self.student_steps,
                           eval_shift=self.shift)

    def eval_task_names(self) -> list[str]:
        if self.eval_tasks is not None:
            return list(self.eval_tasks)
        return [t for t in DEFAULT_EVAL_TASKS if t in self.tasks] or list(self.tasks)[:1]

    def teacher_sigmas(self) -> torch.Tensor:
        return flow_sigmas(self.teacher_steps, self.shift)

    def student_sigmas(self) -> torch.Tensor:
        k = self.teacher_steps // self.student_steps
        return self.teacher_sigmas()[::k].clone()

    def sampling(self) -> dict:
        """The student's own sampling defaults, as stored in the exported weights' info["sampling"]."""
        sig = self.student_sigmas()
        return {"steps": self.student_steps, "shift": self.shift, "guidance": 1.0, "scheduler": "euler",
                "sigmas": [round(float(s), 6) for s in sig],  # float32 σ: 0.9, not 0.8999999761
                # true when the σ list is flow_sigmas(steps, shift): a sampler given only steps and shift matches it
                "sigmas_are_flow_sigmas": bool(torch.equal(sig, flow_sigmas(self.student_steps, self.shift)))}

    @classmethod
    def from_file(cls, path: Path) -> "DistillConfig":
        """Read a JSON config; every error names the file and the field."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except ValidationError as e:
            raise ValueError(f"distillation config {path}: {_errors_text(e)}") from None


def _resolve(spec: str) -> Path:
    from ..models.load import SHIPPED, checked_shipped_path

    return checked_shipped_path(spec) if spec in SHIPPED else Path(spec)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _sub(cond: DiTCond, idx: torch.Tensor) -> DiTCond:
    return DiTCond(cond.first_frame[idx], cond.prompt_ids[idx])


def _bcast(t: torch.Tensor) -> torch.Tensor:
    return t[:, None, None, None, None]


class Distiller:
    """One distillation run in folder `out`: OUT/checkpoint.safetensors (student, its EMA, the optimizer: the
    trainer's checkpoint format, the DistillConfig as its config), OUT/log.jsonl, OUT/student.safetensors."""

    def __init__(self, cfg: DistillConfig, out: Path, device="cpu"):
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.tcfg = cfg.train_view()
        arch = get_arch(cfg.arch)
        teacher_path = _resolve(cfg.teacher)
        tstate, tarch, tinfo = load_weights(teacher_path)
        self.teacher_info = {"spec": cfg.teacher, "file": teacher_path.name, "sha256": _file_sha256(teacher_path),
                             "step": tinfo.get("step")}
        if adapter_of(tinfo):  # its K = 1 function is its base's, bit for bit: distil that
            raise ValueError(f"teacher {cfg.teacher!r} is a frame-prefix adapter on other weights "
                             f"({tinfo['train_config'].get('init')!r}); distil from those weights")
        self.teacher = build_net(tarch, tinfo).to(device)
        self.teacher.load_state_dict(tstate)
        self.teacher.eval().requires_grad_(False)
        torch.manual_seed(cfg.seed)
        self.model = VideoDiT(arch).to(device)
        self.ema = VideoDiT(arch).to(device)
        self.ema.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.codec = BorderCodec()
        self.step = 0
        self.tsig = cfg.teacher_sigmas().to(device)
        self.k = cfg.teacher_steps // cfg.student_steps
        ckpt = self.out / CHECKPOINT
        if ckpt.exists():
            self.step = load_checkpoint(ckpt, self.model, self.ema, self.opt, expect_config=cfg.model_dump())
        else:
            if cfg.init is None:
                state, sarch = tstate, tarch
                what = f"teacher {cfg.teacher!r}"
            else:
                state, sarch, _ = load_weights(_resolve(cfg.init))
                what = f"init weights {cfg.init!r}"
            if DiTConfig.from_dict(sarch) != arch:
                raise ValueError(f"{what} have another architecture than arch {cfg.arch!r}: {sarch}")
            self.model.load_state_dict(state)
            self.ema.load_state_dict(state)

    # -- one step ---------------------------------------------------------------------------------------------
    def draw(self, step: int):
        """(x0, eps, cond, segments) of step `step`: the trainer's batch, and a segment per item."""
        cfg = self.cfg
        x0, eps, _, cond = draw_batch(self.tcfg, step, self.codec, self.device)
        rng = np.random.default_rng([cfg.seed, step, 1])
        w = np.array(cfg.segment_weights or [1.0] * cfg.student_steps, dtype=np.float64)
        seg = torch.as_tensor(rng.choice(cfg.student_steps, size=cfg.batch, p=w / w.sum()), device=self.device)
        return x0, eps, cond, seg

    @torch.no_grad()
    def segment_start(self, eps: torch.Tensor, cond: DiTCond, seg: torch.Tensor) -> torch.Tensor:
        """x at σ_{k·seg} per item, reached from eps at σ = 1 by the student's (or the teacher's) Euler steps."""
        x = eps.clone()
        net, stride = (self.model, self.k) if self.cfg.start == "student" else (self.teacher, 1)
        targets = seg * self.k  # teacher-grid index of each item's start
        n = 0
        while True:
            idx = (targets > n).nonzero().flatten()
            if len(idx) == 0:
                return x
            s, s_next = self.tsig[n], self.tsig[n + stride]
            v = net(x[idx], s, _sub(cond, idx))
            x[idx] = x[idx] + (s_next - s) * v
            n += stride

    @torch.no_grad()
    def teacher_segment(self, x: torch.Tensor, cond: DiTCond, seg: torch.Tensor):
        """(x at σ_{k(seg+1)}, the teacher's x̂0 at its last substep): k teacher Euler substeps per item."""
        x0_hat = None
        for m in range(self.k):
            n = seg * self.k + m
            s, s_next = self.tsig[n], self.tsig[n + 1]
            v = self.teacher(x, s, cond)
            if m == self.k - 1:
                x0_hat = x - _bcast(s) * v
            x = x + _bcast(s_next - s) * v
        return x, x0_hat

    def loss_terms(self, step: int):
        """(per-item loss (B,), segments (B,)) of step `step`; the graph reaches the student's parameters."""
        cfg = self.cfg
        x0, eps, cond, seg = self.draw(step)
        x = self.segment_start(eps, cond, seg)
        x_next, x0_hat = self.teacher_segment(x, cond, seg)
        s, s_next = self.tsig[seg * self.k], self.tsig[(seg + 1) * self.k]
        target = (x_next - x) / _bcast(s_next - s)
        v = self.model(x, s, cond)
        first = cond.first_frame[:, :, None]
        answer = ((x0 - first).abs().amax(1, keepdim=True) > 1e-3) | \
                 ((x0_hat - first).abs().amax(1, keepdim=True) > cfg.mask_threshold)
        w = 1 + cfg.path_weight * answer.float()
        return (w * (v - target) ** 2).flatten(1).mean(1), seg

    def train_step(self) -> tuple[float, list[float | None]]:
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.tcfg, self.step)
        per_item, seg = self.loss_terms(self.step)
        loss = per_item.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + self.step) / (10 + self.step)) if cfg.ema_warmup else cfg.ema_decay
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - d)
        self.step += 1
        per_item = per_item.detach()
        by_seg = [per_item[seg == j].mean().item() if (seg == j).any() else None for j in range(cfg.student_steps)]
        return loss.item(), by_seg

    # -- saving, logging, evaluating ---------------------------------------------------------------------------
    def save(self) -> None:
        save_checkpoint(self.out / CHECKPOINT, self.model, self.ema, self.opt, self.step, self.cfg.model_dump(),
                        get_arch(self.cfg.arch).to_dict())

    def export_info(self, command: str = "") -> dict:
        return {"step": self.step, "train_config": self.cfg.model_dump(mode="json"), "distilled_from": self.teacher_info,
                "method": "trajectory distillation at matched sigmas (steplens.training.distill)",
                "sampling": self.cfg.sampling(), "command": command, "argv": list(sys.argv)}

    def export_student(self, path: Path, command: str = "", dtype=torch.float16) -> None:
        """The student's EMA weights (float16 by default) with its own sampling defaults in info["sampling"]."""
        save_weights(path, self.ema, get_arch(self.cfg.arch).to_dict(), self.export_info(command), dtype=dtype)

    def log(self, record: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def logged(self) -> list[dict]:
        path = self.out / "log.jsonl"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                pass
        return rows

    def _solve_rates(self, net, steps: int, prefix: str) -> dict:
        from ..experiments.evaluate import solve_rate
        from ..presets import resolve

        cfg, rec = self.cfg, {}
        m = EmbeddedModel(net, self.codec, device=self.device)
        for task in cfg.eval_task_names():
            n = cfg.eval_sizes.get(task) or eval_size_for(task, cfg.eval_size)
            res = solve_rate(m, task, seeds=range(cfg.eval_count), n=n, frames=cfg.eval_frames,
                             sampling=resolve(m, steps=steps, shift=cfg.shift), part="val", progress=False)
            rec[f"{prefix}_{task}"] = res["solve_rate"]
        net.train()  # EmbeddedModel put it in eval mode (no dropout here: only the flag)
        return rec

    def evaluate(self) -> dict:
        """The student's (EMA) held-out solve rates at its own steps and sigmas (seeds 0..eval_count-1)."""
        cfg = self.cfg
        assert torch.equal(cfg.student_sigmas(), flow_sigmas(cfg.student_steps, cfg.shift))
        return {"eval_steps": cfg.student_steps, "eval_count": cfg.eval_count,
                **self._solve_rates(self.ema, cfg.student_steps, "eval_solve_rate")}

    def evaluate_teacher(self) -> dict:
        cfg = self.cfg
        self.teacher.eval()
        rec = {**self._solve_rates(self.teacher, cfg.teacher_steps, f"teacher{cfg.teacher_steps}_solve_rate"),
               **self._solve_rates(self.teacher, cfg.student_steps, f"teacher{cfg.student_steps}_solve_rate")}
        self.teacher.eval()
        return rec

    def run(self, until: int | None = None, progress: bool = True, export: bool = True) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        until = cfg.steps if until is None else min(until, cfg.steps)
        done = {r["step"] for r in self.logged() if "eval_count" in r}
        if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step not in done:
            # step 0 (the student is still the teacher), or a run killed during its evaluation
            rec = {"step": self.step, "time": time.time(), **self.evaluate()}
            if self.step == 0 and cfg.eval_teacher:
                rec.update(self.evaluate_teacher())
            self.log(rec)
        bar = tqdm(total=until, initial=self.step, disable=not progress, desc="distill")
        t0, losses, segs = time.time(), [], []
        while self.step < until:
            loss, by_seg = self.train_step()
            losses.append(loss)
            segs.append(by_seg)
            bar.update(1)
            if self.step % cfg.ckpt_every == 0 or self.step == until:
                self.save()
                seg_means = [float(np.mean(v)) if (v := [s[j] for s in segs if s[j] is not None]) else None
                             for j in range(cfg.student_steps)]
                rec = {"step": self.step, "loss": float(np.mean(losses)), "loss_by_segment": seg_means,
                       "lr": lr_at(self.tcfg, self.step - 1), "sec_per_step": (time.time() - t0) / len(losses),
                       "time": time.time()}
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    rec.update(self.evaluate())
                    if export:
                        self.export_student(self.out / STUDENT)
                    bar.write(f"step {self.step}: held-out solve rates at {cfg.student_steps} steps " + ", ".join(
                        f"{k[len('eval_solve_rate_'):]}={v:.3f}" for k, v in rec.items()
                        if k.startswith("eval_solve_rate_")))
                self.log(rec)
                t0, losses, segs = time.time(), [], []
        bar.close()
        if export and self.step == cfg.steps:
            self.export_student(self.out / STUDENT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m steplens.training.distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.safetensors, log.jsonl, config.json")
    p.add_argument("--config", type=Path, default=None, help="JSON DistillConfig")
    p.add_argument("--steps", type=int, default=None, help="train until this step (overrides the config)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--export", type=Path, default=None, help="write the student (float16) to this .safetensors "
                                                             "file from OUT's checkpoint, and stop")
    p.add_argument("--command", default="", help="with --export: the command that trained it, kept in the metadata")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        from ..io import checks
        from ..io.files import atomic_write_text

        checks.in_file(a.config, "--config")
        checks.threads(a.threads)
        if a.steps is not None and a.steps < 0:
            raise ValueError(f"--steps must be >= 0, got {a.steps}")
        cfg = DistillConfig.from_file(a.config) if a.config else DistillConfig()
        update = {k: v for k, v in (("steps", a.steps), ("threads", a.threads)) if v is not None}
        cfg = DistillConfig.model_validate({**cfg.model_dump(), **update})
        if a.export is not None:
            if a.export.suffix != ".safetensors":
                raise ValueError(f"--export {a.export}: give a .safetensors file")
            if not (a.out / CHECKPOINT).exists():
                raise FileNotFoundError(f"no checkpoint to export: {a.out / CHECKPOINT}")
        d = Distiller(cfg, a.out)  # a refused resume writes nothing
        if a.export is not None:
            d.export_student(a.export, a.command)
            print(f"wrote {a.export} ({a.export.stat().st_size / 1e6:.1f} MB, step {d.step}, "
                  f"sampling {cfg.sampling()})")
            return 0
        atomic_write_text(a.out / "config.json", cfg.model_dump_json(indent=2))
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"distilling {cfg.teacher} ({cfg.teacher_steps} steps) into a {cfg.student_steps}-step student, "
          f"from step {d.step} to {cfg.steps} -> {a.out}", flush=True)
    d.run(progress=not a.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
