"""Chain-of-Steps metrics for any task: what x0_hat says at each denoising step.

Per step, from x0_hat's video (its final frame, mostly):
- the scorer's `score` and `success` on it (the *commitment step* is the step from which it stays a success);
- change from the first frame, split by the *answer region* (the pixels the ground truth's answer changes;
  `steplens.tasks.answer_region`): `on_target` and `off_target` count pixels changed by more than
  CHANGE_THRESHOLD inside and outside it, `change_in` / `change_out` are the mean changes there (0..1).
  `candidate_mass` = on + off target: every pixel x0_hat proposes to change. Early steps holding several
  candidate answers show as off-target mass that later steps prune; `off_branches` counts its 4-connected
  pieces (candidate branches);
- `static_ok`: nothing outside the answer region changed (the scene is perceived right);
- for tasks that list the answers x0_hat may weigh (the optional task hook `candidates(sample)`: every winning
  tic-tac-toe move, every shortest path of a maze with loops, the colours an open symmetry cell may take; and
  tempting wrong ones: the other goal of a two-goal maze, the reappearing object in another colour or shape):
  `candidate_strengths`, how far x0_hat's final frame has moved from the first frame toward each answer over
  the pixels that tell them apart (0 = not there, 1 = drawn; two answers superposed at half intensity give 0.5
  each); `candidates_held`, how many reach HOLD (`right_held` of them right); `right_strength` and
  `wrong_strength`, the strongest right and wrong one (working memory: is the object x0_hat draws where it
  reappears the one it saw, in its colour and shape; perception: is the path it draws the one to the named goal).
No palette and no task is known here: the scorer, the region and the candidates come from the task's plug-in.
"""

from __future__ import annotations

import numpy as np

from .regions import CHANGE_THRESHOLD, change, components


HOLD = 0.25  # a candidate answer is held by x0_hat when it is drawn at least this strongly
WIN = 0.6  # ... and has won when it alone is drawn at least this strongly, to the end


def nonnegative_weights(a: np.ndarray, b: np.ndarray, iters: int = 50) -> np.ndarray:
    """argmin_w>=0 |a w - b| for a few columns (Lawson-Hanson active set; a: (N, K), b: (N,))."""
    k = a.shape[1]
    g, h = a.T @ a, a.T @ b
    free = np.zeros(k, bool)
    w = np.zeros(k)
    for _ in range(iters):
        grad = h - g @ w
        cand = np.where(~free & (grad > 1e-9 * max(1.0, np.abs(h).max())))[0]
        if not len(cand):
            break
        free[cand[np.argmax(grad[cand])]] = True
        while True:
            z = np.zeros(k)
            idx = np.where(free)[0]
            z[idx] = np.linalg.lstsq(g[np.ix_(idx, idx)], h[idx], rcond=None)[0]
            if (z[idx] > 0).all():
                w = z
                break
            neg = idx[z[idx] <= 0]
            d = w[neg] - z[neg]  # >= 0: w >= 0 >= z there
            ratios = w[neg][d > 0] / d[d > 0]
            w = w + (ratios.min() if ratios.size else 0.0) * (z - w)  # move to the first weight that hits 0
            free &= w > 1e-12
            w[~free] = 0
    return w


def candidate_strengths(frame: np.ndarray, first: np.ndarray, candidates: list[np.ndarray]) -> list[float]:
    """How strongly `frame` (H, W, 3, 0..255) draws each candidate answer (final frames, uint8): the
    non-negative weights w that best write frame - first as sum_i w_i (candidate_i - first), over the pixels any
    candidate changes; clipped to [0, 1]. One answer drawn gives 1 for it and 0 for the others; two superposed
    at half intensity give 0.5 each; the first frame unchanged gives 0 for all."""
    f0 = first.astype(np.float64)
    deltas = np.stack([c.astype(np.float64) - f0 for c in candidates])  # (K, H, W, 3)
    where = (np.abs(deltas).max(-1) > CHANGE_THRESHOLD * 255).any(0)
    if not where.any():
        return [0.0] * len(candidates)
    a = deltas[:, where].reshape(len(candidates), -1).T / 255.0
    b = (frame.astype(np.float64) - f0)[where].reshape(-1) / 255.0
    return [float(np.clip(x, 0, 1)) for x in nonnegative_weights(a, b)]


def step_metrics(videos: np.ndarray, sample, scorer, region: np.ndarray, threshold: float = CHANGE_THRESHOLD,
                 candidates: list | None = None) -> list[dict]:
    """Metrics of x0_hat at every step.

    videos: (S, T, H, W, 3) float RGB in 0..255 (x0_hat's video per step, native size).
    region: (H, W) bool, the answer region of `sample`.
    candidates: the task's `Candidate`s (label, frame, right), or None.
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
        if candidates:
            st = candidate_strengths(np.clip(v[-1], 0, 255), first, [c.frame for c in candidates])
            right = [x for x, c in zip(st, candidates) if c.right]
            wrong = [x for x, c in zip(st, candidates) if not c.right]
            out[-1].update(candidate_strengths=st, candidates_held=int(sum(x >= HOLD for x in st)),
                           right_held=int(sum(x >= HOLD for x in right)),
                           right_strength=max(right, default=0.0), wrong_strength=max(wrong) if wrong else None)
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
        **candidate_behaviours(metrics),
    }


def candidate_behaviours(metrics: list[dict]) -> dict:
    """With listed candidates: how many x0_hat holds at step 0 (`early_candidates`, `early_right` of them right)
    and at most (superposition, multi-path exploration); the step from which one alone is drawn (>= WIN, others
    < HOLD) to the end, and which (`winner_step`, `winner`); the step from which a right one is drawn and no wrong
    one held, to the end (`right_step`: when the named goal, the remembered object, wins)."""
    if "candidate_strengths" not in metrics[0]:
        return {}
    held = [m["candidates_held"] for m in metrics]
    alone = []
    for m in metrics:
        st = m["candidate_strengths"]
        top = int(np.argmax(st))
        alone.append((top, st[top] >= WIN and all(x < HOLD for i, x in enumerate(st) if i != top)))
    winner_step = None
    if alone[-1][1]:
        winner_step = len(alone) - 1
        while winner_step > 0 and alone[winner_step - 1] == alone[-1]:
            winner_step -= 1
    out = {"candidates": len(metrics[0]["candidate_strengths"]), "early_candidates": held[0],
           "max_candidates": max(held), "winner_step": winner_step,
           "winner": alone[-1][0] if alone[-1][1] else None}
    if "right_held" in metrics[0]:
        # the right answer drawn (>= WIN) with no wrong one held (< HOLD), from this step to the end
        right = [m["right_strength"] >= WIN and (m["wrong_strength"] is None or m["wrong_strength"] < HOLD)
                 for m in metrics]
        out.update(early_right=metrics[0]["right_held"], right_step=commitment_step(right))
    return out


def summarize(metrics: list[dict]) -> dict:
    final = metrics[-1]["candidate_mass"]
    return {
        "commitment_step": commitment_step([m["success"] for m in metrics]),
        "final_success": metrics[-1]["success"],
        "final_candidate_mass": final,
        "max_candidate_mass": max(m["candidate_mass"] for m in metrics),
        "mass_ratio_step0": metrics[0]["candidate_mass"] / max(final, 1),
        **candidate_behaviours(metrics),
    }
