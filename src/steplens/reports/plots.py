"""Matplotlib figures (headless), written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io.files import atomic_path  # noqa: E402


def integer_steps(ax) -> None:
    """Step axes get integer ticks."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        # no "Software" stamp (matplotlib's version): the file depends on the figure alone (steplens.io.reproduce)
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def plot_cos(metrics: list[dict], path: Path, title: str = "", candidates: list | None = None) -> None:
    """Per-step score (axis 0-1) and changed pixels of x0_hat, for one run; the legend sits below the axes.
    With the task's listed answers (`candidates`: {label, right}, and `candidate_strengths` in the metrics) a
    second panel shows how strongly x0_hat draws each per step: right ones solid, wrong ones dashed."""
    steps = np.array([m.get("step", i) for i, m in enumerate(metrics)])  # a trace may hold chosen steps alone
    listed = bool(candidates) and "candidate_strengths" in metrics[0]
    if listed:
        fig, (ax, cx) = plt.subplots(2, 1, figsize=(5, 5.6), sharex=True, gridspec_kw={"height_ratios": [1, 1]})
        st = np.array([m["candidate_strengths"] for m in metrics])
        for i, c in enumerate(candidates):
            cx.plot(steps, st[:, i], "-" if c["right"] else "--", lw=1.4, label=c["label"] + ("" if c["right"]
                                                                                               else " (wrong)"))
        cx.axhline(0.25, color="grey", lw=0.8, ls=":")
        cx.set_ylim(0, 1.02)
        cx.set_ylabel("answer drawn in x0_hat (0-1)", fontsize=8)
        cx.set_xlabel("denoising step")
        cx.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, [m["score"] for m in metrics], "o-", ms=3, color="tab:blue", label="score of x0_hat")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("" if listed else "denoising step")
    integer_steps(ax)
    ax.set_ylabel("task score (0-1)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [m["candidate_mass"] for m in metrics], "s--", ms=3, color="tab:orange",
             label="changed pixels (candidate mass)")
    ax2.plot(steps, [m["off_target"] for m in metrics], ":", color="tab:red", label="of which off target")
    ax2.set_ylim(0, max(1, max(m["candidate_mass"] for m in metrics)) * 1.1)
    ax2.set_ylabel("pixels changed from frame 0", color="tab:orange")
    ax.set_title(title, fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3, fontsize=7,
               bbox_to_anchor=(0.5, -0.08))
    save(fig, path)


def default_grid_steps(n: int) -> list[int]:
    """The steps a static grid shows by default: 0, 1, 2, 5, 10 and the last (those that exist)."""
    return sorted({k for k in (0, 1, 2, 5, 10) if k < n} | {n - 1})


def plot_step_grid(frames: np.ndarray, sigmas: list[float], path: Path, steps: list[int] | None = None,
                   title: str = "", experts: list | None = None, names: list[int] | None = None) -> None:
    """A labelled step x frame grid of x0_hat: (S, T, H, W, 3) uint8; each row says its step and sigma. `steps`: the
    rows shown (default: a spread); `names`: the step each row of `frames` is (default: its index)."""
    steps = default_grid_steps(len(frames)) if steps is None else steps
    t = frames.shape[1]
    fig, axes = plt.subplots(len(steps), t, figsize=(0.9 * t + 1.2, 0.9 * len(steps) + 0.4), squeeze=False)
    for i, k in enumerate(steps):
        for f in range(t):
            ax = axes[i][f]
            ax.imshow(frames[k, f], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"frame {f}", fontsize=7)
        ex = f"\n{experts[k]}" if experts and experts[k] else ""
        name = k if names is None else names[k]
        axes[i][0].set_ylabel(f"step {name}\nσ={sigmas[k]:.2f}{ex}", fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title or "x0_hat at chosen steps (rows) and frames (columns)", fontsize=8)
    save(fig, path)


def plot_mean_curves(curves: dict[str, np.ndarray], path: Path, xlabel: str, ylabel: str, title: str = "",
                     bands: dict[str, np.ndarray] | None = None, ylim: tuple[float, float] | None = None) -> None:
    """Several mean curves (with optional +-band arrays) against a shared x axis (0..len-1)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, y in curves.items():
        x = np.arange(len(y))
        ax.plot(x, y, "o-", ms=3, label=name)
        if bands and name in bands:
            ax.fill_between(x, y - bands[name], y + bands[name], alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if "step" in xlabel:
        integer_steps(ax)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, path)
