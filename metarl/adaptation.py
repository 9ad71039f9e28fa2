"""The inner loop, written once, as pure maths: episodes in, adapted parameters out.

The meta-loss (:mod:`metarl.maml`) adapts with it, and so does the run side
(:func:`metarl.rollouts.collect_adaptation`, which collects the episodes around each step); this
module imports no sampler, trainer or anything that touches the disk.

``adapt`` maps meta-parameters ``θ`` and the support episodes of ``N`` tasks to the stack of
adapted parameters ``θ'_i = θ − α ∇ L_i(θ)`` (repeated for each inner step, each step with its
own episodes; a policy's per-episode latent may take its own step size ``α_z``, as in MAESN).
With ``create_graph=True`` the result stays differentiable in ``θ`` (MAML's
second-order meta-gradient); with ``first_order=True`` the inner gradients are constants, so
``∂θ'/∂θ = I`` exactly (FOMAML).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from metarl.episodes import Episodes, task_chunks
from metarl.policies import GaussianMLPPolicy, Params, stack_params, step_log_prob


def step_size(
    name: str,
    fast_lr: float,
    latent_lr: float | None,
    fixed: Mapping[str, Tensor] | None = None,
    latent_var: Tensor | None = None,
) -> float | Tensor:
    """The inner step size of parameter ``name``: ``latent_lr`` for the latent's, else ``fast_lr``;
    times the policy's mask where it keeps entries ``fixed`` (:attr:`metarl.policies.GaussianMLPPolicy.fixed`:
    0 where an entry is never trained, so the step leaves it where it is); for ``latent_mean`` also
    times ``latent_var`` ``[N, K]``, the latent's variance at this step, where the policy
    preconditions that step (:func:`natural_variance`).

    The REINFORCE inner loss's Hessian has no cross terms between the latent's parameters and the
    network's (the latent enters the network as sampled data), so a step size per block keeps each
    inner step's Jacobian ``I − diag(α) ∇²L`` symmetric; the low-variance-curvature loss couples
    them (its ``∇log π ∇log πᵀ`` term), and the meta-update then uses the Jacobian and its transpose
    as they are (as it does wherever a mask zeroes part of ``diag(α)``).
    """
    lr: float | Tensor = block_lr(name, fast_lr, latent_lr)
    if latent_var is not None and name == "latent_mean":
        lr = lr * latent_var
    if fixed is not None and name in fixed:
        return lr * fixed[name]
    return lr


def block_lr(name: str, fast_lr: float, latent_lr: float | None) -> float:
    """The step size of parameter ``name``'s block: ``latent_lr`` for the latent's, else ``fast_lr``
    (0 for the network's where only the latent adapts, ``inner.fast_lr`` 0)."""
    return latent_lr if latent_lr is not None and name.startswith("latent_") else fast_lr


def natural_variance(policy: GaussianMLPPolicy, params: Params) -> Tensor | None:
    """``σ_z² [N, K]`` of stacked ``params`` where ``policy.latent_natural`` preconditions the latent
    mean's step, else None. A constant: the policy's ``fixed_latent_std`` keeps ``log σ_z`` out of
    every trained direction, and each step moves it by a constant alone."""
    if not policy.latent_natural:
        return None
    return torch.exp(2.0 * params["latent_log_std"].detach())


def step_shift(policy: GaussianMLPPolicy, name: str) -> float:
    """What an inner step adds to parameter ``name`` besides its gradient step: the log of the
    policy's ``latent_std_decay`` for ``latent_log_std``, else 0. A constant: it moves the adapted
    point, never the step's Jacobian."""
    return policy.latent_log_std_shift if name == "latent_log_std" else 0.0


def inner_loss(policy: GaussianMLPPolicy, params: Params, episodes: Episodes, *, lvc: bool = False) -> Tensor:
    """REINFORCE loss of each task: ``−mean_t,r log π(a|s) · A`` over the valid steps (with the
    latent's ``log q(z)`` in the first step's log-probability, :func:`metarl.policies.step_log_prob`).

    With ``lvc`` the loss is ProMP's low-variance curvature form ``−mean π(a|s) / ⊥π(a|s) · A``
    (Rothfuss et al., 2019; ``⊥`` stops the gradient): the same value and gradient at the
    parameters the episodes were sampled with, and a Hessian with the extra term
    ``−mean A ∇log π ∇log πᵀ``, the part of the expected return's curvature that comes from the
    sampling distribution itself.

    Args:
        policy: Architecture.
        params: Stacked parameters ``[N, *shape]``.
        episodes: Support episodes of the ``N`` tasks, advantages filled.
        lvc: The low-variance-curvature form.

    Returns:
        ``[N]`` per-task losses.
    """
    logp = step_log_prob(policy, params, episodes.obs, episodes.actions)
    if lvc:
        logp = torch.exp(logp - logp.detach())
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
    latent_lr: float | None = None,
    lvc: bool = False,
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
        latent_lr: Step size of the latent's parameters (default ``fast_lr``).
        lvc: The low-variance-curvature inner loss (see :func:`inner_loss`).

    Returns:
        Stacked adapted parameters ``[N, *shape]``.
    """
    keep_graph = create_graph and not first_order

    def step(group: Params, support: Episodes) -> Params:  # one group of tasks
        with torch.enable_grad():
            leaves = {k: v if v.requires_grad else v.detach().requires_grad_(True) for k, v in group.items()}
            moving = [k for k in leaves if block_lr(k, fast_lr, latent_lr) != 0]  # a block of step 0 stays
            loss = inner_loss(policy, leaves, support, lvc=lvc).sum()
            wrt = [leaves[k] for k in moving]
            found = torch.autograd.grad(loss, wrt, create_graph=keep_graph) if wrt else ()
            grads = dict(zip(moving, found, strict=True))
        out: Params = {}
        var = natural_variance(policy, group)  # once per step, not per parameter
        for k, p in leaves.items():
            base = group[k] if group[k].requires_grad else p.detach()
            if k in grads:
                g = grads[k]
                base = base - step_size(k, fast_lr, latent_lr, policy.fixed, var) * (g if keep_graph else g.detach())
            out[k] = base + step_shift(policy, k)
        return out

    chunks = task_chunks(episodes.num_tasks, episodes.samples_per_task)
    if len(chunks) == 1:
        return step(params, episodes)
    parts = [step({k: v[chunk] for k, v in params.items()}, episodes.tasks(chunk)) for chunk in chunks]
    return {k: torch.cat([part[k] for part in parts]) for k in params}


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    supports: Sequence[Episodes],
    fast_lr: float,
    *,
    num_tasks: int | None = None,
    first_order: bool = False,
    create_graph: bool = False,
    latent_lr: float | None = None,
    lvc: bool = False,
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
        latent_lr: Step size of the latent's parameters (default ``fast_lr``).
        lvc: The low-variance-curvature inner loss (see :func:`inner_loss`).

    Returns:
        Stacked parameters ``[N, *shape]``.
    """
    if supports:
        num_tasks = supports[0].num_tasks
    elif num_tasks is None:
        raise ValueError("adapt without support episodes needs num_tasks")
    stacked = stack_params(params, num_tasks)
    for episodes in supports:
        stacked = inner_step(
            policy,
            stacked,
            episodes,
            fast_lr,
            first_order=first_order,
            create_graph=create_graph,
            latent_lr=latent_lr,
            lvc=lvc,
        )
    return stacked
