"""Samples from a folder (a steplens folder or the VBVR-Bench layout, found by looking) or from a task's generator.

Layouts, told apart by the depth of the sample folders (those holding first_frame.png, prompt.txt, ...)
under the root:

    ROOT/<idx>/                    one task's folder (the task is ROOT's name)
    ROOT/<task>/<idx>/             steplens (`steplens tasks generate`)
    ROOT/<split>/<task>/<idx>/     VBVR-Bench (e.g. In-Domain_50/O-39_maze_data-generator/00000/)

A folder mixing depths is refused. Every output mirrors the sample's place: OUT/<same path>.mp4, so
VBVR-EvalKit scores `steplens run` outputs unchanged (`vbvr-evaluate --videos_path OUT --gt_path DATA`).

Frames: `--frames`, else metadata.json's "frames", else the frame count of ground_truth.mp4 mapped to the
model's frame count by `model.frames_from_video(n)` (the embedded model: n; Wan: the latent frame count
whose video has at least n frames, ceil((n - 1) / 4) + 1). Size: from first_frame.png, read back to its
native size when it is an exact integer nearest-neighbour upscale (steplens writes samples x16).
Noise: the sample with index idx (its folder name) uses seed SEED + idx (`--seed`, default 0).

Task: the task folder's name resolves to a registered task (`O-39_maze_data-generator` -> `maze`). Its checks
(`validate`) bind samples steplens wrote (metadata.json with steplens's "upscale", or a `steplens tasks generate`
folder); a sample of another origin that fails them (VBVR-Bench's rendered frames) is taken as it is
(`Sample.foreign` says why, one warning per load): scored by `vbvr` unless a scorer is named, its answer region
where the ground truth changes, no candidates, no palette.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, field_validator

from ..io.files import count_frames, read_png, read_text
from ..regions import downscale, native_scale
from .registry import DEFAULT_TASK, find_task, generator_task, task_names
from .sample import Sample
from .splits import DEFAULT_PART, PARTS, check_part, draw_many

SAMPLE_FILES = ("first_frame.png", "prompt.txt", "final_frame.png", "ground_truth.mp4", "metadata.json")
LAYOUTS = {1: "one task's folder (<idx>/)", 2: "steplens (<task>/<idx>/)", 3: "VBVR-Bench (<split>/<task>/<idx>/)"}
DEFAULT_COUNT = 100
MAX_SEED = 2 ** 62  # noise seeds (seed + a sample's index) stay within torch's generator's range
MAX_SIZE = 64  # a task's size knob (maze cells): far beyond the study's 5-7; a larger one takes minutes to generate
MAX_FRAMES = 1024


def _csv(v):
    if v is None or isinstance(v, list):
        return v
    items = [x.strip() for x in str(v).split(",")]
    if not all(items):
        raise ValueError(f"expected a comma-separated list of names, got {v!r}")
    return items


class SampleSource(BaseModel):
    """Where samples come from: a folder (`data`, with `split` / `tasks` filters) or a task's generator
    (`task`, `count`, `seed`, `size`; `split`: the part of its inputs, train, val or test, default test: inputs held
    out of training by content). `count` takes the first `count` samples of a folder (all by default)."""

    data: Path | None = None
    split: list[str] | None = None
    tasks: list[str] | None = None
    task: str = DEFAULT_TASK
    count: int | None = None
    seed: int = 0
    size: int | None = None
    frames: int | None = None

    @field_validator("split", "tasks", mode="before")
    @classmethod
    def _lists(cls, v):
        return _csv(v)

    @field_validator("count", "frames")
    @classmethod
    def _at_least(cls, v, info):
        lo, why = (1, "") if info.field_name == "count" else (2, " (the first frame and the answer)")
        if v is not None and v < lo:
            raise ValueError(f"{info.field_name} must be >= {lo}{why}, got {v}")
        if info.field_name == "frames" and v is not None and v > MAX_FRAMES:
            raise ValueError(f"--frames {v}: must be <= {MAX_FRAMES} (far beyond any video model's clip: the "
                             f"study's 81, the longest diffusers image-to-video pipelines' 121)")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v):
        if v is not None and not 0 <= v < MAX_SEED:
            raise ValueError(f"--seed {v}: must be >= 0 and < {MAX_SEED:.0e} (the noise seeds: seed + a sample's "
                             f"index)")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v):
        if v is not None and not 1 <= v <= MAX_SIZE:
            raise ValueError(f"--size {v}: must be >= 1 and <= {MAX_SIZE} (a task's size knob: cells of a maze or "
                             f"grid)")
        return v

    def part(self) -> str:
        """The part of a generator's inputs the samples come from (`steplens.tasks.splits`): `--split` for generated
        samples (one of train, val, test), else test."""
        if self.split is None:
            return DEFAULT_PART
        if len(self.split) != 1:
            raise ValueError(f"--split {','.join(self.split)}: generated samples come from one part of the task's "
                             f"inputs ({', '.join(PARTS)}); several splits filter a folder (--data DIR)")
        return check_part(self.split[0], "--split")

    def describe(self) -> dict:
        """What determines the samples (for an output folder's configuration); `count` left out, so a finished
        experiment can be extended with more samples."""
        if self.data is not None:
            return {"data": str(Path(self.data).resolve()), "split": self.split, "tasks": self.tasks,
                    "seed": self.seed, "frames": self.frames}
        return {"task": self.task, "split": self.part(), "seed": self.seed, "size": self.size, "frames": self.frames}

    def check(self):
        """What can be refused before any sample is made (and before a model loads): for generated samples, the
        folder filters given without a folder and a task that does not exist; returns the generating task."""
        if self.data is not None:
            if self.size is not None:
                raise ValueError(f"--size {self.size} applies to generated samples (--task NAME), not to --data")
            root = Path(self.data)
            if not root.is_dir():
                raise FileNotFoundError(f"--data {root}: data folder not found" if not root.exists()
                                        else f"--data {root} is a file, not a folder of samples")
            return None
        if self.tasks:
            raise ValueError("--tasks filters a folder of samples: give --data DIR")
        self.part()
        task = generator_task(self.task)
        task.sample(self.seed, self.size, self.frames, idx=self.seed)  # the task's own size/frames rules, now
        return task

    def load(self, frames_from_video: Callable[[int], int] | None = None, need_frames: bool = True) -> list[Sample]:
        """The samples; need_frames=False (scoring) skips decoding ground_truth.mp4 for a frame count."""
        if self.data is not None:
            if self.size is not None:
                raise ValueError(f"--size {self.size} applies to generated samples (--task NAME), not to --data")
            dirs = find_samples(self.data, self.split, self.tasks)
            if self.count is not None:
                dirs = dirs[: self.count]
            samples = [read_sample(d, Path(self.data), self.seed, self.frames, frames_from_video, need_frames)
                       for d in dirs]
            warn_taken_as_is(samples)
            return samples
        task = self.check()
        n = self.count or DEFAULT_COUNT
        return draw_many(task, range(self.seed, self.seed + n), self.part(), self.size, self.frames)


def _layout_error(root: Path, by_depth: dict[int, list[Path]]) -> str:
    parts = [f"{LAYOUTS.get(d, f'depth {d}')}: e.g. {ds[0].relative_to(root)}" for d, ds in sorted(by_depth.items())]
    return f"{root} mixes sample layouts ({'; '.join(parts)}); give one layout per folder"


def _sample_dirs(root: Path) -> list[Path]:
    """Folders under root holding a sample file, hidden folders skipped; symlinked folders followed (a sample or
    split folder linked in from elsewhere keeps its place under root), a link back to a folder on its own path (a
    loop) refused by name."""
    import os

    out = []
    for top, dirs, files in os.walk(root, followlinks=True):
        here = Path(top)
        real = here.resolve()
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            link = here / d
            if link.is_symlink() and (real == link.resolve() or link.resolve() in real.parents):
                raise ValueError(f"{link} is a symlink to {link.resolve()}, a folder on its own path (a loop); "
                                 f"remove it or point it elsewhere")
        if any(f in SAMPLE_FILES for f in files):
            out.append(here)
    return out


def find_samples(root: Path, split: list[str] | None = None, tasks: list[str] | None = None) -> list[Path]:
    """Every sample folder under root (sorted), after the split and task filters."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}" if not root.exists()
                                else f"--data {root} is a file, not a folder of samples")
    found = sorted(_sample_dirs(root))
    if not found:
        raise FileNotFoundError(f"no samples under {root}: a sample is a folder with {', '.join(SAMPLE_FILES[:2])} "
                                f"(and ground_truth.mp4, final_frame.png), laid out as {' or '.join(LAYOUTS.values())}")
    if root in found:
        raise ValueError(f"{root} is itself a sample folder; give the folder that holds sample folders")
    by_depth: dict[int, list[Path]] = {}
    for d in found:
        by_depth.setdefault(len(d.relative_to(root).parts), []).append(d)
    if len(by_depth) > 1:
        raise ValueError(_layout_error(root, by_depth))
    depth = next(iter(by_depth))
    if depth not in LAYOUTS:
        raise ValueError(f"sample folders under {root} sit {depth} levels deep (e.g. {found[0].relative_to(root)}); "
                         f"expected {' or '.join(LAYOUTS.values())}")
    if split:
        if depth != 3:
            raise ValueError(f"--split {','.join(split)}: {root} has no split folders (layout: {LAYOUTS[depth]})")
        have = sorted({d.relative_to(root).parts[0] for d in found})
        bad = [s for s in split if s not in have]
        if bad:
            raise ValueError(f"--split {bad[0]!r} not found under {root}; splits there: {', '.join(have)}")
        found = [d for d in found if d.relative_to(root).parts[0] in split]
    if tasks:
        have = sorted({task_of(d, root, depth) for d in found})
        resolved = {t: find_task(t) for t in have}
        bad = [t for t in tasks if t not in have and not any(r is not None and r.name == t for r in resolved.values())]
        if bad:
            raise ValueError(f"--tasks {bad[0]!r} not found under {root}; tasks there: {', '.join(have)}")
        found = [d for d in found if task_of(d, root, depth) in tasks
                 or (resolved[task_of(d, root, depth)] is not None and resolved[task_of(d, root, depth)].name in tasks)]
    return found


def taken_as_is(samples) -> dict[str, str]:
    """{task folder: why} for the samples taken as they are (steplens's task checks do not apply), first reason each."""
    out: dict[str, str] = {}
    for s in samples:
        if getattr(s, "foreign", None):
            out.setdefault(s.task, f"{sum(x.task == s.task and bool(x.foreign) for x in samples)} sample(s), e.g. "
                                   f"{s.foreign}")
    return out


def warn_taken_as_is(samples) -> None:
    """One warning for the samples steplens's task checks do not bind, naming the fallbacks."""
    found = taken_as_is(samples)
    if found:
        warnings.warn("samples not drawn by steplens, taken as they are: " + "; ".join(
            f"{t}: {why}" for t, why in found.items()) + ". They are scored by vbvr (VBVR-EvalKit) unless --scorer "
            "names another; task hooks that need steplens's drawing fall back: answer region = where the ground "
            "truth changes, no candidates, no palette snapping in vote/consensus", UserWarning, stacklevel=2)


def steplens_made(d: Path, meta: dict) -> bool:
    """Whether a sample folder says steplens wrote it: its metadata.json (write_sample records "upscale") or the
    `steplens tasks generate` manifest of its task folder."""
    if "upscale" in meta:
        return True
    manifest = d.parent / "run_config.json"
    try:
        return manifest.is_file() and json.loads(manifest.read_text()).get("command") == "tasks generate"
    except (OSError, ValueError, AttributeError):
        return False


def task_of(d: Path, root: Path, depth: int | None = None) -> str:
    rel = d.relative_to(root).parts
    depth = depth or len(rel)
    return root.resolve().name if depth == 1 else rel[-2]


def read_sample(d: Path, root: Path | None = None, seed: int = 0, frames: int | None = None,
                frames_from_video: Callable[[int], int] | None = None, need_frames: bool = True) -> Sample:
    """Read a sample folder at its native size; bad or missing files are named."""
    d = Path(d)
    root = Path(root) if root is not None else d.parent.parent
    for need in ("first_frame.png", "prompt.txt"):
        if not (d / need).is_file():
            raise FileNotFoundError(f"sample folder {d} has no {need} (a sample needs first_frame.png and prompt.txt; "
                                    f"final_frame.png and ground_truth.mp4 to be scored)")
    if not d.name.isdigit():
        raise ValueError(f"sample folder {d} is not named by an index (00000, 00001, ...)")
    idx = int(d.name)
    first = read_png(d / "first_frame.png")
    k = native_scale(first)
    native = first[::k, ::k]
    prompt = read_text(d / "prompt.txt").strip()
    if not prompt:
        raise ValueError(f"{d / 'prompt.txt'} is empty: a sample needs its prompt")
    meta = {}
    if (d / "metadata.json").exists():
        try:
            meta = json.loads((d / "metadata.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{d / 'metadata.json'} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{d / 'metadata.json'} holds a {type(meta).__name__}; expected a JSON object")
        f = meta.get("frames")
        if f is not None and (isinstance(f, bool) or not isinstance(f, int) or f < 2):
            raise ValueError(f"{d / 'metadata.json'}: field 'frames' is {f!r}; expected an integer >= 2")
    video_frames = None
    gt = d / "ground_truth.mp4"
    if gt.exists() and (frames is None and not meta.get("frames")) and need_frames:
        video_frames = count_frames(gt)
    t = frames or int(meta.get("frames", 0)) or None
    if t is None and video_frames is not None:
        t = frames_from_video(video_frames) if frames_from_video else video_frames
    if t is None and need_frames:
        raise ValueError(f"{d}: no frame count: no metadata.json 'frames' and no ground_truth.mp4; pass --frames")
    rel = d.relative_to(root)
    task = task_of(d, root)
    s = Sample(task=task, first_frame=native, prompt=prompt, frames=t, meta=meta, idx=idx, key=rel.as_posix(),
               seed=seed + idx, dir=d, scale=k, video_frames=video_frames)
    t_obj = find_task(task)
    if t_obj is not None and hasattr(t_obj, "validate"):
        try:
            t_obj.validate(s)
        except ValueError as e:
            if steplens_made(d, meta):
                raise
            s.foreign = f"{e} (not steplens's {t_obj.name} drawing)"
            k, s.first_frame, s.scale = 1, first, 1  # as it is: no reading back from a steplens upscale
    final = None
    if (d / "final_frame.png").exists():
        f = read_png(d / "final_frame.png")
        if f.shape != first.shape:
            raise ValueError(f"{d / 'final_frame.png'} is {f.shape[1]}x{f.shape[0]} pixels but first_frame.png is "
                             f"{first.shape[1]}x{first.shape[0]}")
        final = downscale(f, k)
    s.final = final
    return s


def known_tasks_note() -> str:
    return f"registered tasks: {', '.join(task_names())}"
