"""Matplotlib figures (headless), written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_path  # noqa: E402


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_cos(metrics: list[dict], path: Path, title: str = "") -> None:
    """Per-step score and candidate mass of x0_hat's final frame, for one run."""
    steps = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, [m["score"] for m in metrics], "o-", color="tab:blue", label="score of x0_hat")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("denoising step")
    ax.set_ylabel("task score", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [m["candidate_mass"] for m in metrics], "s--", color="tab:orange", label="candidate mass")
    ax2.plot(steps, [m["off_target"] for m in metrics], ":", color="tab:red", label="off-target")
    ax2.set_ylabel("pixels changed from frame 0", color="tab:orange")
    ax.set_title(title, fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=7)
    save(fig, path)


def plot_mean_curves(curves: dict[str, np.ndarray], path: Path, xlabel: str, ylabel: str, title: str = "",
                     bands: dict[str, np.ndarray] | None = None) -> None:
    """Several mean curves (with optional +-band arrays) against a shared x axis (0..len-1)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, y in curves.items():
        x = np.arange(len(y))
        ax.plot(x, y, "o-", ms=3, label=name)
        if bands and name in bands:
            ax.fill_between(x, y - bands[name], y + bands[name], alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save(fig, path)
