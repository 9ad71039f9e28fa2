"""Returns, GAE, normalization and the linear baseline against hand-computed values."""

from __future__ import annotations

import torch

from metarl.advantages import (
    baseline_features,
    baseline_values,
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
    with_advantages,
)
from tests.helpers import random_episodes


def _one(values: list[float]) -> torch.Tensor:
    """A single task and rollout: ``[1, T, 1]``."""
    return torch.tensor(values, dtype=torch.float64).view(1, -1, 1)


def test_discounted_returns_by_hand() -> None:
    rewards = _one([1.0, 2.0, 3.0])
    masks = _one([1.0, 1.0, 1.0])
    out = discounted_returns(rewards, masks, gamma=0.5)
    torch.testing.assert_close(out, _one([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]))


def test_returns_stop_at_the_end_of_an_episode() -> None:
    out = discounted_returns(_one([1.0, 1.0, 5.0]), _one([1.0, 1.0, 0.0]), gamma=1.0)
    torch.testing.assert_close(out, _one([2.0, 1.0, 0.0]))


def test_gae_by_hand() -> None:
    rewards, values, masks = _one([1.0, 0.0, 2.0]), _one([0.5, 1.0, 0.2]), _one([1.0, 1.0, 1.0])
    g, lam = 0.9, 0.5
    d2 = 2.0 - 0.2
    d1 = 0.0 + g * 0.2 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    torch.testing.assert_close(gae(rewards, values, masks, g, lam), _one([a0, a1, a2]))


def test_gae_with_lambda_one_is_return_minus_baseline() -> None:
    ep = random_episodes()
    values = torch.randn(ep.rewards.shape, dtype=torch.float64) * ep.masks
    expected = (discounted_returns(ep.rewards, ep.masks, 0.99) - values) * ep.masks
    torch.testing.assert_close(gae(ep.rewards, values, ep.masks, 0.99, 1.0), expected)


def test_normalization_is_per_task_and_ignores_masked_steps() -> None:
    ep = random_episodes()
    adv = normalize_per_task(ep.advantages * 3.0 + 7.0, ep.masks)
    for i in range(ep.num_tasks):
        valid = adv[i][ep.masks[i] > 0]
        assert abs(valid.mean().item()) < 1e-9
        assert abs(valid.std(unbiased=False).item() - 1.0) < 1e-6
    assert (adv[ep.masks == 0] == 0).all()


def test_baseline_fits_a_linear_target_exactly() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 200, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    y = (x @ w.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(fit_linear_baseline(x, y, reg=1e-12), w, rtol=1e-6, atol=1e-6)


def test_baseline_never_raises_on_rank_deficiency() -> None:
    x = torch.zeros(3, 50, 6, dtype=torch.float64)
    x[1, :, 0] = 1.0  # one constant column, the rest zero
    x[2, :, :2] = torch.randn(50, 1, dtype=torch.float64).repeat(1, 2)  # duplicated column
    y = torch.randn(3, 50, dtype=torch.float64)
    w = fit_linear_baseline(x, y, reg=1e-5)
    assert torch.isfinite(w).all()
    nan = x.clone()
    nan[0, 0, 0] = float("nan")
    assert torch.isfinite(fit_linear_baseline(nan, y, reg=1e-5)[1:]).all()


def test_baseline_features_layout() -> None:
    ep = random_episodes(n=1, t=3, r=1, early_end=False)
    f = baseline_features(ep.obs, ep.masks)
    assert f.shape == (1, 3, 1, 2 * 3 + 4)
    o = ep.obs[0, 2, 0]
    t = 2 / 100
    torch.testing.assert_close(f[0, 2, 0], torch.cat([o, o**2, torch.tensor([t, t**2, t**3, 1.0], dtype=o.dtype)]))


def test_with_advantages_reduces_variance_against_raw_returns() -> None:
    ep = random_episodes(n=2, t=30, r=8, early_end=False)
    ep = ep._replace(rewards=ep.rewards + torch.linspace(0, 3, 30, dtype=torch.float64).view(1, 30, 1))
    values = baseline_values(ep, 0.99, 1e-5)
    returns = discounted_returns(ep.rewards, ep.masks, 0.99)
    assert (returns - values).var() < returns.var()
    out = with_advantages(ep, 0.99, 1.0, True, 1e-5)
    assert out.advantages.shape == ep.rewards.shape and not out.advantages.requires_grad


def test_the_baseline_does_not_read_a_latent() -> None:
    """With ``obs_dim`` the baseline is fit on the environment's observation alone: the latent is part
    of the first step's action, and a baseline that read it would take its effect out of A_0."""
    ep = random_episodes(n=2, t=6, r=5, early_end=False, latent_dim=2)
    ep = ep._replace(rewards=ep.rewards + 3.0 * ep.obs[:, :1, :, 3:4].sum(-1))  # the return follows z
    without = ep._replace(obs=ep.obs[..., :3])
    torch.testing.assert_close(baseline_values(ep, 0.99, 1e-5, obs_dim=3), baseline_values(without, 0.99, 1e-5))
    reads_z = with_advantages(ep, 0.99, 1.0, False, 1e-5).advantages[:, 0]
    blind = with_advantages(ep, 0.99, 1.0, False, 1e-5, obs_dim=3).advantages[:, 0]
    z = ep.obs[:, 0, :, 3]
    assert abs(torch.corrcoef(torch.stack([blind.reshape(-1), z.reshape(-1)]))[0, 1]) > 0.5
    assert reads_z.abs().mean() < blind.abs().mean()  # the latent's signal fitted away
