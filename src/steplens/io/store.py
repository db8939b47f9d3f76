"""A results store for sweeps: rows keyed by what produced them, written atomically, resumable.

Rows live in `<dir>/rows.jsonl`, rewritten whole (temp file + rename) after every batch, so the file is
never half-written; a sweep that was stopped skips every key already there and never duplicates a row.
The configuration is kept beside the rows (written with the first row, so a run refused before any result
leaves nothing behind): resuming with another configuration is refused, when the store is opened and again,
under a lock on the folder, before every write. Of two writers started at once with different configurations,
the first to write claims the store and the other is refused before it writes a row; two writers of one
configuration merge their rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import atomic_write_json, atomic_write_text, config_diff, folder_lock


def row_key(row: dict, fields: tuple[str, ...]) -> tuple:
    return tuple(json.dumps(row[f], sort_keys=True) for f in fields)


class ResultsStore:
    def __init__(self, path: Path, key_fields: tuple[str, ...], config: dict | None = None):
        self.dir = Path(path)
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
            saved = json.loads(cfg_path.read_text())
            if saved != self.config:
                raise ValueError(f"{self.dir} holds results of another configuration; differing fields: "
                                 f"{config_diff(saved, self.config)}. Use another --out (or delete {self.dir}).")

    def _read(self) -> None:
        rows_path = self.dir / "rows.jsonl"
        if rows_path.exists():
            for line in rows_path.read_text().splitlines():
                if line.strip():
                    self._add(json.loads(line))

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
            new = sum(self._add(r) for r in rows)
            if new:
                if self.config is not None and not (self.dir / "store_config.json").exists():
                    atomic_write_json(self.dir / "store_config.json", self.config)  # only once there is a result
                atomic_write_text(self.dir / "rows.jsonl",
                                  "".join(json.dumps(r, default=str) + "\n" for r in self.rows))
        return new

    def select(self, **where) -> list[dict]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in where.items())]
