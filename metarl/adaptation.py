"""The inner loop, written once: used by the sampler side and inside the meta-loss.

``adapt`` maps meta-parameters ``θ`` and the support episodes of ``N`` tasks to the stack of
adapted parameters ``θ'_i = θ − α ∇ L_i(θ)`` (repeated for each inner step, each step with its
own episodes). With ``create_graph=True`` the result stays differentiable in ``θ`` (MAML's
second-order meta-gradient); with ``first_order=True`` the inner gradients are constants, so
``∂θ'/∂θ = I`` exactly (FOMAML).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from metarl.advantages import with_advantages
from metarl.config import AdvantageConfig
from metarl.envs.base import Task
from metarl.episodes import Episodes, task_chunks
from metarl.policies import GaussianMLPPolicy, Params, gaussian_log_prob, stack_params
from metarl.samplers import Sampler


def inner_loss(policy: GaussianMLPPolicy, params: Params, episodes: Episodes) -> Tensor:
    """REINFORCE loss of each task: ``−mean_t,r log π(a|s) · A`` over the valid steps.

    Args:
        policy: Architecture.
        params: Stacked parameters ``[N, *shape]``.
        episodes: Support episodes of the ``N`` tasks, advantages filled.

    Returns:
        ``[N]`` per-task losses.
    """
    mean, log_std = policy.task_distribution(params, episodes.obs)
    logp = gaussian_log_prob(mean, log_std, episodes.actions)
    masks = episodes.masks
    return -(logp * episodes.advantages * masks).sum((1, 2)) / masks.sum((1, 2)).clamp(min=1.0)


def inner_step(
    policy: GaussianMLPPolicy,
    params: Params,
    episodes: Episodes,
    fast_lr: float,
    *,
    first_order: bool,
    create_graph: bool,
) -> Params:
    """One policy-gradient step for every task at once.

    The tasks are independent, so the gradient of the summed loss with respect to the stacked
    parameters holds each task's own gradient in its slice. Large batches are processed in
    groups of tasks (:func:`metarl.episodes.task_chunks`); the result does not depend on it.

    Args:
        policy: Architecture.
        params: Stacked parameters ``[N, *shape]``.
        episodes: Support episodes with advantages.
        fast_lr: Inner step size α.
        first_order: Treat the inner gradient as a constant (FOMAML).
        create_graph: Keep the graph of the gradient (MAML's second-order term).

    Returns:
        Stacked adapted parameters ``[N, *shape]``.
    """
    chunks = task_chunks(episodes.num_tasks, episodes.samples_per_task)
    if len(chunks) == 1:
        return _inner_step(policy, params, episodes, fast_lr, first_order=first_order, create_graph=create_graph)
    parts = [
        _inner_step(
            policy,
            {k: v[chunk] for k, v in params.items()},
            episodes.tasks(chunk),
            fast_lr,
            first_order=first_order,
            create_graph=create_graph,
        )
        for chunk in chunks
    ]
    return {k: torch.cat([part[k] for part in parts]) for k in params}


def _inner_step(
    policy: GaussianMLPPolicy,
    params: Params,
    episodes: Episodes,
    fast_lr: float,
    *,
    first_order: bool,
    create_graph: bool,
) -> Params:
    """:func:`inner_step` on one group of tasks."""
    with torch.enable_grad():
        leaves = {k: v if v.requires_grad else v.detach().requires_grad_(True) for k, v in params.items()}
        loss = inner_loss(policy, leaves, episodes).sum()
        grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=create_graph and not first_order)
    out: Params = {}
    for (k, p), g in zip(leaves.items(), grads, strict=True):
        base = params[k] if params[k].requires_grad else p.detach()
        out[k] = base - fast_lr * (g.detach() if first_order or not create_graph else g)
    return out


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    supports: Sequence[Episodes],
    fast_lr: float,
    *,
    num_tasks: int | None = None,
    first_order: bool = False,
    create_graph: bool = False,
) -> Params:
    """Adapted parameters of every task after ``len(supports)`` inner steps.

    Args:
        policy: Architecture.
        params: Meta-parameters (unbatched).
        supports: One batch of support episodes per inner step; ``supports[k]`` was collected
            with the parameters after ``k`` steps. Empty: no adaptation (multi-task training).
        fast_lr: Inner step size α.
        num_tasks: ``N``; needed only when ``supports`` is empty.
        first_order: FOMAML (see :func:`inner_step`).
        create_graph: Keep the result differentiable to second order in ``params``.

    Returns:
        Stacked parameters ``[N, *shape]``.
    """
    if supports:
        num_tasks = supports[0].num_tasks
    elif num_tasks is None:
        raise ValueError("adapt without support episodes needs num_tasks")
    stacked = stack_params(params, num_tasks)
    for episodes in supports:
        stacked = inner_step(policy, stacked, episodes, fast_lr, first_order=first_order, create_graph=create_graph)
    return stacked


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


def seeded_streams(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """The reset-seed generator and the action-noise generator of an adaptation run from one seed.

    Evaluations, ``metarl adapt`` and videos draw from these, never from a training run's streams.
    """
    seq = np.random.SeedSequence(seed)
    return np.random.default_rng(seq.spawn(1)[0]), torch.Generator().manual_seed(int(seq.generate_state(1)[0]))


def collect_adaptation(
    sampler: Sampler,
    params: Params,
    tasks: Sequence[Task],
    steps: int,
    rollouts: int,
    fast_lr: float,
    advantage: AdvantageConfig,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> Adaptation:
    """Rolls out, adapts, rolls out again: the episodes and parameters before and after each inner step.

    Returns:
        ``steps + 1`` batches of episodes and the ``steps + 1`` parameters they were collected
        with (see :class:`Adaptation`).
    """
    detached = {k: v.detach() for k, v in params.items()}
    current = stack_params(detached, len(tasks))
    batches: list[Episodes] = []
    stages: list[Params] = [current]
    for k in range(steps + 1):
        episodes = sampler.collect(current, tasks, rollouts, rng, generator)
        episodes = with_advantages(
            episodes, advantage.gamma, advantage.gae_lambda, advantage.normalize, advantage.baseline_reg
        )
        batches.append(episodes)
        if k < steps:
            current = inner_step(
                policy=sampler.policy,
                params=current,
                episodes=episodes,
                fast_lr=fast_lr,
                first_order=True,
                create_graph=False,
            )
            stages.append({name: value.detach() for name, value in current.items()})
    return Adaptation(tuple(batches), tuple(stages))
