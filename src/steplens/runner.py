"""Running a model over sample folders, and scoring outputs against them (VBVR-Bench layout)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from .evaluate import wilson
from .io import atomic_write_json, read_mp4, read_png, write_mp4, write_png
from .tasks import get_task
from .tasks.grid import native_labels
from .tasks.sample import read_sample, sample_dirs
from .video import to_uint8, upscale


def output_paths(out: Path, task: str, idx: int) -> tuple[Path, Path]:
    return Path(out) / task / f"{idx:05d}.mp4", Path(out) / task / f"{idx:05d}.png"


SELECT = ("first", "consensus", "all")


def member_path(out: Path, task: str, idx: int, k: int) -> Path:
    return Path(out) / task / f"{idx:05d}.seed{k}.mp4"


def _generate(model, samples, seeds, steps, shift, guidance, ensemble, split) -> torch.Tensor:
    """Latents (B, N, ...) of every member (N = 1 without an ensemble)."""
    if ensemble is None:
        return model.generate(samples, seeds, steps=steps, shift=shift, guidance=guidance)[:, None]
    from .ensemble import generate_ensemble, generate_ensemble_distributed

    gen = generate_ensemble_distributed if split else generate_ensemble
    return gen(model, samples, seeds, ensemble, steps, shift, guidance)


def _pick(model, lat: torch.Tensor, select: str) -> tuple:
    """Pixel videos (B, C, T, H, W) of the chosen member, and every member's (B, N, ...) for select="all"."""
    from .ensemble import consensus_index

    if select == "first":  # decode only what is written (a Wan VAE decode costs as much as several steps)
        return model.decode(lat[:, 0]), None
    px = model.decode(lat.flatten(0, 1))
    px = px.reshape(*lat.shape[:2], *px.shape[1:])
    k = consensus_index(px[:, :, :, -1].float().cpu().numpy()) if select == "consensus" else np.zeros(len(px), int)
    return px[np.arange(len(px)), k], (px if select == "all" else None)


def run_folder(model, data: Path, out: Path, steps: int = 20, shift: float = 3.0, seed: int = 0,
               batch: int = 16, guidance: float = 1.0, frames: int | None = None, progress: bool = True,
               ensemble=None, select: str = "first", split_seeds: bool = False) -> list[dict]:
    """Generate the video of every sample folder under `data`; skips outputs already written.

    `ensemble` (an EnsembleConfig) samples N seeds per sample with the latent ensemble and writes the
    member picked by `select`: "first" (the sample's own seed), "consensus" (the member whose last frame is
    closest to the others'), or "all" (the first, plus every member as <idx>.seed<k>.mp4).
    Under torchrun / accelerate launch, each process takes every world-th sample folder; with
    `split_seeds` instead, every process runs all samples with its share of the N seeds (the ensemble's
    means by all-reduce; the process group must be initialised) and rank 0 writes."""
    from tqdm import tqdm

    from .dist import rank_world, shard

    if select not in SELECT:
        raise ValueError(f"unknown selection rule {select!r}; available: {', '.join(SELECT)}")
    if ensemble is None and (select != "first" or split_seeds):
        raise ValueError(f"select={select!r} and split_seeds={split_seeds} need an ensemble (N seeds per sample)")
    rank, world = rank_world()
    split = split_seeds and world > 1
    dirs = sample_dirs(data) if split else shard(sample_dirs(data), rank, world)
    groups: dict[tuple, list] = defaultdict(list)
    for d in dirs:
        s = read_sample(d, frames)
        if s.idx is None:
            raise ValueError(f"sample folder {d} is not named by an index (00000, 00001, ...)")
        scale = native_labels(read_png(d / "first_frame.png"))[1]
        if not output_paths(out, s.task, s.idx)[1].exists():
            groups[(s.task, s.first_frame.shape, s.frames)].append((s, scale))
    if split:  # every process must see the same list before rank 0 writes anything
        import torch.distributed as dist

        dist.barrier()
    writer = not split or rank == 0
    done = []
    todo = [g for g in groups.values()]
    bar = tqdm(total=sum(len(g) for g in todo), disable=not progress, position=rank,
               desc="run" if world == 1 else f"run [{rank}/{world}]")
    for group in todo:
        for lo in range(0, len(group), batch):
            chunk = group[lo: lo + batch]
            samples = [s for s, _ in chunk]
            seeds = [seed + s.idx for s in samples]
            lat = _generate(model, samples, seeds, steps, shift, guidance, ensemble, split)
            if not writer:  # split seeds: rank 0 decodes and writes
                bar.update(len(chunk))
                continue
            vids, members = _pick(model, lat, select)
            for i, ((s, scale), v) in enumerate(zip(chunk, vids)):
                for k, m in enumerate(members[i] if members is not None else []):
                    write_mp4(member_path(out, s.task, s.idx, k), upscale(to_uint8(m), scale))
                video = upscale(to_uint8(v), scale)
                mp4, png = output_paths(out, s.task, s.idx)
                write_mp4(mp4, video)
                write_png(png, video[-1])  # the PNG last: its presence marks the sample done
                done.append({"task": s.task, "idx": s.idx, "video": str(mp4), "final_frame": str(png)})
            bar.update(len(chunk))
    bar.close()
    return done


def score_folder(data: Path, outputs: Path) -> dict:
    """Score OUT/<task>/<idx>.png (else the last frame of the .mp4) of every sample folder under `data`."""
    rows = []
    for d in sample_dirs(data):
        task_name, idx = d.parent.name, int(d.name)
        task = get_task(task_name)
        mp4, png = output_paths(outputs, task_name, idx)
        if png.exists():
            frame = read_png(png)
        elif mp4.exists():
            frame = read_mp4(mp4)[-1]
        else:
            rows.append({"task": task_name, "idx": idx, "missing": True, "success": False, "score": 0.0})
            continue
        prompt = (d / "prompt.txt").read_text() if (d / "prompt.txt").exists() else None
        sc = task.score(frame, read_png(d / "first_frame.png"), prompt)
        rows.append({"task": task_name, "idx": idx, "missing": False, "success": sc.success,
                     "shortest": sc.shortest, "score": sc.score, "details": sc.details})
    k = sum(r["success"] for r in rows)
    lo, hi = wilson(k, len(rows))
    return {"count": len(rows), "solved": k, "solve_rate": k / len(rows), "ci95": [lo, hi],
            "mean_score": float(np.mean([r["score"] for r in rows])),
            "missing": sum(r["missing"] for r in rows), "rows": rows}


def write_scores(result: dict, out: Path) -> None:
    atomic_write_json(Path(out) / "scores.json", result)


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
