"""Exact first and second derivatives of the Gaussian tanh-MLP policy, written out for a stack of tasks.

The MAML-TRPO curvature needs, at every conjugate-gradient iteration, two products with the
Jacobian of the inner step ``J = I − α ∇²L_support`` (an inner-loss Hessian-vector product) and
one Gauss-Newton product of the KL on the query steps. Autograd computes them by a double
backward through a retained graph; here they are the chain rule of :class:`GaussianMLPPolicy`
written out (Pearlmutter's R-operator), on activations computed once per meta-update:

* forward (:func:`forward`): ``a₀ = obs``, ``z_ℓ = a_ℓ W_ℓᵀ + b_ℓ``, ``a_{ℓ+1} = tanh(z_ℓ)``,
  ``μ = z_{L−1}``; ``log σ = max(s, log σ_min)`` (one ``s`` per action dimension);
* backward (:func:`backward`): ``∂/∂W_ℓ = δz_ℓᵀ a_ℓ``, ``δa_ℓ = δz_ℓ W_ℓ``,
  ``δz_{ℓ−1} = (1 − a_ℓ²) ⊙ δa_ℓ``;
* their directional derivatives along ``(V_ℓ, c_ℓ, u)`` (:func:`tangent`,
  :func:`backward_tangent`): ``Rz_ℓ = Ra_ℓ W_ℓᵀ + a_ℓ V_ℓᵀ + c_ℓ``,
  ``Ra_{ℓ+1} = (1 − a_{ℓ+1}²) ⊙ Rz_ℓ``, and
  ``Rδz_{ℓ−1} = (1 − a_ℓ²) ⊙ Rδa_ℓ − 2 a_ℓ ⊙ δz_{ℓ−1} ⊙ Rz_{ℓ−1}``,
  ``R∂/∂W_ℓ = Rδz_ℓᵀ a_ℓ + δz_ℓᵀ Ra_ℓ``, ``Rδa_ℓ = Rδz_ℓ W_ℓ + δz_ℓ V_ℓ``.

Each product is then a handful of batched matmuls and elementwise passes over cached activations,
with no graph to walk: shorter than the products through retained autograd graphs it replaces,
with the same numbers (the tests compare both with double backpropagation in float64), at the
price of the cached activations' memory (the README's performance section has the figures).

Every tensor is a stack over ``n`` tasks: parameters ``[n, *shape]``, samples ``[n, S, …]`` with
``S`` the flattened time steps × rollouts of one task (time-major: the first ``R`` samples are the
rollouts' first steps).

A policy with a per-episode latent ``z ~ N(μ_z, σ_z²)`` (:class:`LatentData`) adds the latent's
log-density to each rollout's first step. The latent enters the network as sampled data, so its
parameters ``(μ_z, log σ_z)`` form a block of their own, with no cross terms with the network's:
a Gaussian whose outputs are its parameters (the same formulas as the action head's, ``Rμ = u``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from metarl.policies import GaussianMLPPolicy, Params

Layer = tuple[Tensor, Tensor]
"""``(W [n, out, in], b [n, out])`` of one linear layer, stacked over tasks."""


class Activations(NamedTuple):
    """What the forward pass leaves behind for the derivatives.

    Attributes:
        inputs: ``a_ℓ [n, S, in_ℓ]``, the input of every layer (``a₀`` the observations).
        slopes: ``1 − a_{ℓ+1}² [n, S, out_ℓ]``, tanh's derivative at every hidden layer.
        mean: ``μ [n, S, act_dim]``.
    """

    inputs: tuple[Tensor, ...]
    slopes: tuple[Tensor, ...]
    mean: Tensor


class GaussianHead(NamedTuple):
    """The Gaussian at the policy's outputs, per task.

    Attributes:
        log_std: ``[n, act_dim]`` the clamped log-standard deviation.
        inv_var: ``[n, 1, act_dim]`` ``σ⁻²``.
        open: ``[n, 1, act_dim]`` 1.0 where the clamp ``max(s, log σ_min)`` passes derivatives.
    """

    log_std: Tensor
    inv_var: Tensor
    open: Tensor


class LatentData(NamedTuple):
    """The episodes' latents and the weights of the rollouts' first steps.

    Attributes:
        latents: ``z [n, R, K]``.
        weights: ``c [n, R, 1]`` (or ``w``): the weight of each rollout's first step.
    """

    latents: Tensor
    weights: Tensor


class LatentScore(NamedTuple):
    """The latent's part of :class:`ScoreTerm`: ``−Σ_r c_r log q(z_r)``.

    Attributes:
        weights: ``c [n, R, 1]``.
        resid: ``z − μ_z [n, R, K]``.
        inv_var: ``σ_z⁻² [n, 1, K]``.
    """

    weights: Tensor
    resid: Tensor
    inv_var: Tensor


def latent_data(policy: GaussianMLPPolicy, obs: Tensor, weights: Tensor) -> LatentData | None:
    """:class:`LatentData` of episodes (``obs [n, T, R, input_dim]``, ``weights [n, T·R, 1]``), or None
    for a policy without a latent."""
    if policy.latent_dim == 0:
        return None
    r = obs.shape[2]
    return LatentData(policy.latents(obs), weights[:, :r])


def layers_of(policy: GaussianMLPPolicy, params: Params) -> list[Layer]:
    """The stacked ``(W, b)`` of every layer of ``params`` (each ``[n, *shape]``)."""
    return [(params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]) for i in range(len(policy.layers))]


def head_of(policy: GaussianMLPPolicy, params: Params) -> GaussianHead:
    """The Gaussian head of stacked ``params`` (``log_std`` ``[n, act_dim]``)."""
    raw = params["log_std"]
    log_std = raw.clamp(min=policy.min_log_std)
    open_ = (raw >= policy.min_log_std).to(raw.dtype).unsqueeze(1)
    return GaussianHead(log_std, torch.exp(-2.0 * log_std).unsqueeze(1), open_)


def forward(layers: Sequence[Layer], obs: Tensor) -> Activations:
    """The per-task MLPs on ``obs`` ``[n, S, obs_dim]``, keeping what the derivatives need."""
    a = obs
    inputs: list[Tensor] = [obs]
    slopes: list[Tensor] = []
    last = len(layers) - 1
    for i, (weight, bias) in enumerate(layers):
        z = torch.baddbmm(bias.unsqueeze(1), a, weight.transpose(1, 2))
        if i == last:
            return Activations(tuple(inputs), tuple(slopes), z)
        a = torch.tanh(z)
        inputs.append(a)
        slopes.append(torch.addcmul(torch.ones_like(a), a, a, value=-1.0))
    raise ValueError("an MLP needs at least one layer")


class Backward(NamedTuple):
    """A backward pass: the gradient of every layer and what the second derivatives reuse.

    Attributes:
        grads: ``(∂/∂W_ℓ [n, out, in], ∂/∂b_ℓ [n, out])`` per layer.
        deltas: ``δz_ℓ [n, S, out_ℓ]`` at every hidden layer (the gradient at its pre-activation).
        curvatures: ``−2 a_{ℓ+1} ⊙ δz_ℓ`` at every hidden layer: the derivative of ``δz_ℓ`` through
            tanh's slope per unit of ``Rz_ℓ`` (empty unless asked for).
    """

    grads: list[Layer]
    deltas: tuple[Tensor, ...]
    curvatures: tuple[Tensor, ...]


def backward(acts: Activations, layers: Sequence[Layer], d_mean: Tensor, *, second_order: bool = False) -> Backward:
    """Back-propagates ``d_mean = ∂f/∂μ`` ``[n, S, act_dim]`` (summed over the samples).

    Args:
        acts: The forward pass.
        layers: The parameters.
        d_mean: ``∂f/∂μ``.
        second_order: Also keep :attr:`Backward.curvatures` for :func:`backward_tangent`.

    Returns:
        The gradient of ``f`` with respect to every layer, and the hidden-layer deltas.
    """
    grads: list[Layer] = []
    deltas: list[Tensor] = []
    curvatures: list[Tensor] = []
    delta = d_mean
    for i in range(len(layers) - 1, -1, -1):
        grads.append((torch.bmm(delta.transpose(1, 2), acts.inputs[i]), delta.sum(1)))
        if i > 0:
            delta = torch.bmm(delta, layers[i][0]).mul_(acts.slopes[i - 1])
            deltas.append(delta)
            if second_order:
                curvatures.append(torch.mul(acts.inputs[i], delta).mul_(-2.0))
    return Backward(grads[::-1], tuple(deltas[::-1]), tuple(curvatures[::-1]))


class Tangent(NamedTuple):
    """A forward-mode pass: directional derivatives along a change of the parameters.

    Attributes:
        pre: ``Rz_ℓ [n, S, out_ℓ]`` at every hidden layer.
        inputs: ``Ra_ℓ`` of every layer's input (``None`` for the observations, which do not move).
        mean: ``Rμ [n, S, act_dim]``.
    """

    pre: tuple[Tensor, ...]
    inputs: tuple[Tensor | None, ...]
    mean: Tensor


def tangent(acts: Activations, layers: Sequence[Layer], direction: Sequence[Layer]) -> Tangent:
    """Directional derivatives of the activations along ``direction`` (``(V_ℓ, c_ℓ)`` per layer)."""
    pre: list[Tensor] = []
    inputs: list[Tensor | None] = [None]
    moved: Tensor | None = None
    last = len(layers) - 1
    for i, ((weight, _), (d_weight, d_bias)) in enumerate(zip(layers, direction, strict=True)):
        rz = torch.baddbmm(d_bias.unsqueeze(1), acts.inputs[i], d_weight.transpose(1, 2))
        if moved is not None:
            rz = rz.baddbmm_(moved, weight.transpose(1, 2))
        if i == last:
            return Tangent(tuple(pre), tuple(inputs), rz)
        pre.append(rz)
        moved = acts.slopes[i] * rz
        inputs.append(moved)
    raise ValueError("an MLP needs at least one layer")


def backward_tangent(
    acts: Activations,
    back: Backward,
    moves: Tangent,
    layers: Sequence[Layer],
    direction: Sequence[Layer],
    d_mean: Tensor,
    rd_mean: Tensor,
) -> list[Layer]:
    """The directional derivative of :func:`backward`'s gradient (a Hessian-vector product).

    Args:
        acts: The forward pass at the parameters.
        back: The backward pass of ``d_mean`` at the parameters.
        moves: :func:`tangent` along ``direction``.
        layers: The parameters.
        direction: ``(V_ℓ, c_ℓ)`` per layer.
        d_mean: ``∂f/∂μ [n, S, act_dim]``, as given to :func:`backward`.
        rd_mean: Its directional derivative ``R(∂f/∂μ)``.

    Returns:
        ``R(∂f/∂W_ℓ), R(∂f/∂b_ℓ)`` per layer.
    """
    out: list[Layer] = []
    delta, r_delta = d_mean, rd_mean
    for i in range(len(layers) - 1, -1, -1):
        r_weight = torch.bmm(r_delta.transpose(1, 2), acts.inputs[i])
        moved = moves.inputs[i]
        if moved is not None:
            r_weight = r_weight.baddbmm_(delta.transpose(1, 2), moved)
        out.append((r_weight, r_delta.sum(1)))
        if i > 0:
            r_input = torch.bmm(r_delta, layers[i][0]).baddbmm_(delta, direction[i][0])
            delta = back.deltas[i - 1]
            # R(slope) = −2 a ⊙ slope ⊙ Rz and δz = slope ⊙ δa: Rδz = slope ⊙ Rδa − 2 a ⊙ δz ⊙ Rz
            r_delta = r_input.mul_(acts.slopes[i - 1]).addcmul_(back.curvatures[i - 1], moves.pre[i - 1])
    return out[::-1]


def _split(policy: GaussianMLPPolicy, params: Params) -> tuple[list[Layer], Tensor]:
    """``(layers, log_std)`` of stacked parameters or of a stacked direction."""
    return layers_of(policy, params), params["log_std"]


def _join(
    policy: GaussianMLPPolicy, layers: Sequence[Layer], log_std: Tensor, latent: tuple[Tensor, Tensor] | None = None
) -> Params:
    """The inverse of :func:`_split` (with the latent's ``(μ_z, log σ_z)`` parts), keys in the order of
    ``policy.named_parameters()``."""
    out: Params = {}
    for i, (weight, bias) in enumerate(layers):
        out[f"layers.{i}.weight"] = weight
        out[f"layers.{i}.bias"] = bias
    out["log_std"] = log_std
    if latent is not None:
        out["latent_mean"], out["latent_log_std"] = latent
    return {name: out[name] for name, _ in policy.named_parameters()}


class ScoreTerm(NamedTuple):
    """``f_i = −Σ_s c_s log π_i(a_s | o_s)`` of every task ``i`` at stacked parameters, and its gradient.

    The inner loss is this with ``c = A · m / Σm`` per task; the TRPO surrogate at the current
    parameters (where every importance ratio is 1) has the same gradient with ``c`` divided
    by the number of tasks.

    Attributes:
        policy: Architecture.
        layers: The parameters' layers.
        head: The Gaussian head.
        acts: Forward pass on the observations.
        back: Backward pass of ``∂f/∂μ``.
        weights: ``c [n, S, 1]``.
        resid: ``a − μ [n, S, act_dim]``.
        d_mean: ``∂f/∂μ = −c (a − μ) σ⁻² [n, S, act_dim]``.
        gradient: ``∇f_i`` of every task, stacked like the parameters.
        latent: The latent's part (None without a latent).
    """

    policy: GaussianMLPPolicy
    layers: list[Layer]
    head: GaussianHead
    acts: Activations
    back: Backward
    weights: Tensor
    resid: Tensor
    d_mean: Tensor
    gradient: Params
    latent: LatentScore | None = None


def score_term(
    policy: GaussianMLPPolicy,
    params: Params,
    obs: Tensor,
    actions: Tensor,
    weights: Tensor,
    *,
    second_order: bool = False,
    latent: LatentData | None = None,
) -> ScoreTerm:
    """Builds :class:`ScoreTerm` (one forward and one backward pass).

    Args:
        policy: Architecture.
        params: Stacked parameters ``[n, *shape]`` (used as values; nothing is differentiated).
        obs: ``[n, S, input_dim]``.
        actions: ``[n, S, act_dim]``.
        weights: ``c [n, S, 1]``.
        second_order: Keep what :func:`score_hessian_product` needs.
        latent: The episodes' latents and their first steps' weights (a policy with a latent).
    """
    layers, _ = _split(policy, params)
    head = head_of(policy, params)
    acts = forward(layers, obs)
    resid = actions - acts.mean
    d_mean = -weights * resid * head.inv_var
    back = backward(acts, layers, d_mean, second_order=second_order)
    # ∂f/∂log σ = Σ_s c_s (1 − (a − μ)² σ⁻²), through the clamp
    d_log_std = (weights * (1.0 - resid.square() * head.inv_var)).sum(1) * head.open.squeeze(1)
    if latent is None:
        return ScoreTerm(policy, layers, head, acts, back, weights, resid, d_mean, _join(policy, back.grads, d_log_std))
    # the latent's block: −Σ_r c_r log q(z_r), a Gaussian whose outputs are its parameters
    z_resid = latent.latents - params["latent_mean"].unsqueeze(1)
    z_inv_var = torch.exp(-2.0 * params["latent_log_std"]).unsqueeze(1)
    scored = LatentScore(latent.weights, z_resid, z_inv_var)
    gradient = _join(policy, back.grads, d_log_std, _latent_gradient(scored, latent.weights))
    return ScoreTerm(policy, layers, head, acts, back, weights, resid, d_mean, gradient, scored)


def _latent_gradient(latent: LatentScore, weights: Tensor) -> tuple[Tensor, Tensor]:
    """``∂/∂(μ_z, log σ_z)`` of ``−Σ_r w_r log q(z_r)``, ``w [n, R, 1]``: ``([n, K], [n, K])``."""
    d_mean = -(weights * latent.resid * latent.inv_var).sum(1)
    d_log_std = (weights * (1.0 - latent.resid.square() * latent.inv_var)).sum(1)
    return d_mean, d_log_std


def score_hessian_product(term: ScoreTerm, direction: Params, *, lvc: bool = False) -> Params:
    """``∇²f_i · u_i`` for every task: the directional derivative of :attr:`ScoreTerm.gradient`.

    The term must have been built with ``second_order=True``.

    Args:
        term: The term at its parameters.
        direction: ``u`` stacked like the parameters (a broadcast view is fine).
        lvc: ``f`` in ProMP's low-variance-curvature form ``−Σ_s c_s π_s / ⊥π_s`` (same value and
            gradient): its Hessian adds ``−Σ_s c_s g_s g_sᵀ`` with ``g_s = ∇log π_s``, whose product
            is the gradient of the score term with weights ``c_s (g_s · u)``. That gradient is a
            backward pass of its own ``∂/∂μ``, and the backward part of :func:`backward_tangent`
            is linear in the ``R(∂f/∂μ)`` it starts from, so both share one pass.
    """
    d_layers, d_log_std = _split(term.policy, direction)
    moves = tangent(term.acts, term.layers, d_layers)
    r_log_std = term.head.open * d_log_std.unsqueeze(1)  # [n, 1, act_dim]
    # R(−c (a − μ) σ⁻²) = c (Rμ + 2 (a − μ) R log σ) σ⁻²
    scaled = term.weights * term.head.inv_var
    rd_mean = scaled * torch.addcmul(moves.mean, term.resid, r_log_std, value=2.0)
    # σ⁻² (a − μ) (Rμ + (a − μ) R log σ): shared by R(∂f/∂log σ) and, with LVC, g · u
    score_u = term.head.inv_var * term.resid * torch.addcmul(moves.mean, term.resid, r_log_std)
    # R Σ_s c (1 − (a − μ)² σ⁻²) = Σ_s c σ⁻² (2 (a − μ) Rμ + 2 (a − μ)² R log σ)
    r_d_log_std = 2.0 * (term.weights * score_u).sum(1)
    latent = None
    lat = term.latent
    if lat is not None:  # the same formulas with Rμ_z = u_μ, R log σ_z = u_s
        u_mean, u_log_std = direction["latent_mean"].unsqueeze(1), direction["latent_log_std"].unsqueeze(1)
        z_score_u = lat.inv_var * lat.resid * torch.addcmul(u_mean, lat.resid, u_log_std)
        r_mean = (lat.weights * lat.inv_var * torch.addcmul(u_mean, lat.resid, u_log_std, value=2.0)).sum(1)
        latent = (r_mean, 2.0 * (lat.weights * z_score_u).sum(1))
    if lvc:
        # g_s · u = Σ_j σ⁻² (a − μ) (Rμ + (a − μ) R log σ) − R log σ, and the latent's at the first steps
        r_logp = (score_u - r_log_std).sum(-1, keepdim=True)
        if lat is not None:
            r_z = (z_score_u - u_log_std).sum(-1, keepdim=True)
            r_logp = torch.cat([r_logp[:, : r_z.shape[1]] + r_z, r_logp[:, r_z.shape[1] :]], dim=1)
        outer_weights = term.weights * r_logp  # [n, S, 1]
        # the score term's ∂/∂μ and ∂/∂log σ with weights c (g · u)
        rd_mean = rd_mean.addcmul_(outer_weights * term.head.inv_var, term.resid, value=-1.0)
        r_d_log_std = r_d_log_std + (outer_weights * (1.0 - term.resid.square() * term.head.inv_var)).sum(1)
        if lat is not None and latent is not None:
            z_mean, z_std = _latent_gradient(lat, outer_weights[:, : lat.resid.shape[1]])
            latent = (latent[0] + z_mean, latent[1] + z_std)
    r_layers = backward_tangent(term.acts, term.back, moves, term.layers, d_layers, term.d_mean, rd_mean)
    return _join(term.policy, r_layers, r_d_log_std * term.head.open.squeeze(1), latent)


class KLTerm(NamedTuple):
    """The Gauss-Newton form of ``Σ_s w_s KL(π_old(·|o_s) ‖ π(·|o_s))`` at ``π = π_old``.

    There the KL's Hessian in the outputs is the Gaussian's Fisher information: ``σ⁻²`` for each
    mean and ``2`` for each log-standard deviation, no cross terms.

    Attributes:
        policy: Architecture.
        layers: The parameters' layers.
        head: The Gaussian head.
        acts: Forward pass on the observations.
        weights: ``w [n, S, 1]``.
        latent: With a latent: ``(Σ_r w_r [n, 1], σ_z⁻² [n, K])``, the first steps' total weight and
            the latent's Fisher in its mean (``2`` in its log-standard deviation).
    """

    policy: GaussianMLPPolicy
    layers: list[Layer]
    head: GaussianHead
    acts: Activations
    weights: Tensor
    latent: tuple[Tensor, Tensor] | None = None


def kl_term(
    policy: GaussianMLPPolicy,
    params: Params,
    acts: Activations,
    weights: Tensor,
    latent: LatentData | None = None,
) -> KLTerm:
    """Builds :class:`KLTerm` from a forward pass ``acts`` of stacked ``params`` and weights ``w [n, S, 1]``
    (and, with a latent, the first steps' weights in ``latent``)."""
    fisher = None
    if latent is not None:
        fisher = (latent.weights.sum(1), torch.exp(-2.0 * params["latent_log_std"]))
    return KLTerm(policy, layers_of(policy, params), head_of(policy, params), acts, weights, fisher)


def kl_gauss_newton_product(term: KLTerm, direction: Params) -> Params:
    """``Jᵢᵀ Mᵢ Jᵢ uᵢ`` for every task: ``J`` the Jacobian of the outputs, ``M`` the Fisher times ``w``."""
    d_layers, d_log_std = _split(term.policy, direction)
    moves = tangent(term.acts, term.layers, d_layers)
    d_mean = term.weights * term.head.inv_var * moves.mean
    back = backward(term.acts, term.layers, d_mean)
    open_ = term.head.open.squeeze(1)
    r_log_std = 2.0 * term.weights.sum(1) * open_ * d_log_std * open_
    latent = None
    if term.latent is not None:
        total, inv_var = term.latent
        latent = (total * inv_var * direction["latent_mean"], 2.0 * total * direction["latent_log_std"])
    return _join(term.policy, back.grads, r_log_std, latent)
