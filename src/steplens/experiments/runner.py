"""Running a model over samples into a folder that mirrors their layout, and scoring outputs against them.

Sample `<split>/<task>/<idx>/` (or `<task>/<idx>/`) gets OUT/<split>/<task>/<idx>.mp4 (the video) and .png
(its last frame, lossless; written last, it marks the sample done). OUT/run_config.json records what made the
videos: a rerun with another model or setting is refused instead of mixing outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io import interrupt
from ..io.files import atomic_write_json, read_mp4, read_png, write_mp4, write_png
from ..io.video import to_uint8, upscale
from ..tasks import Sample, Scorers
from .grid import batches
from .stats import summarize

SELECT = ("first", "consensus", "all")
RUN_CONFIG = "run_config.json"


def output_paths(out: Path, s: Sample) -> tuple[Path, Path]:
    """OUT/<sample's place>.mp4 and .png."""
    base = Path(out) / s.name
    return base.with_name(base.name + ".mp4"), base.with_name(base.name + ".png")


def member_path(out: Path, s: Sample, k: int) -> Path:
    base = Path(out) / s.name
    return base.with_name(f"{base.name}.seed{k}.mp4")


def _generate(model, samples, seeds, steps, shift, guidance, ensemble, split) -> torch.Tensor:
    """Latents (B, N, ...) of every member (N = 1 without an ensemble)."""
    if ensemble is None:
        return model.generate(samples, seeds, steps=steps, shift=shift, guidance=guidance)[:, None]
    from ..methods.ensemble import generate_ensemble, generate_ensemble_distributed

    gen = generate_ensemble_distributed if split else generate_ensemble
    return gen(model, samples, seeds, ensemble, steps, shift, guidance)


def _pick(model, samples, lat: torch.Tensor, select: str) -> tuple:
    """Pixel videos (B, C, T, H, W) of the chosen member, and every member's (B, N, ...) for select="all"."""
    from ..io.video import to_rgb
    from ..methods.ensemble import consensus_index

    if select == "first":  # decode only what is written (a Wan VAE decode costs as much as several steps)
        return model.decode(lat[:, 0]), None
    px = model.decode(lat.flatten(0, 1))
    px = px.reshape(*lat.shape[:2], *px.shape[1:])
    if select == "consensus":  # on the decoded RGB last frames (no palette): closest to the other members
        last = to_rgb(px[:, :, :, -1].flatten(0, 1)).reshape(*px.shape[:2], *px.shape[-2:], 3)
        k = consensus_index(last)
    else:
        k = np.zeros(len(px), int)
    return px[np.arange(len(px)), k], (px if select == "all" else None)


def check_out_config(out: Path, config: dict) -> None:
    """Refuse an output folder made with another configuration; record ours in a new one."""
    path = Path(out) / RUN_CONFIG
    config = json.loads(json.dumps(config, default=str))
    if path.exists():
        saved = json.loads(path.read_text())
        diff = {k: (saved.get(k), config.get(k)) for k in dict.fromkeys([*saved, *config]) if saved.get(k) != config.get(k)}
        if diff:
            raise ValueError(f"{out} holds outputs made with another configuration; differing (saved, given): {diff}. "
                             f"Use another --out, or delete it")
    elif Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    else:
        atomic_write_json(path, config)


def run_samples(model, samples: list[Sample], out: Path, steps: int | None = None, shift: float | None = None,
                batch: int = 16, guidance: float | None = None, progress: bool = True, ensemble=None,
                select: str = "first", split_seeds: bool = False, config: dict | None = None) -> list[dict]:
    """Generate the video of every sample into `out` (mirroring the samples' layout); skips outputs already written.

    steps, shift, guidance: None is the model's own (its sampling_defaults). Noise seed: sample.seed (a folder
    sample: --seed + its index). `ensemble` (an EnsembleConfig) samples N seeds
    per sample with the latent ensemble and writes the member picked by `select`: "first" (the sample's own seed),
    "consensus" (the member whose last frame is closest to the others'), or "all" (the first, plus every member as
    <idx>.seed<k>.mp4). Under torchrun / accelerate launch, each process takes every world-th sample; with
    `split_seeds` instead, every process runs all samples with its share of the N seeds (the ensemble's means by
    all-reduce; the process group must be initialised) and rank 0 writes."""
    from tqdm import tqdm

    from .dist import rank_world, shard

    if select not in SELECT:
        raise ValueError(f"unknown selection rule {select!r}; available: {', '.join(SELECT)}")
    if ensemble is None and (select != "first" or split_seeds):
        raise ValueError(f"select={select!r} and split_seeds={split_seeds} need an ensemble (N seeds per sample)")
    rank, world = rank_world()
    split = split_seeds and world > 1
    if rank == 0 and config is not None:
        check_out_config(out, config)
    mine = samples if split else shard(samples, rank, world)
    todo = [s for s in mine if not output_paths(out, s)[1].exists()]
    if split:  # every process must see the same list before rank 0 writes anything
        import torch.distributed as dist

        dist.barrier()
    writer = not split or rank == 0
    done = []
    bar = tqdm(total=len(todo), disable=not progress, position=rank,
               desc="run" if world == 1 else f"run [{rank}/{world}]")
    for chunk in batches(todo, batch):
        interrupt.check()  # a Ctrl-C whose exception was lost still stops here
        lat = _generate(model, chunk, [s.seed for s in chunk], steps, shift, guidance, ensemble, split)
        if not writer:  # split seeds: rank 0 decodes and writes
            bar.update(len(chunk))
            continue
        vids, members = _pick(model, chunk, lat, select)
        for i, (s, v) in enumerate(zip(chunk, vids)):
            for k, m in enumerate(members[i] if members is not None else []):
                write_mp4(member_path(out, s, k), upscale(to_uint8(m), s.scale))
            video = upscale(to_uint8(v), s.scale)
            mp4, png = output_paths(out, s)
            write_mp4(mp4, video)
            write_png(png, video[-1])  # the PNG last: its presence marks the sample done
            done.append({"sample": s.name, "task": s.task, "video": str(mp4), "final_frame": str(png)})
        bar.update(len(chunk))
    bar.close()
    return done


def _output_video(mp4: Path, png: Path) -> np.ndarray:
    """The output video (its last frame replaced by the lossless PNG when both exist), or the PNG alone."""
    if mp4.exists():
        video = read_mp4(mp4)
        if png.exists():
            last = read_png(png)
            if last.shape == video.shape[1:]:
                video[-1] = last
        return video
    return read_png(png)[None]


def score_samples(samples: list[Sample], outputs: Path, scorers: Scorers | None = None,
                  progress: bool = True) -> dict:
    """Score OUT/<sample's place>.mp4 (.png) of every sample. A missing output counts as a failure with score 0
    and is counted; a folder with none of the outputs is refused."""
    from tqdm import tqdm

    scorers = scorers or Scorers()
    outputs = Path(outputs)
    if not outputs.is_dir():
        raise FileNotFoundError(f"outputs folder not found: {outputs}" if not outputs.exists()
                                else f"--outputs {outputs} is a file, not a folder of outputs")
    scorers.check(samples)
    rows = []
    for s in tqdm(samples, disable=not progress, desc="score"):
        mp4, png = output_paths(outputs, s)
        if not mp4.exists() and not png.exists():
            rows.append({"sample": s.name, "task": s.task, "missing": True, "success": False, "score": 0.0})
            continue
        scorer = scorers.for_sample(s)
        if hasattr(scorer, "score_file") and mp4.exists():
            sc = scorer.score_file(mp4, s)
        else:
            sc = scorer.score(_output_video(mp4, png), s)
        rows.append({"sample": s.name, "task": s.task, "missing": False, "success": bool(sc.success),
                     "score": float(sc.score), "details": sc.details})
    missing = sum(r["missing"] for r in rows)
    if missing == len(rows):
        ex = output_paths(outputs, samples[0])[0]
        raise FileNotFoundError(f"none of the {len(rows)} outputs is in {outputs} (e.g. {ex} is missing): a wrong "
                                f"--outputs folder, or `steplens run` not run yet")
    per_task = {t: summarize([r for r in rows if r["task"] == t]) for t in dict.fromkeys(r["task"] for r in rows)}
    return {**summarize(rows), "missing": missing, "scorer": scorers.describe(), "per_task": per_task, "rows": rows}


def write_scores(result: dict, out: Path) -> Path:
    """Write the scores to `out`: a .json file path, or a folder (then OUT/scores.json)."""
    out = Path(out)
    path = out if out.suffix == ".json" else out / "scores.json"
    if path.exists() and path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a .json file or a folder to hold scores.json")
    atomic_write_json(path, result)
    return path
