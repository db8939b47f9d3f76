"""The `vbvr-pro` scorer: VBVR-Pro-Bench's own evaluators (Video-Reason/VBVR-Pro-Bench), from a source folder the user
names, never vendored.

VBVR-Pro-Bench is a checkout, not an installed package, and its package has the name of VBVR-EvalKit's in some
versions (`vbvr_bench`; `vbvr_pro_bench` since): steplens imports `<source>/vbvr_pro_bench/evaluators` (else
`<source>/vbvr_bench/evaluators`) under a private name, apart from any installed `vbvr_bench`. The source folder:
`--vbvr-pro-source DIR` or the environment variable STEPLENS_VBVR_PRO_SOURCE.

The data: the VBVR layout `<split>/<task>/<idx>/` with a required `metadata.json` in every sample folder (the
symbolic ground truth its evaluators check). Each sample is scored as its `run_evaluation_video.py` does:
`get_evaluator(task, device).evaluate({video_path, task_name, no_ssim_fallback, gt_path, metafile_path:
[<sample>/metadata.json, ./annotations/<task>/<idx>.json], gt_video_path, gt_first_frame, gt_final_frame, prompt},
task_specific_only=True)`. Task-specific scores only (a full score is refused); aggregates per split and per
cognitive category (its `get_task_category`), an error or a missing output counting as 0, as there.
"""

from __future__ import annotations

import os
from pathlib import Path

from .sample import Sample
from .vbvr import DEFAULT_THRESHOLD, VBVRScorer
from .vbvr_kit import check_mode, identity, load_isolated

ENV = "STEPLENS_VBVR_PRO_SOURCE"
OPTION = "--vbvr-pro-source"
PACKAGES = ("vbvr_pro_bench", "vbvr_bench")
FOLDER_TO_SPLIT = {"In-Domain_50": "In_Domain", "Out-of-Domain_50": "Out_of_Domain"}  # its summary's split names


def check_source(source: str | Path | None) -> tuple[Path, str]:
    """The source folder (option, else environment) and the package it holds; refused, naming what was looked for."""
    where = OPTION if source is not None else ENV
    source = source if source is not None else os.environ.get(ENV)
    if not source:
        raise ValueError(f"the vbvr-pro scorer needs VBVR-Pro-Bench's source folder: give {OPTION} DIR or set {ENV} "
                         f"(clone Video-Reason/VBVR-Pro-Bench; steplens loads its evaluators from there, apart from "
                         f"VBVR-EvalKit, whose package has the same name)")
    d = Path(source)
    if not d.is_dir():
        raise ValueError(f"{where} {d}: {'not found' if not d.exists() else 'is a file, not a folder'}; expected a "
                         f"VBVR-Pro-Bench checkout (a folder holding vbvr_pro_bench/evaluators/)")
    for pkg in PACKAGES:
        if (d / pkg / "evaluators" / "__init__.py").is_file():
            return d, pkg
    raise ValueError(f"{where} {d} is not a VBVR-Pro-Bench source folder: it holds neither "
                     f"{' nor '.join(f'{p}/evaluators/__init__.py' for p in PACKAGES)} (clone "
                     f"Video-Reason/VBVR-Pro-Bench and name its folder)")


class VBVRProScorer(VBVRScorer):
    name = "vbvr-pro"
    kit = "VBVR-Pro-Bench"

    def __init__(self, threshold: float | None = None, device: str = "cpu", mode: str | None = None,
                 source: str | Path | None = None):
        self.mode = check_mode(mode)
        if self.mode != "task-specific":
            raise ValueError(f"--vbvr-score {mode}: VBVR-Pro-Bench scores task-specific only (its "
                             f"run_evaluation_video.py); allowed with vbvr-pro: task-specific")
        folder, package = check_source(source)
        self.ev, pkg = load_isolated(folder, package, OPTION)
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.device = device
        self.source = identity(self.ev, self.kit, folder=pkg, package=package)
        self._cache: dict[str, object] = {}

    def known_tasks(self) -> list[str] | None:
        m = getattr(self.ev, "TASK_EVALUATOR_MAP", None)
        return list(m) if m is not None else super().known_tasks()

    def vbvr_task(self, task: str) -> str:
        return task  # Pro-Bench folders carry its task names

    def check_samples(self, samples: list[Sample]) -> None:
        """Every sample a Pro-Bench sample folder: metadata.json present (its evaluators read it)."""
        for s in samples:
            if s.dir is None or not (Path(s.dir) / "metadata.json").is_file():
                where = f"{s.dir}" if s.dir is not None else "a generated sample"
                raise ValueError(f"sample {s.name} ({where}) has no metadata.json: VBVR-Pro-Bench samples carry their "
                                 f"symbolic ground truth there, which the vbvr-pro scorer's evaluators read; score a "
                                 f"VBVR-Pro-Bench folder, or this one with --scorer vbvr")
            split = s.name.split("/")[0]
            if split not in FOLDER_TO_SPLIT:  # --data at a split folder: the per-split means would lose the sample
                raise ValueError(f"sample {s.name} ({s.dir}) lies under no VBVR-Pro-Bench split folder "
                                 f"({', '.join(FOLDER_TO_SPLIT)}), so its split means could not count it as "
                                 f"run_evaluation_video.py does: give --data the Pro-Bench root that holds the split "
                                 f"folders (--split picks one)")

    def category(self, task: str) -> str:
        f = getattr(self.ev, "get_task_category", None)
        return f(task) if f is not None else "Unknown"

    def summary(self, rows: list[dict]) -> dict:
        """Its run_evaluation_video.py's summary of these rows (pro_summary)."""
        return pro_summary(rows, self.category)

    def _info(self, video_path: Path, d: Path, sample: Sample) -> dict:
        idx = d.name
        info = {"video_path": str(video_path), "task_name": self.vbvr_task(sample.task), "no_ssim_fallback": True,
                "gt_path": str(d), "metafile_path": [str(d / "metadata.json"),
                                                     os.path.join("./annotations", sample.task, f"{idx}.json")]}
        for key, name in (("gt_video_path", "ground_truth.mp4"), ("gt_first_frame", "first_frame.png"),
                          ("gt_final_frame", "final_frame.png")):
            info[key] = str(d / name) if (d / name).exists() else None
        info["prompt"] = (d / "prompt.txt").read_text().strip() if (d / "prompt.txt").exists() else None
        return info

    def _call(self, task: str, info: dict) -> dict:
        return self.evaluator(task).evaluate(info, task_specific_only=True)

    def _scores(self, r: dict) -> tuple[dict, dict]:
        dims = {k: float(v) for k, v in (r.get("dimensions") or {}).items()}
        return {"task-specific": float(r["score"]), "full": None}, dims


def pro_summary(rows: list[dict], category) -> dict:
    """VBVR-Pro-Bench's summary of rows: per split (In_Domain, Out_of_Domain) and overall, the mean score, the number
    of samples, the mean by task and by category; an error or a missing output counts as 0."""
    out = {}
    for split in ("In_Domain", "Out_of_Domain", "overall"):
        mine = [r for r in rows if split == "overall" or FOLDER_TO_SPLIT.get(r["sample"].split("/")[0]) == split]
        scores = [0.0 if (r.get("missing") or r.get("error")) else float(r["score"]) for r in mine]
        by_task, by_cat = {}, {}
        for r, s in zip(mine, scores):
            by_task.setdefault(r["task"], []).append(s)
            by_cat.setdefault(category(r["task"]), []).append(s)
        out[split] = {"mean_score": sum(scores) / len(scores) if scores else 0.0, "num_samples": len(scores),
                      "by_task": {k: sum(v) / len(v) for k, v in by_task.items()},
                      "by_category": {k: sum(v) / len(v) for k, v in by_cat.items()}}
    return out


SCORERS = {"vbvr-pro": VBVRProScorer}
