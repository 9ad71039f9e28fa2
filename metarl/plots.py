"""Matplotlib figures of a run: the learning curve and the adaptation curve (PNG, atomic)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from metarl.evaluate import AdaptationReport


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def plot_learning_curve(rows: Sequence[dict[str, float]], path: Path, title: str) -> None:
    """Pre- and post-adaptation return per iteration, with the held-out evaluations as markers."""
    fig, ax = plt.subplots(figsize=(7, 4))
    it = [r["iteration"] for r in rows]
    ax.plot(it, [r["adapt/pre_return"] for r in rows], label="train, before adaptation", color="tab:gray")
    ax.plot(it, [r["adapt/post_return"] for r in rows], label="train, after adaptation", color="tab:blue")
    ev = [r for r in rows if not math.isnan(r.get("eval/post_return", math.nan))]
    if ev:
        ax.plot(
            [r["iteration"] for r in ev],
            [r["eval/pre_return"] for r in ev],
            "s--",
            color="tab:gray",
            label="held-out, before",
            markersize=4,
        )
        ax.plot(
            [r["iteration"] for r in ev],
            [r["eval/post_return"] for r in ev],
            "o-",
            color="tab:orange",
            label="held-out, after",
            markersize=4,
        )
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("average return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def plot_adaptation(report: AdaptationReport, path: Path, title: str) -> None:
    """Average return after 0..K gradient steps (mean ± std over tasks)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    steps = [s.step for s in report.steps]
    means = [s.return_mean for s in report.steps]
    stds = [s.return_std for s in report.steps]
    ax.errorbar(steps, means, yerr=stds, marker="o", capsize=3)
    ax.set_xticks(steps)
    ax.set_xlabel("gradient steps of adaptation")
    ax.set_ylabel("average return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, path)
