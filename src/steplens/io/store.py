"""A results store for sweeps: rows keyed by what produced them, written atomically, resumable.

Rows live in `<dir>/rows.jsonl`, rewritten whole (temp file + rename) after every batch, so the file is
never half-written; a sweep that was stopped skips every key already there and never duplicates a row.
The configuration is kept beside the rows (written with the first row, so a run refused before any result
leaves nothing behind): resuming with another configuration is refused, when the store is opened and again,
under a lock on the folder, before every write. Of two writers started at once with different configurations,
the first to write claims the store and the other is refused before it writes a row; two writers of one
configuration merge their rows.

Under several processes (torchrun ranks) each process writes only its own shard, `<dir>/rows-<rank>.jsonl`
(`shard=rank`), never a file another writes; readers merge `rows.jsonl` and every shard. `consolidate` (one
process, after every writer is done) folds the shards into `rows.jsonl`, in a given order, and removes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from .files import atomic_write_json, atomic_write_text, config_diff, folder_lock, read_config


def row_key(row: dict, fields: tuple[str, ...]) -> tuple:
    return tuple(json.dumps(row[f], sort_keys=True) for f in fields)


SHARD_GLOB = "rows-*.jsonl"


def _text(rows: list[dict]) -> str:
    return "".join(json.dumps(r, default=str) + "\n" for r in rows)


def read_rows(path: Path, data: bytes | None = None) -> list[dict]:
    """The rows of a JSON-lines file (one JSON object a line, blank lines skipped): a line that is not one (cut short
    by a kill, edited, another file) is refused naming the file and the line, never a bare JSON error."""
    data = Path(path).read_bytes() if data is None else data
    rows = []
    for i, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
            why = None if isinstance(row, dict) else f"a JSON {type(row).__name__}, not a row (an object)"
        except UnicodeDecodeError:
            why = "not UTF-8 text"
        except ValueError as e:
            why = f"not JSON ({e})"
        if why:
            raise ValueError(f"{path}, line {i + 1}: {why}; the results store is damaged: delete that line (or the "
                             f"file: its rows are then run again) or use another --out")
        rows.append(row)
    return rows


def shard_name(rank: int) -> str:
    return f"rows-{int(rank):05d}.jsonl"


class ResultsStore:
    def __init__(self, path: Path, key_fields: tuple[str, ...], config: dict | None = None,
                 shard: int | None = None):
        self.dir = Path(path)
        self.shard = shard  # None: the one writer (rows.jsonl); a rank: writes only rows-<rank>.jsonl
        self.key_fields = tuple(key_fields)
        self.rows: list[dict] = []
        self._keys: set[tuple] = set()
        self.config = None if config is None else json.loads(json.dumps(config, default=str))
        self._check()
        self._read()

    def _check(self) -> None:
        """Refuse a folder that holds results of another configuration, naming each differing field."""
        cfg_path = self.dir / "store_config.json"
        if self.config is not None and cfg_path.exists():
            saved = read_config(cfg_path)
            if saved != self.config:
                raise ValueError(f"{self.dir} holds results of another configuration; differing fields: "
                                 f"{config_diff(saved, self.config)}. Use another --out (or delete {self.dir}).")

    def _files(self) -> list[Path]:
        return [p for p in [self.dir / "rows.jsonl", *sorted(self.dir.glob(SHARD_GLOB))] if p.is_file()]

    @staticmethod
    def _lines(path: Path) -> list[dict]:
        """The rows of one file; a damaged line refused naming the file and the line."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a shard folded in by another process meanwhile: its rows are in rows.jsonl
            return []
        return read_rows(path, data)

    def _read(self) -> None:
        for path in self._files():
            for row in self._lines(path):
                self._add(row)

    def refresh(self) -> None:
        """Read what other writers (the other ranks' shards) stored since."""
        self._read()

    def _add(self, row: dict) -> bool:
        k = row_key(row, self.key_fields)
        if k in self._keys:
            return False
        self._keys.add(k)
        self.rows.append(row)
        return True

    def has(self, **key) -> bool:
        return row_key(key, self.key_fields) in self._keys

    def add(self, rows: list[dict]) -> int:
        """Add rows (skipping keys already stored) and persist; returns how many were new."""
        if all(row_key(r, self.key_fields) in self._keys for r in rows):
            return 0
        with folder_lock(self.dir):  # check, merge what another writer stored, write: one writer at a time
            self._check()
            self._read()
            fresh = [r for r in rows if self._add(r)]
            new = len(fresh)
            if new:
                if self.config is not None and not (self.dir / "store_config.json").exists():
                    atomic_write_json(self.dir / "store_config.json", self.config)  # only once there is a result
                if self.shard is None:
                    self._write(self.rows)
                else:  # this process's shard: the rows it held and those it adds, nothing another writes
                    mine = self.dir / shard_name(self.shard)
                    atomic_write_text(mine, _text((self._lines(mine) if mine.exists() else []) + fresh))
        return new

    def _write(self, rows: list[dict]) -> None:
        """rows.jsonl holds every row: the shards are folded in and removed."""
        atomic_write_text(self.dir / "rows.jsonl", _text(rows))
        for p in self.dir.glob(SHARD_GLOB):
            os.unlink(p)

    def consolidate(self, order: Callable[[dict], object] | None = None) -> None:
        """Fold every shard into rows.jsonl (rows sorted by `order`, stably; None: as stored) and remove them: what
        one process does once every writer is done. Nothing is written when rows.jsonl is already so."""
        with folder_lock(self.dir):
            self._read()
            rows = sorted(self.rows, key=order) if order is not None else list(self.rows)
            if not rows:
                return
            self.rows = rows
            main = self.dir / "rows.jsonl"
            if not list(self.dir.glob(SHARD_GLOB)) and main.exists() and main.read_text() == _text(rows):
                return
            self._write(rows)

    def select(self, **where) -> list[dict]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in where.items())]
