"""The Gaussian MLP policy and its densities against torch.func and torch.distributions."""

from __future__ import annotations

import torch
from torch.distributions import Normal, kl_divergence
from torch.func import vmap

from metarl.policies import GaussianMLPPolicy, gaussian_kl, gaussian_log_prob, stack_params
from tests.helpers import tiny_params, tiny_policy


def test_batched_task_forward_equals_vmap_of_functional_call() -> None:
    policy = tiny_policy(hidden=(7, 5))
    gen = torch.Generator().manual_seed(1)
    params = {
        k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
        for k, v in stack_params(tiny_params(policy), 4).items()
    }
    obs = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64)
    mean, log_std = policy.task_distribution(params, obs)
    ref_mean, ref_log_std = vmap(policy.distribution)(params, obs)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(log_std, ref_log_std)
    assert mean.shape == (4, 6, 3, 2)


def test_log_prob_and_kl_match_torch_distributions() -> None:
    gen = torch.Generator().manual_seed(0)
    m1, m2, a = (torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    s1, s2 = (0.3 * torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    p, q = Normal(m1, s1.exp()), Normal(m2, s2.exp())
    torch.testing.assert_close(gaussian_log_prob(m1, s1, a), p.log_prob(a).sum(-1))
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), kl_divergence(p, q).sum(-1))


def test_init_is_seeded_and_std_is_bounded() -> None:
    policy = GaussianMLPPolicy(3, 2, (8,), init_std=0.5, min_std=0.1)
    a = policy.init_params(torch.Generator().manual_seed(3))
    b = policy.init_params(torch.Generator().manual_seed(3))
    c = policy.init_params(torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layers.0.weight"], c["layers.0.weight"])
    assert torch.allclose(a["log_std"].exp(), torch.full((2,), 0.5))
    a["log_std"] = torch.full((2,), -10.0)
    _, log_std = policy.distribution(a, torch.zeros(1, 3))
    assert torch.allclose(log_std.exp(), torch.full((1, 2), 0.1))
