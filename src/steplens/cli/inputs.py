"""The sample and score options, declared once (bundles, as steplens.cli.options): which samples a command reads or
generates (--data --split --tasks --task --count --seed --size --frames --batch) and how they are scored (--scorer
--threshold --vbvr-score --vbvr-pro-source --floors). A command takes its part of a bundle (`part`); the options keep
one name and one help text everywhere, only their defaults may differ per command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from ..tasks.registry import DEFAULT_TASK
from .options import _opt, part


@dataclass(frozen=True)
class SampleOptions:
    """Which samples: a folder (--data, filtered by --split / --tasks) or a task's generator (--task, --count, --seed,
    --size, --frames), and how many go into one model call (--batch)."""

    PANEL: ClassVar[str] = "Samples"

    data: Optional[Path] = _opt(None, "--data", help="folder of samples: steplens (<task>/<idx>/) or VBVR-Bench "
                                                     "(<split>/<task>/<idx>/) layout, found by looking")
    split: Optional[str] = _opt(None, "--split", help="with --data: only these splits of a VBVR-Bench folder, e.g. "
                                                      "In-Domain_50; with --task: the part of the generator's inputs, "
                                                      "split by what the model sees: train, val or test (default "
                                                      "test: held out of training)")
    tasks: Optional[str] = _opt(None, "--tasks", help="only these task folders (or task names) of --data, "
                                                      "comma-separated (default: all); study without --data: the "
                                                      "task families to study, or all (default: those the model was "
                                                      "trained on)")
    task: Optional[str] = _opt(DEFAULT_TASK, "--task", help="generate samples of this task (without --data; steplens tasks "
                                                      "list); probe: by default the probe's own (maze; swap: the "
                                                      "first task whose prompt chooses the answer, maze-two-goals); "
                                                      "demo: the families to show, a name, a comma-separated list or "
                                                      "'all' (default: those the model was trained on, else maze)")
    count: Optional[int] = _opt(None, "--count", min=1, help="samples: generated (default: eval and probe 100, "
                                                            "compare and study 500, trace 1, demo 6 of one task, "
                                                            "half one notch harder, or 1 of each of several), or the "
                                                            "first COUNT of --data's folder after the filters "
                                                            "(default: all; study: of each task folder; trace: 1); "
                                                            "study: per solve-rate figure")
    seed: int = _opt(0, "--seed", help="the noise seed of sample i is SEED + i; generated samples are drawn with the "
                                       "same seeds (held out: training draws seeds >= 1e9)")
    size: Optional[int] = _opt(None, "--size", help="the task's difficulty knob (a maze: n x n cells; default: the "
                                                    "task's)")
    frames: Optional[int] = _opt(None, "--frames", help="frames of a generated sample's video (default: the task's); "
                                                        "with --data, frames to generate (default: the sample's "
                                                        "metadata, else its ground_truth.mp4's, mapped to the model's)")
    batch: Optional[int] = _opt(None, "--batch", min=1, help="samples per model call (default: 1 on a diffusers:PATH "
                                                             "pipeline, else 50; run: 16)")

    def check(self) -> "SampleOptions":
        """The numbers that mean the same in every command (a count below 1, a seed out of range), named with their
        option, before the model loads; a size or a number of frames is checked against its task, and the folder,
        its filters and the task by the command (what they mean differs: a folder to read, families to study, a
        generator's part)."""
        from ..tasks.folders import SampleSource

        SampleSource(count=self.count, seed=self.seed)
        return self


@dataclass(frozen=True)
class ScoreOptions:
    """How outputs are scored: --scorer, --threshold, --vbvr-score, --vbvr-pro-source, --floors."""

    PANEL: ClassVar[str] = "Scoring"

    scorer: Optional[str] = _opt(None, "--scorer", help="scorer for every sample (default: each task's own: maze for "
                                                        "the mazes); vbvr = VBVR-EvalKit's evaluators, when that "
                                                        "package is installed")
    threshold: Optional[float] = _opt(None, "--threshold", help="success = score >= this, for continuous scorers "
                                                                "(vbvr: 0.8)")
    vbvr_score: Optional[str] = _opt(None, "--vbvr-score", help="with the vbvr scorer: task-specific (default, as "
                                                                "VBVR-EvalKit now: its task_specific dimension) | "
                                                                "full (its five dimensions weighted, --full-score); "
                                                                "each row keeps both")
    vbvr_pro_source: Optional[Path] = _opt(None, "--vbvr-pro-source", help="with --scorer vbvr-pro: the "
                                                                           "VBVR-Pro-Bench checkout whose evaluators "
                                                                           "score (else the environment variable "
                                                                           "STEPLENS_VBVR_PRO_SOURCE)")
    floors: bool = _opt(True, "--floors/--no-floors", help="with the vbvr scorer: score a static first frame, the "
                                                           "ground truth and a pan of every sample beside the model "
                                                           "(once per --out folder)")

    def check(self) -> "ScoreOptions":
        """The threshold in [0, 1] and the vbvr score mode, named, before any sample is read or model loaded (the
        scorer's name is checked against the tasks it scores, by the command)."""
        from ..io import checks

        checks.number("--threshold", self.threshold, 0, 1)
        if self.vbvr_score is not None:  # the mode, refused by the tasks' own check (no scorer built yet)
            from ..tasks import Scorers

            Scorers(None, None, vbvr_score=self.vbvr_score)
        return self

    def scorers(self, **options):
        """The steplens.tasks.Scorers these options name (`options`: a scorer's own, such as vbvr_pro_source)."""
        from ..tasks import Scorers

        return Scorers(self.scorer, self.threshold, vbvr_score=self.vbvr_score, **options)


def experiment_settings(sa: SampleOptions, so, sco: ScoreOptions, batch: int, **overrides):
    """steplens.experiments.grid.ExperimentSettings from the sample, sampling and score bundles (None left to the
    settings' defaults); `overrides` replace a bundle's value (a probe's own task, compare's 500 samples)."""
    from ..experiments.grid import ExperimentSettings

    kw = dict(data=sa.data, split=sa.split, tasks=sa.tasks, task=sa.task, count=sa.count, seed=sa.seed, size=sa.size,
              frames=sa.frames, steps=so.steps, shift=so.shift, guidance=so.guidance, batch=batch, scorer=sco.scorer,
              threshold=sco.threshold, vbvr_score=sco.vbvr_score)
    kw.update(overrides)
    return ExperimentSettings(**{k: v for k, v in kw.items() if v is not None})


SCORES = part(ScoreOptions, "scorer", "threshold", "vbvr_score")  # what the commands that score as they run take
