"""Chain-of-Steps metrics: what x0_hat's final frame says at each denoising step.

For a maze, per step: the task score of x0_hat's final frame (snapped to the palette), and the
*candidate mass*: how many free pixels carry path colour (projection on white -> orange above a
threshold). Early steps holding several candidate paths show as a mass above the final answer's.
The *commitment step* is the first step from which the answer is correct and stays correct.
"""

from __future__ import annotations

import numpy as np

from .tasks.grid import FREE, START, WALL, components, native_labels, snap
from .tasks.maze import ORANGE, WHITE, shortest_pixel_path
from .tasks.maze_score import goal_label, score_labels

_W, _O = np.array(WHITE, np.float32), np.array(ORANGE, np.float32)


def pathness(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB 0..255 float -> (H, W): 0 at white, 1 at orange (projection, unclipped)."""
    d = _O - _W
    return ((frame.astype(np.float32) - _W) @ d) / float(d @ d)


def step_metrics(frames: np.ndarray, first_frame: np.ndarray, threshold: float = 0.5,
                 prompt: str | None = None) -> list[dict]:
    """Metrics of x0_hat's final frame at every step.

    frames: (S, H, W, 3) float RGB in 0..255 (x0_hat's final frame per step, native size).
    first_frame: (H, W, 3) uint8, the maze.
    """
    ref, _ = native_labels(first_frame)
    walls = ref == WALL
    target = goal_label(prompt)
    start, goal = tuple(np.argwhere(ref == START)[0]), tuple(np.argwhere(ref == target)[0])
    open_px = (ref == FREE)
    solution = np.zeros_like(open_px)
    for p in shortest_pixel_path(~walls, start, goal)[1:-1]:
        solution[p] = True
    out = []
    for f in frames:
        labels = snap(np.clip(f, 0, 255))
        sc = score_labels(labels, ref, target)
        cand = (pathness(f) > threshold) & open_px
        off = cand & ~solution
        static_ok = bool(np.all((labels == WALL) == walls) and labels[start] == START and labels[goal] == target)
        out.append({
            "static_ok": static_ok,  # walls, start and goal of x0_hat's last frame are right
            "score": sc.score,
            "success": sc.success,
            "candidate_mass": int(cand.sum()),
            "on_solution": int((cand & solution).sum()),
            "off_solution": int(off.sum()),
            "off_branches": len(components(off)),
            "pathness_sum": float(np.clip(pathness(f), 0, 1)[open_px].sum()),
        })
    return out


def commitment_step(success: list[bool]) -> int | None:
    """First step from which every later step is a success; None if the last step fails."""
    if not success or not success[-1]:
        return None
    i = len(success) - 1
    while i > 0 and success[i - 1]:
        i -= 1
    return i


def first_step(flags: list[bool]) -> int | None:
    return next((i for i, f in enumerate(flags) if f), None)


def behaviours(metrics: list[dict]) -> dict:
    """Counted from one run's x0_hat trajectory (the study's emergent behaviours, as numbers)."""
    ok = [m["success"] for m in metrics]
    appears = first_step([m["candidate_mass"] > 0 for m in metrics])
    after = ok[appears:] if appears is not None else []
    return {
        # wrong at some step after the path first appears, right at the end
        "self_correction": bool(ok[-1] and appears is not None and not all(after)),
        # right at some step, wrong at the end
        "reverse_correction": bool(not ok[-1] and any(ok)),
        "commitment_step": commitment_step(ok),
        "path_appears_step": appears,
        "static_right_step": commitment_step([m["static_ok"] for m in metrics]),
        "path_right_step": first_step(ok),
        "max_off_branches": max(m["off_branches"] for m in metrics),
        "early_branches": metrics[0]["off_branches"],
    }


def summarize(metrics: list[dict]) -> dict:
    final = metrics[-1]["candidate_mass"]
    return {
        "commitment_step": commitment_step([m["success"] for m in metrics]),
        "final_success": metrics[-1]["success"],
        "final_candidate_mass": final,
        "max_candidate_mass": max(m["candidate_mass"] for m in metrics),
        "mass_ratio_step0": metrics[0]["candidate_mass"] / max(final, 1),
    }
