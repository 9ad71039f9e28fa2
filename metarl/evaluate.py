"""Adaptation curves: average return (and success) after 0, 1, …, K gradient steps.

:func:`evaluate_adaptation` measures parameters in hand (the trainer's evaluations);
:func:`evaluate_checkpoint` and :func:`adapt_checkpoint` are ``metarl evaluate`` and
``metarl adapt`` as functions: they load a checkpoint, build its experiment, adapt and report.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from metarl.checkpoint import AdaptationRecord, Checkpoint, adapted_checkpoint
from metarl.config import Config
from metarl.envs.base import Task, TaskError, TaskFamily
from metarl.episodes import Episodes
from metarl.experiment import load_experiment
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


def task_set(family: TaskFamily, which: str, config: Config) -> list[Task]:
    """The tasks a name stands for.

    Args:
        family: The family.
        which: ``test`` (the held-out set), ``valid`` (the validation set that chose ``best.pt``),
            ``train`` (a meta-batch of training tasks drawn from the run's seed) or ``N`` (the
            first ``N`` held-out tasks).
        config: The run's configuration (meta-batch size and seed, for ``train``).

    Raises:
        TaskError: Any other name (one line).
    """
    test = family.test_tasks()
    if which == "test":
        return test
    if which == "valid":
        return family.validation_tasks()
    if which == "train":
        return family.sample_tasks(config.outer.meta_batch_size, np.random.default_rng(config.run.seed))
    if which.isdigit() and 1 <= int(which) <= len(test):
        return test[: int(which)]
    raise TaskError(f"tasks={which!r} is not allowed; allowed: test, valid, train or N in 1..{len(test)}")


def evaluate_checkpoint(
    path: Path, tasks: str | None = None, *, steps: int = 3, rollouts: int | None = None, seed: int = 0
) -> AdaptationReport:
    """``metarl evaluate``: the adaptation curve of a checkpoint.

    Args:
        path: A checkpoint of a run, or one written by ``metarl adapt --save``.
        tasks: A :func:`task_set` name; None for ``test``, or an adapted checkpoint's own task.
        steps: Gradient steps ``K``.
        rollouts: Rollouts per task per step (default: the run's ``inner.rollouts``).
        seed: Seed of the rollouts.

    Raises:
        CheckpointError, ConfigError, TaskError: A checkpoint, configuration or task set that
            cannot be used (one line).
    """
    exp, ckpt = load_experiment(path)
    try:
        if tasks is None and ckpt.adaptation is not None:
            chosen = [exp.family.task_from_dict(ckpt.adaptation.task)]
        else:
            chosen = task_set(exp.family, tasks or "test", exp.config)
        settings = AdaptationSettings.evaluation(exp.config, steps, rollouts or exp.config.inner.rollouts)
        return evaluate_adaptation(exp.sampler, ckpt.params, chosen, settings, seed)
    finally:
        exp.sampler.close()


class AdaptedCheckpoint(NamedTuple):
    """What :func:`adapt_checkpoint` made.

    Attributes:
        report: The adaptation curve on the one task.
        checkpoint: The adapted policy as a checkpoint (its task and the parameters after every
            step); write it with :func:`metarl.checkpoint.save_checkpoint`, and ``metarl render``
            and ``metarl evaluate`` read it.
    """

    report: AdaptationReport
    checkpoint: Checkpoint


def adapt_checkpoint(
    path: Path, task: str | Task, *, steps: int = 3, rollouts: int | None = None, seed: int = 0
) -> AdaptedCheckpoint:
    """``metarl adapt``: a checkpoint adapted to one task, with its adaptation curve.

    Args:
        path: A checkpoint of a run.
        task: The task, or what a user typed for it (its one-line form or a file, e.g. a grasp
            object's mesh).
        steps: Gradient steps ``K``.
        rollouts: Rollouts per step (default: the run's ``inner.rollouts``).
        seed: Seed of the rollouts.

    Raises:
        CheckpointError, ConfigError, TaskError: A checkpoint, configuration or task that cannot
            be used (one line).
    """
    exp, ckpt = load_experiment(path)
    rollouts = rollouts or exp.config.inner.rollouts
    try:
        chosen = exp.family.load_task(task) if isinstance(task, str) else task
        settings = AdaptationSettings.evaluation(exp.config, steps, rollouts)
        report, adaptation = adapt_and_report(exp.sampler, ckpt.params, [chosen], settings, seed)
    finally:
        exp.sampler.close()
    record = AdaptationRecord(chosen.to_dict(), tuple(adaptation.task_params(0)), str(path), seed, rollouts)
    return AdaptedCheckpoint(report, adapted_checkpoint(ckpt, record))


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
