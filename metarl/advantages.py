"""Per-task linear feature baseline, discounted returns, GAE(λ) and advantage normalization.

All functions work on the task-first layout of :class:`~metarl.episodes.Episodes`
(``[N, T, R]``) and handle every task of a meta-batch in one batched call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metarl.episodes import Episodes


def discounted_returns(rewards: Tensor, masks: Tensor, gamma: float) -> Tensor:
    """``G_t = r_t + γ G_{t+1}`` within each episode.

    Args:
        rewards: ``[N, T, R]``.
        masks: ``[N, T, R]``, 1 while the episode runs.
        gamma: Discount factor.

    Returns:
        ``[N, T, R]`` (zero where masked).
    """
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = (rewards[:, t] + gamma * running) * masks[:, t]
        out[:, t] = running
    return out


def baseline_features(obs: Tensor, masks: Tensor) -> Tensor:
    """The MAML paper's (rllab's) baseline features ``[o, o², t, t², t³, 1]`` with ``t = step/100``.

    Args:
        obs: ``[N, T, R, obs_dim]``.
        masks: ``[N, T, R]``.

    Returns:
        ``[N, T, R, 2 * obs_dim + 4]`` (zero rows where masked).
    """
    n, horizon, r, _ = obs.shape
    o = obs.clamp(-10.0, 10.0)
    t = (torch.arange(horizon, dtype=obs.dtype) / 100.0).view(1, horizon, 1, 1).expand(n, horizon, r, 1)
    feats = torch.cat([o, o.pow(2), t, t.pow(2), t.pow(3), torch.ones_like(t)], dim=-1)
    return feats * masks.unsqueeze(-1)


def fit_linear_baseline(features: Tensor, targets: Tensor, reg: float) -> Tensor:
    """Ridge regression per task, solved stably (never raises on rank deficiency).

    Solves ``(XᵀX + λ I) w = Xᵀy`` with ``λ = reg · (1 + mean diag XᵀX)`` by Cholesky; a task
    whose system still fails to factor (e.g. non-finite data) falls back to the pseudo-inverse.

    Args:
        features: ``[N, M, F]`` design matrices (masked rows are zero).
        targets: ``[N, M]``.
        reg: Ridge coefficient (relative to the feature scale).

    Returns:
        ``[N, F]`` weights, in float64.
    """
    x = features.to(torch.float64)
    y = targets.to(torch.float64)
    gram = x.transpose(1, 2) @ x
    rhs = (x.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(gram.shape[-1], dtype=torch.float64)
    scale = 1.0 + gram.diagonal(dim1=1, dim2=2).mean(-1)
    system = gram + (reg * scale).view(-1, 1, 1) * eye
    chol, info = torch.linalg.cholesky_ex(system)
    weights = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    bad = (info != 0) | ~torch.isfinite(weights).all(-1)
    if bad.any():
        fallback = torch.linalg.pinv(torch.nan_to_num(system[bad]), hermitian=True) @ torch.nan_to_num(
            rhs[bad]
        ).unsqueeze(-1)
        weights[bad] = fallback.squeeze(-1)
    return weights


def baseline_values(episodes: Episodes, gamma: float, reg: float, obs_dim: int | None = None) -> Tensor:
    """Fits one linear baseline per task to its own returns and evaluates it.

    Args:
        episodes: The episodes.
        gamma: Discount.
        reg: Ridge coefficient.
        obs_dim: Features from the first ``obs_dim`` columns of the observations only (None: all).
            A policy's per-episode latent is part of its first step's action, so a baseline that
            read it would bias the latent's gradient: the environment's observation alone is used.

    Returns:
        ``[N, T, R]`` value estimates (zero where masked).
    """
    n, horizon, r = episodes.rewards.shape
    feats = baseline_features(episodes.obs[..., :obs_dim], episodes.masks)
    returns = discounted_returns(episodes.rewards, episodes.masks, gamma)
    weights = fit_linear_baseline(feats.reshape(n, horizon * r, -1), returns.reshape(n, -1), reg)
    values = (feats.to(torch.float64) @ weights.view(n, 1, -1, 1)).squeeze(-1)
    return values.to(episodes.rewards.dtype) * episodes.masks


def gae(rewards: Tensor, values: Tensor, masks: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalized advantage estimation.

    ``δ_t = r_t + γ V_{t+1} − V_t`` and ``A_t = δ_t + γλ A_{t+1}``, with ``V`` and ``A`` zero past
    the end of each episode (every episode ends at termination or at the horizon).

    Args:
        rewards: ``[N, T, R]``.
        values: ``[N, T, R]``.
        masks: ``[N, T, R]``.
        gamma: Discount factor.
        lam: GAE λ (1.0 gives Monte-Carlo returns minus the baseline).

    Returns:
        ``[N, T, R]`` (zero where masked).
    """
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        m = masks[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = (delta + gamma * lam * next_adv) * m
        adv[:, t] = next_adv
        next_value = values[:, t] * m
    return adv


def normalize_per_task(adv: Tensor, masks: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean, unit variance over the valid steps of each task.

    Args:
        adv: ``[N, T, R]``.
        masks: ``[N, T, R]``.

    Returns:
        ``[N, T, R]`` (zero where masked).
    """
    count = masks.sum((1, 2), keepdim=True).clamp(min=1.0)
    mean = (adv * masks).sum((1, 2), keepdim=True) / count
    var = ((adv - mean).pow(2) * masks).sum((1, 2), keepdim=True) / count
    return (adv - mean) / (var.sqrt() + eps) * masks


def with_advantages(
    episodes: Episodes, gamma: float, gae_lambda: float, normalize: bool, reg: float, obs_dim: int | None = None
) -> Episodes:
    """Returns ``episodes`` with its ``advantages`` field filled (baseline fit per task + GAE; the
    baseline reads the first ``obs_dim`` observation columns, see :func:`baseline_values`)."""
    values = baseline_values(episodes, gamma, reg, obs_dim)
    adv = gae(episodes.rewards, values, episodes.masks, gamma, gae_lambda)
    if normalize:
        adv = normalize_per_task(adv, episodes.masks)
    return episodes._replace(advantages=adv.detach())
