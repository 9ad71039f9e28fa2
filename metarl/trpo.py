"""Trust-region pieces as pure functions: conjugate gradient, the scaled step, line search."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


class CGResult(NamedTuple):
    """Outcome of :func:`conjugate_gradient`.

    Attributes:
        x: ``[P]`` solution estimate.
        residual: ``[P]`` ``b − A x`` as carried by the iteration.
        iterations: Products with ``A`` taken.
    """

    x: Tensor
    residual: Tensor
    iterations: int

    def quadratic_form(self, b: Tensor) -> Tensor:
        """``xᵀ A x`` without another product with ``A``: ``xᵀ (b − r)`` since ``A x = b − r``.

        Args:
            b: ``[P]`` the right-hand side that was solved for.
        """
        return torch.dot(self.x, b - self.residual)


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int, residual_tol: float = 1e-10
) -> CGResult:
    """Approximately solves ``A x = b`` for a symmetric positive-definite ``A`` given as ``matvec``.

    Args:
        matvec: ``v [P] ↦ A v [P]``.
        b: ``[P]`` right-hand side.
        iters: Maximum number of iterations (each costs one ``matvec``).
        residual_tol: Stop once ``‖r‖²`` falls below this.

    Returns:
        The estimate, its residual and the number of products taken.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    taken = 0
    for _ in range(iters):
        if rr.item() < residual_tol:
            break
        ap = matvec(p)
        taken += 1
        alpha = rr / torch.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return CGResult(x, r, taken)


def trust_region_step(direction: Tensor, shs: Tensor | float, max_kl: float) -> Tensor:
    """Scales ``s`` so the quadratic KL model ``½ sᵀHs`` of the step equals ``δ``.

    Args:
        direction: ``[P]`` step direction ``s``.
        shs: ``sᵀ H s`` (must be positive).
        max_kl: Trust-region radius ``δ``.

    Returns:
        ``[P]`` the step ``s · √(2δ / sᵀHs)``.
    """
    return direction * math.sqrt(2.0 * max_kl / float(shs))


class LineSearchResult(NamedTuple):
    """Outcome of :func:`backtracking_line_search`.

    Attributes:
        accepted: Whether some step satisfied both conditions.
        params: The accepted parameter vector, or the original one (the same tensor object).
        steps: Candidates evaluated.
        loss: Surrogate loss at ``params``.
        kl: Mean KL at ``params`` (0 when rejected).
    """

    accepted: bool
    params: Tensor
    steps: int
    loss: float
    kl: float


def backtracking_line_search(
    evaluate: Callable[[Tensor], tuple[float, float]],
    x0: Tensor,
    full_step: Tensor,
    loss0: float,
    max_kl: float,
    backtrack_ratio: float,
    max_steps: int,
) -> LineSearchResult:
    """Tries ``x0 + ratio^k · full_step`` for ``k = 0, 1, …`` until the surrogate loss improves
    and the KL stays within ``max_kl``; otherwise returns ``x0`` itself, untouched.

    Args:
        evaluate: ``x [P] ↦ (surrogate loss, mean KL)`` at parameters ``x``.
        x0: ``[P]`` current parameters.
        full_step: ``[P]`` the trust-region step.
        loss0: Surrogate loss at ``x0``.
        max_kl: Trust-region radius.
        backtrack_ratio: Shrink factor in ``(0, 1)``.
        max_steps: Candidates to try.
    """
    for k in range(max_steps):
        candidate = x0 + (backtrack_ratio**k) * full_step
        loss, kl = evaluate(candidate)
        if math.isfinite(loss) and math.isfinite(kl) and loss < loss0 and kl <= max_kl:
            return LineSearchResult(True, candidate, k + 1, loss, kl)
    return LineSearchResult(False, x0, max_steps, loss0, 0.0)
