"""Backtracking along time ("Temporal Backtracking Search", arXiv 2606.13861, in steplens's terms).

    cfg = SearchConfig(method="backtrack", n=4, verifier="checker")   # at most 4 generations per sample
    res = search(model, samples, seeds, cfg)

Generate a whole video; judge it frame by frame (`steplens.tasks.partial_checks`: the task's own rules applied to
the video up to each frame, validity only, nothing solved); where a frame first breaks a rule, keep the frames before
it as a clean prefix and generate the rest again from it with a fresh seed (K-frame conditioning,
`steplens.tasks.continue_from_frames`); repeat until the verifier accepts the whole video or `n` generations are
spent. The answer is the accepted generation, else the last one. A first failure at frame 1 (nothing to keep)
restarts from the first frame alone: plain resampling, as best-of-n's next seed would.

NFE: every generation is a full run (S steps for every frame: the embedded model denoises all frames, the known ones
conditioned), so `n` generations cost at most n·S per sample and CFG branch, less where a sample is accepted early.

Needs a model that conditions on K leading frames (the embedded model trained with `prefix`, Wan image-to-video,
LTX-2, HunyuanVideo-1.5; its `check_prefix` says why not), a task that judges single frames (a `check_partial` hook)
and a verifier that does (`judges_frames`: `checker`, the task's rules frame by frame); all are refused before any
forward.
"""

from __future__ import annotations

import numpy as np
import torch

from ..tape import NFECounter, forwards, run_until
from ..tasks import (Score, continue_from_frames, find_task, frame_verifiers, partial_checks, strip_sample,
                     tasks_with)


def check_backtrack(model=None, tasks=(), verifier=None) -> None:
    """Refuse what backtracking cannot do: a verifier that cannot judge single frames (`verifier`: its name or the
    verifier itself, `judges_frames`), a task that cannot, a model that cannot be given leading frames (when `model`
    is given: after it loads, before any forward)."""
    judges = verifier in frame_verifiers() if isinstance(verifier, str) else getattr(verifier, "judges_frames", False)
    if verifier is not None and not judges:
        name = verifier if isinstance(verifier, str) else getattr(verifier, "name", type(verifier).__name__)
        raise ValueError(f"backtrack judges a video frame by frame, and verifier {name!r} cannot judge single "
                         f"frames (it judges a finished video); verifiers that can: "
                         f"{', '.join(frame_verifiers()) or 'none'} (--verifier)")
    for t in dict.fromkeys(tasks):
        task = find_task(t)
        if not callable(getattr(task, "check_partial", None)) or not callable(getattr(task, "check", None)):
            have = [n for n in tasks_with("check_partial") if n in tasks_with("check")]
            raise ValueError(f"backtrack judges a video frame by frame, and task {t!r} cannot judge single frames (no "
                             f"check_partial hook); tasks that can: {', '.join(have) or 'none'}")
    if model is None:
        return
    why = model.prefix_refused() if callable(getattr(model, "prefix_refused", None)) else None
    if why or not callable(getattr(model, "check_prefix", None)):
        raise ValueError(f"backtrack regenerates from a verified prefix of frames, and model {model.name!r} "
                         f"({getattr(model, 'family', None) or getattr(model, 'backend', '?')}) cannot be given "
                         f"leading frames: {why or 'no frame-prefix conditioning in its backend'}")
    if getattr(model, "prefix_trained", 1) < 2:
        raise ValueError(f"backtrack regenerates from a verified prefix of frames, and model {model.name!r} was "
                         f"trained on first frames only (K = 1): it was never taught to continue given frames; use a "
                         f"frame-prefix model (trained with `prefix` in its training config), e.g. tiny-reasoner-frames")


def first_failure(checks: list[bool], known: int) -> int | None:
    """The first frame at or after `known` that breaks a rule (frames before `known` were given), or None."""
    return next((t for t in range(max(1, known), len(checks)) if not checks[t]), None)


def _generate(model, samples, seeds, gen, counter: NFECounter) -> torch.Tensor:
    def go():
        return model.generate(samples, seeds, gen.frames, gen.sampling)
    with forwards(model, counter=counter):
        return run_until(go)


def backtrack(model, samples, seeds, cfg, gen, counter: NFECounter, verifier, fresh_seed, decoded, result_cls):
    """Backtracking search for every sample (see the module docstring): `cfg.n` generations at most."""
    check_backtrack(model, [s.task for s in samples], verifier)
    current = list(samples)
    latents: list[torch.Tensor | None] = [None] * len(samples)
    scores: list[Score | None] = [None] * len(samples)
    done = [False] * len(samples)
    history: list[list[dict]] = [[] for _ in samples]
    for g in range(cfg.n):
        todo = [i for i in range(len(samples)) if not done[i]]
        if not todo:
            break
        groups = {}  # a batch is given one K; fixed before this generation changes any sample's K
        for i in todo:
            groups.setdefault(current[i].known_frames, []).append(i)
        for k, group in sorted(groups.items()):
            batch = [current[i] for i in group]
            gseeds = [int(seeds[i]) if g == 0 else fresh_seed(int(seeds[i]), "backtrack", g) for i in group]
            out = _generate(model, batch, gseeds, gen, counter)
            videos = decoded(model, out)
            for j, i in enumerate(group):
                video = videos[j]
                given = current[i].prefix if k > 1 else current[i].first_frame[None]
                if given.shape[1:] == video.shape[1:]:  # the given frames as given (K = 1: the first frame, which a
                    video = video.copy()  # pipeline decodes through its VAE, not exactly)
                    video[:k] = given
                stripped = strip_sample(samples[i])
                checks = partial_checks(video, stripped)
                if checks is None:
                    raise ValueError(f"{samples[i].name}: its frames cannot be judged one by one (a sample not drawn "
                                     f"by steplens, or a task without check_partial); backtrack needs them")
                score = verifier.verify(video, stripped)
                bad = first_failure(checks, k)
                latents[i], scores[i] = out[j], score
                history[i].append({"generation": g, "known": k, "seed": gseeds[j], "checks": checks,
                                   "first_failure": bad, "accepted": bool(score.success), "score": float(score.score)})
                if score.success:
                    done[i] = True
                    continue
                # keep every frame before the first that breaks a rule (all but the last where none does but the
                # verifier still refuses the whole); nothing new kept: the same prefix again, with a fresh seed
                keep = len(video) - 1 if bad is None else bad
                if keep > k:
                    current[i] = continue_from_frames(samples[i], video, keep)
    res = result_cls(torch.stack(latents), [0] * len(samples), scores, counter)
    res.links = [{"link": g, "samples": [i for i in range(len(samples)) if len(history[i]) > g],
                  "accepted": [history[i][g]["accepted"] for i in range(len(samples)) if len(history[i]) > g],
                  "scores": [history[i][g]["score"] for i in range(len(samples)) if len(history[i]) > g]}
                 for g in range(max(len(h) for h in history))]
    res.backtracks = [[{**h, "checks": [bool(c) for c in h["checks"]]} for h in hist] for hist in history]
    return res
