"""Small synthetic batches for the maths tests (no environment needed)."""

from __future__ import annotations

import torch

from metarl.episodes import Episodes
from metarl.maml import MetaBatch
from metarl.policies import GaussianMLPPolicy, Params


def tiny_policy(hidden: tuple[int, ...] = (6,)) -> GaussianMLPPolicy:
    return GaussianMLPPolicy(obs_dim=3, act_dim=2, hidden_sizes=hidden, init_std=0.7)


def tiny_params(policy: GaussianMLPPolicy, seed: int = 0) -> Params:
    params = policy.init_params(torch.Generator().manual_seed(seed), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 100)
    # non-zero biases so that no derivative vanishes by symmetry
    return {k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()}


def random_episodes(n: int = 3, t: int = 5, r: int = 4, seed: int = 0, *, early_end: bool = True) -> Episodes:
    """Episodes with random observations, actions and advantages, ``[n, t, r, ...]``, float64."""
    gen = torch.Generator().manual_seed(seed)
    masks = torch.ones(n, t, r, dtype=torch.float64)
    if early_end:
        masks[0, t - 2 :, 0] = 0.0  # one episode ends early
    return Episodes(
        obs=torch.randn(n, t, r, 3, generator=gen, dtype=torch.float64),
        actions=torch.randn(n, t, r, 2, generator=gen, dtype=torch.float64),
        rewards=torch.randn(n, t, r, generator=gen, dtype=torch.float64) * masks,
        masks=masks,
        log_probs=torch.zeros(n, t, r, dtype=torch.float64),
        advantages=torch.randn(n, t, r, generator=gen, dtype=torch.float64) * masks,
        success=torch.full((n, r), float("nan"), dtype=torch.float64),
        unstable=torch.zeros(n, r, dtype=torch.float64),
    )


def random_meta_batch(steps: int = 1, n: int = 3, seed: int = 0) -> MetaBatch:
    supports = tuple(random_episodes(n=n, seed=seed + k) for k in range(steps))
    return MetaBatch(supports, random_episodes(n=n, seed=seed + 50))
