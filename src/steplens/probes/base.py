"""What every probe shares: settings, samples, one condition = one sampling run, summaries.

A probe is a set of named *conditions*; a condition builds the hooks for a batch (or none, for the
clean baseline). Every (condition, sample) gives one row: success, score, and whatever extra metrics
the probe computes from the run. The loop over them is steplens.experiment.run_grid (resumable,
extendable with more samples).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..experiment import ExperimentSettings, load_samples, seeds_of, write_results, write_table  # noqa: F401
from ..hooks import Hooks
from ..stats import summarize
from ..tasks import Sample, Scorers
from ..video import to_uint8

ProbeSettings = ExperimentSettings  # the settings every probe takes

MakeHooks = Callable[[list[Sample], list[int]], "Hooks | None"]


def score_outputs(model, samples: list[Sample], latents: torch.Tensor, scorers: Scorers) -> list[dict]:
    vids = model.decode(latents)
    out = []
    for s, v in zip(samples, vids):
        sc = scorers.score(to_uint8(v), s)
        out.append({"success": bool(sc.success), "score": float(sc.score)})
    return out


def generate(model, s: ProbeSettings, batch: list[Sample], hooks: Hooks | None = None, steps: int | None = None,
             frames: int | None = None) -> torch.Tensor:
    """One batch sampled with the experiment's settings (and hooks, attached for the call)."""
    kw = dict(steps=steps or s.steps, shift=s.shift, guidance=s.guidance)
    if hooks is None:
        return model.generate(batch, seeds_of(batch), frames, **kw)
    with hooks:
        return model.generate(batch, seeds_of(batch), frames, hooks=hooks, **kw)


def condition_runner(model, s: ProbeSettings, make_hooks: Callable[[str, list[Sample]], "Hooks | None"],
                     extra: Callable[[list[Sample], torch.Tensor, "Hooks | None"], list[dict]] | None = None,
                     steps_of: Callable[[str], int | None] = lambda c: None,
                     frames_of: Callable[[str], int | None] = lambda c: None):
    """A `run` for experiment.run_grid where each condition is one sampling run with its own hooks."""
    scorers = s.scorers()

    def run(conds, batch):
        got = {}
        for c in conds:
            hooks = make_hooks(c, batch)
            lat = generate(model, s, batch, hooks, steps_of(c), frames_of(c))
            rows = score_outputs(model, batch, lat, scorers)
            if extra is not None:
                for r, e in zip(rows, extra(batch, lat, hooks)):
                    r.update(e)
            got[c] = rows
        return got
    return run


def summary_rows(rows_by_condition: dict[str, list[dict]], **extra_cols) -> list[dict]:
    """One row per condition in the statistics schema (n, solved, solve_rate, ci_low, ci_high, mean_score)."""
    out = []
    for c, rows in rows_by_condition.items():
        out.append({"condition": c, **summarize(rows), **{k: v(c) for k, v in extra_cols.items()}})
    return out
