"""Adaptation on the run side: roll out, take an inner step, roll out again.

The learner's maths (:mod:`metarl.adaptation`) maps episodes to adapted parameters and never
collects. This module drives a sampler around it: support rollouts with ``θ``, one inner step,
rollouts with ``θ'``, and so on, returning every batch of episodes and every set of parameters.
The trainer (a meta-iteration), the evaluation, ``metarl adapt``, the videos and the benchmark all
adapt through :func:`collect_adaptation`.

Randomness comes from a :class:`Streams` pair: the trainer passes its own streams; everything
else (evaluations, ``metarl adapt``/``render``, videos) takes fresh streams from one seed
(:meth:`Streams.from_seed`), derived where needed with :func:`derive_seed`, so it never touches a
run's streams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from metarl.adaptation import inner_step
from metarl.advantages import with_advantages
from metarl.config import AdvantageConfig, Config
from metarl.envs.base import Task
from metarl.episodes import Episodes
from metarl.policies import Params, stack_params
from metarl.samplers import Sampler

EVAL_SALT = {"test": 0xE7A1, "valid": 0x7A11D}  # keys of the evaluation seeds, per task set
VIDEO_SALT = 0x51DE0  # key of the training videos' seeds


@dataclasses.dataclass(frozen=True)
class AdaptationSettings:
    """How one adaptation runs: its inner steps, rollouts, step size and advantages.

    Attributes:
        steps: Inner gradient steps ``K`` (0: the meta-policy's rollouts alone).
        rollouts: Rollouts per task for every batch (support and query).
        fast_lr: Inner step size ``α``.
        advantage: Returns, baseline and advantage settings.
        latent_lr: Inner step size of a per-episode latent's parameters (``inner.latent_step``).
    """

    steps: int
    rollouts: int
    fast_lr: float
    advantage: AdvantageConfig
    latent_lr: float

    @classmethod
    def training(cls, config: Config) -> AdaptationSettings:
        """A meta-iteration's: ``inner.steps`` steps of ``inner.rollouts`` rollouts."""
        return cls(
            config.inner.steps, config.inner.rollouts, config.inner.fast_lr, config.advantage, config.inner.latent_step
        )

    @classmethod
    def evaluation(cls, config: Config, steps: int | None = None, rollouts: int | None = None) -> AdaptationSettings:
        """The periodic evaluation's (``run.eval_steps``, ``run.eval_rollouts``), or the given counts."""
        return cls(
            config.run.eval_steps if steps is None else steps,
            config.run.eval_rollouts if rollouts is None else rollouts,
            config.inner.fast_lr,
            config.advantage,
            config.inner.latent_step,
        )


class Streams(NamedTuple):
    """The two random streams of a collection.

    Attributes:
        rng: Source of the environments' reset seeds.
        generator: Source of the action noise.
    """

    rng: np.random.Generator
    generator: torch.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Streams:
        """Fresh streams from one seed (evaluations, ``metarl adapt``, videos: never a run's own)."""
        seq = np.random.SeedSequence(seed)
        return cls(np.random.default_rng(seq.spawn(1)[0]), torch.Generator().manual_seed(int(seq.generate_state(1)[0])))


def derive_seed(*keys: int) -> int:
    """A seed derived from ``keys`` (e.g. the run's seed, the iteration and a salt), independent of
    every stream the run draws from and of other keys' seeds."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


class Adaptation(NamedTuple):
    """The rollouts and the parameters of one adaptation, step by step.

    Attributes:
        episodes: ``steps + 1`` batches; batch ``k`` was collected with ``params[k]``, its
            advantages filled. The first ``steps`` are the support sets of the meta-loss and the
            last one is its query set.
        params: ``steps + 1`` stacked parameters ``[N, *shape]``, detached: the meta-parameters
            (for every task), then the adapted parameters after each inner step.
    """

    episodes: tuple[Episodes, ...]
    params: tuple[Params, ...]

    def task_params(self, index: int) -> list[Params]:
        """The unbatched parameters of task ``index`` after 0, 1, …, ``steps`` inner steps."""
        return [{k: v[index] for k, v in stacked.items()} for stacked in self.params]


def collect_adaptation(
    sampler: Sampler, params: Params, tasks: Sequence[Task], settings: AdaptationSettings, streams: Streams
) -> Adaptation:
    """Rolls out, adapts, rolls out again: the episodes and parameters before and after each inner step.

    Args:
        sampler: Collects the episodes (its policy is the architecture of ``params``).
        params: Meta-parameters (unbatched).
        tasks: ``N`` tasks.
        settings: Steps, rollouts, step size and advantages.
        streams: Where the reset seeds and the action noise come from.

    Returns:
        ``steps + 1`` batches of episodes and the ``steps + 1`` parameters they were collected
        with (see :class:`Adaptation`).
    """
    advantage = settings.advantage
    current = stack_params({k: v.detach() for k, v in params.items()}, len(tasks))
    batches: list[Episodes] = []
    stages: list[Params] = [current]
    for k in range(settings.steps + 1):
        episodes = sampler.collect(current, tasks, settings.rollouts, streams.rng, streams.generator)
        episodes = with_advantages(
            episodes,
            advantage.gamma,
            advantage.gae_lambda,
            advantage.normalize,
            advantage.baseline_reg,
            sampler.policy.obs_dim,  # not the latent: it is part of the first step's action
        )
        batches.append(episodes)
        if k < settings.steps:
            current = inner_step(
                policy=sampler.policy,
                params=current,
                episodes=episodes,
                fast_lr=settings.fast_lr,
                latent_lr=settings.latent_lr,
                first_order=True,
                create_graph=False,
            )
            stages.append({name: value.detach() for name, value in current.items()})
    return Adaptation(tuple(batches), tuple(stages))
