"""A traced sample's files: x0_hat of every step (safetensors), the step x frame grid, the viewer's sprites, GIFs,
the chain-of-steps plot and metrics.json (steplens.trace computes them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from ..io.files import atomic_path, atomic_write_json, write_gif
from ..io.video import to_uint8, upscale
from ..trace import Trace
from .plots import plot_cos, plot_step_grid
from .viewer import write_sprites

GIF_MAX = 512  # pixels a side the GIFs are upscaled to at most


def gif_scale(size, scale: int = 8) -> int:
    """The GIFs' upscale of (h, w) frames: `scale` for tiny native frames, less where that would pass GIF_MAX pixels
    (a 480p x0_hat at x8 is 3840x6656 pixels a frame: gigabytes to write), never below 1."""
    return max(1, min(int(scale), GIF_MAX // max(int(size[0]), int(size[1]), 1)))


def write_trace(tr: Trace, out: Path, scale: int = 8) -> dict:
    """Write x0.safetensors (streamed there already when the trace says so: `Trace.x0_file`), grid.png (labelled,
    chosen steps), the viewer's sprites (steps.png, highlight.png), final_x0.gif, output.gif (upscaled x`scale`, to
    GIF_MAX pixels a side at most), cos.png and metrics.json into `out`."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "x0.safetensors"
    if tr.x0_file is None:
        with atomic_path(target) as tmp:
            save_file({"x0": tr.x0.float().contiguous().cpu(), "output": tr.output.float().contiguous().cpu(),
                       "sigmas": torch.tensor(tr.sigmas)}, str(tmp))
    elif Path(tr.x0_file).resolve() != target.resolve():  # streamed elsewhere by steplens.trace
        with atomic_path(target) as tmp:
            shutil.copyfile(tr.x0_file, tmp)
    frames = tr.frames if tr.frames is not None else np.stack([to_uint8(x) for x in tr.x0])  # (S, T, H, W, 3)
    plot_step_grid(frames, tr.sigmas, out / "grid.png", experts=tr.experts,
                   title=f"{tr.sample.name}: x0_hat at chosen steps (rows) and frames (columns)", names=tr.steps)
    geometry = write_sprites(frames, tr.sample.first_frame, out)
    k = gif_scale(frames.shape[2:4], scale)
    write_gif(out / "final_x0.gif", upscale(frames[:, -1], k), fps=4)
    write_gif(out / "output.gif", upscale(to_uint8(tr.output), k), fps=2)
    plot_cos(tr.metrics, out / "cos.png", title=f"{tr.sample.task} #{tr.sample.idx} seed {tr.seed}",
             candidates=tr.candidates)
    atomic_write_json(out / "metrics.json", {**tr.to_dict(), "viewer": geometry})
    return {"dir": str(out), "grid": "grid.png", "gif": "final_x0.gif", "cos": "cos.png", "viewer": geometry}
