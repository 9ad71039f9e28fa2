"""Meta-updates: MAML-TRPO, FOMAML (same trust region, first-order) and Reptile.

Each update is a pure function ``(policy, params, batch, config) → (params, stats)``. The
parameters passed in are never modified; a rejected update returns them as they were.

The trust-region update follows the MAML paper (Finn et al., 2017) and TRPO (Schulman et al.,
2015): surrogate ``L(θ) = −E[π_θ'(a|s) / π_θ'old(a|s) · A]`` on the query episodes at the adapted
parameters ``θ'(θ)``, mean KL between the old and new adapted policies, exact Hessian-vector
products of that KL through the inner step (in Gauss-Newton form, :func:`curvature_product`),
conjugate gradient, the step ``√(2δ / sᵀHs)`` (``sᵀHs`` from the CG residual, not another
product), then a backtracking line search. The KL's Fisher may be estimated on a subset of the
query steps (``outer.hvp_subsample``); the adapted parameters, the inner steps' Jacobians, the
gradient, the line search and its KL check always use every step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from metarl.adaptation import adapt, natural_variance, step_shift, step_size
from metarl.curvature import (
    Activations,
    KLTerm,
    ScoreTerm,
    forward,
    kl_gauss_newton_product,
    kl_term,
    latent_data,
    layers_of,
    score_hessian_product,
    score_term,
)
from metarl.episodes import Episodes, task_chunks
from metarl.policies import (
    GaussianMLPPolicy,
    Params,
    PolicyOutputs,
    outputs_kl,
    outputs_log_prob,
    params_to_vector,
    stack_params,
    task_outputs,
    vector_to_params,
)
from metarl.trpo import (
    CGResult,
    backtracking_line_search,
    conjugate_gradient,
    trust_region_step,
)

if TYPE_CHECKING:  # the settings are the config's dataclasses, read as plain values: no configuration is loaded here
    from metarl.config import InnerConfig, OuterConfig


class MetaBatch(NamedTuple):
    """The episodes of one meta-iteration.

    Attributes:
        supports: One batch per inner step; ``supports[k]`` collected after ``k`` steps.
        query: Collected with the fully adapted parameters.
    """

    supports: tuple[Episodes, ...]
    query: Episodes


@dataclasses.dataclass(frozen=True)
class UpdateStats:
    """What a meta-update did (NaN where a quantity does not apply to the algorithm)."""

    accepted: bool
    nonfinite: bool
    loss_before: float = math.nan
    loss_after: float = math.nan
    kl: float = math.nan
    line_search_steps: int = 0
    grad_norm: float = math.nan
    step_norm: float = math.nan

    @property
    def improvement(self) -> float:
        return self.loss_before - self.loss_after


def query_distribution(
    policy: GaussianMLPPolicy,
    params: Params,
    batch: MetaBatch,
    inner: InnerConfig,
    *,
    create_graph: bool,
) -> PolicyOutputs:
    """The adapted policies' action distributions on the query observations (``[N, T, R, act_dim]``)
    and their latents' (``[N, K]``)."""
    adapted = adapt(
        policy,
        params,
        batch.supports,
        inner.fast_lr,
        num_tasks=batch.query.num_tasks,
        first_order=inner.algorithm == "fomaml",
        create_graph=create_graph,
        latent_lr=inner.latent_step,
        lvc=inner.loss == "lvc",
    )
    return task_outputs(policy, adapted, batch.query.obs)


def surrogate_loss(log_prob: Tensor, old_log_prob: Tensor, query: Episodes) -> Tensor:
    """``−mean_tasks [Σ ratio · A · m / Σ m]`` with ``ratio = π(a|s) / π_old(a|s)``.

    Args:
        log_prob: ``[N, T, R]`` log-probabilities under the new adapted policies
            (:func:`metarl.policies.outputs_log_prob`).
        old_log_prob: ``[N, T, R]`` log-probabilities under the old adapted policies.
        query: Query episodes with advantages.
    """
    ratio = torch.exp(log_prob - old_log_prob)
    masks = query.masks
    per_task = (ratio * query.advantages * masks).sum((1, 2)) / masks.sum((1, 2)).clamp(min=1.0)
    return -per_task.mean()


def mean_kl(old: PolicyOutputs, new: PolicyOutputs, masks: Tensor) -> Tensor:
    """Average over tasks of the masked mean ``KL(π_old ‖ π)`` on the query steps (a latent's KL
    counted at each rollout's first step)."""
    return outputs_kl(old, new, masks).mean()


def subsample_steps(episodes: Episodes, fraction: float) -> Episodes:
    """Evenly spaced time steps of every rollout: ``t = ⌊k T / K⌋`` for ``k < K = ⌈fraction · T⌉``.

    The query states where the KL's Fisher may be estimated (``outer.hvp_subsample``): a spread
    over every rollout and the whole horizon, the same on every call (no random draw).
    ``fraction`` 1 returns ``episodes`` itself.
    """
    steps = episodes.rewards.shape[1]
    keep = max(1, math.ceil(fraction * steps))
    if keep >= steps:
        return episodes
    index = torch.arange(keep) * steps // keep
    return Episodes(*(field[:, index] if field.dim() >= 3 else field for field in episodes))


def _all_finite(tensors: Sequence[Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def task_groups(batch: MetaBatch) -> list[MetaBatch]:
    """``batch`` split into consecutive groups of tasks (:func:`metarl.episodes.task_chunks`)."""
    chunks = task_chunks(batch.query.num_tasks, batch.query.samples_per_task)
    if len(chunks) == 1:
        return [batch]
    return [MetaBatch(tuple(e.tasks(c) for e in batch.supports), batch.query.tasks(c)) for c in chunks]


class _OldPolicy(NamedTuple):
    """The adapted policies before the update, on one group's query steps (``[n, T, R, …]``)."""

    outputs: PolicyOutputs
    log_prob: Tensor


def _flat(field: Tensor) -> Tensor:
    """``[n, T, R, d]`` → ``[n, T·R, d]``; ``[n, T, R]`` → ``[n, T·R, 1]`` (a view where possible)."""
    n, t, r = field.shape[:3]
    return field.reshape(n, t * r, -1)


def _step_weights(episodes: Episodes, values: Tensor, num_tasks: int) -> Tensor:
    """``values · m / (num_tasks · Σm)`` per task, ``[n, T·R, 1]``: a task's masked mean, shared out."""
    masks = episodes.masks
    return _flat(values * masks / (num_tasks * masks.sum((1, 2), keepdim=True).clamp(min=1.0)))


def _score(
    policy: GaussianMLPPolicy, params: Params, episodes: Episodes, num_tasks: int, *, second_order: bool = False
) -> ScoreTerm:
    """``−Σ_s A_s m_s log π(a_s|o_s) / (num_tasks · Σm)`` per task: the inner loss (``num_tasks`` 1) or
    the surrogate's share at the current parameters, where every importance ratio is 1."""
    weights = _step_weights(episodes, episodes.advantages, num_tasks)
    obs, actions = _flat(episodes.obs), _flat(episodes.actions)
    latent = latent_data(policy, episodes.obs, weights)
    return score_term(policy, params, obs, actions, weights, second_order=second_order, latent=latent)


def _kl(policy: GaussianMLPPolicy, params: Params, acts: Activations, episodes: Episodes, weights: Tensor) -> KLTerm:
    """The KL's Gauss-Newton term of ``episodes``' steps (forward pass ``acts``) with step weights ``[n, T·R, 1]``."""
    return kl_term(policy, params, acts, weights, latent_data(policy, episodes.obs, weights))


class GroupCurvature(NamedTuple):
    """One group of tasks at the current parameters: its share of the surrogate, the meta-gradient
    and the KL's curvature.

    Attributes:
        old: The adapted policies on the group's query steps, before the update.
        loss: The group's share of the surrogate loss.
        gradient: ``[P]`` the group's share of the meta-gradient (exact: every support and query step).
        inner_steps: The inner loss of each inner step at its parameters, whose Hessian enters the
            step's Jacobian ``J_k = I − α ∇²L_k`` (empty: first order).
        fast_lr: ``α``.
        latent_lr: ``α_z``, the step size of a latent's parameters.
        lvc: The inner loss is in its low-variance-curvature form (its Hessian has the extra term).
        kl: The KL's Gauss-Newton term on the query steps, at the adapted parameters.
        pre_kl: With ``outer.pre_kl_weight`` w > 0: the Gauss-Newton term of w times the
            meta-policy's own KL on the first support batch's steps (no inner step in between).
        old_pre: With it: the meta-policy on those steps before the update (``(mean, log_std)``).
    """

    old: _OldPolicy
    loss: float
    gradient: Tensor
    inner_steps: tuple[ScoreTerm, ...]
    fast_lr: float
    latent_lr: float
    lvc: bool
    kl: KLTerm
    pre_kl: KLTerm | None = None
    old_pre: PolicyOutputs | None = None


def group_curvature(
    policy: GaussianMLPPolicy,
    params: Params,
    group: MetaBatch,
    inner: InnerConfig,
    num_tasks: int,
    *,
    hvp_subsample: float = 1.0,
    pre_kl_weight: float = 0.0,
) -> GroupCurvature:
    """Adapts, then computes the surrogate, the meta-gradient and the curvature terms of one group.

    The adapted parameters, the surrogate, the gradient and the inner steps' Jacobians always use
    every step. The curvature (:func:`curvature_product`) is exact with ``hvp_subsample`` 1; below
    1 it estimates the KL's Fisher on the query steps of :func:`subsample_steps`, still at the
    exact adapted parameters. (Estimating the inner losses' Hessians inside the Jacobians on a
    subset of the support steps was tried and dropped: their advantage-weighted terms nearly
    cancel, and on 2-D navigation after 120 iterations the CG direction from a quarter of the
    support steps had cosine −0.26 with the exact one, against 0.997 for a quarter of the query
    steps.)

    Args:
        policy: Architecture.
        params: Meta-parameters ``θ`` (unbatched; used as values).
        group: The group's support and query episodes, advantages filled.
        inner: Inner-loop settings (``maml_trpo``: second order; ``fomaml``: ``J_k = I``).
        num_tasks: Tasks of the whole batch (the group weighs ``n / num_tasks`` in every mean).
        hvp_subsample: Fraction of the query steps for the KL's Fisher.
        pre_kl_weight: ``w`` of the meta-policy's own KL on the first support batch (0: none).
            The adapted policies' KL alone leaves free the directions of ``θ`` that the inner
            step undoes on the query steps; those still move the policy that collects the next
            support rollouts, which the surrogate does not see.
    """
    n = group.query.num_tasks
    current, steps = _adapt(policy, params, group.supports, inner, group.query.num_tasks, keep_steps=True)
    query = group.query
    surrogate = _score(policy, current, query, num_tasks)
    outputs = _query_outputs(policy, current, surrogate.acts, query)
    old = _OldPolicy(outputs, outputs_log_prob(outputs, query.actions, policy.latents(query.obs)))
    loss = (n / num_tasks) * surrogate_loss(old.log_prob, old.log_prob, query).item()
    gradient = surrogate.gradient
    lrs = (inner.fast_lr, inner.latent_step)
    lvc = inner.loss == "lvc"
    for term in reversed(steps):  # ∇θ = J_1ᵀ ⋯ J_Kᵀ ∇θ'
        gradient = _jacobian_product(term, gradient, *lrs, lvc=lvc, transpose=True)
    if hvp_subsample < 1.0:
        sub = subsample_steps(query, hvp_subsample)
        acts = forward(layers_of(policy, current), _flat(sub.obs))
        kl = _kl(policy, current, acts, sub, _step_weights(sub, torch.ones_like(sub.masks), num_tasks))
    else:
        weights = _step_weights(query, torch.ones_like(query.masks), num_tasks)
        kl = _kl(policy, current, surrogate.acts, query, weights)
    pre_kl, old_pre = None, None
    if pre_kl_weight > 0.0 and group.supports:
        support = group.supports[0]
        theta = stack_params({k: v.detach() for k, v in params.items()}, n)
        acts = forward(layers_of(policy, theta), _flat(support.obs))
        weights = pre_kl_weight * _step_weights(support, torch.ones_like(support.masks), num_tasks)
        pre_kl = _kl(policy, theta, acts, support, weights)
        old_pre = _query_outputs(policy, theta, acts, support)  # the same forward pass
    return GroupCurvature(
        old=old,
        loss=loss,
        gradient=_sum_tasks(gradient, params),
        inner_steps=tuple(steps),
        fast_lr=inner.fast_lr,
        latent_lr=inner.latent_step,
        lvc=lvc,
        kl=kl,
        pre_kl=pre_kl,
        old_pre=old_pre,
    )


def _adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    supports: Sequence[Episodes],
    inner: InnerConfig,
    num_tasks: int,
    *,
    keep_steps: bool,
) -> tuple[Params, list[ScoreTerm]]:
    """The adapted parameters ``[n, *shape]`` by the written-out inner steps (the same numbers as
    :func:`metarl.adaptation.adapt`, tested), and with ``keep_steps`` each second-order step's
    inner-loss term (none for FOMAML, whose ``J_k = I``)."""
    keep = keep_steps and inner.algorithm == "maml_trpo"
    current = stack_params({k: v.detach() for k, v in params.items()}, num_tasks)
    steps: list[ScoreTerm] = []
    for episodes in supports:
        term = _score(policy, current, episodes, 1, second_order=keep)
        if keep:
            steps.append(term)
        var = natural_variance(policy, current)
        lrs = {k: step_size(k, inner.fast_lr, inner.latent_step, policy.fixed, var) for k in current}
        current = {k: v - lrs[k] * term.gradient[k] + step_shift(policy, k) for k, v in current.items()}
    return current, steps


def _query_outputs(policy: GaussianMLPPolicy, params: Params, acts: Activations, episodes: Episodes) -> PolicyOutputs:
    """The :class:`PolicyOutputs` of stacked ``params`` from their forward pass ``acts`` on ``episodes``."""
    mean = acts.mean.view_as(episodes.actions)
    log_std = params["log_std"].clamp(min=policy.min_log_std)
    return PolicyOutputs(mean, log_std[:, None, None, :].expand_as(mean), *policy.task_latent(params))


def _jacobian_product(
    term: ScoreTerm, u: Params, fast_lr: float, latent_lr: float, *, lvc: bool, transpose: bool
) -> Params:
    """``J u`` or ``Jᵀ u`` per task, ``J = I − D ∇²L`` the inner step's Jacobian with ``D`` the step
    sizes (``α``, and ``α_z`` for a latent's parameters). ``J`` is symmetric unless the low-variance
    curvature couples a latent's block, with its own step size, to the network's."""
    fixed = term.policy.fixed
    var = None
    if term.policy.latent_natural and term.latent is not None:  # σ_z² of the step, [n, K]
        var = 1.0 / term.latent.inv_var[:, 0].detach()
    if transpose:
        scaled = {k: step_size(k, fast_lr, latent_lr, fixed, var) * v for k, v in u.items()}
        hessian_u = score_hessian_product(term, scaled, lvc=lvc)
        return {k: v - hessian_u[k] for k, v in u.items()}
    hessian_u = score_hessian_product(term, u, lvc=lvc)
    return {k: v - step_size(k, fast_lr, latent_lr, fixed, var) * hessian_u[k] for k, v in u.items()}


def _sum_tasks(per_task: Params, like: Params) -> Tensor:
    """``Σ_i`` of per-task tensors ``[n, *shape]``, flattened in the key order of ``like`` (``[P]``)."""
    return torch.cat([per_task[k].sum(0).reshape(-1) for k in like])


def curvature_product(curvature: GroupCurvature, v: Tensor, like: Params) -> Tensor:
    """The group's share of ``H v`` with ``H`` the mean KL's Hessian at the current parameters.

    At the current parameters the new and old adapted policies coincide, so the Hessian is
    exactly its Gauss-Newton form ``Σ_i J_iᵀ M_i J_i`` (no second derivative of the adapted
    outputs enters): ``J_i = J_q J_K ⋯ J_1`` the Jacobian of task ``i``'s query distributions
    through the inner steps, ``M_i`` the Gaussian's Fisher times the step's weight in the mean
    KL. Each ``J_k = I − α ∇²L_k`` is symmetric. The products are written out in
    :mod:`metarl.curvature` (no autograd graph is walked); tests compare them with the double
    backward through the KL's gradient (the tests' reference, ``tests/helpers.py``).

    Args:
        curvature: The group's terms (:func:`group_curvature`).
        v: ``[P]`` the direction.
        like: Parameters giving the shapes and order of ``v``.

    Returns:
        ``[P]`` (no damping).
    """
    n = curvature.kl.weights.shape[0]
    expanded = {k: t.unsqueeze(0).expand(n, *t.shape) for k, t in vector_to_params(v, like).items()}
    u = expanded
    lrs = (curvature.fast_lr, curvature.latent_lr)
    for term in curvature.inner_steps:  # J = J_K ⋯ J_1
        u = _jacobian_product(term, u, *lrs, lvc=curvature.lvc, transpose=False)
    u = kl_gauss_newton_product(curvature.kl, u)
    for term in reversed(curvature.inner_steps):
        u = _jacobian_product(term, u, *lrs, lvc=curvature.lvc, transpose=True)
    if curvature.pre_kl is not None:  # the meta-policy's own KL: its Fisher, no inner step
        pre = kl_gauss_newton_product(curvature.pre_kl, expanded)
        u = {k: u[k] + pre[k] for k in u}
    return _sum_tasks(u, like)


def meta_masks(policy: GaussianMLPPolicy) -> dict[str, Tensor]:
    """Per parameter name, 1 where the meta-update trains an entry and 0 where it keeps it: the
    policy's :attr:`~metarl.policies.GaussianMLPPolicy.fixed` entries (kept by every step) times its
    :attr:`~metarl.policies.GaussianMLPPolicy.meta_fixed` ones (moved by the inner steps alone)."""
    masks = dict(policy.fixed)
    for name, mask in policy.meta_fixed.items():
        masks[name] = masks[name] * mask if name in masks else mask
    return masks


def trainable_mask(policy: GaussianMLPPolicy, like: Params) -> Tensor | None:
    """``[P]`` 1 for the parameters the meta-update trains, 0 for those it keeps (:func:`meta_masks`);
    ``None`` when every one is trained."""
    masks = meta_masks(policy)
    if not masks:
        return None
    ones = {k: torch.ones(v.numel(), dtype=v.dtype) for k, v in like.items() if k not in masks}
    return torch.cat([ones[k] if k in ones else masks[k].reshape(-1).to(v.dtype) for k, v in like.items()])


def _solve_direction(
    curvatures: Sequence[GroupCurvature], grad: Tensor, like: Params, outer: OuterConfig, mask: Tensor | None
) -> CGResult:
    """Conjugate gradient on ``(H + λI) s = g`` with the groups' curvature products; with a
    ``mask`` ``P`` on ``(P H P + λI) s = P g``, whose solution leaves the fixed parameters where they are."""

    def fisher_vector_product(v: Tensor) -> Tensor:
        if mask is None:
            return torch.stack([curvature_product(c, v, like) for c in curvatures]).sum(0) + outer.cg_damping * v
        product = torch.stack([curvature_product(c, mask * v, like) for c in curvatures]).sum(0)
        return mask * product + outer.cg_damping * v

    return conjugate_gradient(fisher_vector_product, grad if mask is None else mask * grad, outer.cg_iters)


def trpo_meta_update(
    policy: GaussianMLPPolicy,
    params: Params,
    batch: MetaBatch,
    inner: InnerConfig,
    outer: OuterConfig,
) -> tuple[Params, UpdateStats]:
    """One trust-region meta-update (``maml_trpo``, or ``fomaml`` with first-order adaptation).

    Every pass runs over groups of tasks (:func:`task_groups`) and adds up the groups' shares;
    the meta-loss is a mean over tasks, so the result is the one of a single pass.

    Args:
        policy: Architecture.
        params: Meta-parameters; not modified.
        batch: Support and query episodes of ``N`` tasks, advantages filled.
        inner: Inner-loop settings (``algorithm`` decides first or second order).
        outer: Trust-region settings.

    Returns:
        The new parameters (the very same tensors as ``params`` when the update is rejected)
        and the statistics of the update.
    """
    num_tasks = batch.query.num_tasks
    groups = task_groups(batch)
    curvatures = [
        group_curvature(
            policy,
            params,
            group,
            inner,
            num_tasks,
            hvp_subsample=outer.hvp_subsample,
            pre_kl_weight=outer.pre_kl_weight,
        )
        for group in groups
    ]
    loss = math.fsum(c.loss for c in curvatures)
    grad = torch.stack([c.gradient for c in curvatures]).sum(0)
    if not (math.isfinite(loss) and _all_finite([grad])):
        return params, UpdateStats(accepted=False, nonfinite=True, loss_before=loss)

    mask = trainable_mask(policy, params)
    if mask is not None:
        grad = mask * grad
    cg = _solve_direction(curvatures, grad, params, outer, mask)
    direction = cg.x
    shs = cg.quadratic_form(grad).item()  # sᵀ(H + λI)s without another product
    if not (_all_finite([direction]) and math.isfinite(shs)) or shs <= 0.0:
        return params, UpdateStats(accepted=False, nonfinite=True, loss_before=loss, grad_norm=grad.norm().item())
    full_step = -trust_region_step(direction, shs, outer.max_kl)
    theta = {k: v.detach() for k, v in params.items()}
    x0 = params_to_vector(theta)
    olds = [c.old for c in curvatures]
    old_pres = [c.old_pre for c in curvatures]
    del curvatures  # the line search needs none of the cached activations

    def evaluate(x: Tensor) -> tuple[float, float]:
        candidate = vector_to_params(x, theta)
        new_loss, new_kl = 0.0, 0.0
        with torch.no_grad():
            for group, old, old_pre in zip(groups, olds, old_pres, strict=True):
                query = group.query
                outputs = query_distribution(policy, candidate, group, inner, create_graph=False)
                log_prob = outputs_log_prob(outputs, query.actions, policy.latents(query.obs))
                share = query.num_tasks / num_tasks
                new_loss += share * surrogate_loss(log_prob, old.log_prob, query).item()
                new_kl += share * mean_kl(old.outputs, outputs, query.masks).item()
                if old_pre is not None:  # KL_post + w KL_pre, as the curvature has it
                    support = group.supports[0]
                    stacked = stack_params(candidate, support.num_tasks)
                    pre = mean_kl(old_pre, task_outputs(policy, stacked, support.obs), support.masks).item()
                    new_kl += share * outer.pre_kl_weight * pre
        return new_loss, new_kl

    result = backtracking_line_search(
        evaluate, x0, full_step, loss, outer.max_kl, outer.ls_backtrack_ratio, outer.ls_max_steps
    )
    stats = UpdateStats(
        accepted=result.accepted,
        nonfinite=False,
        loss_before=loss,
        loss_after=result.loss,
        kl=result.kl,
        line_search_steps=result.steps,
        grad_norm=grad.norm().item(),
        step_norm=(result.params - x0).norm().item(),
    )
    if not result.accepted:
        return params, stats
    new_params = {k: v.detach().clone() for k, v in vector_to_params(result.params, theta).items()}
    return new_params, stats


def reptile_meta_update(
    policy: GaussianMLPPolicy,
    params: Params,
    batch: MetaBatch,
    inner: InnerConfig,
    outer: OuterConfig,
) -> tuple[Params, UpdateStats]:
    """Reptile: ``θ ← θ + ε · mean_i(θ'_i − θ)`` with ``θ'_i`` the adapted parameters of task ``i``.

    The query episodes are not used by the update (the trainer still logs their returns).
    """
    adapted = adapt(
        policy,
        {k: v.detach() for k, v in params.items()},
        batch.supports,
        inner.fast_lr,
        num_tasks=batch.query.num_tasks,
        latent_lr=inner.latent_step,
        lvc=inner.loss == "lvc",
    )
    masks = meta_masks(policy)
    new_params = {}
    for k, v in params.items():
        step = outer.step_size * (adapted[k].mean(0) - v)
        new_params[k] = (v + (step * masks[k].to(v.dtype) if k in masks else step)).detach()
    if not _all_finite(list(new_params.values())):
        return params, UpdateStats(accepted=False, nonfinite=True)
    step = params_to_vector(new_params) - params_to_vector(params)
    return new_params, UpdateStats(accepted=True, nonfinite=False, step_norm=step.norm().item())


def meta_update(
    policy: GaussianMLPPolicy,
    params: Params,
    batch: MetaBatch,
    inner: InnerConfig,
    outer: OuterConfig,
) -> tuple[Params, UpdateStats]:
    """Dispatches on ``inner.algorithm`` (``maml_trpo``, ``fomaml`` or ``reptile``)."""
    if inner.algorithm == "reptile":
        return reptile_meta_update(policy, params, batch, inner, outer)
    return trpo_meta_update(policy, params, batch, inner, outer)
