"""Running a model over samples into a folder that mirrors their layout, and scoring outputs against them.

Sample `<split>/<task>/<idx>/` (or `<task>/<idx>/`) gets OUT/<split>/<task>/<idx>.mp4 (the video) and .png
(its last frame, lossless; written last, it marks the sample done). The video is the model's full decoded video
(`decode_video`: every video frame, pooled to the sample's native size, upscaled as its files are) at the sample's
own frame rate (its ground_truth.mp4's, else the model's `fps`); `video="latent-frames"` writes one frame per
latent frame (`decode`) at 4 fps instead. OUT/run_config.json records what made the videos (the model's identity:
weights hash, LoRAs, dtype; the sampling; the video kind): every process (each rank under torchrun) checks it under
a lock on OUT before it writes, and a rerun with another model or setting is refused instead of mixing outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io import interrupt
from ..io.files import (atomic_write_json, config_diff, folder_lock, read_config, read_mp4, read_png, video_fps,
                        write_mp4, write_png)
from ..io.video import to_uint8, upscale
from ..tasks import Sample, Scorers
from ..experiments.grid import batches
from ..experiments.stats import summarize
from ..experiments.outputs import member_path, output_paths, search_path

SELECT = ("first", "consensus", "all")
VIDEOS = ("full", "latent-frames")
LATENT_FPS = 4  # the one-frame-per-latent-frame video's rate (steplens's own samples are written at 4 fps)
RUN_CONFIG = "run_config.json"


def _generate(model, samples, seeds, sampling, ensemble, split, search=None, records=None) -> torch.Tensor:
    """Latents (B, N, ...) of every member (N = 1 without an ensemble; a search's chosen particle, its record per
    sample appended to `records`)."""
    if search is not None:
        from ..methods.search import TIE_RULE, search as run_search, search_record

        res = run_search(model, samples, seeds, search, sampling)
        if records is not None:
            records += [{"sample": x.name, "task": x.task, "method": search.method, "tie_rule": TIE_RULE,
                         "verified": bool(v.success), "verifier_score": float(v.score), **search_record(res, i, search)}
                        for i, (x, v) in enumerate(zip(samples, res.scores))]
        return res.latents[:, None]
    if ensemble is None:
        return model.generate(samples, seeds, sampling=sampling)[:, None]
    from ..methods.ensemble import generate_ensemble, generate_ensemble_distributed

    gen = generate_ensemble_distributed if split else generate_ensemble
    return gen(model, samples, seeds, ensemble, sampling)


def _pick(decode, lat: torch.Tensor, select: str) -> tuple:
    """Pixel videos (B, C, T, H, W) of the chosen member, and every member's (B, N, ...) for select="all"."""
    from ..io.video import to_rgb
    from ..methods.ensemble import consensus_index

    if select == "first":  # decode only what is written (a Wan VAE decode costs as much as several steps)
        return decode(lat[:, 0]), None
    px = decode(lat.flatten(0, 1))
    px = px.reshape(*lat.shape[:2], *px.shape[1:])
    if select == "consensus":  # on the decoded RGB last frames (no palette): closest to the other members
        last = to_rgb(px[:, :, :, -1].flatten(0, 1)).reshape(*px.shape[:2], *px.shape[-2:], 3)
        k = consensus_index(last)
    else:
        k = np.zeros(len(px), int)
    return px[np.arange(len(px)), k], (px if select == "all" else None)


def _decoder(model, samples: list[Sample], video: str):
    """latents -> pixels (B, 3, T, h, w) at the samples' native size: every decoded video frame (`decode_video`,
    averaged down to the native size where the call was upscaled, as `decode` does), or one per latent frame."""
    if video == "latent-frames":
        return model.decode

    def full(lat: torch.Tensor) -> torch.Tensor:
        px = model.decode_video(lat)
        native = tuple(samples[0].first_frame.shape[:2])
        if tuple(px.shape[-2:]) != native:
            px = torch.nn.functional.adaptive_avg_pool3d(px, (px.shape[2], *native))
        return px
    return full


def sample_fps(model, s: Sample, video: str = "full") -> float:
    """The written video's frame rate: the sample's ground_truth.mp4's, else the model's (`fps`); 4 for one frame
    per latent frame."""
    if video == "latent-frames":
        return LATENT_FPS
    gt = Path(s.dir) / "ground_truth.mp4" if s.dir is not None else None
    if gt is not None and gt.is_file():
        fps = video_fps(gt)
        if fps:
            return fps
    return float(model.fps)


def output_scale(s: Sample) -> int:
    """The integer upscale of a sample's native frame its output video is written at: its files' own
    (`Sample.scale`), doubled where that leaves a side odd (H.264 needs even sides: a native 11x11 maze, x2)."""
    h, w = s.first_frame.shape[:2]
    k = max(int(s.scale or 1), 1)
    return k if (h * k) % 2 == 0 and (w * k) % 2 == 0 else 2 * k


def _odd_sided(samples: list[Sample]) -> dict[str, tuple[int, int, int]]:
    """{"WxH" of a sample's files: (their upscale, the one written, the written side)} where a side would be odd."""
    out = {}
    for s in samples:
        own, k = max(int(s.scale or 1), 1), output_scale(s)
        if k != own:
            h, w = s.first_frame.shape[:2]
            out.setdefault(f"{w * own}x{h * own}", (own, k, f"{w * k}x{h * k}"))
    return out


def even_upscales(samples: list[Sample]) -> dict[str, int]:
    """{"WxH" of a sample's files: the upscale of its native frame written instead} for the samples whose own size
    has odd sides (run_config.json's `even_upscale`); empty when every side is even."""
    return {size: k for size, (_, k, _) in _odd_sided(samples).items()}


def even_upscale_note(samples: list[Sample]) -> str:
    """One line naming the frame sizes written at an even upscale, and the size written ("" when none)."""
    return "; ".join(f"{size}-pixel frames have odd sides (H.264 needs even ones): their videos are written upscaled "
                     f"x{k // own} ({side})" for size, (own, k, side) in _odd_sided(samples).items())


INFO_FIELDS = ("even_upscale",)  # recorded in a configuration for the reader, not compared: they follow from the rest


def _compared(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in INFO_FIELDS}


def check_out_config(out: Path, config: dict, partial: bool = False, name: str = RUN_CONFIG,
                     saved: dict | None = None) -> None:
    """Refuse an output folder made with another configuration, naming each differing field; record ours in a new
    one. Under a lock on the folder: of the writers of one folder (the ranks of a torchrun, two commands started
    at once) each checks, and only the first records.

    partial=True: the check a command makes before its model loads, with what is known then (the model's identity
    from its files, the options given): only the fields of `config` are compared, nothing is locked or written.
    `name` the configuration file (OUT/name); `saved` its content where a caller reads it in its own schema."""
    out = Path(out)
    path = out / name
    config = json.loads(json.dumps(config, default=str))
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if partial:
        if saved is None and path.is_file():
            saved = read_config(path)
        if saved is not None:
            differ = {k: v for k, v in _compared(config).items() if saved.get(k) != v}
            if differ:
                raise ValueError(f"{out} holds outputs made with another configuration ({name}); differing fields: "
                                 f"{config_diff({k: saved.get(k) for k in differ}, differ)}. Use another --out (or "
                                 f"delete {out})")
        return
    with folder_lock(out):
        if path.exists():
            saved = read_config(path)
            if _compared(saved) != _compared(config):
                raise ValueError(f"{out} holds outputs made with another configuration ({name}); differing fields: "
                                 f"{config_diff(_compared(saved), _compared(config))}. Use another --out (or delete "
                                 f"{out})")
            info = {k: {**saved.get(k, {}), **config[k]} for k in INFO_FIELDS if config.get(k)}  # more samples: more
            if any(saved.get(k) != v for k, v in info.items()):
                atomic_write_json(path, {**saved, **info})
        else:
            atomic_write_json(path, config)


def run_samples(model, samples: list[Sample], out: Path, sampling=None, batch: int = 16, progress: bool = True,
                ensemble=None,
                select: str = "first", split_seeds: bool = False, config: dict | None = None,
                video: str = "full", search=None) -> list[dict]:
    """Generate the video of every sample into `out` (mirroring the samples' layout); skips outputs already written.

    `sampling` (steplens.presets.Sampling; None: the model's own). Noise seed: sample.seed (a folder
    sample: --seed + its index). `ensemble` (an EnsembleConfig) samples N seeds
    per sample with the latent ensemble and writes the member picked by `select`: "first" (the sample's own seed),
    "consensus" (the member whose last frame is closest to the others'), or "all" (the first, plus every member as
    <idx>.seed<k>.mp4). Under torchrun / accelerate launch, each process takes its share of the samples, balanced
    by cost (frames x pixels, `dist.assign`), into an `out` every process must see (`dist.check_shared`); with
    `split_seeds` instead, every process runs all samples with its share of the N seeds (the ensemble's means by
    all-reduce; the process group must be initialised) and rank 0 writes. `video`: "full" (every decoded frame at
    the sample's fps) or "latent-frames" (one frame per latent frame, 4 fps). `config` (run_config.json) is checked
    by every process before it writes. `search` (steplens.methods.search.SearchConfig): write each sample's particle
    the search chose (chain: its last generation's video)."""
    from tqdm import tqdm

    from ..experiments.dist import assign, check_shared, rank_world
    from ..experiments.grid import sample_cost

    if select not in SELECT:
        raise ValueError(f"unknown selection rule {select!r}; available: {', '.join(SELECT)}")
    if ensemble is None and (select != "first" or split_seeds):
        raise ValueError(f"select={select!r} and split_seeds={split_seeds} need an ensemble (N seeds per sample)")
    if video not in VIDEOS:
        raise ValueError(f"unknown video {video!r}; available: {', '.join(VIDEOS)}")
    if search is not None and ensemble is not None:
        raise ValueError("a search and an ensemble: give one of them (--search or --ensemble)")
    rank, world = rank_world()
    split = split_seeds and world > 1
    if world > 1 and not split:  # each process its share, balanced by cost, into one folder they all see
        check_shared(out)
        mine = [samples[i] for i in assign([sample_cost(s) for s in samples], world)[rank]]
    else:
        mine = samples
    fps = {s.name: sample_fps(model, s, video) for s in mine}  # an unreadable ground truth is named before any write
    if config is not None:  # every rank: a rank that skipped the check would write into another configuration
        check_out_config(out, config)
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
        records: list[dict] = []
        lat = _generate(model, chunk, [s.seed for s in chunk], sampling, ensemble, split, search,
                        records)
        if not writer:  # split seeds: rank 0 decodes and writes
            bar.update(len(chunk))
            continue
        vids, members = _pick(_decoder(model, chunk, video), lat, select)
        for i, (s, v) in enumerate(zip(chunk, vids)):
            k_out = output_scale(s)  # even sides for H.264
            for k, m in enumerate(members[i] if members is not None else []):
                write_mp4(member_path(out, s, k), upscale(to_uint8(m), k_out), fps=fps[s.name])
            frames = upscale(to_uint8(v), k_out)
            mp4, png = output_paths(out, s)
            write_mp4(mp4, frames, fps=fps[s.name])
            if records:  # the search's work beside its video
                atomic_write_json(search_path(out, s), records[i])
            write_png(png, frames[-1])  # the PNG last: its presence marks the sample done
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
    return {**summarize(rows), "missing": missing, "scorer": scorers.describe(), "scored_by": scorers.used(samples),
            "per_task": per_task, "rows": rows}


def write_scores(result: dict, out: Path) -> Path:
    """Write the scores to `out`: a .json file path, or a folder (then OUT/scores.json)."""
    out = Path(out)
    path = out if out.suffix == ".json" else out / "scores.json"
    if path.exists() and path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a .json file or a folder to hold scores.json")
    atomic_write_json(path, result)
    return path
