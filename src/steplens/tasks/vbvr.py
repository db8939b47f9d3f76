"""The `vbvr` scorer: VBVR-Bench's own rule-based evaluators (VBVR-EvalKit), one per task, used when installed.

VBVR-EvalKit is not on the package registry: clone its repository and `pip install -e .` in the environment
that runs steplens. steplens never vendors it; without it, asking for this scorer is refused with that
instruction.

Per sample, the evaluator of the sample's task folder name (e.g. `O-39_maze_data-generator`) is called once as
`get_evaluator(task, device="cpu").evaluate({...})` with the generated video's path and the sample folder's
ground-truth files (video_path, gt_first_frame, gt_final_frame, gt_video_path, gt_path). A missing video is refused
(the evaluators would score it 0.15). That one call gives both of VBVR-EvalKit's modes (its `BaseEvaluator`
computes the five dimensions, then returns either the `task_specific` one, its default now, or their weighted mix,
`--full-score`): the score is the mode's (`--vbvr-score task-specific|full`, default task-specific), and each row
keeps both scores, the five dimensions and the mode. Success is score >= threshold (default 0.8; `--threshold`),
stated with the mode it applies to: VBVR-Bench reports scores, not successes, and a static copy of the first frame
already scores about 0.7 under the full score.

Every score records the evaluator (package version, SHA-256 of its source files). An evaluator that raises (or
reports an `error`) on one sample gives that sample score 0 with the error recorded, never a crash of the run.

No verifier here: VBVR-EvalKit's evaluators read the ground truth (gt_final_frame, gt_video_path), so they cannot
judge an answer at test time. Verify VBVR-Bench samples with a plug-in of the `steplens.verifiers` group, such as a
VLM judge (its interface: `steplens.tasks.verify`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from .contract import Score
from .registry import VBVR_INSTALL
from .sample import Sample
from .vbvr_kit import check_mode, closest, identity

DEFAULT_THRESHOLD = 0.8


def _gt_scale(sample: Sample) -> int:
    """The upscale of the sample's files: its folder's, or x16 for a generated sample (written for the evaluator)."""
    return sample.scale if sample.dir is not None else 16


def _plain(o):
    """numpy scalars and arrays (the evaluators return np.float64) as JSON values."""
    return o.item() if hasattr(o, "item") and getattr(o, "size", 1) == 1 else (o.tolist() if hasattr(o, "tolist")
                                                                             else str(o))


def _evaluators():
    try:
        from vbvr_bench import evaluators  # noqa: F401
    except ImportError as e:
        raise ValueError(f"the vbvr scorer needs VBVR-EvalKit (python package vbvr_bench), which is not importable "
                         f"here ({e}). {VBVR_INSTALL}") from None
    return evaluators


class VBVRScorer:
    name = "vbvr"
    kit = "VBVR-EvalKit"

    def __init__(self, threshold: float | None = None, device: str = "cpu", mode: str | None = None):
        self.mode = check_mode(mode)
        self.ev = _evaluators()
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.device = device
        self.source = identity(self.ev, self.kit)
        self._cache: dict[str, object] = {}

    def rule(self) -> str:
        """The success rule, with the mode it applies to."""
        return f"success = score >= {self.threshold:g} under the {self.mode} score"

    def known_tasks(self) -> list[str] | None:
        return list(self.ev.list_all_tasks()) if hasattr(self.ev, "list_all_tasks") else None

    def evaluator(self, task: str):
        if task not in self._cache:
            known = self.known_tasks()
            if known is not None and task not in known:  # get_evaluator itself fails obscurely on unknown names
                raise ValueError(f"{self.kit} has no evaluator for task folder {task!r}; it knows {len(known)} "
                                 f"tasks; {closest(task, known)}")
            try:
                self._cache[task] = self.ev.get_evaluator(task, device=self.device)
            except Exception as e:
                raise ValueError(f"{self.kit} has no evaluator for task folder {task!r}: {e}") from None
        return self._cache[task]

    def vbvr_task(self, task: str) -> str:
        """The VBVR-EvalKit task for a sample's task: its own name when VBVR-EvalKit knows it (a VBVR-Bench task
        folder), else its registered task's `vbvr_name` (steplens's maze: O-39_maze_data-generator)."""
        known = self.ev.list_all_tasks() if hasattr(self.ev, "list_all_tasks") else None
        if known is not None and task in known:
            return task
        from .registry import find_task

        t = find_task(task)
        return getattr(t, "vbvr_name", None) or task

    def check_task(self, task: str) -> None:
        self.evaluator(self.vbvr_task(task))

    def _gt_dir(self, sample: Sample, tmp: Path) -> Path:
        """The sample's folder, or one written for a generated sample (first/final frame, ground truth)."""
        if sample.dir is not None:
            return Path(sample.dir)
        from .sample import write_sample

        if sample.ground_truth is None:
            raise ValueError(f"sample {sample.name} has neither a folder nor a ground-truth video to score against")
        return write_sample(tmp, sample, scale=_gt_scale(sample), rel="gt")

    def _info(self, video_path: Path, d: Path, sample: Sample) -> dict:
        return {"video_path": str(video_path), "gt_video_path": str(d / "ground_truth.mp4"),
                "gt_first_frame": str(d / "first_frame.png"), "gt_final_frame": str(d / "final_frame.png"),
                "gt_path": str(d)}

    def _call(self, task: str, info: dict) -> dict:
        """The evaluator's result in full (five dimensions and the weighted score)."""
        return self.evaluator(task).evaluate(info)

    def _scores(self, r: dict) -> tuple[dict, dict]:
        """(scores by mode, dimensions) from a full result; a mode the result does not give is None."""
        dims = {k: float(v) for k, v in (r.get("dimensions") or {}).items()}
        return {"task-specific": dims.get("task_specific"), "full": float(r["score"])}, dims

    def _failed(self, error: str) -> Score:
        return Score(score=0.0, success=False, details={"mode": self.mode, "error": error,
                                                        "evaluator_sha256": self.source["sha256"]})

    def score_file(self, video_path: Path, sample: Sample) -> Score:
        """Score a video file (e.g. OUT/<split>/<task>/<idx>.mp4) as the evaluator kit would, in both modes. An
        evaluator that raises or reports an error gives score 0 with the error in details["error"]."""
        if not Path(video_path).is_file():  # the evaluators score a missing video 0.15 without a word
            raise FileNotFoundError(f"video not found: {video_path}")
        task = self.vbvr_task(sample.task)
        self.evaluator(task)  # an unknown task is the user's to fix: refused, not counted
        with tempfile.TemporaryDirectory(prefix="steplens-vbvr-") as tmp:
            d = self._gt_dir(sample, Path(tmp))
            try:
                r = self._call(task, self._info(video_path, d, sample))
            except Exception as e:  # a bug of the evaluator on this sample: recorded and counted
                return self._failed(f"{type(e).__name__}: {e}")
        if not isinstance(r, dict) or "score" not in r:
            return self._failed(f"the evaluator for {task!r} returned {type(r).__name__} without a 'score'")
        if r.get("error"):
            return self._failed(str(r["error"]))
        scores, dims = self._scores(r)
        if scores[self.mode] is None:
            return self._failed(f"the evaluator for {task!r} gave no {self.mode} score (dimensions: "
                                f"{', '.join(dims) or 'none'})")
        s = scores[self.mode]
        details = json.loads(json.dumps({k: v for k, v in r.items() if k not in ("score", "dimensions")},
                                        default=_plain))
        return Score(score=s, success=bool(s >= self.threshold),
                     details={"mode": self.mode, "scores": scores, "dimensions": dims,
                              "evaluator_sha256": self.source["sha256"], **details})

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        """Score frames: written to a temporary MP4 at the ground truth's size (nearest-neighbour; a whole multiple
        of the frames' size is an exact upscale), then as score_file."""
        from ..io.files import write_mp4
        from ..io.video import resize_nearest

        video = np.asarray(video)
        h, w = (_gt_scale(sample) * n for n in sample.first_frame.shape[:2])
        if h % 2 or w % 2:
            raise ValueError(f"sample {sample.name}: its ground truth is {w}x{h} pixels, which an H.264 video (the "
                             f"evaluator's input) cannot hold; score videos written at an even size with "
                             f"`steplens score --outputs DIR`")
        with tempfile.TemporaryDirectory(prefix="steplens-vbvr-") as tmp:
            path = Path(tmp) / "video.mp4"
            write_mp4(path, resize_nearest(video, h, w))
            got = self.score_file(path, sample)
        if got.details.get("error"):  # counted as score 0 where frames are scored (probes, trace, eval): said
            import warnings

            warnings.warn(f"{self.kit}'s evaluator failed on sample {sample.name} (scored 0): {got.details['error']}",
                          UserWarning, stacklevel=2)
        return got


SCORERS = {"vbvr": VBVRScorer}
