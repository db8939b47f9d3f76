"""Builders shared by several test modules (tests import these, never another test module)."""

from __future__ import annotations

from steplens.tasks import get_task, write_sample

# VBVR-style task folder names (no metadata.json, as in VBVR-Bench-Data)
VBVR_LAYOUT = {("In-Domain_50", "O-39_maze_data-generator"): "maze",
               ("Out-of-Domain_50", "G-7_maze-two-goals_data-generator"): "maze-two-goals"}


def make_vbvr(root, per_task=2, size=3, frames=3, scale=4):
    """A VBVR-Bench-layout folder (<split>/<task>/<idx>/, no metadata.json) of generated samples; their keys."""
    keys = []
    for (split, folder), task in VBVR_LAYOUT.items():
        for i in range(per_task):
            rel = f"{split}/{folder}/{i:05d}"
            write_sample(root, get_task(task).sample(100 + i, size, frames, idx=i), scale=scale, metadata=False,
                         rel=rel)
            keys.append(rel)
    return keys
