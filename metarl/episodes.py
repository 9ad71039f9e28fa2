"""The batch of episodes the sampler produces and the learner consumes."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Episodes(NamedTuple):
    """Rollouts of ``N`` tasks × ``R`` rollouts, horizon ``T``, laid out task-first.

    The task dimension comes first so that the learner can ``vmap`` over tasks.

    Attributes:
        obs: ``[N, T, R, obs_dim]`` observation before each action.
        actions: ``[N, T, R, act_dim]`` actions as sampled (before any clipping by the env).
        rewards: ``[N, T, R]``.
        masks: ``[N, T, R]`` 1.0 for steps that happened, 0.0 after the episode ended.
        log_probs: ``[N, T, R]`` log-probability of each action under the sampling policy.
        advantages: ``[N, T, R]`` (zeros until :func:`metarl.advantages.with_advantages`).
        success: ``[N, R]`` 1.0 where the episode reached success at any step, NaN where the
            family has no notion of success.
        unstable: ``[N, R]`` 1.0 where physics went unstable and ended the episode.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    masks: Tensor
    log_probs: Tensor
    advantages: Tensor
    success: Tensor
    unstable: Tensor

    @property
    def num_tasks(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_steps(self) -> int:
        """Environment steps that happened (masked steps are not counted)."""
        return int(self.masks.sum().item())

    @property
    def samples_per_task(self) -> int:
        """``T · R``: the time steps of one task's rollouts, masked steps included."""
        return int(self.rewards.shape[1] * self.rewards.shape[2])

    def tasks(self, chunk: slice) -> Episodes:
        """The episodes of the tasks in ``chunk`` (views, no copy)."""
        return Episodes(*(field[chunk] for field in self))

    def returns(self) -> Tensor:
        """Undiscounted return of every episode, ``[N, R]``."""
        return (self.rewards * self.masks).sum(1)

    def success_rate(self) -> float | None:
        """Fraction of episodes that succeeded, or None where the family has no success."""
        if torch.isnan(self.success).any():
            return None
        return float(self.success.mean().item())


CHUNK_SAMPLES = 8192
"""Samples (steps × rollouts × tasks) the learner processes at once.

Tasks are independent, so the learner's passes over a batch (inner steps, meta-loss, curvature,
line search) run over consecutive groups of tasks and add the results. Groups this size keep each
activation tensor at a few MB (``8192 × 100`` floats), where CPU kernels run from cache and
memory is recycled rather than freshly mapped; the learner is faster in such groups than in one
piece (the README's performance section has the figure).
"""


def task_chunks(num_tasks: int, samples_per_task: int, max_samples: int | None = None) -> list[slice]:
    """Consecutive groups of tasks holding at most ``max_samples`` samples each (one task at least).

    Args:
        num_tasks: ``N``.
        samples_per_task: ``T · R`` of one task.
        max_samples: Budget per group (default :data:`CHUNK_SAMPLES`).

    Returns:
        Slices covering ``range(num_tasks)`` in order.
    """
    budget = CHUNK_SAMPLES if max_samples is None else max_samples
    size = max(1, budget // max(1, samples_per_task))
    return [slice(i, min(i + size, num_tasks)) for i in range(0, num_tasks, size)]
