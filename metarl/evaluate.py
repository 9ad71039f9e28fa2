"""Adaptation curves: average return (and success) after 0, 1, …, K gradient steps.

:func:`evaluate_adaptation` measures parameters in hand (the trainer's evaluations);
:func:`evaluate_checkpoint` and :func:`adapt_checkpoint` are ``metarl evaluate`` and
``metarl adapt`` as functions: they load a checkpoint, build its experiment, adapt and report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
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
        env_steps: Environment steps these episodes took, over all tasks (counted, not ``N × R × T``:
            an episode that terminates early takes fewer).
    """

    step: int
    return_mean: float
    return_std: float
    success_rate: float | None
    seconds: float
    env_steps: int


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptationReport:
        """The report that :meth:`to_dict` wrote (keys it does not know are ignored).

        Raises:
            ReportError: A key is missing or of the wrong kind (one line).
        """
        try:
            steps = tuple(
                StepStats(
                    step=int(s["step"]),
                    return_mean=float(s["return_mean"]),
                    return_std=float(s["return_std"]),
                    success_rate=None if s["success_rate"] is None else float(s["success_rate"]),
                    seconds=float(s["seconds"]),
                    env_steps=int(s.get("env_steps", 0)),
                )
                for s in data["steps"]
            )
            per_task = list(data["per_task"])
            return cls(
                family=str(data["family"]),
                tasks=tuple(str(t) for t in data["tasks"]),
                steps=steps,
                per_task_returns=tuple(tuple(float(r) for r in t["returns"]) for t in per_task),
                per_task_success=tuple(
                    tuple(None if x is None else float(x) for x in t["success_rates"]) for t in per_task
                ),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ReportError(f"not an adaptation report ({type(err).__name__}: {err})") from None


class ReportError(ValueError):
    """An adaptation report cannot be read or compared (one-line message)."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """An adaptation curve read back from a JSON file, to draw beside others.

    Attributes:
        label: What the legend says: the file's ``label`` (``metarl baseline`` writes one), else its name.
        report: The curve.
        rollouts: Rollouts per task per step it was measured with, where the file says (its ``budget``).
        horizon: Steps per rollout, where the file says.
    """

    label: str
    report: AdaptationReport
    rollouts: int | None = None
    horizon: int | None = None


def read_curve(path: Path) -> Curve:
    """Reads a JSON report (``metarl evaluate --json``, ``metarl baseline --out``).

    Raises:
        ReportError: The file is missing, not JSON or not a report (one line naming it).
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{str(path)!r} is not a JSON report ({err})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{str(path)!r} is not a JSON report (a {type(data).__name__}, not a mapping)")
    try:
        report = AdaptationReport.from_dict(data)
    except ReportError as err:
        raise ReportError(f"{str(path)!r} is {err}") from None
    budget = data.get("budget") or {}
    rollouts, horizon = budget.get("rollouts"), budget.get("horizon")
    return Curve(
        label=str(data.get("label") or path.stem),
        report=report,
        rollouts=None if rollouts is None else int(rollouts),
        horizon=None if horizon is None else int(horizon),
    )


def check_comparable(curve: Curve, path: Path, family: str, tasks: Sequence[str], rollouts: int, horizon: int) -> None:
    """Refuses a curve measured on another family, other tasks or another sample budget.

    Args:
        curve: The curve read from ``path``.
        path: Its file, for the message.
        family: The family it must be of.
        tasks: The tasks (one-line forms) it must have been measured on, in order.
        rollouts: Rollouts per task per step it must have taken (where the file says).
        horizon: Steps per rollout (where the file says).

    Raises:
        ReportError: One line saying what differs.
    """
    where = f"{str(path)!r} ({curve.label})"
    if curve.report.family != family:
        raise ReportError(f"{where} is of family {curve.report.family}, not {family}")
    if curve.report.tasks != tuple(tasks):
        raise ReportError(
            f"{where} was measured on other tasks ({len(curve.report.tasks)}) than these ({len(tasks)}); "
            "give both the same --tasks"
        )
    if curve.rollouts is not None and curve.rollouts != rollouts:
        raise ReportError(
            f"{where} took {curve.rollouts} rollouts per step, not {rollouts}; give --rollouts {rollouts}"
        )
    if curve.horizon is not None and curve.horizon != horizon:
        raise ReportError(f"{where} ran episodes of {curve.horizon} steps, not {horizon}")


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
    returns = [b.returns().mean(1).tolist() for b in batches]  # [step][task]
    success = [_success(b) for b in batches]
    return curve_report(
        family,
        [t.to_string() for t in tasks],
        [[float(r[i]) for r in returns] for i in range(len(tasks))],
        [[s[i] for s in success] for i in range(len(tasks))],
        [seconds] * len(batches),
        [b.num_steps for b in batches],
    )


def curve_report(
    family: str,
    tasks: Sequence[str],
    returns: Sequence[Sequence[float]],
    success: Sequence[Sequence[float | None]],
    seconds: Sequence[float],
    env_steps: Sequence[int],
) -> AdaptationReport:
    """An adaptation curve from per-task figures, whatever produced them.

    Args:
        family: Family name.
        tasks: ``N`` tasks, one-line forms.
        returns: ``[N][K + 1]`` mean return of each task's episodes after ``k`` steps.
        success: ``[N][K + 1]`` success rate of each task's episodes (None: the family has none).
        seconds: ``[K + 1]`` wall time of each stage.
        env_steps: ``[K + 1]`` environment steps of each stage, over all tasks.

    Returns:
        Per step: mean and (population) standard deviation of the per-task means, and the
        mean of the per-task success rates.
    """
    stats = []
    for k in range(len(seconds)):
        per_task = [r[k] for r in returns]
        rates = [s[k] for s in success]
        rate = None if any(x is None for x in rates) else math.fsum(x or 0.0 for x in rates) / len(rates)
        mean = math.fsum(per_task) / len(per_task)
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in per_task) / len(per_task)) if len(per_task) > 1 else 0.0
        stats.append(StepStats(k, mean, std, rate, float(seconds[k]), int(env_steps[k])))
    return AdaptationReport(
        family=family,
        tasks=tuple(tasks),
        steps=tuple(stats),
        per_task_returns=tuple(tuple(float(x) for x in r) for r in returns),
        per_task_success=tuple(tuple(s) for s in success),
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
    path: Path,
    tasks: str | None = None,
    *,
    steps: int = 3,
    rollouts: int | None = None,
    seed: int = 0,
    fast_lr: float | None = None,
    overrides: Sequence[str] = (),
) -> AdaptationReport:
    """``metarl evaluate``: the adaptation curve of a checkpoint.

    Args:
        path: A checkpoint of a run, or one written by ``metarl adapt --save``.
        tasks: A :func:`task_set` name; None for ``test``, or an adapted checkpoint's own task.
        steps: Gradient steps ``K``.
        rollouts: Rollouts per task per step (default: the run's ``inner.rollouts``).
        seed: Seed of the rollouts.
        fast_lr: Inner step size (default: the run's ``inner.fast_lr``).
        overrides: ``section.key=value`` changes to the checkpoint's configuration for this
            evaluation (:func:`metarl.experiment.load_experiment`).

    Raises:
        CheckpointError, ConfigError, TaskError: A checkpoint, configuration or task set that
            cannot be used (one line).
    """
    curves = compare_checkpoint(
        path, (), tasks, steps=steps, rollouts=rollouts, seed=seed, fast_lr=fast_lr, overrides=overrides
    )
    return curves[0].report


def compare_checkpoint(
    path: Path,
    compare: Sequence[Path],
    tasks: str | None = None,
    *,
    steps: int = 3,
    rollouts: int | None = None,
    seed: int = 0,
    fast_lr: float | None = None,
    overrides: Sequence[str] = (),
) -> tuple[Curve, ...]:
    """``metarl evaluate --compare``: a checkpoint's adaptation curve and the curves to draw beside it.

    Args:
        path: As :func:`evaluate_checkpoint`'s, and so are ``tasks``, ``steps``, ``rollouts``,
            ``seed``, ``fast_lr`` and ``overrides``.
        compare: JSON curves (``metarl evaluate --json``, ``metarl baseline --out``); each is
            checked to be of the same family, tasks and budget before anything is rolled out.

    Returns:
        The checkpoint's curve (labelled with its algorithm and file name), then those of ``compare``.

    Raises:
        CheckpointError, ConfigError, TaskError, ReportError: A checkpoint, configuration, task
            set or curve that cannot be used (one line).
    """
    others = [read_curve(p) for p in compare]
    exp, ckpt = load_experiment(path, overrides)
    try:
        if tasks is None and ckpt.adaptation is not None:
            chosen = [exp.family.task_from_dict(ckpt.adaptation.task)]
        else:
            chosen = task_set(exp.family, tasks or "test", exp.config)
        settings = AdaptationSettings.evaluation(exp.config, steps, rollouts or exp.config.inner.rollouts)
        if fast_lr is not None:
            settings = dataclasses.replace(settings, fast_lr=fast_lr)
        horizon = exp.family.horizon
        for other_path, curve in zip(compare, others, strict=True):
            check_comparable(
                curve, other_path, exp.family.name, [t.to_string() for t in chosen], settings.rollouts, horizon
            )
        report = evaluate_adaptation(exp.sampler, ckpt.params, chosen, settings, seed)
    finally:
        exp.sampler.close()
    own = Curve(f"{exp.config.inner.algorithm} ({path.name})", report, settings.rollouts, horizon)
    return (own, *others)


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
