"""`steplens score` with a VBVR evaluator kit (the `vbvr` scorer): both score modes in every row, errors counted,
floors beside the model, and a results folder that resumes only from the same data and the same evaluator source.

With `--out DIR` the folder holds scores.json (every row, both modes), manifest.json (the data's sample ids and
file hashes), provenance.json (the evaluator's version and source SHA-256, the data manifest's hash, versions,
device) and floors.json with the floor videos under floors/ (scored once). A second `score` into DIR reuses the
rows whose output file is unchanged and refuses another evaluator source or changed data, naming them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..io.files import atomic_write_json, read_mp4, read_png, sha256_file, video_fps, write_mp4
from ..io.manifest import MANIFEST, PROVENANCE, manifest, manifest_diff, read_record, versions, write_record
from ..tasks import Sample, Scorers
from .stats import summarize

FLOORS = ("static first frame", "ground truth", "pan")
FLOORS_FILE = "floors.json"
SLUG = {"static first frame": "static", "ground truth": "ground-truth", "pan": "pan"}


def is_vbvr(scorer) -> bool:
    """A scorer of an evaluator kit (it has a mode and a pinned source)."""
    return hasattr(scorer, "mode") and hasattr(scorer, "source") and hasattr(scorer, "score_file")


def _row(s: Sample, sc, out_sha: str | None) -> dict:
    d = dict(sc.details)
    row = {"sample": s.name, "task": s.task, "missing": False, "success": bool(sc.success), "score": float(sc.score)}
    for k in ("mode", "scores", "dimensions", "error", "evaluator_sha256"):
        if k in d:
            row[k] = d.pop(k)
    return {**row, "output_sha256": out_sha, "details": d}


def _in_mode(row: dict, scorer) -> dict:
    """A recorded row read in the scorer's mode and threshold (both modes are recorded)."""
    if row.get("missing") or row.get("error") or "scores" not in row:
        return {**row, "mode": scorer.mode}
    s = row["scores"].get(scorer.mode)
    if s is None:
        return {**row, "mode": scorer.mode, "score": 0.0, "success": False,
                "error": f"no {scorer.mode} score recorded"}
    return {**row, "mode": scorer.mode, "score": float(s), "success": bool(s >= scorer.threshold)}


def summary(rows: list[dict]) -> dict:
    """summarize() plus the mean of each mode and the errors (an error and a missing output count as score 0)."""
    means = {}
    for m in ("task-specific", "full"):
        vals = [0.0 if (r.get("missing") or r.get("error")) else (r.get("scores") or {}).get(m) for r in rows]
        means[m] = float(np.mean(vals)) if vals and all(v is not None for v in vals) else None
    return {**summarize(rows), "mean_scores": means, "errors": sum(bool(r.get("error")) for r in rows)}


def _by_task(rows: list[dict]) -> dict:
    return {t: summary([r for r in rows if r["task"] == t]) for t in dict.fromkeys(r["task"] for r in rows)}


def check_record(record: Path, scorer, man: dict) -> dict:
    """Refuse a folder scored with another evaluator source or other data, naming both; the recorded rows (by
    sample) and floor rows to reuse."""
    old = read_record(record, PROVENANCE)
    if old is not None:
        a, b = old.get("evaluator") or {}, scorer.source
        if a.get("sha256") != b["sha256"]:
            raise ValueError(f"{record} was scored with {a.get('kit', 'an evaluator')} source sha256 {a.get('sha256')} "
                             f"(version {a.get('version')}, {a.get('path')}); the evaluator now is sha256 "
                             f"{b['sha256']} (version {b['version']}, {b['path']}): scores of two evaluator sources "
                             f"do not mix. Rescore into another --out folder, or restore that source")
    old_man = read_record(record, MANIFEST)
    if old_man is not None:
        diff = manifest_diff(old_man, man)
        if diff:
            raise ValueError(f"{record} was scored on other data: {diff}. Rescore into another --out folder, or "
                             f"restore the data as it was")
    prev = read_record(record, "scores.json") or {}
    floors = read_record(record, FLOORS_FILE) or {}
    return {"rows": {r["sample"]: r for r in prev.get("rows", [])}, "floors": floors.get("rows", {})}


def _floor_video(kind: str, d: Path, path: Path) -> Path:
    """The floor video of one sample folder: its ground_truth.mp4, or written to `path` at its frame count and fps:
    the first frame held still, or panned right by up to a quarter of its width (edge pixels repeated)."""
    gt = d / "ground_truth.mp4"
    if kind == "ground truth":
        return gt
    first = read_png(d / "first_frame.png")
    n, fps = len(read_mp4(gt)), video_fps(gt) or 16
    if kind == "static first frame":
        frames = np.repeat(first[None], n, 0)
    else:
        w = first.shape[1]
        shifts = [round(t * w / (4 * max(1, n - 1))) for t in range(n)]
        frames = np.stack([np.concatenate([np.repeat(first[:, :1], k, 1), first[:, :w - k]], 1) if k else first
                           for k in shifts])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, frames, fps=fps)
    return path


def score_floors(samples: list[Sample], scorer, where: Path, cached: dict) -> dict:
    """Every floor scored on every sample (reusing `cached` rows); rows by floor, in both modes."""
    out = {}
    for kind in FLOORS:
        had = {r["sample"]: r for r in cached.get(kind, [])}
        rows = []
        for s in samples:
            if s.name in had:
                rows.append(had[s.name])
                continue
            if s.dir is None:
                raise ValueError(f"sample {s.name} has no folder: floors are scored from a sample folder's files")
            video = _floor_video(kind, Path(s.dir), where / SLUG[kind] / f"{s.name}.mp4")
            rows.append(_row(s, scorer.score_file(video, s), None))
        out[kind] = rows
    return out


def floors_table(rows_by_floor: dict, scorer) -> dict:
    read = {k: [_in_mode(r, scorer) for r in v] for k, v in rows_by_floor.items()}
    tasks = list(dict.fromkeys(r["task"] for v in read.values() for r in v))
    return {"mode": scorer.mode,
            "per_task": {t: {k: summary([r for r in v if r["task"] == t]) for k, v in read.items()} for t in tasks},
            "overall": {k: summary(v) for k, v in read.items()}, "rows": read}


def floors_for(samples: list[Sample], scorers: Scorers, folder: Path | None = None) -> dict | None:
    """The floors table of samples read from a folder when a kit scores every one (else None), in the kit's mode;
    cached in folder/floors.json: a sample's floor rows are reused while the evaluator source and that sample's
    files (its manifest row) are the same (a grown --count scores only the new samples' floors)."""
    if not samples or any(s.dir is None for s in samples):
        return None
    kits = [scorers.for_sample(s) for s in samples]
    if not all(is_vbvr(k) for k in kits):
        return None
    scorer = kits[0]
    man = manifest([(s.name, s.dir) for s in samples])
    files = {r["sample"]: r["sha256"] for r in man["samples"]}
    old = read_record(folder, FLOORS_FILE) if folder is not None and Path(folder).is_dir() else None
    cached = {}
    if old and old.get("evaluator_sha256") == scorer.source["sha256"]:
        same = {n for n, h in (old.get("samples") or {}).items() if files.get(n) == h}
        cached = {k: [r for r in v if r["sample"] in same] for k, v in (old.get("rows") or {}).items()}
    if folder is not None:
        fl = score_floors(samples, scorer, Path(folder) / "floors", cached)
        atomic_write_json(Path(folder) / FLOORS_FILE, {"evaluator_sha256": scorer.source["sha256"],
                                                       "data_manifest_sha256": man["sha256"], "samples": files,
                                                       "rows": fl})
    else:
        with tempfile.TemporaryDirectory(prefix="steplens-floors-") as tmp:
            fl = score_floors(samples, scorer, Path(tmp), cached)
    return floors_table(fl, scorer)


def floors_beside(table: dict, model_rows: list[dict], label: str = "model") -> list[dict]:
    """Rows per task and overall: n, the model's mean score (its rows, scored in the table's mode; an error or a
    missing output counts 0) beside each floor's mean score in the same mode."""
    def row(name, rows, floors):
        return {"task": name, "n": len(rows), label: _mean(rows), **{k: floors[k]["mean_score"] for k in FLOORS}}

    tasks = list(dict.fromkeys([*table["per_task"], *(r["task"] for r in model_rows)]))
    out = [row(t, [r for r in model_rows if r["task"] == t], table["per_task"][t]) for t in tasks
           if t in table["per_task"]]
    return out + [row("overall", model_rows, table["overall"])]


def _mean(rows: list[dict]) -> float | None:
    return float(np.mean([float(r.get("score") or 0.0) for r in rows])) if rows else None


def floors_markdown(fl: dict) -> str:
    """The floors beside the model as a markdown table, its mode named."""
    rows = fl["beside"]
    cols = list(rows[0])
    cell = lambda v: _f(v) if isinstance(v, float) or v is None else str(v)  # noqa: E731
    return (f"Floors beside the model ({fl['mode']} mode): the same evaluator on the static first frame (repeated for "
            f"the sample's frame count), the ground-truth video and a pan of the first frame; mean scores.\n\n"
            + "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
            + "".join("| " + " | ".join(cell(r[c]) for c in cols) + " |\n" for r in rows))


def floor_lines(table: dict) -> list[str]:
    """Floors as lines: overall, then per task where there are several."""
    def line(name, d):
        return f"{name}: " + ", ".join(f"{k} {_f(d[k]['mean_score'])}" for k in FLOORS)
    out = [line(f"floors ({table['mode']} mode) overall", table["overall"])]
    if len(table["per_task"]) > 1:
        out += [line(f"  {t}", d) for t, d in table["per_task"].items()]
    return out


def score_vbvr(samples: list[Sample], outputs: Path, scorers: Scorers, record: Path | None = None,
               floors: bool = True, progress: bool = True) -> dict:
    """Score OUT/<sample's place>.mp4 of every sample with the kit's evaluators (see the module docstring)."""
    from tqdm import tqdm

    from .outputs import output_paths

    outputs = Path(outputs)
    if not outputs.is_dir():
        raise FileNotFoundError(f"outputs folder not found: {outputs}" if not outputs.exists()
                                else f"--outputs {outputs} is a file, not a folder of outputs")
    scorers.check(samples)
    scorer = scorers.for_sample(samples[0])
    if hasattr(scorer, "check_samples"):  # a kit's own layout (VBVR-Pro-Bench: metadata.json in every sample)
        scorer.check_samples(samples)
    man = manifest([(s.name, s.dir) for s in samples])
    prov = {"stage": "score", "scorer": scorer.name, "mode": scorer.mode, "threshold": scorer.threshold,
            "evaluator": scorer.source, "data_manifest_sha256": man["sha256"], **versions(),
            "device": getattr(scorer, "device", "cpu")}
    prev = check_record(record, scorer, man) if record is not None else {"rows": {}, "floors": {}}
    rows = []
    for s in tqdm(samples, disable=not progress, desc="score"):
        mp4, png = output_paths(outputs, s)
        if not mp4.exists():
            rows.append({"sample": s.name, "task": s.task, "missing": True, "success": False, "score": 0.0,
                         "mode": scorer.mode, **({"note": f"{png.name} only: the evaluators read videos"}
                                                  if png.exists() else {})})
            continue
        sha = sha256_file(mp4)
        old = prev["rows"].get(s.name)
        if old is not None and old.get("output_sha256") == sha and not old.get("missing"):
            rows.append(_in_mode(old, scorer))
            continue
        rows.append(_row(s, scorer.score_file(mp4, s), sha))
    missing = sum(bool(r["missing"]) for r in rows)
    if missing == len(rows):
        raise FileNotFoundError(f"none of the {len(rows)} outputs is in {outputs} (e.g. "
                                f"{output_paths(outputs, samples[0])[0]} is missing): a wrong --outputs folder, or "
                                f"`steplens run` not run yet")
    res = {**summary(rows), "missing": missing, "scorer": scorers.describe(), "mode": scorer.mode,
           "rule": scorer.rule(), "errors_in_means": "an evaluator error counts as score 0 in every mean, as does a "
           "missing output", "evaluator": scorer.source, "per_task": _by_task(rows), "rows": rows}
    if hasattr(scorer, "summary"):  # the kit's own summary (VBVR-Pro-Bench: per split and per cognitive category)
        res["summary"] = scorer.summary(rows)
    if floors:
        if record is not None:
            fl = score_floors(samples, scorer, Path(record) / "floors", prev["floors"])
        else:
            with tempfile.TemporaryDirectory(prefix="steplens-floors-") as tmp:
                fl = score_floors(samples, scorer, Path(tmp), {})
        res["floors"] = floors_table(fl, scorer)
    if record is not None:
        Path(record).mkdir(parents=True, exist_ok=True)
        write_record(record, MANIFEST, man)
        write_record(record, PROVENANCE, prov)
        if floors:
            atomic_write_json(Path(record) / FLOORS_FILE, {
                "evaluator_sha256": scorer.source["sha256"], "data_manifest_sha256": man["sha256"],
                "samples": {r["sample"]: r["sha256"] for r in man["samples"]}, "rows": fl})
    return res


def table_lines(res: dict) -> list[str]:
    """The table `score` prints: per task and overall, the model in both modes beside the floors (in the mode)."""
    mode = res["mode"]
    fl = res.get("floors")
    head = ["task", "n", "model task-specific", "model full"] + (list(FLOORS) if fl else []) + ["errors"]

    def cells(name, s, floors):
        m = s["mean_scores"]
        f = [floors[k]["mean_score"] for k in FLOORS] if floors else []
        return [name, str(s["n"])] + [_f(m["task-specific"]), _f(m["full"])] + [_f(x) for x in f] + [str(s["errors"])]

    body = [cells(t, s, fl["per_task"].get(t) if fl else None) for t, s in res["per_task"].items()]
    body.append(cells("overall", res, fl["overall"] if fl else None))
    width = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    ev = res["evaluator"]
    lines = [f"VBVR scores ({ev['kit']} version {ev['version'] or 'unknown'}, source sha256 "
             f"{ev['sha256'][:16]}), {mode} mode: {res['rule']}; floors in the {mode} mode; "
             f"{res['errors_in_means']}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, width)) for r in [head] + body]
    if "summary" in res:
        sm = res["summary"]
        lines.append(f"{ev['kit']} summary ({mode}): " + ", ".join(
            f"{k} {v['mean_score']:.4f} ({v['num_samples']} samples)" for k, v in sm.items()) + "; by category: "
            + ", ".join(f"{c} {x:.4f}" for c, x in sorted(sm["overall"]["by_category"].items(),
                                                          key=lambda kv: -kv[1])))
    return lines


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"
