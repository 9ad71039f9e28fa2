"""Adaptation curves: average return (and success) after 0, 1, …, K gradient steps."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from metarl.envs.base import Task
from metarl.episodes import Episodes
from metarl.policies import Params
from metarl.rollouts import Adaptation, AdaptationSettings, Streams, collect_adaptation
from metarl.samplers import Sampler


@dataclasses.dataclass(frozen=True)
class StepStats:
    """Statistics of the episodes collected after ``step`` gradient steps.

    Attributes:
        step: Inner gradient steps taken before these episodes.
        return_mean: Mean undiscounted return over tasks and rollouts.
        return_std: Standard deviation of the per-task mean returns.
        success_rate: Fraction of successful episodes, None where the family has no success.
        seconds: Wall time to collect these episodes and take the next step.
    """

    step: int
    return_mean: float
    return_std: float
    success_rate: float | None
    seconds: float


@dataclasses.dataclass(frozen=True)
class AdaptationReport:
    """An adaptation curve over a set of tasks, JSON-ready through :meth:`to_dict`."""

    family: str
    tasks: tuple[str, ...]
    steps: tuple[StepStats, ...]
    per_task_returns: tuple[tuple[float, ...], ...]  # [task][step]
    per_task_success: tuple[tuple[float | None, ...], ...]  # [task][step]

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "tasks": list(self.tasks),
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "per_task": [
                {"task": task, "returns": list(rets), "success_rates": list(succ)}
                for task, rets, succ in zip(self.tasks, self.per_task_returns, self.per_task_success, strict=True)
            ],
        }


def _success(episodes: Episodes) -> list[float | None]:
    if torch.isnan(episodes.success).any():
        return [None] * episodes.num_tasks
    return [float(x) for x in episodes.success.mean(1).tolist()]


def evaluate_adaptation(
    sampler: Sampler, params: Params, tasks: Sequence[Task], settings: AdaptationSettings, seed: int
) -> AdaptationReport:
    """Adapts ``params`` to each task for ``settings.steps`` gradient steps and records every stage.

    Args:
        sampler: Batched sampler of the task family.
        params: Meta-parameters (unbatched).
        tasks: Tasks to adapt to.
        settings: Gradient steps ``K`` (0 measures the meta-policy alone), rollouts per task per
            step, step size and advantages.
        seed: Seed of this evaluation's own random streams (it never touches a run's streams).
    """
    return adapt_and_report(sampler, params, tasks, settings, seed)[0]


def adapt_and_report(
    sampler: Sampler, params: Params, tasks: Sequence[Task], settings: AdaptationSettings, seed: int
) -> tuple[AdaptationReport, Adaptation]:
    """:func:`evaluate_adaptation`, with the adaptation itself: its episodes and the adapted parameters."""
    start = time.perf_counter()
    adaptation = collect_adaptation(sampler, params, tasks, settings, Streams.from_seed(seed))
    seconds = (time.perf_counter() - start) / len(adaptation.episodes)
    return adaptation_report(sampler.family.name, tasks, adaptation.episodes, seconds), adaptation


def adaptation_report(
    family: str, tasks: Sequence[Task], batches: Sequence[Episodes], seconds: float
) -> AdaptationReport:
    """The adaptation curve of ``batches`` (batch ``k`` collected after ``k`` steps) on ``tasks``."""
    stats = []
    for k, episodes in enumerate(batches):
        per_task = episodes.returns().mean(1)
        rate = episodes.success_rate()
        std = float(per_task.std(unbiased=False).item()) if per_task.numel() > 1 else 0.0
        stats.append(StepStats(k, float(per_task.mean().item()), std, rate, seconds))
    returns = [b.returns().mean(1).tolist() for b in batches]  # [step][task]
    success = [_success(b) for b in batches]
    return AdaptationReport(
        family=family,
        tasks=tuple(t.to_string() for t in tasks),
        steps=tuple(stats),
        per_task_returns=tuple(tuple(float(r[i]) for r in returns) for i in range(len(tasks))),
        per_task_success=tuple(tuple(s[i] for s in success) for i in range(len(tasks))),
    )


def format_report(report: AdaptationReport) -> str:
    """A small text table of the adaptation curve."""
    lines = [f"{report.family}: {len(report.tasks)} tasks", "step   return (mean ± std)   success"]
    for s in report.steps:
        succ = "   n/a" if s.success_rate is None else f"{100 * s.success_rate:5.1f}%"
        lines.append(f"{s.step:4d}   {s.return_mean:9.2f} ± {s.return_std:7.2f}   {succ}")
    if len(report.steps) > 1 and not math.isnan(report.steps[0].return_mean):
        gain = report.steps[-1].return_mean - report.steps[0].return_mean
        lines.append(f"adaptation gain after {len(report.steps) - 1} step(s): {gain:+.2f}")
    return "\n".join(lines)
