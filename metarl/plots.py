"""Matplotlib figures of a run: the learning curve and the adaptation curve (PNG, atomic)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from metarl.evaluate import AdaptationReport, Curve


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
    """Pre- and post-adaptation return per iteration, with the test (held-out) and validation
    evaluations as markers.

    Where the family defines success, a second panel shows the success rates the same way.
    """
    with_success = any(math.isfinite(r.get("adapt/success", math.nan)) for r in rows)
    fig, axes = plt.subplots(
        2 if with_success else 1, 1, figsize=(7, 6.5 if with_success else 4), sharex=True, squeeze=False
    )
    panels = [("return", "average return", 1.0)]
    if with_success:
        panels.append(("success", "success rate (%)", 100.0))
    for ax, (what, label, scale) in zip(axes[:, 0], panels, strict=True):
        pre, post = (
            ("adapt/pre_return", "adapt/post_return") if what == "return" else ("adapt/pre_success", "adapt/success")
        )
        eval_pre, eval_post = (
            ("test/pre_return", "test/post_return") if what == "return" else (None, "test/post_success")
        )
        valid_post = "valid/post_return" if what == "return" else "valid/post_success"
        it = [r["iteration"] for r in rows]
        ax.plot(it, [scale * r.get(pre, math.nan) for r in rows], label="train, before adaptation", color="tab:gray")
        ax.plot(it, [scale * r.get(post, math.nan) for r in rows], label="train, after adaptation", color="tab:blue")
        ev = [r for r in rows if math.isfinite(r.get(eval_post, math.nan))]
        valid = [r for r in rows if math.isfinite(r.get(valid_post, math.nan))]
        markers = [  # (evaluated rows, key, style, colour, label)
            (ev if eval_pre is not None else [], eval_pre, "s--", "tab:gray", "test tasks, before"),
            (ev, eval_post, "o-", "tab:orange", "test tasks, after"),
            (valid, valid_post, "^:", "tab:green", "validation tasks, after (chooses best.pt)"),
        ]
        for evaluated, key, style, color, name in markers:
            if evaluated and key is not None:
                xs, ys = [r["iteration"] for r in evaluated], [scale * r[key] for r in evaluated]
                ax.plot(xs, ys, style, color=color, label=name, markersize=4)
        ax.set_ylabel(label)
        if what == "success":
            ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("meta-iteration")
    axes[0, 0].set_title(title)
    _save(fig, path)


def plot_adaptation(report: AdaptationReport, path: Path, title: str) -> None:
    """Average return after 0..K gradient steps (mean ± std over tasks), and success where defined."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    steps = [s.step for s in report.steps]
    means = [s.return_mean for s in report.steps]
    stds = [s.return_std for s in report.steps]
    ax.errorbar(steps, means, yerr=stds, marker="o", capsize=3, color="tab:blue", label="return")
    ax.set_xticks(steps)
    ax.set_xlabel("gradient steps of adaptation")
    ax.set_ylabel(f"average return (mean ± std over {len(report.tasks)} tasks)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    rates = [s.success_rate for s in report.steps]
    if all(r is not None for r in rates):
        twin = ax.twinx()
        twin.plot(steps, [100.0 * (r or 0.0) for r in rates], "s--", color="tab:green", label="success")
        twin.set_ylabel("success rate (%)", color="tab:green")
        twin.set_ylim(-5, 105)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    _save(fig, path)


def plot_curves(curves: Sequence[Curve], path: Path) -> None:
    """:func:`plot_comparison` titled with the first curve's family and tasks and its sample budget."""
    first = curves[0]
    budget = f"{first.rollouts} rollouts x {first.horizon} steps per task"
    plot_comparison(
        curves,
        path,
        f"{first.report.family}: {len(first.report.tasks)} task(s)",
        xlabel=f"adaptation steps (each {budget})",
    )


def plot_comparison(
    curves: Sequence[Curve], path: Path, title: str, xlabel: str = "gradient steps of adaptation"
) -> None:
    """Several adaptation curves on one figure: return after 0..K steps (mean ± std over tasks), and
    a second panel of success rates where every curve has them.

    Args:
        curves: One line each (MAML's, the baselines'), in legend order.
        path: PNG to write (atomically).
        title: Figure title.
        xlabel: What one step is.
    """
    with_success = all(s.success_rate is not None for c in curves for s in c.report.steps)
    fig, axes = plt.subplots(
        2 if with_success else 1, 1, figsize=(6.5, 7 if with_success else 4.5), sharex=True, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v<>ph"
    ticks: set[int] = set()
    for i, curve in enumerate(curves):
        steps = [s.step for s in curve.report.steps]
        ticks.update(steps)
        shifted = [k + 0.04 * (i - (len(curves) - 1) / 2) for k in steps]  # error bars side by side
        style = {"color": colors[i % len(colors)], "marker": markers[i % len(markers)], "label": curve.label}
        means = [s.return_mean for s in curve.report.steps]
        stds = [s.return_std for s in curve.report.steps]
        axes[0, 0].errorbar(shifted, means, yerr=stds, capsize=3, **style)
        if with_success:
            axes[1, 0].plot(shifted, [100.0 * (s.success_rate or 0.0) for s in curve.report.steps], **style)
    tasks = len(curves[0].report.tasks) if curves else 0
    axes[0, 0].set_ylabel(f"average return (mean ± std over {tasks} tasks)")
    axes[0, 0].set_title(title)
    if with_success:
        axes[1, 0].set_ylabel("success rate (%)")
        axes[1, 0].set_ylim(-5, 105)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[-1, 0].set_xticks(sorted(ticks))
    axes[-1, 0].set_xlabel(xlabel)
    _save(fig, path)
