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

    def returns(self) -> Tensor:
        """Undiscounted return of every episode, ``[N, R]``."""
        return (self.rewards * self.masks).sum(1)

    def success_rate(self) -> float | None:
        """Fraction of episodes that succeeded, or None where the family has no success."""
        if torch.isnan(self.success).any():
            return None
        return float(self.success.mean().item())
