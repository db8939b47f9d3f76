"""Builders shared by several test modules (tests import these, never another test module)."""

from __future__ import annotations

from steplens.tasks import get_task, write_sample


def app_commands() -> dict:
    """{command words: click command} of every command of steplens' CLI, groups walked (the options' tests)."""
    import typer

    from steplens.cli import app

    def walk(cmd, path=()):
        if hasattr(cmd, "commands"):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, path + (name,))
        else:
            yield path, cmd
    return dict(walk(typer.main.get_command(app)))

# VBVR-style task folder names (no metadata.json, as in VBVR-Bench-Data)
VBVR_LAYOUT = {("In-Domain_50", "O-39_maze_data-generator"): "maze",
               ("Out-of-Domain_50", "G-7_maze-two-goals_data-generator"): "maze-two-goals"}


def make_vbvr(root, per_task=2, size=3, frames=3, scale=4):
    """A VBVR-Bench-layout folder (<split>/<task>/<idx>/, no metadata.json) of generated samples; their keys."""
    keys = []
    for (split, folder), task in VBVR_LAYOUT.items():
        for i in range(per_task):
            rel = f"{split}/{folder}/{i:05d}"
            write_sample(root, get_task(task).sample(100 + i, size, frames, idx=i), scale=scale, metadata=False,
                         rel=rel)
            keys.append(rel)
    return keys


def render_frame(native, px: int, cell: int = 12):
    """A steplens maze frame (native palette pixels) redrawn as VBVR-style graphics: walls dark grey, start a green
    disc, goal a red flag, drawn at `cell` px per maze pixel, then resampled (Lanczos, anti-aliased) to px x px,
    a non-integer scale."""
    import numpy as np
    from PIL import Image, ImageDraw

    native = np.asarray(native)
    n = native.shape[0]
    img = Image.new("RGB", (n * cell, n * cell), (250, 250, 250))
    d = ImageDraw.Draw(img)
    for y in range(n):
        for x in range(n):
            r, g, b = (int(v) for v in native[y, x])
            box = (x * cell, y * cell, (x + 1) * cell - 1, (y + 1) * cell - 1)
            if (r, g, b) == (0, 0, 0):
                d.rectangle(box, fill=(40, 40, 48))
            elif (r, g, b) == (0, 255, 0):
                d.ellipse(box, fill=(30, 200, 60))
            elif (r, g, b) == (255, 0, 0):
                d.line((box[0] + 3, box[1] + 1, box[0] + 3, box[3]), fill=(60, 60, 60), width=2)
                d.polygon([(box[0] + 4, box[1] + 1), (box[2], box[1] + cell // 4), (box[0] + 4, box[1] + cell // 2)],
                          fill=(220, 30, 30))
            elif (r, g, b) == (255, 128, 0):
                d.rectangle((box[0] + 3, box[1] + 3, box[2] - 3, box[3] - 3), fill=(255, 165, 0))
            elif (r, g, b) == (0, 0, 255):
                d.ellipse(box, fill=(40, 60, 230))
    return np.asarray(img.resize((px, px), Image.LANCZOS))


def make_vbvr_rendered(root, per_task: int = 2, px: int = 34, size: int = 3, frames: int = 3,
                       folder: str = "O-39_maze_data-generator", split: str = "In-Domain_50"):
    """A VBVR-Bench-layout folder of rendered maze samples (no metadata.json): the frames are graphics at a
    non-integer scale with anti-aliasing, as VBVR's generators draw them, not steplens's pixel art; their keys."""
    import numpy as np

    from steplens.io.files import atomic_write_text, write_mp4, write_png

    keys = []
    for i in range(per_task):
        s = get_task("maze").sample(200 + i, size, frames, idx=i)
        video = np.stack([render_frame(f, px) for f in s.ground_truth])
        d = root / split / folder / f"{i:05d}"
        d.mkdir(parents=True, exist_ok=True)
        write_png(d / "first_frame.png", video[0])
        write_png(d / "final_frame.png", video[-1])
        write_mp4(d / "ground_truth.mp4", video, fps=16)
        atomic_write_text(d / "prompt.txt", s.prompt + "\n")
        keys.append(f"{split}/{folder}/{i:05d}")
    return keys


def diffsynth_lora(path, layer, seed):
    """A rank-2 DiffSynth-format LoRA (VBVR-Wan2.2's) on block 0's self-attention query."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(2, layer.in_features, generator=g) * 0.5
    b = torch.randn(layer.out_features, 2, generator=g) * 0.5
    save_file({"blocks.0.self_attn.q.lora_A.default.weight": a, "blocks.0.self_attn.q.lora_B.default.weight": b},
              str(path))
    return path


def held_wan22(root):
    """VBVR-Wan2.2 as users hold it, in miniature: a tiny Wan2.2 pipeline folder (root/wan22) and a DiffSynth LoRA
    pair for its two experts; (one, two) the LoRA paths."""
    from steplens.backends.wan.tiny import tiny_wan22_i2v

    pipe = tiny_wan22_i2v(seed=0)
    pipe.save_pretrained(root / "wan22")
    one = diffsynth_lora(root / "high_noise.safetensors", pipe.transformer.blocks[0].attn1.to_q, 1)
    two = diffsynth_lora(root / "low_noise.safetensors", pipe.transformer_2.blocks[0].attn1.to_q, 2)
    return one, two


def warm_verifier(name: str, accept: float | None = 0.9):
    """A plug-in verifier class (pixels only): the redder the last frame, the better; success where the score is
    above `accept` (None: never). Register it with `steplens.tasks.register_verifier(name, cls)`."""
    import numpy as np

    from steplens.tasks import Score

    class Warm:
        def verify(self, video, sample):
            v = np.asarray(video)[-1].astype(float)
            s = float((v[..., 0] - v[..., 2]).mean() / 510 + 0.5)
            return Score(score=s, success=accept is not None and s > accept)
    Warm.name = name
    return Warm


def brightness_verifier(name: str, darkest: bool = False):
    """A plug-in verifier class (pixels only): the brighter (`darkest`: the darker) the last frame, the better;
    success above 0.5. Two of them disagree on a random model's particles."""
    import numpy as np

    from steplens.tasks import Score

    class Bright:
        def verify(self, video, sample):
            s = float(np.asarray(video)[-1].mean() / 255)
            s = 1.0 - s if darkest else s
            return Score(score=s, success=s > 0.5)
    Bright.name = name
    return Bright


class FinalFrameScorer:
    """A task-free plug-in scorer (VBVR-EvalKit's stand-in): 1 - the mean absolute difference of the final frame to
    the ground truth's."""

    name = "final-frame-l1"

    def __init__(self, threshold=None):
        self.threshold = 0.9 if threshold is None else threshold

    def score(self, video, sample):
        import numpy as np

        from steplens.tasks import Score

        v, gt = np.asarray(video[-1], float), np.asarray(sample.final_frame, float)
        s = 1.0 - float(np.abs(v - gt).mean()) / 255.0
        return Score(score=s, success=s >= self.threshold)


# A small rule-based evaluator package with VBVR-EvalKit's interface (vbvr_bench.evaluators: get_evaluator,
# list_all_tasks, TASK_EVALUATOR_MAP; evaluate(eval_info, task_specific_only=...) -> score, dimensions, details), so
# that the `vbvr` adapter is tested on real files without VBVR-EvalKit installed. Its rules are its own (pixel
# differences on the real frames), not VBVR-EvalKit's. It raises, as a buggy evaluator would, on a sample whose
# final frame shows no change from the first (no answer pixels).
EVALKIT_INIT = '''
__version__ = "{version}"
'''

EVALKIT_EVALUATORS = '''
import imageio.v2 as iio
import numpy as np

CALLS = []
WEIGHTS = {"first_frame_consistency": 0.15, "final_frame_accuracy": 0.35, "temporal_smoothness": 0.15,
           "visual_quality": 0.10, "task_specific": 0.25}


def _frames(path):
    r = iio.get_reader(path, format="FFMPEG")
    v = np.stack([f for f in r]).astype(float)[..., :3]
    r.close()
    return v


class BaseEvaluator:
    def __init__(self, device="cuda", task_name=""):
        self.device, self.task_name = device, task_name

    def evaluate(self, eval_info, **kwargs):
        CALLS.append((eval_info["video_path"], kwargs.get("task_specific_only", False)))
        v = _frames(eval_info["video_path"])
        first = iio.imread(eval_info["gt_first_frame"])[..., :3].astype(float)
        final = iio.imread(eval_info["gt_final_frame"])[..., :3].astype(float)
        changed = np.abs(final - first).sum(-1) > 60
        if not changed.any():
            raise ZeroDivisionError("no answer pixels: the final frame equals the first")
        dims = {"first_frame_consistency": max(0.0, 1 - np.abs(v[0] - first).mean() / 64),
                "final_frame_accuracy": max(0.0, 1 - np.abs(v[-1] - final).mean() / 64),
                "temporal_smoothness": 1 / (1 + np.abs(np.diff(v, axis=0)).mean() / 32) if len(v) > 1 else 0.5,
                "visual_quality": min(1.0, v.std() / 64),
                "task_specific": float((np.abs(v[-1] - final).sum(-1) < 60)[changed].mean())}
        if kwargs.get("task_specific_only"):
            return {"score": dims["task_specific"], "dimensions": {"task_specific": dims["task_specific"]},
                    "details": {"task_specific_only": True}}
        return {"score": np.float64(sum(WEIGHTS[k] * dims[k] for k in WEIGHTS)), "dimensions": dims,
                "details": {"frames": len(v)}}


class MazeEvaluator(BaseEvaluator):
    pass


TASK_EVALUATOR_MAP = {"O-39_maze_data-generator": MazeEvaluator,
                      "G-7_maze-two-goals_data-generator": MazeEvaluator}


def list_all_tasks():
    return list(TASK_EVALUATOR_MAP)


def get_evaluator(task_name, device="cuda"):
    return TASK_EVALUATOR_MAP.get(task_name, BaseEvaluator)(device=device, task_name=task_name)
'''


def make_evalkit(site, version: str = "0.1.test"):
    """Write the small evaluator package above as `site/vbvr_bench` (put `site` on sys.path); its folder."""
    from pathlib import Path

    pkg = Path(site) / "vbvr_bench"
    (pkg / "evaluators").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(EVALKIT_INIT.format(version=version))
    (pkg / "evaluators" / "__init__.py").write_text(EVALKIT_EVALUATORS)
    return pkg


# A small VBVR-Pro-Bench source folder: `<package>/evaluators` with its interface (TASK_EVALUATOR_MAP, get_evaluator,
# get_task_category, get_split; evaluate(eval_info, task_specific_only=True)), its evaluators reading the symbolic
# ground truth from metadata.json (eval_info["metafile_path"][0]): the pixels the answer must colour and the colour.
PRO_UTILS = '''
import imageio.v2 as iio
import numpy as np


def last_frame(path):
    r = iio.get_reader(path, format="FFMPEG")
    frames = [f for f in r]
    r.close()
    return np.asarray(frames[-1])[..., :3].astype(int)
'''

PRO_BASE = '''
import json

import numpy as np

from ..utils import last_frame


class BaseEvaluator:
    def __init__(self, device="cuda", task_name=""):
        self.device, self.task_name = device, task_name

    def evaluate(self, eval_info, **kwargs):
        meta = json.load(open(eval_info["metafile_path"][0]))
        last = last_frame(eval_info["video_path"])
        ys, xs = np.array(meta["answer_pixels"]).T
        hit = float((np.abs(last[ys, xs] - np.array(meta["answer_colour"])).sum(-1) < 90).mean())
        return {"score": hit, "dimensions": {"task_specific": hit}, "details": {"pixels": len(ys)}}
'''

PRO_EVALUATORS = '''
from .base_evaluator import BaseEvaluator


class PathEvaluator(BaseEvaluator):
    pass


TASK_EVALUATOR_MAP = {"O-39_maze_data-generator": PathEvaluator, "G-7_maze-two-goals_data-generator": PathEvaluator}
TASK_CATEGORY_MAP = {"O-39_maze_data-generator": "Spatiality", "G-7_maze-two-goals_data-generator": "Abstraction"}


def get_evaluator(task_name, device="cuda"):
    return TASK_EVALUATOR_MAP.get(task_name, BaseEvaluator)(device=device, task_name=task_name)


def list_all_tasks():
    return list(TASK_EVALUATOR_MAP)


def get_task_category(task_name):
    return TASK_CATEGORY_MAP.get(task_name, "Unknown")


def get_split(task_name):
    return "Out_of_Domain" if task_name.startswith("G-7_") else "In_Domain"
'''


def make_pro_bench(source, package: str = "vbvr_pro_bench"):
    """Write the small VBVR-Pro-Bench source folder above (`source/<package>/...`); the folder."""
    from pathlib import Path

    pkg = Path(source) / package
    (pkg / "evaluators").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('__version__ = "0.2.pro-test"\n')
    (pkg / "utils.py").write_text(PRO_UTILS)
    (pkg / "evaluators" / "base_evaluator.py").write_text(PRO_BASE)
    (pkg / "evaluators" / "__init__.py").write_text(PRO_EVALUATORS)
    return Path(source)


def add_pro_metadata(data, keys):
    """Give each sample folder a VBVR-Pro-Bench metadata.json: its symbolic answer (the pixels where the final frame
    differs from the first, and the colour drawn there), read from its own files."""
    import json

    import numpy as np

    from steplens.io.files import read_png

    for k in keys:
        first, final = (read_png(data / k / f).astype(int) for f in ("first_frame.png", "final_frame.png"))
        ys, xs = np.nonzero(np.abs(final - first).sum(-1) > 60)
        colour = np.median(final[ys, xs], 0).astype(int).tolist()
        (data / k / "metadata.json").write_text(json.dumps({"answer_pixels": np.stack([ys, xs], 1).tolist(),
                                                           "answer_colour": colour}))


class maze_plugin:
    """`with maze_plugin(name, check_partial) as name:` a plug-in family registered for the block only: the maze's
    hooks and scorer under another name, its samples named after it, with `check_partial` as its per-frame hook
    (None: none, its checker judges only a finished video)."""

    def __init__(self, name: str, check_partial=None):
        self.name, self.check_partial = name, check_partial

    def __enter__(self):
        from dataclasses import replace

        from steplens.tasks import registry
        from steplens.tasks.maze_task import MazeScorer

        maze, name, partial = get_task("maze"), self.name, self.check_partial

        class Plugin:
            def __getattr__(self, attr):
                if attr == "check_partial":
                    if partial is None:
                        raise AttributeError(attr)
                    return partial
                if attr == "name":
                    return name
                if attr == "sample":
                    return lambda *a, **k: replace(maze.sample(*a, **k), task=name)
                return getattr(maze, attr)

        class PluginScorer(MazeScorer):  # the maze's scorer, reading this family's samples
            tasks = (name,)

        Plugin.scorer = name
        registry.register_scorer(name, PluginScorer)
        registry.register_task(Plugin())
        return name

    def __exit__(self, *exc):
        from steplens.tasks import registry

        registry._TASKS.pop(self.name, None)
        registry._SCORERS.pop(self.name, None)
        return False


def whole_only_task():
    """A plug-in family whose checker judges only a finished video (maze_plugin without check_partial)."""
    return maze_plugin("test-whole-only")
