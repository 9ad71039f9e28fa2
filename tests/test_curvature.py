"""The written-out derivatives against autograd, and the KL-Fisher subsample against the exact curvature."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from metarl.adaptation import inner_loss
from metarl.config import Config, load_config
from metarl.curvature import score_hessian_product, score_term
from metarl.experiment import build_experiment
from metarl.maml import MetaBatch, curvature_product, group_curvature, meta_update, task_groups
from metarl.policies import GaussianMLPPolicy, Params
from metarl.rollouts import AdaptationSettings, Streams, collect_adaptation
from metarl.trpo import conjugate_gradient
from tests.helpers import random_episodes, tiny_params

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.mark.parametrize("hidden", [(), (6,), (5, 4)])
def test_score_term_gradient_and_hessian_product_equal_autograd(hidden: tuple[int, ...]) -> None:
    """The inner loss's gradient and Hessian products, written out, through a clamped log-std too."""
    policy = GaussianMLPPolicy(obs_dim=3, act_dim=2, hidden_sizes=hidden, init_std=0.7, min_std=0.5)
    params = tiny_params(policy)
    params["log_std"] = torch.tensor([math.log(0.3), math.log(0.9)], dtype=torch.float64)  # the first clamped
    episodes = random_episodes(n=3)
    stacked = {k: v.unsqueeze(0).expand(3, *v.shape).clone().requires_grad_(True) for k, v in params.items()}
    masks = episodes.masks
    weights = (episodes.advantages * masks / masks.sum((1, 2), keepdim=True)).reshape(3, -1, 1)
    term = score_term(
        policy,
        {k: v.detach() for k, v in stacked.items()},
        episodes.obs.reshape(3, -1, 3),
        episodes.actions.reshape(3, -1, 2),
        weights,
        second_order=True,
    )
    grads = torch.autograd.grad(inner_loss(policy, stacked, episodes).sum(), list(stacked.values()), create_graph=True)
    for (key, ours), reference in zip(term.gradient.items(), grads, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12, msg=key)
    gen = torch.Generator().manual_seed(1)
    direction = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in stacked.items()}
    products = torch.autograd.grad(grads, list(stacked.values()), list(direction.values()))
    for (key, ours), reference in zip(score_hessian_product(term, direction).items(), products, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12, msg=key)


# ---------------------------------------------------------------------------------------------- subsample


def _batch(config: Config, iterations: int) -> tuple[GaussianMLPPolicy, Params, MetaBatch]:
    """A fixed meta-batch after ``iterations`` exact meta-updates from a seeded initialisation."""
    exp = build_experiment(config)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    params = exp.policy.init_params(gen)
    try:
        for k in range(iterations + 1):
            tasks = exp.family.sample_tasks(config.outer.meta_batch_size, rng)
            settings = AdaptationSettings(
                1, config.inner.rollouts, config.inner.fast_lr, config.advantage, config.inner.latent_step
            )
            episodes = collect_adaptation(exp.sampler, params, tasks, settings, Streams(rng, gen)).episodes
            batch = MetaBatch((episodes[0],), episodes[1])
            if k < iterations:
                params, _ = meta_update(exp.policy, params, batch, config.inner, config.outer)
    finally:
        exp.sampler.close()
    return exp.policy, params, batch


def _direction(
    policy: GaussianMLPPolicy, params: Params, batch: MetaBatch, config: Config, hvp_subsample: float
) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """The CG direction of the update and the curvature product (damped) it was solved with."""
    n = batch.query.num_tasks
    curvatures = [
        group_curvature(policy, params, g, config.inner, n, hvp_subsample=hvp_subsample) for g in task_groups(batch)
    ]
    grad = torch.stack([c.gradient for c in curvatures]).sum(0)

    def product(v: Tensor) -> Tensor:
        return torch.stack([curvature_product(c, v, params) for c in curvatures]).sum(0) + config.outer.cg_damping * v

    return conjugate_gradient(product, grad, config.outer.cg_iters).x, product


@pytest.mark.parametrize(
    ("experiment", "overrides", "iterations"),
    [
        ("half_cheetah_vel.yaml", ["outer.meta_batch_size=4", "inner.rollouts=10"], 0),
        ("navigation.yaml", ["outer.meta_batch_size=8", "inner.rollouts=10"], 10),
    ],
)
def test_fisher_on_a_quarter_of_the_query_steps_keeps_the_step(
    experiment: str, overrides: list[str], iterations: int
) -> None:
    """``outer.hvp_subsample=0.25`` against the exact curvature on one fixed batch: the CG direction's
    cosine and the trust-region scale ``sᵀHs`` (measured: cosine 0.985-0.987 and ratio 0.88-0.89 on
    HalfCheetahVel 4x10 at initialisation with gymnasium's frame_skip 5, 0.997 and 0.98 with the
    config's frame_skip 1, seed 0; 0.999-1.000 and 1.03-1.04 on navigation 8-10 x 10 after 10
    updates, 3 seeds, with its earlier clipped-displacement actions, 0.999 and 1.05 with the
    normalised ones, seed 0)."""
    config = load_config(EXPERIMENTS / experiment, [*overrides, "sampler.torch_threads=1", "sampler.num_threads=1"])
    policy, params, batch = _batch(config, iterations)
    exact, exact_product = _direction(policy, params, batch, config, 1.0)
    approx, approx_product = _direction(policy, params, batch, config, 0.25)
    cosine = torch.dot(exact, approx) / (exact.norm() * approx.norm())
    assert cosine >= 0.95
    ratio = torch.dot(approx, approx_product(approx)) / torch.dot(approx, exact_product(approx))
    assert 0.75 <= ratio <= 1.33  # the step's KL under the exact curvature stays near δ
