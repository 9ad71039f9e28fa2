"""Baselines for meta-learning, as the MAML paper draws them: is meta-learning worth it on this task?

Three baselines adapt to the same held-out tasks with the same sample budget as MAML's
adaptation, ``K`` steps of ``N`` rollouts of horizon ``T`` per task, and report the same curve
(:class:`~metarl.evaluate.AdaptationReport`: return and success after 0, 1, …, K steps):

=================  ===========================================================================
``scratch``        stable-baselines3 PPO from a random initialisation, on each task
``pretrained``     SB3 PPO trained first on the family's training distribution (a new task each
                   episode, for a stated number of env steps), saved with SB3's own ``save``,
                   then fine-tuned on each task like ``scratch``
``random-init``    metarl's own inner loop (the same ``fast_lr`` and steps as MAML's adaptation)
                   from a randomly initialised policy: the paper's "random" row
=================  ===========================================================================

**What a step is.** Point ``k`` of a curve is the policy after ``k`` updates, measured on the
``N`` episodes per task it collects; those episodes are what update ``k + 1`` learns from, as in
``metarl evaluate``. For MAML and ``random-init`` an update is one policy-gradient step on the
``N`` rollouts. For ``scratch`` and ``pretrained`` it is one PPO iteration: SB3 collects ``N × T``
env steps (``E`` environments × ``N·T/E`` steps each, so with no early termination exactly ``N``
whole episodes) and trains ``n_epochs`` passes over them. ``K`` steps therefore learn from
``K × N × T`` env steps per task, and measuring point ``K`` takes ``N × T`` more.

**Counting.** The env steps are counted as they happen, never computed: by the VecEnv wrapper
(:class:`~metarl.sb3_envs.EpisodeRecorder`) for PPO, by the sampler's masks for the inner loop;
each curve point carries its count (``env_steps``). A PPO stage always takes ``N × T`` steps and
its return is the mean over the episodes that ended in it. metarl's sampler takes ``N × T``
unless an episode terminates early, when the rest of that rollout is not played: PPO is then
never given fewer samples than MAML.

**Randomness.** Everything derives from one seed: a PPO seed per task and one for pretraining
(SB3 seeds torch, numpy and ``random`` globally from it, its own way, and resets environment ``i``
first with ``seed + i``), and the random initialisation of ``random-init``, whose rollouts draw
from the seed as ``metarl evaluate --seed`` does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from metarl.config import Config
from metarl.envs.base import Task
from metarl.envs.registry import make_family
from metarl.evaluate import AdaptationReport, curve_report, evaluate_adaptation, format_report
from metarl.experiment import build_experiment
from metarl.rollouts import AdaptationSettings, derive_seed
from metarl.sb3_envs import EpisodeRecorder, family_vec_env
from metarl.sb3_ppo import (
    BaselineError,
    Budget,
    ModelInfo,
    PPOSettings,
    check_model,
    family_options,
    ppo_curve,
    ppo_settings,
    pretrain,
    read_model_info,
)

__all__ = [
    "BASELINES",
    "BaselineError",
    "BaselineRequest",
    "BaselineResult",
    "Budget",
    "PPOSettings",
    "ppo_settings",
    "random_init_report",
    "run_baseline",
]

BASELINES = ("scratch", "pretrained", "random-init")
LABELS = {
    "scratch": "PPO from scratch",
    "pretrained": "PPO pretrained on the training tasks, fine-tuned",
    "random-init": "random initialisation + metarl's inner loop",
}
DEFAULT_PRETRAIN_STEPS = 200_000
_STREAM_FINETUNE, _STREAM_PRETRAIN, _STREAM_INIT = 1, 2, 3


def _seed(seed: int, stream: int, index: int) -> int:
    """A 31-bit seed for one use (pretraining, task ``index``, the initialisation) of the run's seed."""
    return derive_seed(seed, stream, index) >> 1  # SB3 and gymnasium take seeds below 2**31


def random_init_report(config: Config, tasks: Sequence[Task], budget: Budget, seed: int) -> AdaptationReport:
    """metarl's own adaptation (``inner.fast_lr``, ``K`` steps) from a random initialisation.

    The rollouts draw from ``seed`` exactly as ``metarl evaluate --seed`` does; the sampler is
    the local one whatever the configuration says.
    """
    local = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, backend="local"))
    threads = torch.get_num_threads()
    exp = build_experiment(local)
    try:
        init = exp.policy.init_params(torch.Generator().manual_seed(_seed(seed, _STREAM_INIT, 0)))
        inner = config.inner
        settings = AdaptationSettings(budget.steps, budget.rollouts, inner.fast_lr, config.advantage, inner.latent_step)
        return evaluate_adaptation(exp.sampler, init, tasks, settings, seed)
    finally:
        exp.sampler.close()
        torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class BaselineRequest:
    """What to run.

    Attributes:
        name: ``scratch``, ``pretrained`` or ``random-init``.
        config: MAML's configuration (a checkpoint's or an experiment file's).
        tasks: The held-out tasks.
        budget: ``K``, ``N``, ``T``.
        seed: Seed of everything.
        ppo: PPO settings (``scratch``, ``pretrained``).
        model: ``pretrained``: the model to start from if the file exists, else where to write it.
        pretrain_steps: ``pretrained``: env steps of pretraining when it runs (None: the default,
            :data:`DEFAULT_PRETRAIN_STEPS`); an existing model must have been trained with as many.
        source: Where ``config`` came from, for the record.
    """

    name: str
    config: Config
    tasks: tuple[Task, ...]
    budget: Budget
    seed: int = 0
    ppo: PPOSettings = dataclasses.field(default_factory=PPOSettings)
    model: Path | None = None
    pretrain_steps: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.name not in BASELINES:
            raise BaselineError(f"unknown baseline {self.name!r}; allowed: {', '.join(BASELINES)}")
        if self.name != "pretrained" and (self.model is not None or self.pretrain_steps is not None):
            raise BaselineError("--model and --pretrain-steps are for the pretrained baseline only")
        if self.model is not None and self.model.suffix != ".zip":
            raise BaselineError(f"--model={str(self.model)!r} must end in .zip (SB3's format)")
        if self.pretrain_steps is not None and self.pretrain_steps < 1:
            raise BaselineError(f"--pretrain-steps={self.pretrain_steps} is out of range; allowed: 1 or more")
        if not self.tasks:
            raise BaselineError("no tasks to adapt to")
        horizon = make_family(self.config.family.name, self.config.family.options).horizon
        if self.budget.horizon != horizon:
            raise BaselineError(f"budget horizon {self.budget.horizon} is not the family's episode length {horizon}")
        if self.name != "random-init":
            self.ppo.envs_for(self.budget)

    def default_model(self) -> Path:
        """``runs/baselines/<Family>-pretrained-<steps>-seed<S>.zip``."""
        steps = self.pretrain_steps or DEFAULT_PRETRAIN_STEPS
        return Path("runs") / "baselines" / f"{self.config.family.name}-pretrained-{steps}-seed{self.seed}.zip"


@dataclasses.dataclass(frozen=True)
class BaselineResult:
    """A baseline's adaptation curve and how it was made.

    :meth:`to_dict` is ``metarl evaluate --json``'s shape with ``label``, ``budget`` and
    ``baseline`` (what a step is, the counted env steps, the settings) added.

    Attributes:
        request: What was run.
        report: The curve; each point holds its counted env steps.
        seconds: Wall time of the adaptation over all tasks (pretraining apart).
        pretraining: The pretrained model's record (``pretrained``).
        model: The pretrained model's file (``pretrained``).
        pretrained_now: Whether the model was trained by this run.
        episodes: PPO: episodes that ended in each stage, over all tasks.
    """

    request: BaselineRequest
    report: AdaptationReport
    seconds: float
    pretraining: ModelInfo | None = None
    model: Path | None = None
    pretrained_now: bool = False
    episodes: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        return LABELS[self.request.name]

    def step_meaning(self) -> str:
        """What one step of the curve is, in words."""
        r = self.request
        n, t = r.budget.rollouts, r.budget.horizon
        if r.name == "random-init":
            return f"one policy-gradient step (fast_lr {r.config.inner.fast_lr:g}) on the {n} rollouts of {t} steps"
        return f"one PPO iteration ({r.ppo.n_epochs} epochs) on the {n} x {t} env steps the policy collected"

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        per_stage = [s.env_steps for s in self.report.steps]
        pre = self.pretraining
        return {
            **self.report.to_dict(),
            "label": self.label,
            "budget": r.budget.to_dict(),
            "baseline": {
                "name": r.name,
                "step": self.step_meaning(),
                "source": r.source,
                "seed": r.seed,
                "seconds": self.seconds,
                "env_steps": {
                    "per_step": per_stage,
                    "learnt_from": sum(per_stage[:-1]),
                    "measuring_the_last_step": per_stage[-1],
                    "pretraining": None if pre is None else pre.env_steps,
                },
                "episodes_per_step": None if self.episodes is None else list(self.episodes),
                "fast_lr": r.config.inner.fast_lr if r.name == "random-init" else None,
                "ppo": None if r.name == "random-init" else r.ppo.to_dict(),
                "model": None if self.model is None else str(self.model),
                "pretraining": None if pre is None else pre.to_dict(),
            },
        }

    def save(self, path: Path) -> None:
        """Writes :meth:`to_dict` as JSON to ``path`` (a temporary file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def format(self) -> str:
        """The curve's table and what it cost."""
        r = self.request
        per_stage = [s.env_steps for s in self.report.steps]
        lines = [
            f"baseline {r.name}: {self.label}",
            format_report(self.report),
            f"a step: {self.step_meaning()}",
            f"env steps, counted over {len(r.tasks)} task(s): {sum(per_stage[:-1])} learnt from "
            f"({r.budget.steps} x {r.budget.rollouts} x {r.budget.horizon} per task), "
            f"{per_stage[-1]} measuring the last step; {self.seconds:.2f} s",
        ]
        if self.pretraining is not None:
            verb = "pretrained" if self.pretrained_now else "pretrained earlier"
            lines.append(
                f"{verb}: {self.pretraining.env_steps} env steps on training tasks "
                f"({self.pretraining.seconds:.1f} s), model {self.model}"
            )
        return "\n".join(lines)


def run_baseline(request: BaselineRequest, progress: Callable[[str], None] | None = None) -> BaselineResult:
    """Runs one baseline on every task of ``request`` and returns its curve.

    ``pretrained`` starts from :func:`pretrained_model`'s model.

    Args:
        request: What to run.
        progress: Called with a line before pretraining and before each task (PPO baselines).

    Raises:
        BaselineError: A model that does not fit, or a budget SB3 did not keep (one line).
    """
    r = request
    if r.name == "random-init":
        start = time.perf_counter()
        report = random_init_report(r.config, r.tasks, r.budget, r.seed)
        return BaselineResult(r, report, time.perf_counter() - start)
    model, info, pretrained_now = pretrained_model(r, progress) if r.name == "pretrained" else (None, None, False)
    start = time.perf_counter()
    envs = r.ppo.envs_for(r.budget)
    venv = EpisodeRecorder(
        family_vec_env(r.config.family.name, family_options(r.config), r.tasks[0], envs, 0, r.ppo.vec_env)
    )
    curves = []
    try:  # one set of environments (and worker processes) for every task
        for i, task in enumerate(r.tasks):
            if progress is not None:
                progress(f"task {i + 1}/{len(r.tasks)}: {task.to_string()}")
            curves.append(ppo_curve(venv, r.config, task, r.budget, r.ppo, _seed(r.seed, _STREAM_FINETUNE, i), model))
    finally:
        venv.close()
    report = curve_report(
        r.config.family.name,
        [t.to_string() for t in r.tasks],
        [c.returns for c in curves],
        [c.success for c in curves],
        [sum(c.seconds[k] for c in curves) for k in range(r.budget.steps + 1)],
        [sum(c.env_steps[k] for c in curves) for k in range(r.budget.steps + 1)],
    )
    episodes = tuple(sum(c.episodes[k] for c in curves) for k in range(r.budget.steps + 1))
    return BaselineResult(r, report, time.perf_counter() - start, info, model, pretrained_now, episodes)


def pretrained_model(
    request: BaselineRequest, progress: Callable[[str], None] | None = None
) -> tuple[Path, ModelInfo, bool]:
    """The pretrained model of a ``pretrained`` request: read and checked, or trained now.

    An existing ``request.model`` (or, without one, the default path) is read and checked against
    the family, the observation and action sizes and the policy shape. Where there is none, PPO is
    pretrained for ``pretrain_steps`` and written there; a ``--model`` path that does not exist
    needs ``pretrain_steps`` said, so that a mistyped path does not start a long pretraining.

    Returns:
        The model's path, what it was trained on, and whether it was trained now.

    Raises:
        BaselineError: A model that does not fit, or a pretraining budget other than the one asked (one line).
    """
    r = request
    path = r.model or r.default_model()
    if path.exists():
        info = read_model_info(path)
        check_model(info, path, r.config)
        if r.pretrain_steps is not None and r.pretrain_steps != info.requested_steps:
            raise BaselineError(
                f"pretrained model {str(path)!r} was pretrained for {info.requested_steps} env steps, not "
                f"--pretrain-steps={r.pretrain_steps}; give another --model to pretrain anew"
            )
        return path, info, False
    if r.model is not None and r.pretrain_steps is None:
        raise BaselineError(
            f"pretrained model {str(path)!r} does not exist; give --pretrain-steps N to pretrain one there"
        )
    steps = r.pretrain_steps or DEFAULT_PRETRAIN_STEPS
    if progress is not None:
        progress(f"pretraining PPO on {r.config.family.name} training tasks for {steps} env steps")
    return path, pretrain(r.config, r.budget, r.ppo, steps, _seed(r.seed, _STREAM_PRETRAIN, 0), path), True
