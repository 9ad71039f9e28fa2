"""Gaussian MLP policy whose parameters are passed functionally.

The module only describes the architecture; parameters live in plain ``dict[str, Tensor]``
(:data:`Params`) so that the meta-learner can hold one set of meta-parameters, a stack of
per-task adapted parameters ``[N, ...]`` and differentiate through both. Every forward pass goes
through :func:`torch.func.functional_call` or, for a stack of per-task parameters, through the
equivalent batched matmul of :meth:`GaussianMLPPolicy.task_distribution`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMLPPolicy(nn.Module):
    """``a ~ N(mlp(obs), diag(exp(log_std))²)`` with tanh hidden layers and a state-free std.

    Args:
        obs_dim: Observation size.
        act_dim: Action size.
        hidden_sizes: Widths of the hidden layers.
        init_std: Initial standard deviation of every action dimension.
        min_std: The standard deviation never goes below this.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (100, 100),
        init_std: float = 1.0,
        min_std: float = 1e-6,
    ):
        super().__init__()
        sizes = [obs_dim, *hidden_sizes, act_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        self.init_std = init_std
        self.min_log_std = math.log(min_std)
        self.obs_dim, self.act_dim = obs_dim, act_dim

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Action distribution for a batch of observations.

        Args:
            obs: ``[..., obs_dim]``.

        Returns:
            ``(mean, log_std)``, each ``[..., act_dim]``.
        """
        x = obs
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        mean = self.layers[-1](x)
        log_std = self.log_std.clamp(min=self.min_log_std).expand_as(mean)
        return mean, log_std

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        """Fresh parameters: Xavier-uniform weights, zero biases, ``log(init_std)`` log-std.

        Args:
            generator: The only source of randomness.
            dtype: Floating-point type of the parameters.
        """
        params: Params = {}
        for name, p in self.named_parameters():
            t = torch.empty(p.shape, dtype=dtype)
            if name.endswith("weight"):
                nn.init.xavier_uniform_(t, generator=generator)
            elif name == "log_std":
                t.fill_(math.log(self.init_std))
            else:
                t.zero_()
            params[name] = t
        return params

    def transposed_layers(self, params: Params) -> list[tuple[Tensor, Tensor]]:
        """``(W_iᵀ [N, in, out] contiguous, b_i [N, 1, out])`` of every layer of stacked ``params``.

        The sampler computes these once per collection and reuses them at every time step.
        """
        return [
            (params[f"layers.{i}.weight"].transpose(1, 2).contiguous(), params[f"layers.{i}.bias"].unsqueeze(1))
            for i in range(len(self.layers))
        ]

    @staticmethod
    def task_means(layers: Sequence[tuple[Tensor, Tensor]], obs: Tensor) -> Tensor:
        """Action means of ``N`` per-task MLPs: one batched matmul per layer, tanh between layers.

        Args:
            layers: :meth:`transposed_layers` of the stacked parameters.
            obs: ``[N, M, obs_dim]``.

        Returns:
            ``[N, M, act_dim]``.
        """
        x = obs
        last = len(layers) - 1
        for i, (weight_t, bias) in enumerate(layers):
            x = torch.baddbmm(bias, x, weight_t)
            if i < last:
                x = torch.tanh(x)
        return x

    def distribution(self, params: Params, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of the policy with ``params`` (unbatched) at ``obs`` ``[..., obs_dim]``."""
        out: tuple[Tensor, Tensor] = functional_call(self, params, (obs,))
        return out

    def task_distribution(self, params: Params, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Per-task distributions for a stack of parameters, in one batched matmul per layer.

        Equal to ``torch.func.vmap(self.distribution)(params, obs)`` (a test checks it) and faster
        for the small per-step batches of the sampler.

        Args:
            params: Each tensor ``[N, *shape]``: one parameter set per task.
            obs: ``[N, ..., obs_dim]``; task ``i`` is evaluated with ``params[...][i]``.

        Returns:
            ``(mean, log_std)``, each ``[N, ..., act_dim]``.
        """
        n = obs.shape[0]
        x = self.task_means(self.transposed_layers(params), obs.reshape(n, -1, obs.shape[-1]))
        mean = x.reshape(*obs.shape[:-1], self.act_dim)
        log_std = params["log_std"].clamp(min=self.min_log_std)
        log_std = log_std.view(n, *([1] * (obs.dim() - 2)), self.act_dim).expand_as(mean)
        return mean, log_std


def gaussian_log_prob(mean: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """Log-density of a diagonal Gaussian, summed over the last (action) dimension.

    Args:
        mean: ``[..., act_dim]``.
        log_std: ``[..., act_dim]``.
        action: ``[..., act_dim]``.

    Returns:
        ``[...]``.
    """
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """``KL(p ‖ q)`` of two diagonal Gaussians, summed over the last dimension.

    Args:
        mean_p, log_std_p: ``[..., act_dim]``, the reference distribution ``p``.
        mean_q, log_std_q: ``[..., act_dim]``.

    Returns:
        ``[...]``.
    """
    var_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mean_term = (mean_p - mean_q).pow(2) * torch.exp(-2.0 * log_std_q)
    return (0.5 * (var_ratio + mean_term - 1.0) - (log_std_p - log_std_q)).sum(-1)


def stack_params(params: Params, n: int) -> Params:
    """The same parameters for ``n`` tasks, ``[n, *shape]`` each (a differentiable broadcast)."""
    return {k: v.unsqueeze(0).expand(n, *v.shape) for k, v in params.items()}


def params_to_vector(params: Params) -> Tensor:
    """Concatenates the parameters into one flat vector ``[P]`` (in key order)."""
    return torch.cat([p.reshape(-1) for p in params.values()])


def vector_to_params(vector: Tensor, like: Params) -> Params:
    """Splits a flat vector ``[P]`` into tensors shaped like ``like``."""
    out: Params = {}
    offset = 0
    for k, v in like.items():
        n = v.numel()
        out[k] = vector[offset : offset + n].view_as(v)
        offset += n
    return out
