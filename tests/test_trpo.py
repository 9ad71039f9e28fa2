"""Conjugate gradient, trust-region scaling and the line search."""

from __future__ import annotations

import math

import pytest
import torch

from metarl.trpo import backtracking_line_search, conjugate_gradient, trust_region_step


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjugate_gradient_solves_spd_systems(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(20, 20, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(20, dtype=torch.float64)
    b = torch.randn(20, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=60).x
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("iters", [1, 3, 10])
def test_conjugate_gradient_quadratic_form_equals_the_explicit_product(iters: int) -> None:
    """``xᵀ(b − r)`` replaces the extra product ``xᵀ A x`` the trust-region step would need,
    also when CG stops early (the TRPO case: 10 iterations on thousands of parameters)."""
    gen = torch.Generator().manual_seed(iters)
    m = torch.randn(50, 50, generator=gen, dtype=torch.float64)
    a = m @ m.T + 1e-3 * torch.eye(50, dtype=torch.float64)
    b = torch.randn(50, generator=gen, dtype=torch.float64)
    calls: list[torch.Tensor] = []

    def matvec(v: torch.Tensor) -> torch.Tensor:
        calls.append(v)
        return a @ v

    result = conjugate_gradient(matvec, b, iters=iters)
    assert result.iterations == len(calls) == iters
    torch.testing.assert_close(result.residual, b - a @ result.x, rtol=1e-8, atol=1e-8)
    explicit = result.x @ a @ result.x
    assert float(result.quadratic_form(b)) == pytest.approx(float(explicit), rel=1e-9)


def test_conjugate_gradient_is_exact_in_n_steps_for_small_systems() -> None:
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=2).x
    torch.testing.assert_close(x, torch.tensor([1 / 11, 7 / 11], dtype=torch.float64))


def test_trust_region_step_puts_the_quadratic_kl_on_the_radius() -> None:
    h = torch.diag(torch.tensor([2.0, 8.0], dtype=torch.float64))
    s = torch.tensor([1.0, -1.0], dtype=torch.float64)
    step = trust_region_step(s, float(s @ h @ s), max_kl=0.01)
    assert 0.5 * float(step @ h @ step) == pytest.approx(0.01)


def _quadratic(x: torch.Tensor) -> tuple[float, float]:
    """Loss decreases along +x[0]; the 'KL' grows with the squared distance from the origin."""
    return float(-x[0] + 0.5 * x[0] ** 2), float(0.5 * (x**2).sum())


def test_line_search_accepts_the_first_step_within_the_radius() -> None:
    x0 = torch.zeros(2, dtype=torch.float64)
    full = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = backtracking_line_search(_quadratic, x0, full, 0.0, max_kl=0.1, backtrack_ratio=0.5, max_steps=10)
    # KL(1)=0.5, KL(0.5)=0.125, KL(0.25)=0.03125 -> third candidate
    assert result.accepted and result.steps == 3
    torch.testing.assert_close(result.params, torch.tensor([0.25, 0.0], dtype=torch.float64))
    assert result.kl <= 0.1


def test_line_search_never_accepts_kl_above_the_radius_and_restores_on_failure() -> None:
    x0 = torch.tensor([0.3, -0.2], dtype=torch.float64)
    full = torch.tensor([5.0, 5.0], dtype=torch.float64)
    seen: list[float] = []

    def evaluate(x: torch.Tensor) -> tuple[float, float]:
        loss, _ = _quadratic(x)
        kl = 1.0 + float((x - x0).abs().sum())  # always above the radius
        seen.append(kl)
        return loss - 10.0, kl

    result = backtracking_line_search(evaluate, x0, full, 0.0, max_kl=0.5, backtrack_ratio=0.8, max_steps=7)
    assert not result.accepted and result.steps == 7 and len(seen) == 7
    assert result.params is x0  # the very same tensor: bit-identical


def test_line_search_refuses_a_step_that_does_not_improve_or_is_not_finite() -> None:
    x0 = torch.zeros(1, dtype=torch.float64)
    full = torch.ones(1, dtype=torch.float64)
    worse = backtracking_line_search(lambda x: (1.0, 0.0), x0, full, 0.0, 0.1, 0.5, 5)
    nan = backtracking_line_search(lambda x: (math.nan, 0.0), x0, full, 0.0, 0.1, 0.5, 5)
    assert not worse.accepted and not nan.accepted
    assert worse.params is x0 and nan.params is x0
