"""MAML maths against finite differences and independent computations (float64)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import pytest
import torch
from torch import Tensor

from metarl.adaptation import adapt, inner_loss
from metarl.config import InnerConfig, OuterConfig
from metarl.episodes import Episodes
from metarl.maml import (
    MetaBatch,
    curvature_product,
    group_curvature,
    mean_kl,
    meta_update,
    query_distribution,
    reptile_meta_update,
    surrogate_loss,
    task_groups,
    trpo_meta_update,
)
from metarl.policies import (
    GaussianMLPPolicy,
    Params,
    PolicyOutputs,
    outputs_log_prob,
    params_to_vector,
    stack_params,
    step_log_prob,
    task_outputs,
    vector_to_params,
)
from tests.helpers import hessian_vector_product_fn, random_meta_batch, tiny_params, tiny_policy

INNER = InnerConfig(fast_lr=0.3)
Algorithm = Literal["maml_trpo", "fomaml", "reptile"]
LATENT_INNER = InnerConfig(fast_lr=0.3, latent_lr=0.6)  # a latent with a step size of its own


def _log_prob(policy: GaussianMLPPolicy, out: PolicyOutputs, episodes: Episodes) -> Tensor:
    return outputs_log_prob(out, episodes.actions, policy.latents(episodes.obs))


def _detached(out: PolicyOutputs) -> PolicyOutputs:
    return PolicyOutputs(*(t.detach() for t in out))


def _objective(
    policy: GaussianMLPPolicy, like: Params, batch: MetaBatch, inner: InnerConfig
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Surrogate loss and KL as functions of the flat parameter vector, old policy fixed at ``like``."""
    with torch.no_grad():
        old = query_distribution(policy, like, batch, inner, create_graph=False)
    old_log_prob = _log_prob(policy, old, batch.query)

    def loss(x: Tensor) -> Tensor:
        out = query_distribution(policy, vector_to_params(x, like), batch, inner, create_graph=True)
        return surrogate_loss(_log_prob(policy, out, batch.query), old_log_prob, batch.query)

    def kl(x: Tensor) -> Tensor:
        out = query_distribution(policy, vector_to_params(x, like), batch, inner, create_graph=True)
        return mean_kl(old, out, batch.query.masks)

    return loss, kl


def _central_difference(f: Callable[[Tensor], Tensor], x: Tensor, eps: float = 1e-6) -> Tensor:
    out = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = eps
        out[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


def _meta_gradient(policy: GaussianMLPPolicy, params: Params, batch: MetaBatch, inner: InnerConfig) -> Tensor:
    loss_fn, _ = _objective(policy, params, batch, inner)
    x = params_to_vector(params).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(x), x)
    return grad


def _assert_written_out_maths_exact(
    policy: GaussianMLPPolicy, params: Params, batch: MetaBatch, inner: InnerConfig, seed: int
) -> None:
    """The written-out meta-gradient and curvature product (one random direction) equal autograd's."""
    curvature = group_curvature(policy, params, batch, inner, num_tasks=batch.query.num_tasks)
    torch.testing.assert_close(curvature.gradient, _meta_gradient(policy, params, batch, inner), rtol=1e-10, atol=1e-12)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = query_distribution(policy, theta, batch, inner, create_graph=True)
    reference = hessian_vector_product_fn(mean_kl(_detached(out), out, batch.query.masks), list(theta.values()))
    v = torch.randn(params_to_vector(params).shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(curvature_product(curvature, v, params), reference(v), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("steps", "latent_dim"), [(1, 0), (2, 0), (2, 2)])
def test_meta_gradient_matches_finite_differences(steps: int, latent_dim: int) -> None:
    policy = tiny_policy(latent_dim=latent_dim)
    params = tiny_params(policy)
    batch = random_meta_batch(steps=steps, latent_dim=latent_dim)
    inner = LATENT_INNER if latent_dim else INNER
    grad = _meta_gradient(policy, params, batch, inner)
    loss_fn, _ = _objective(policy, params, batch, inner)
    with torch.no_grad():
        numeric = _central_difference(loss_fn, params_to_vector(params))
    torch.testing.assert_close(grad, numeric, rtol=1e-4, atol=1e-8)


def test_meta_gradient_reaches_every_parameter() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    grad = vector_to_params(_meta_gradient(policy, params, random_meta_batch(), INNER), params)
    for name, g in grad.items():
        assert g.abs().min() > 0, f"no meta-gradient reaches some entry of {name}"


def test_first_order_meta_gradient_has_no_second_order_term() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch()
    fo = dataclasses.replace(INNER, algorithm="fomaml")
    grad_fo = _meta_gradient(policy, params, batch, fo)
    # Independent first-order gradient: the query-loss gradient at the (constant) adapted parameters.
    with torch.no_grad():
        old = query_distribution(policy, params, batch, fo, create_graph=False)
    adapted = adapt(policy, params, batch.supports, fo.fast_lr)
    leaves = {k: v.detach().requires_grad_(True) for k, v in adapted.items()}
    log_prob = _log_prob(policy, task_outputs(policy, leaves, batch.query.obs), batch.query)
    old_log_prob = _log_prob(policy, old, batch.query)
    per_task = torch.autograd.grad(surrogate_loss(log_prob, old_log_prob, batch.query), list(leaves.values()))
    expected = torch.cat([g.sum(0).reshape(-1) for g in per_task])
    torch.testing.assert_close(grad_fo, expected, rtol=1e-10, atol=1e-12)
    grad_so = _meta_gradient(policy, params, batch, INNER)
    assert (grad_so - grad_fo).norm() > 1e-3 * grad_so.norm()  # MAML's second-order term is real


def test_first_order_adaptation_has_identity_jacobian() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch(steps=2)
    x = params_to_vector(params)

    def adapted_task0(v: Tensor) -> Tensor:
        out = adapt(policy, vector_to_params(v, params), batch.supports, 0.3, first_order=True, create_graph=True)
        return torch.cat([p[0].reshape(-1) for p in out.values()])

    jac = torch.autograd.functional.jacobian(adapted_task0, x)
    torch.testing.assert_close(jac, torch.eye(x.numel(), dtype=x.dtype))


def test_batched_inner_step_equals_a_loop_over_tasks() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch(n=3)
    adapted = adapt(policy, params, batch.supports, 0.3)
    for i in range(3):
        single = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        one_task = batch.supports[0]._replace(
            **{f: getattr(batch.supports[0], f)[i : i + 1] for f in batch.supports[0]._fields}
        )
        stacked = {k: v.unsqueeze(0) for k, v in single.items()}
        loss = inner_loss(policy, stacked, one_task).sum()
        grads = torch.autograd.grad(loss, list(single.values()))
        for (k, v), g in zip(single.items(), grads, strict=True):
            torch.testing.assert_close(adapted[k][i], (v - 0.3 * g).detach())


def test_the_lvc_inner_loss_has_the_same_step_and_the_score_outer_product_in_its_hessian() -> None:
    """ProMP's low-variance curvature: the same inner step (same gradient), and a Hessian that differs
    from REINFORCE's by exactly ``−Σ_s c_s g_s g_sᵀ`` (``g_s`` the per-step score, ``c_s = A m / Σm``)."""
    policy = tiny_policy(latent_dim=2)
    params = tiny_params(policy)
    support = random_meta_batch(latent_dim=2).supports[0]
    one = support.tasks(slice(0, 1))
    for k, v in adapt(policy, params, (support,), 0.3, lvc=True).items():
        torch.testing.assert_close(v, adapt(policy, params, (support,), 0.3)[k])
    x0 = params_to_vector(params)

    def hessian(lvc: bool) -> Tensor:
        def loss(x: Tensor) -> Tensor:
            stacked = stack_params(vector_to_params(x, params), 1)
            return inner_loss(policy, stacked, one, lvc=lvc).sum()

        return torch.autograd.functional.hessian(loss, x0)

    scores = []  # g_s, one per step of task 0
    weights = one.advantages * one.masks / one.masks.sum()
    for t in range(one.rewards.shape[1]):
        for r in range(one.rewards.shape[2]):
            x = x0.clone().requires_grad_(True)
            stacked = stack_params(vector_to_params(x, params), 1)
            (g,) = torch.autograd.grad(step_log_prob(policy, stacked, one.obs, one.actions)[0, t, r], x)
            scores.append((weights[0, t, r], g))
    outer = sum(c * torch.outer(g, g) for c, g in scores)
    torch.testing.assert_close(hessian(True) - hessian(False), -outer, rtol=1e-9, atol=1e-11)


def test_the_latent_takes_its_own_inner_step_size() -> None:
    """``inner.latent_lr`` scales the step of the latent's parameters alone (MAESN's separate step)."""
    policy = tiny_policy(latent_dim=2)
    params = tiny_params(policy)
    supports = random_meta_batch(latent_dim=2).supports
    plain = adapt(policy, params, supports, 0.3)
    own = adapt(policy, params, supports, 0.3, latent_lr=1.2)
    for k, v in params.items():
        if k.startswith("latent_"):
            torch.testing.assert_close(own[k] - v, 4.0 * (plain[k] - v))
            assert (plain[k] - v).abs().min() > 0
        else:
            torch.testing.assert_close(own[k], plain[k])


def test_hessian_vector_product_is_exact() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch()
    _, kl_fn = _objective(policy, params, batch, INNER)
    x0 = params_to_vector(params)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = query_distribution(policy, theta, batch, INNER, create_graph=True)
    kl = mean_kl(_detached(out), out, batch.query.masks)
    hvp = hessian_vector_product_fn(kl, list(theta.values()))
    v = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = hvp(v)
    _, reference = torch.autograd.functional.hvp(kl_fn, x0, v)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-10)

    def grad_kl(x: Tensor) -> Tensor:
        x = x.clone().requires_grad_(True)
        return torch.autograd.grad(kl_fn(x), x)[0]

    eps = 1e-5
    numeric = (grad_kl(x0 + eps * v) - grad_kl(x0 - eps * v)) / (2 * eps)
    torch.testing.assert_close(ours, numeric, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize(("algorithm", "latent_dim"), [("maml_trpo", 0), ("fomaml", 0), ("maml_trpo", 2)])
def test_trust_region_update_improves_within_the_radius(algorithm: Algorithm, latent_dim: int) -> None:
    policy = tiny_policy(latent_dim=latent_dim)
    params = tiny_params(policy)
    batch = random_meta_batch(latent_dim=latent_dim)
    inner = dataclasses.replace(LATENT_INNER if latent_dim else INNER, algorithm=algorithm)
    outer = OuterConfig(max_kl=0.01)
    new, stats = trpo_meta_update(policy, params, batch, inner, outer)
    assert stats.accepted and not stats.nonfinite
    assert stats.improvement > 0
    loss_fn, kl_fn = _objective(policy, params, batch, inner)
    with torch.no_grad():
        assert kl_fn(params_to_vector(new)).item() <= outer.max_kl
        assert loss_fn(params_to_vector(new)).item() == pytest.approx(stats.loss_after, rel=1e-9)


def test_rejected_update_restores_parameters_bit_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    import metarl.maml as maml

    real = maml.backtracking_line_search
    kls: list[float] = []

    def kl_always_too_large(evaluate, *args, **kwargs):
        def wrapped(x: Tensor) -> tuple[float, float]:
            loss, kl = evaluate(x)
            kls.append(kl)
            return loss, math.inf

        return real(wrapped, *args, **kwargs)

    monkeypatch.setattr(maml, "backtracking_line_search", kl_always_too_large)
    policy = tiny_policy()
    params = tiny_params(policy)
    before = {k: v.clone() for k, v in params.items()}
    new, stats = trpo_meta_update(policy, params, random_meta_batch(), INNER, OuterConfig(ls_max_steps=4))
    assert not stats.accepted and stats.line_search_steps == 4 and len(kls) == 4
    for k in params:
        assert torch.equal(new[k], before[k])


@pytest.mark.parametrize("algorithm", ["maml_trpo", "fomaml", "reptile"])
@pytest.mark.parametrize("where", ["query_advantages", "support_obs"])
def test_injected_nan_leaves_parameters_untouched(algorithm: Algorithm, where: str) -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    before = {k: v.clone() for k, v in params.items()}
    batch = random_meta_batch()
    if where == "query_advantages":
        adv = batch.query.advantages.clone()
        adv[1, 2, 0] = float("nan")
        batch = MetaBatch(batch.supports, batch.query._replace(advantages=adv))
    else:
        obs = batch.supports[0].obs.clone()
        obs[0, 0, 0, 0] = float("inf")
        batch = MetaBatch((batch.supports[0]._replace(obs=obs),), batch.query)
    inner = dataclasses.replace(INNER, algorithm=algorithm)
    if algorithm == "reptile" and where == "query_advantages":
        return  # reptile does not read the query set; the other case covers it
    update = reptile_meta_update if algorithm == "reptile" else trpo_meta_update
    new, stats = update(policy, params, batch, inner, OuterConfig())
    assert stats.nonfinite and not stats.accepted
    for k in params:
        assert torch.equal(new[k], before[k]) and torch.equal(params[k], before[k])


def test_reptile_moves_towards_the_mean_adapted_parameters() -> None:
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch(steps=2)
    outer = OuterConfig(step_size=0.5)
    new, stats = reptile_meta_update(policy, params, batch, INNER, outer)
    adapted = adapt(policy, params, batch.supports, INNER.fast_lr)
    for k, v in params.items():
        torch.testing.assert_close(new[k], v + 0.5 * (adapted[k].mean(0) - v))
    assert stats.accepted


@pytest.mark.parametrize(
    ("algorithm", "hvp_subsample", "latent_dim"),
    [("maml_trpo", 1.0, 0), ("maml_trpo", 0.5, 0), ("fomaml", 1.0, 0), ("fomaml", 0.5, 0), ("maml_trpo", 0.5, 2)],
)
def test_update_in_groups_of_tasks_equals_one_pass(
    monkeypatch: pytest.MonkeyPatch, algorithm: Algorithm, hvp_subsample: float, latent_dim: int
) -> None:
    """The learner's passes over groups of tasks add up to the single-pass update."""
    import metarl.episodes as episodes

    policy = tiny_policy(latent_dim=latent_dim)
    params = tiny_params(policy)
    # seed 3 with a latent: on seed 0's random batch CG is so ill-conditioned that the rounding of the
    # groups' sums alone moves its step by 2 % (the products and the gradient still agree to 1e-15)
    batch = random_meta_batch(steps=2, n=5, latent_dim=latent_dim, seed=3 if latent_dim else 0)
    inner = dataclasses.replace(LATENT_INNER if latent_dim else INNER, algorithm=algorithm)
    outer = OuterConfig(max_kl=0.01, hvp_subsample=hvp_subsample)
    assert len(task_groups(batch)) == 1
    whole, whole_stats = trpo_meta_update(policy, params, batch, inner, outer)
    monkeypatch.setattr(episodes, "CHUNK_SAMPLES", 2 * batch.query.samples_per_task)
    assert [g.query.num_tasks for g in task_groups(batch)] == [2, 2, 1]
    grouped, grouped_stats = trpo_meta_update(policy, params, batch, inner, outer)
    assert whole_stats.accepted and grouped_stats.accepted
    assert grouped_stats.line_search_steps == whole_stats.line_search_steps
    for key in ("loss_before", "loss_after", "kl", "grad_norm", "step_norm"):
        assert getattr(grouped_stats, key) == pytest.approx(
            getattr(whole_stats, key), rel=1e-7
        )  # CG amplifies rounding
    for k in params:
        torch.testing.assert_close(grouped[k], whole[k], rtol=1e-7, atol=1e-10)


def test_inner_step_in_groups_keeps_the_second_order_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    import metarl.episodes as episodes

    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch(steps=2, n=5)
    whole = _meta_gradient(policy, params, batch, INNER)
    monkeypatch.setattr(episodes, "CHUNK_SAMPLES", 1)  # one task per group
    torch.testing.assert_close(_meta_gradient(policy, params, batch, INNER), whole, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("algorithm", "steps"), [("maml_trpo", 1), ("maml_trpo", 2), ("fomaml", 1), ("fomaml", 2)])
@pytest.mark.parametrize(
    ("hidden", "latent_dim", "loss"),
    [((6,), 0, "reinforce"), ((5, 4), 0, "reinforce"), ((5, 4), 2, "reinforce"), ((5, 4), 0, "lvc"), ((6,), 2, "lvc")],
)
def test_curvature_product_equals_the_double_backward_hessian_product(
    algorithm: Algorithm, steps: int, hidden: tuple[int, ...], latent_dim: int, loss: Literal["reinforce", "lvc"]
) -> None:
    """``Jᵀ M J v`` written out through the inner steps is the KL's exact Hessian product at the current point
    (with a per-episode latent: its own block, and its own inner step size; with the low-variance-curvature
    inner loss, whose Hessian couples the latent's block to the network's, so that J is not symmetric)."""
    policy = tiny_policy(hidden, latent_dim=latent_dim)
    params = tiny_params(policy)
    batch = random_meta_batch(steps=steps, n=4, latent_dim=latent_dim)
    inner = dataclasses.replace(LATENT_INNER if latent_dim else INNER, algorithm=algorithm, loss=loss)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = query_distribution(policy, theta, batch, inner, create_graph=algorithm == "maml_trpo")
    kl = 0.5 * mean_kl(_detached(out), out, batch.query.masks)  # 4 of 8 tasks
    reference = hessian_vector_product_fn(kl, list(theta.values()))
    curvature = group_curvature(policy, params, batch, inner, num_tasks=8)
    gen = torch.Generator().manual_seed(steps)
    for _ in range(3):
        v = torch.randn(params_to_vector(params).shape, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(curvature_product(curvature, v, params), reference(v), rtol=1e-9, atol=1e-12)


def test_curvature_product_through_a_clamped_standard_deviation() -> None:
    """Where ``log σ`` sits below its floor the clamp passes no derivative, in both the inner step and the KL."""
    policy = GaussianMLPPolicy(obs_dim=3, act_dim=2, hidden_sizes=(6,), init_std=0.7, min_std=0.5)
    params = tiny_params(policy)
    params["log_std"] = torch.tensor([math.log(0.3), math.log(0.9)], dtype=torch.float64)  # the first is clamped
    batch = random_meta_batch(n=3)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = query_distribution(policy, theta, batch, INNER, create_graph=True)
    reference = hessian_vector_product_fn(mean_kl(_detached(out), out, batch.query.masks), list(theta.values()))
    curvature = group_curvature(policy, params, batch, INNER, num_tasks=3)
    v = torch.randn(params_to_vector(params).shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(curvature_product(curvature, v, params), reference(v), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("algorithm", "steps", "latent_dim", "loss"),
    [
        ("maml_trpo", 1, 0, "reinforce"),
        ("maml_trpo", 2, 0, "reinforce"),
        ("fomaml", 2, 0, "reinforce"),
        ("maml_trpo", 2, 2, "reinforce"),
        ("fomaml", 1, 2, "reinforce"),
        ("maml_trpo", 2, 0, "lvc"),
        ("maml_trpo", 2, 2, "lvc"),
    ],
)
def test_written_out_meta_gradient_equals_autograd(
    algorithm: Algorithm, steps: int, latent_dim: int, loss: Literal["reinforce", "lvc"]
) -> None:
    """The update's gradient and old policy (written out) equal autograd's through the inner steps."""
    policy = tiny_policy((5, 4), latent_dim=latent_dim)
    params = tiny_params(policy)
    batch = random_meta_batch(steps=steps, n=3, latent_dim=latent_dim)
    inner = dataclasses.replace(LATENT_INNER if latent_dim else INNER, algorithm=algorithm, loss=loss)
    curvature = group_curvature(policy, params, batch, inner, num_tasks=3, hvp_subsample=0.4)
    torch.testing.assert_close(curvature.gradient, _meta_gradient(policy, params, batch, inner), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        old = query_distribution(policy, params, batch, inner, create_graph=False)
    for ours, reference in zip(curvature.old.outputs, old, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(curvature.old.log_prob, _log_prob(policy, old, batch.query), rtol=1e-10, atol=1e-12)


ALGOS: tuple[Algorithm, Algorithm] = ("maml_trpo", "fomaml")


def test_without_inner_steps_the_update_is_plain_trpo_on_the_query() -> None:
    """``inner.steps = 0`` (one policy for all tasks): MAML-TRPO and FOMAML are the same update, which
    improves the un-adapted surrogate within the trust region."""
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch()._replace(supports=())
    outer = OuterConfig(max_kl=0.01)
    results = [trpo_meta_update(policy, params, batch, dataclasses.replace(INNER, algorithm=a), outer) for a in ALGOS]
    (new, stats), (other, _) = results
    assert stats.accepted and stats.improvement > 0
    torch.testing.assert_close(params_to_vector(new), params_to_vector(other), rtol=1e-6, atol=1e-9)
    loss_fn, kl_fn = _objective(policy, params, batch, INNER)
    with torch.no_grad():
        assert kl_fn(params_to_vector(new)).item() <= outer.max_kl
        assert loss_fn(params_to_vector(new)).item() == pytest.approx(stats.loss_after, rel=1e-9)


def _pre_kl(policy: GaussianMLPPolicy, params: Params, theta: Params, batch: MetaBatch) -> Tensor:
    """The meta-policy's mean KL on the first support batch, from ``params`` (fixed) to ``theta``."""
    support = batch.supports[0]
    n = support.num_tasks
    with torch.no_grad():
        old = task_outputs(policy, stack_params(params, n), support.obs)
    return mean_kl(old, task_outputs(policy, stack_params(theta, n), support.obs), support.masks)


@pytest.mark.parametrize(
    ("algorithm", "steps", "latent_dim"),
    [("maml_trpo", 1, 0), ("maml_trpo", 2, 0), ("fomaml", 1, 0), ("maml_trpo", 1, 2)],
)
def test_curvature_with_the_meta_policy_kl_is_the_hessian_of_the_sum(
    algorithm: Algorithm, steps: int, latent_dim: int
) -> None:
    """``outer.pre_kl_weight`` w: the product is the exact Hessian product of KL_post + w KL_pre."""
    policy = tiny_policy((5, 4), latent_dim=latent_dim)
    params = tiny_params(policy)
    batch = random_meta_batch(steps=steps, n=4, latent_dim=latent_dim)
    inner = dataclasses.replace(LATENT_INNER if latent_dim else INNER, algorithm=algorithm)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = query_distribution(policy, theta, batch, inner, create_graph=algorithm == "maml_trpo")
    post = mean_kl(_detached(out), out, batch.query.masks)
    w = 0.7
    total = 0.5 * (post + w * _pre_kl(policy, params, theta, batch))  # the group is 4 of 8 tasks
    reference = hessian_vector_product_fn(total, list(theta.values()))
    curvature = group_curvature(policy, params, batch, inner, num_tasks=8, pre_kl_weight=w)
    without = group_curvature(policy, params, batch, inner, num_tasks=8)
    gen = torch.Generator().manual_seed(steps)
    for _ in range(3):
        v = torch.randn(params_to_vector(params).shape, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(curvature_product(curvature, v, params), reference(v), rtol=1e-9, atol=1e-12)
        assert not torch.allclose(curvature_product(without, v, params), reference(v))  # the term counts


def test_the_meta_policy_kl_holds_the_meta_policy_within_the_radius() -> None:
    """With w > 0 the accepted step keeps KL_post + w KL_pre within ``max_kl``, and the meta-policy
    (which collects the next support rollouts) moves less than with the adapted policies' KL alone."""
    policy = tiny_policy()
    params = tiny_params(policy)
    batch = random_meta_batch()
    moved = {}
    for w in (0.0, 1.0):
        outer = OuterConfig(max_kl=0.01, pre_kl_weight=w)
        new, stats = trpo_meta_update(policy, params, batch, INNER, outer)
        assert stats.accepted and stats.improvement > 0
        _, kl_fn = _objective(policy, params, batch, INNER)
        with torch.no_grad():
            pre = _pre_kl(policy, params, new, batch).item()
            post = kl_fn(params_to_vector(new)).item()
        assert post + w * pre <= outer.max_kl + 1e-12
        assert stats.kl == pytest.approx(post + w * pre, rel=1e-6)
        moved[w] = pre
    assert moved[1.0] < moved[0.0]


@pytest.mark.parametrize("latent_input", [True, False])
@pytest.mark.parametrize("algorithm", ["maml_trpo", "fomaml", "reptile"])
def test_a_fixed_latent_std_stays_where_it_was_initialised(algorithm: Algorithm, latent_input: bool) -> None:
    """``policy.fixed_latent_std``: neither the inner step nor the meta-update moves ``latent_log_std``
    (nor, with ``latent_input`` false, the first layer's latent columns, which stay 0); the
    trust-region update still improves the surrogate within the radius with the other parameters."""
    policy = GaussianMLPPolicy(
        3, 2, (6,), init_std=0.7, latent_dim=2, latent_std=0.4, fixed_latent_std=True, latent_action=True,
        latent_input=latent_input,
    )  # fmt: skip
    params = tiny_params(policy)
    z_columns = params["layers.0.weight"][:, 3:]
    assert (z_columns == 0).all() != latent_input
    batch = random_meta_batch(latent_dim=2)
    inner = dataclasses.replace(LATENT_INNER, algorithm=algorithm)
    adapted = adapt(policy, params, batch.supports, 0.3, latent_lr=0.6)
    assert torch.equal(adapted["latent_log_std"], params["latent_log_std"].expand_as(adapted["latent_log_std"]))
    assert (adapted["latent_mean"] - params["latent_mean"]).abs().min() > 0
    assert (adapted["layers.0.weight"][..., 3:] == 0).all() != latent_input
    outer = OuterConfig(max_kl=0.01, step_size=0.5)
    new, stats = meta_update(policy, params, batch, inner, outer)
    assert stats.accepted and not stats.nonfinite
    assert torch.equal(new["latent_log_std"], params["latent_log_std"])
    assert (new["layers.0.weight"][:, 3:] == 0).all() != latent_input
    assert all((new[k] - params[k]).abs().max() > 0 for k in params if k != "latent_log_std")
    if algorithm != "reptile":
        assert stats.improvement > 0
        _, kl_fn = _objective(policy, params, batch, inner)
        with torch.no_grad():
            assert kl_fn(params_to_vector(new)).item() <= outer.max_kl


@pytest.mark.parametrize(
    ("latent_input", "natural", "open_loop", "centred"),
    [
        (True, False, False, False),
        (False, False, False, False),
        (False, True, False, False),
        (False, True, True, False),
        (False, True, True, True),
    ],
)
@pytest.mark.parametrize("loss", ["reinforce", "lvc"])
def test_a_fixed_narrowing_latent_keeps_the_written_out_maths_exact(
    loss: Literal["reinforce", "lvc"], latent_input: bool, natural: bool, open_loop: bool, centred: bool
) -> None:
    """With ``fixed_latent_std`` and ``latent_std_decay`` each inner step moves ``log σ_z`` by ``log decay``
    alone; the written-out meta-gradient and curvature product still equal autograd's through the steps
    (also where the network does not read the latent: its columns masked out of every step; where
    the latent mean's step is preconditioned by its variance, a different constant at each step; and
    where the latent's actions are open-loop: the last layer's rows for them masked too, and their
    biases where they are centred)."""
    k = 1 if open_loop else 2  # an open-loop latent of 1 leaves the network the other action
    policy = GaussianMLPPolicy(
        3, 2, (5, 4), init_std=0.7, latent_dim=k, fixed_latent_std=True, latent_std_decay=0.5,
        latent_action=True, latent_input=latent_input, latent_natural=natural, latent_open_loop=open_loop,
        latent_centred=centred,
    )  # fmt: skip
    params = tiny_params(policy)
    batch = random_meta_batch(steps=2, n=4, latent_dim=k)
    inner = dataclasses.replace(LATENT_INNER, loss=loss)
    adapted = adapt(policy, params, batch.supports, 0.3, latent_lr=0.6, lvc=loss == "lvc")
    if open_loop:  # the open-loop action's row of the last layer stays 0 through every step
        assert (params["layers.2.weight"][0] == 0).all() and (adapted["layers.2.weight"][:, 0] == 0).all()
        assert (params["layers.2.weight"][1] != 0).all()
    torch.testing.assert_close(adapted["latent_log_std"], (params["latent_log_std"] + 2 * math.log(0.5)).expand(4, k))
    _assert_written_out_maths_exact(policy, params, batch, inner, seed=2)


def test_the_natural_latent_step_is_an_evolution_strategys() -> None:
    """``policy.latent_natural``: the latent mean moves by ``α_z Σ_r c_r (z_r − μ)`` (hand-computed from
    the support batch: ``c_r`` the first step's advantage over the task's valid steps), i.e.
    ``α_z σ_z mean(A ε)``, ``σ_z²`` times the plain REINFORCE step, at every inner step (the second
    with the variance the decay has left); every other parameter steps as without it."""

    def policy(natural: bool) -> GaussianMLPPolicy:
        return GaussianMLPPolicy(
            3, 2, (6,), init_std=0.7, latent_dim=2, latent_std=0.4, fixed_latent_std=True, latent_std_decay=0.5,
            latent_action=True, latent_natural=natural,
        )  # fmt: skip

    natural, plain = policy(True), policy(False)
    params = tiny_params(natural)
    supports = random_meta_batch(steps=2, n=3, latent_dim=2).supports
    first = adapt(plain, params, supports[:1], 0.3, latent_lr=0.6)
    mu0 = params["latent_mean"]
    torch.testing.assert_close(
        adapt(natural, params, supports[:1], 0.3, latent_lr=0.6)["latent_mean"] - mu0,
        0.4**2 * (first["latent_mean"] - mu0),
    )
    for k in (1, 2):
        before = adapt(natural, params, supports[: k - 1], 0.3, num_tasks=3, latent_lr=0.6)
        after = adapt(natural, params, supports[:k], 0.3, latent_lr=0.6)
        one = supports[k - 1]
        z = natural.latents(one.obs)  # [N, R, K]
        c = one.advantages[:, 0] * one.masks[:, 0] / one.masks.sum((1, 2))[:, None]  # [N, R]
        mu = before["latent_mean"]
        torch.testing.assert_close(after["latent_mean"] - mu, 0.6 * (c[..., None] * (z - mu[:, None])).sum(1))
        reference = adapt(plain, params, supports[:k], 0.3, latent_lr=0.6)
        for name in params:
            if name != "latent_mean":
                torch.testing.assert_close(after[name], reference[name])


@pytest.mark.parametrize("algorithm", ["maml_trpo", "fomaml"])
def test_with_fast_lr_zero_only_the_latent_adapts(algorithm: Algorithm) -> None:
    """``inner.fast_lr=0`` (context adaptation, as in CAVIA): every inner step leaves the network's
    parameters exactly where they were and moves the latent as it would beside a network step (the
    REINFORCE loss has no cross terms, so the first step's latent move is the same); the written-out
    meta-gradient and curvature product still equal autograd's through two such steps, and a
    trust-region update is accepted."""
    policy = GaussianMLPPolicy(
        3, 2, (5, 4), init_std=0.7, latent_dim=1, latent_std=0.4, fixed_latent_std=True, latent_std_decay=0.5,
        latent_action=True, latent_input=False, latent_natural=True, latent_open_loop=True,
    )  # fmt: skip
    params = tiny_params(policy)
    batch = random_meta_batch(steps=2, n=4, latent_dim=1)
    adapted = adapt(policy, params, batch.supports, 0.0, latent_lr=0.6)
    for name, value in params.items():
        if not name.startswith("latent_"):
            assert torch.equal(adapted[name], value.expand_as(adapted[name])), name
    beside = adapt(policy, params, batch.supports[:1], 0.3, latent_lr=0.6)
    alone = adapt(policy, params, batch.supports[:1], 0.0, latent_lr=0.6)
    torch.testing.assert_close(alone["latent_mean"], beside["latent_mean"])
    assert (alone["latent_mean"] - params["latent_mean"]).abs().min() > 1e-3
    inner = InnerConfig(fast_lr=0.0, latent_lr=0.6, algorithm=algorithm)
    _assert_written_out_maths_exact(policy, params, batch, inner, seed=4)
    new, stats = meta_update(policy, params, batch, inner, OuterConfig(max_kl=0.01))
    assert stats.accepted and not stats.nonfinite
    assert any(not torch.equal(new[k], params[k]) for k in params if not k.startswith("latent_"))


def test_a_natural_or_open_loop_latent_needs_its_companion_option() -> None:
    with pytest.raises(ValueError, match=r"^policy.latent_natural=true needs policy.fixed_latent_std=true"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=1, latent_natural=True)
    with pytest.raises(ValueError, match=r"^policy.latent_open_loop=true needs policy.latent_action=true"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=1, latent_open_loop=True)


@pytest.mark.parametrize("algorithm", ["maml_trpo", "fomaml", "reptile"])
def test_a_centred_open_loop_latent_explores_around_zero_until_it_adapts(algorithm: Algorithm) -> None:
    """``policy.latent_centred``: a meta-update leaves the open-loop action's bias and the latent's
    prior mean at 0 (so that action's mean is 0 for every observation before adapting) and trains
    the other action's bias; an inner step still moves the latent mean, and so that action."""
    policy = GaussianMLPPolicy(
        3, 2, (6,), init_std=0.7, latent_dim=1, latent_std=0.4, fixed_latent_std=True, latent_action=True,
        latent_input=False, latent_open_loop=True, latent_centred=True, latent_natural=True,
    )  # fmt: skip
    params = tiny_params(policy)
    params["latent_mean"] = torch.zeros(1, dtype=torch.float64)
    params["layers.1.bias"] = torch.tensor([0.0, 0.3], dtype=torch.float64)
    batch = random_meta_batch(latent_dim=1)
    inner = dataclasses.replace(LATENT_INNER, algorithm=algorithm)
    new, stats = meta_update(policy, params, batch, inner, OuterConfig(max_kl=0.01, step_size=0.5))
    assert stats.accepted and not stats.nonfinite
    assert new["latent_mean"].item() == 0.0 and new["layers.1.bias"][0].item() == 0.0
    assert new["layers.1.bias"][1] != params["layers.1.bias"][1]
    obs = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # observation + latent
    mean, _ = policy.distribution(new, obs)
    assert (mean[:, 0] == 0).all()
    adapted = adapt(policy, new, batch.supports, 0.3, latent_lr=0.6)
    assert (adapted["latent_mean"] != 0).all() and (adapted["layers.1.bias"][:, 0] == 0).all()
    with pytest.raises(ValueError, match=r"^policy.latent_centred=true needs policy.latent_open_loop=true"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=1, latent_action=True, latent_centred=True)


@pytest.mark.parametrize("algorithm", ["maml_trpo", "fomaml", "reptile"])
def test_open_loop_latent_actions_never_read_the_observation(algorithm: Algorithm) -> None:
    """``policy.latent_open_loop``: the first action's mean is the same for every observation before
    and after a meta-update (its last-layer row stays 0), while the other action's row is trained."""
    policy = GaussianMLPPolicy(
        3, 2, (6,), init_std=0.7, latent_dim=1, latent_std=0.4, fixed_latent_std=True, latent_action=True,
        latent_input=False, latent_open_loop=True,
    )  # fmt: skip
    params = tiny_params(policy)
    batch = random_meta_batch(latent_dim=1)
    inner = dataclasses.replace(LATENT_INNER, algorithm=algorithm)
    new, stats = meta_update(policy, params, batch, inner, OuterConfig(max_kl=0.01, step_size=0.5))
    assert stats.accepted and not stats.nonfinite
    obs = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # observation + latent
    for p in (params, new):
        mean, _ = policy.distribution(p, obs)
        assert torch.allclose(mean[:, 0], mean[:1, 0].expand(5)) and mean[:, 1].std() > 0
    assert (new["layers.1.weight"][0] == 0).all() and (
        new["layers.1.weight"][1] - params["layers.1.weight"][1]
    ).abs().max() > 0
    assert (new["layers.1.bias"] - params["layers.1.bias"]).abs().min() > 0
