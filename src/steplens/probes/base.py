"""What every probe shares: the skeleton of a run (`ProbeBase`), settings, samples, one condition = one sampling
run, summaries.

A probe is a set of named *conditions*; a condition builds the hooks for a batch (or none, for the
clean baseline). Every (condition, sample) gives one row: success, score, and whatever extra metrics
the probe computes from the run. The loop over them is steplens.experiments.grid.run_grid (resumable,
extendable with more samples). The contract a probe implements is `steplens.probes.contract.Probe`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..contract import identity
from ..experiments.dist import is_writer
from ..experiments.engine import Remote
from ..experiments.evaluate import generate_and_score, score_videos
from ..experiments.grid import (ExperimentSettings, load_samples, open_store, rows_of, run_grid, seeds_of,  # noqa: F401
                                write_results, write_table)
from ..experiments.stats import summarize
from ..hooks import Hooks
from ..io.video import to_uint8
from ..tasks import DEFAULT_TASK, Sample, Scorers
from ..tasks.folders import taken_as_is
from .contract import ProbeRun

ProbeSettings = ExperimentSettings  # the settings every probe takes

MakeHooks = Callable[[list[Sample], list[int]], "Hooks | None"]


def score_outputs(model, samples: list[Sample], latents: torch.Tensor, scorers: Scorers) -> list[dict]:
    return score_videos(samples, [to_uint8(v) for v in model.decode(latents)], scorers)


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
            lat, rows = generate_and_score(model, batch, scorers, frames_of(c), steps_of(c) or s.steps, s.shift,
                                           s.guidance, hooks)
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


def rebuild(model, probe, out: str, settings: ProbeSettings, options: dict):
    """In a worker of another engine (steplens.experiments.engine): the probe's batch run around this worker's
    model, and its samples by name; what `ProbeBase.run` builds before its loop."""
    r = ProbeRun(model, Path(out), settings, probe.options(model, settings, **options))
    r.samples = load_samples(model, settings)
    probe.prepare(r)
    r.conditions = probe.conditions(r)
    return probe.batch(r), {x.name: x for x in r.samples}


class ProbeBase:
    """The skeleton every probe shares (see steplens.probes.contract): a subclass gives its name, description,
    claims, conditions, batch run, summary and report section, and overrides the other steps where it has its
    own."""

    name: str = ""
    description: str = ""
    claims: tuple = ()
    study = None

    @property
    def kind(self) -> str:
        return f"probe {self.name}"

    def default_task(self) -> str:
        return DEFAULT_TASK

    def run(self, model, out: Path, settings: ProbeSettings, progress: bool = True, **options) -> dict:
        settings = settings.for_model(model)  # steps, shift, guidance left None: the model's own
        r = ProbeRun(model, Path(out), settings, self.options(model, settings, **options))
        r.samples = load_samples(model, settings)
        self.prepare(r)
        r.conditions = self.conditions(r)
        r.config = {**settings.describe(), **self.config(r), **identity(model)}  # the model, its weights, LoRAs, dtype
        store = open_store(r.out, self.name, r.config)
        if found := taken_as_is(r.samples):  # said in results.json, outside the store's identity
            r.config = {**r.config, "taken_as_is": found}
        remote = Remote(model, rebuild, (self, str(r.out), settings, options), key=str(r.out.resolve()))
        run_grid(store, list(r.conditions), r.samples, settings.batch, self.batch(r),
                 group=lambda c: self.group(r, c), desc=self.kind, progress=progress, remote=remote)
        rows = {c: rows_of(store, c, r.samples) for c in r.conditions}
        res = self.summary(r, rows)
        if is_writer():  # every process holds the merged rows; one writes the tables and plots
            self.write(r, res)
            self.finish(r, res, rows)
        return res

    def options(self, model, settings: ProbeSettings, **given) -> dict:
        return given

    def prepare(self, run: ProbeRun) -> None:
        pass

    def conditions(self, run: ProbeRun) -> dict:
        raise NotImplementedError

    def config(self, run: ProbeRun) -> dict:
        return dict(run.options)

    def batch(self, run: ProbeRun):
        raise NotImplementedError

    def group(self, run: ProbeRun, condition: str):
        return condition

    def summary(self, run: ProbeRun, rows: dict[str, list[dict]]) -> dict:
        raise NotImplementedError

    def write(self, run: ProbeRun, res: dict) -> None:
        write_results(run.out, self.name, run.settings, run.config, res["table"], res["headline"],
                      samples=len(run.samples))

    def finish(self, run: ProbeRun, res: dict, rows: dict[str, list[dict]]) -> None:
        pass

    def reads(self, data: dict) -> bool:
        return data.get("probe") == self.name

    def headline_text(self, headline: dict, table: list) -> str:
        return ""

    def report_section(self, rep, out: Path, res: dict, rel: str = ".") -> None:
        raise NotImplementedError
