"""Chain-of-Steps metrics for any task: what x0_hat says at each denoising step.

Per step, from x0_hat's video (its final frame, mostly):
- the scorer's `score` and `success` on it (the *commitment step* is the step from which it stays a success);
- change from the first frame, split by the *answer region* (the pixels the ground truth's answer changes;
  `steplens.tasks.answer_region`): `on_target` and `off_target` count pixels changed by more than
  CHANGE_THRESHOLD inside and outside it, `change_in` / `change_out` are the mean changes there (0..1).
  `candidate_mass` = on + off target: every pixel x0_hat proposes to change. Early steps holding several
  candidate answers show as off-target mass that later steps prune; `off_branches` counts its 4-connected
  pieces (candidate branches);
- `static_ok`: nothing outside the answer region changed (the scene is perceived right).
No palette and no task is known here: the scorer and the region come from the task's plug-in.
"""

from __future__ import annotations

import numpy as np

from .regions import CHANGE_THRESHOLD, change, components


def step_metrics(videos: np.ndarray, sample, scorer, region: np.ndarray, threshold: float = CHANGE_THRESHOLD
                 ) -> list[dict]:
    """Metrics of x0_hat at every step.

    videos: (S, T, H, W, 3) float RGB in 0..255 (x0_hat's video per step, native size).
    region: (H, W) bool, the answer region of `sample`.
    """
    first = sample.first_frame
    region = np.asarray(region, bool)
    if region.shape != first.shape[:2]:
        raise ValueError(f"answer region {region.shape} does not match the first frame {first.shape[:2]}")
    out = []
    for v in videos:
        sc = scorer.score(np.clip(np.round(v), 0, 255).astype(np.uint8), sample)
        ch = change(np.clip(v[-1], 0, 255), first)
        changed = ch > threshold
        on, off = changed & region, changed & ~region
        out.append({
            "score": float(sc.score),
            "success": bool(sc.success),
            "candidate_mass": int(changed.sum()),
            "on_target": int(on.sum()),
            "off_target": int(off.sum()),
            "off_branches": len(components(off)),
            "change_in": float(ch[region].mean()) if region.any() else 0.0,
            "change_out": float(ch[~region].mean()) if (~region).any() else 0.0,
            "static_ok": bool(not off.any()),
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
    appears = first_step([m["on_target"] > 0 for m in metrics])
    after = ok[appears:] if appears is not None else []
    return {
        # wrong at some step after the answer first appears, right at the end
        "self_correction": bool(ok[-1] and appears is not None and not all(after)),
        # right at some step, wrong at the end
        "reverse_correction": bool(not ok[-1] and any(ok)),
        "commitment_step": commitment_step(ok),
        "answer_appears_step": appears,
        "static_right_step": commitment_step([m["static_ok"] for m in metrics]),
        "answer_right_step": first_step(ok),
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
