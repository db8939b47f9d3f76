"""Any results folder as a pandas DataFrame: `steplens.results(DIR)`, one row per (condition, sample).

The same column names for every folder: a probe's (`steplens probe NAME --out DIR`), a compare's, an evaluation's
(`steplens eval --out DIR`) and a study's (every part under it, with a `part` column):

    condition, sample, task, split, seed, score, success, nfe, nfe_without_reuse, ... (the probe's own columns)

`split`: for generated samples the part of the family's inputs they were drawn from (train, val, test: held out by
content), for a VBVR-Bench folder the sample's split folder (In-Domain_50, ...), else None. `seed`: the sample's noise
seed (a generated sample's seed; a folder sample's `--seed` + its index). `nfe_without_reuse`: what the row would
have cost without prefix reuse (equal to `nfe` where nothing was reused or it was not counted).

`steplens.results(DIR, "summary")` is the table the folder's report shows (results.json's `table`, one row per
condition or method; an evaluation's one line; a study's: its claim table, one row per claim and family, with the
verdict (`state`), its evidence and the part it was judged on).
"""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ["condition", "sample", "task", "split", "seed", "score", "success", "nfe", "nfe_without_reuse"]
KINDS = ("rows", "summary")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def _store_rows(store: Path) -> list[dict]:
    """Every row of a results store, rows.jsonl and its rank shards, read by the store's own reader (a damaged line is
    named with its file and line)."""
    from .store import SHARD_GLOB, read_rows

    return [r for path in [store / "rows.jsonl", *sorted(store.glob(SHARD_GLOB))] if path.is_file()
            for r in read_rows(path)]


def _sample_source(config: dict) -> tuple[bool, int]:
    """(samples read from a folder, its --seed) from a results folder's configuration."""
    settings = config.get("settings") if isinstance(config.get("settings"), dict) else config
    return settings.get("data") is not None, int(settings.get("seed") or 0)


def _split_and_seed(sample: str, from_folder: bool, seed0: int, part) -> tuple:
    parts = str(sample).split("/")
    try:
        idx = int(parts[-1])
    except ValueError:
        idx = None
    if from_folder:
        split = parts[0] if len(parts) >= 3 else None
        return split, None if idx is None else seed0 + idx
    return part, idx  # a generated sample's index is its seed


def _frame(rows: list[dict], config: dict, condition: str | None = None):
    import pandas as pd

    from_folder, seed0 = _sample_source(config)
    part = None if from_folder else (config.get("split") or (config.get("settings") or {}).get("split") or "test")
    if isinstance(part, list):
        part = part[0] if len(part) == 1 else None
    out = []
    for r in rows:
        r = dict(r)
        if condition is not None:
            r.setdefault("condition", condition)
        split, seed = _split_and_seed(r.get("sample", ""), from_folder, seed0, part)
        r.setdefault("split", split)
        r.setdefault("seed", seed)
        if r.get("nfe_without_reuse") is None:
            r["nfe_without_reuse"] = r.get("nfe")
        out.append(r)
    df = pd.DataFrame(out)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


def _one(folder: Path, what: str):
    import pandas as pd

    res = folder / "results.json"
    data = _read_json(res) if res.is_file() else {}
    config = {**(data.get("config") or {}), **({"settings": data["settings"]} if "settings" in data else {})}
    if what == "summary" and isinstance(data.get("per_sample"), list):  # steplens eval --out: one line
        keys = ("method", "n_seeds", "n", "solved", "solve_rate", "ci_low", "ci_high", "mean_score")
        return pd.DataFrame([{k: data.get(k) for k in keys}])
    if what == "summary":
        table = data.get("table")
        if not isinstance(table, list):
            raise ValueError(f"{folder}: its results.json has no summary table (is the run finished?)")
        return pd.DataFrame(table)
    store = folder / "store"
    if store.is_dir():
        return _frame(_store_rows(store), config)
    if isinstance(data.get("per_sample"), list):  # steplens eval --out
        method = data.get("method") or "single"
        label = method if not data.get("n_seeds") else f"{method} N={data['n_seeds']}"
        rows = data["per_sample"]
        nfe = (data.get("cost") or {}).get("nfe")
        if nfe is not None and rows and not any("nfe" in r for r in rows):  # spent alike per sample
            rows = [{**r, "nfe": nfe / len(rows)} for r in rows]
        return _frame(rows, config, condition=label)
    raise ValueError(f"{folder}: no results here (a probe, compare, eval or study folder holds store/rows.jsonl or "
                     f"results.json)")


def results(path, what: str = "rows"):
    """The results under `path` as a pandas DataFrame (see the module docstring): `what` = "rows" (one per condition
    and sample) or "summary" (the report's table). A study folder gives every part's, with a `part` column."""
    import pandas as pd

    if what not in KINDS:
        raise ValueError(f"what = {what!r}: one of {', '.join(KINDS)}")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such results folder")
    if what == "summary" and (folder / "study.json").is_file():  # a study's table: its claims, family by family
        claims = _read_json(folder / "study.json").get("claims") or {}
        return pd.DataFrame([{"claim": claim, "family": fam, **{k: v for k, v in cell.items() if k != "holds"}}
                             for claim, by in claims.items() for fam, cell in by.items()])
    if (folder / "store").is_dir() or (folder / "results.json").is_file() and not (folder / "study.json").is_file():
        return _one(folder, what)
    parts = sorted({p.parent for p in folder.rglob("results.json") if p.parent != folder})
    if not parts:
        raise ValueError(f"{folder}: no results here (a probe, compare, eval or study folder)")
    frames = []
    for p in parts:
        try:
            df = _one(p, what)
        except ValueError:
            continue  # a part not finished (or one without rows): the others still read
        df.insert(0, "part", str(p.relative_to(folder)))
        frames.append(df)
    if not frames:
        raise ValueError(f"{folder}: none of its parts holds results yet")
    return pd.concat(frames, ignore_index=True)
