"""Small synthetic batches for the maths tests (no environment needed), and the double-backward reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from metarl.episodes import Episodes
from metarl.maml import MetaBatch
from metarl.policies import GaussianMLPPolicy, Params


def tiny_policy(hidden: tuple[int, ...] = (6,), latent_dim: int = 0) -> GaussianMLPPolicy:
    return GaussianMLPPolicy(obs_dim=3, act_dim=2, hidden_sizes=hidden, init_std=0.7, latent_dim=latent_dim)


def tiny_params(policy: GaussianMLPPolicy, seed: int = 0) -> Params:
    params = policy.init_params(torch.Generator().manual_seed(seed), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 100)
    # non-zero biases so that no derivative vanishes by symmetry; entries the policy keeps fixed stay as initialised
    noise = {k: 0.1 * torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()}
    return {k: v + noise[k] * policy.fixed.get(k, torch.ones(())) for k, v in params.items()}


def random_episodes(
    n: int = 3, t: int = 5, r: int = 4, seed: int = 0, *, early_end: bool = True, latent_dim: int = 0
) -> Episodes:
    """Episodes with random observations, actions and advantages, ``[n, t, r, ...]``, float64; with
    ``latent_dim`` K, each rollout's random latent is appended to its observations at every step."""
    gen = torch.Generator().manual_seed(seed)
    masks = torch.ones(n, t, r, dtype=torch.float64)
    if early_end:
        masks[0, t - 2 :, 0] = 0.0  # one episode ends early
    obs = torch.randn(n, t, r, 3, generator=gen, dtype=torch.float64)
    if latent_dim > 0:
        latents = torch.randn(n, 1, r, latent_dim, generator=gen, dtype=torch.float64)
        obs = torch.cat([obs, latents.expand(n, t, r, latent_dim)], dim=-1)
    return Episodes(
        obs=obs,
        actions=torch.randn(n, t, r, 2, generator=gen, dtype=torch.float64),
        rewards=torch.randn(n, t, r, generator=gen, dtype=torch.float64) * masks,
        masks=masks,
        log_probs=torch.zeros(n, t, r, dtype=torch.float64),
        advantages=torch.randn(n, t, r, generator=gen, dtype=torch.float64) * masks,
        success=torch.full((n, r), float("nan"), dtype=torch.float64),
        unstable=torch.zeros(n, r, dtype=torch.float64),
    )


def random_meta_batch(steps: int = 1, n: int = 3, seed: int = 0, latent_dim: int = 0) -> MetaBatch:
    supports = tuple(random_episodes(n=n, seed=seed + k, latent_dim=latent_dim) for k in range(steps))
    return MetaBatch(supports, random_episodes(n=n, seed=seed + 50, latent_dim=latent_dim))


def hessian_vector_product_fn(
    scalar: Tensor, leaves: Sequence[Tensor], damping: float = 0.0
) -> Callable[[Tensor], Tensor]:
    """Exact Hessian-vector products of ``scalar`` with respect to ``leaves``, by double backpropagation.

    The reference the written-out curvature (:mod:`metarl.curvature`) is tested against; the package
    itself never walks a retained graph twice.

    The gradient graph is built once here; each product is then one double-backward pass.

    Args:
        scalar: A 0-d tensor computed from ``leaves`` (kept differentiable to second order).
        leaves: Tensors the Hessian is taken over, flattened and concatenated in order (``P``).
        damping: ``λ`` in ``(H + λI) v``.

    Returns:
        ``v [P] ↦ (H + λI) v [P]``.
    """
    grads = torch.autograd.grad(scalar, list(leaves), create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def product(v: Tensor) -> Tensor:
        hv = torch.autograd.grad(flat @ v, list(leaves), retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]) + damping * v

    return product
