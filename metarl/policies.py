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
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


class PolicyOutputs(NamedTuple):
    """What stacked per-task policies say on a batch of episodes.

    Attributes:
        mean: ``[N, T, R, act_dim]`` action means.
        log_std: ``[N, T, R, act_dim]`` action log-standard deviations.
        latent_mean: ``[N, K]`` mean of each task's per-episode latent (``K`` may be 0).
        latent_log_std: ``[N, K]`` its log-standard deviation.
    """

    mean: Tensor
    log_std: Tensor
    latent_mean: Tensor
    latent_log_std: Tensor


_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMLPPolicy(nn.Module):
    """``a ~ N(mlp(obs, z), diag(exp(log_std))²)`` with tanh hidden layers and a state-free std.

    With ``latent_dim`` ``K > 0`` the policy also draws, once per episode, a latent
    ``z ~ N(latent_mean, diag(exp(latent_log_std))²)`` (``[K]``, parameters of their own) and
    reads it beside the observation at every step, as in MAESN (Gupta et al., 2018): exploration
    that stays the same through an episode (where to grasp) instead of fresh noise at every step.
    The episode's likelihood is then ``q(z) · Π_t π(a_t | o_t, z)``: the latent counts as part of
    the first step's action (:func:`step_log_prob`), and afterwards as part of the state. The
    episodes store the network's input ``[o_t, z]`` as their observation (``input_dim``).

    With ``latent_action`` the environment receives ``a + [z, 0]``: the latent also shifts the
    first ``K`` action dimensions for the whole episode (where to reach, on the grasp family), so
    that the rollouts of one batch spread consistently in what the latent moves. The episodes
    still store ``a``, the network's own sample, and every likelihood is the one above: ``z``
    enters the environment as part of the state (it is in the network's input), not as a change
    of the action's density.

    Args:
        obs_dim: Observation size (the environment's).
        act_dim: Action size.
        hidden_sizes: Widths of the hidden layers.
        init_std: Initial standard deviation of every action dimension (and of the latent).
        min_std: The standard deviation never goes below this (the latent's is not bounded).
        latent_dim: ``K``, size of the per-episode latent (0: none).
        latent_std: Initial standard deviation of the latent (``None``: ``init_std``).
        latent_action: Add the latent to the first ``K`` action dimensions sent to the environment.
        fixed_latent_std: The latent's standard deviation is not trained (:attr:`fixed` masks
            ``latent_log_std``; the outer update leaves it as initialised, the inner steps as below).
        latent_std_decay: Each inner step multiplies the latent's standard deviation by this
            (``latent_log_std`` moves by its log besides its gradient step): exploration that
            narrows as the policy adapts. 1: unchanged.
        latent_input: The network reads the latent beside the observation. ``False`` (with
            ``latent_action``): the first layer's latent columns stay 0, so the network cannot
            undo the shift it makes (:attr:`fixed` masks them).
        latent_natural: The inner step of ``latent_mean`` is preconditioned by the latent's variance
            ``σ_z²`` (the inverse Fisher of a Gaussian's mean): with REINFORCE's ``∇ log q(z) = ε / σ_z``
            it moves by ``α_z σ_z mean(A ε)``, as an evolution strategy's mean does, so a step taken with
            a narrowed ``σ_z`` is smaller, not larger. Needs ``fixed_latent_std`` (the preconditioner is
            then a constant of each step, outside every derivative).
        latent_open_loop: The first ``K`` actions do not depend on the observation: the last
            layer's weights for them stay 0 (:attr:`fixed`), so each is a trained constant (its
            bias) plus the latent, an open-loop choice per episode (the grasp family's pinch point,
            already relative to the tracked object). Needs ``latent_action``.
        latent_centred: The open-loop actions' constant stays 0: their last-layer biases are kept
            at 0 (:attr:`fixed`) and the meta-update leaves the latent's prior mean at 0
            (:attr:`meta_fixed`; the inner steps still move it). Before adapting, those actions are
            ``z ~ N(0, σ_z²)``: the grasp family's pinch explores around the tracked point, where a
            blind search starts. Needs ``latent_open_loop``.

    Raises:
        ValueError: ``latent_action``, ``fixed_latent_std`` or a ``latent_std_decay`` other than 1
            without a latent, a latent larger than the action with ``latent_action``, a decay
            outside (0, 1], ``latent_input`` false or ``latent_open_loop`` without ``latent_action``,
            ``latent_natural`` without ``fixed_latent_std``, or ``latent_centred`` without
            ``latent_open_loop``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (100, 100),
        init_std: float = 1.0,
        min_std: float = 1e-6,
        latent_dim: int = 0,
        latent_std: float | None = None,
        latent_action: bool = False,
        fixed_latent_std: bool = False,
        latent_std_decay: float = 1.0,
        latent_input: bool = True,
        latent_natural: bool = False,
        latent_open_loop: bool = False,
        latent_centred: bool = False,
    ):
        super().__init__()
        if not latent_input and not latent_action:
            raise ValueError("policy.latent_input=false needs policy.latent_action=true (else the latent does nothing)")
        for name, value in (("latent_action", latent_action), ("fixed_latent_std", fixed_latent_std)):
            if value and latent_dim == 0:
                raise ValueError(f"policy.{name}=true needs a latent; allowed with it: policy.latent_dim > 0 (got 0)")
        if not 0.0 < latent_std_decay <= 1.0:
            raise ValueError(f"policy.latent_std_decay={latent_std_decay:g} is out of range; allowed: (0, 1]")
        if latent_std_decay != 1.0 and latent_dim == 0:
            raise ValueError(
                f"policy.latent_std_decay={latent_std_decay:g} needs a latent; allowed with it: policy.latent_dim > 0"
            )
        if latent_natural and not fixed_latent_std:
            raise ValueError(
                "policy.latent_natural=true needs policy.fixed_latent_std=true (its step is preconditioned by a "
                "variance that must not be trained)"
            )
        if latent_open_loop and not latent_action:
            raise ValueError(
                "policy.latent_open_loop=true needs policy.latent_action=true (the latent is what moves those actions)"
            )
        if latent_centred and not latent_open_loop:
            raise ValueError(
                "policy.latent_centred=true needs policy.latent_open_loop=true (only an open-loop action is a "
                "constant to hold at 0)"
            )
        if latent_action and latent_dim > act_dim:
            raise ValueError(
                f"policy.latent_dim={latent_dim} is larger than the action ({act_dim}); "
                f"allowed with policy.latent_action: 1..{act_dim}"
            )
        sizes = [obs_dim + latent_dim, *hidden_sizes, act_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        if latent_dim > 0:
            self.latent_mean = nn.Parameter(torch.zeros(latent_dim))
            self.latent_log_std = nn.Parameter(torch.full((latent_dim,), math.log(latent_std or init_std)))
        self.init_std = init_std
        self.latent_std = init_std if latent_std is None else latent_std
        self.latent_action = latent_action
        self.fixed: dict[str, Tensor] = {}  # name -> 1 where trained, 0 where kept as initialised
        if fixed_latent_std:
            self.fixed["latent_log_std"] = torch.zeros(latent_dim)
        self.latent_input = latent_input
        if not latent_input:
            columns = torch.ones(sizes[1], sizes[0])
            columns[:, obs_dim:] = 0.0
            self.fixed["layers.0.weight"] = columns
        if latent_open_loop:
            last = f"layers.{len(sizes) - 2}.weight"  # also the first where there is no hidden layer
            rows = self.fixed.get(last, torch.ones(sizes[-1], sizes[-2])).clone()
            rows[:latent_dim] = 0.0
            self.fixed[last] = rows
        # entries the meta-update keeps as initialised but the inner steps move
        self.meta_fixed: dict[str, Tensor] = {}
        if latent_centred:
            bias = torch.ones(act_dim)
            bias[:latent_dim] = 0.0
            self.fixed[f"layers.{len(sizes) - 2}.bias"] = bias
            self.meta_fixed["latent_mean"] = torch.zeros(latent_dim)
        self.latent_open_loop = latent_open_loop
        self.latent_centred = latent_centred
        self.latent_log_std_shift = math.log(latent_std_decay)  # added to latent_log_std at each inner step
        self.latent_natural = latent_natural
        self.min_log_std = math.log(min_std)
        self.obs_dim, self.act_dim, self.latent_dim = obs_dim, act_dim, latent_dim
        self.input_dim = obs_dim + latent_dim

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Action distribution for a batch of network inputs.

        Args:
            obs: ``[..., input_dim]`` (observation, then the latent if any).

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
                if name in self.fixed:  # entries kept at 0: the latent's columns, the open-loop actions' rows
                    t.mul_(self.fixed[name].to(dtype))
            elif name == "log_std":
                t.fill_(math.log(self.init_std))
            elif name == "latent_log_std":
                t.fill_(math.log(self.latent_std))
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

    def task_latent(self, params: Params) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of each task's latent distribution, ``[N, K]`` each (``K`` may be 0).

        Args:
            params: Stacked parameters ``[N, *shape]``.
        """
        if self.latent_dim == 0:
            empty = params["log_std"][:, :0]
            return empty, empty
        return params["latent_mean"], params["latent_log_std"]

    def latents(self, obs: Tensor) -> Tensor:
        """The episodes' latents, read from their first observation: ``[N, T, R, input_dim]`` → ``[N, R, K]``."""
        return obs[:, 0, :, self.obs_dim :]

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


def task_outputs(policy: GaussianMLPPolicy, params: Params, obs: Tensor) -> PolicyOutputs:
    """The stacked policies' action distributions on ``obs`` ``[N, T, R, input_dim]`` and their latents'."""
    mean, log_std = policy.task_distribution(params, obs)
    return PolicyOutputs(mean, log_std, *policy.task_latent(params))


def outputs_log_prob(out: PolicyOutputs, actions: Tensor, latents: Tensor) -> Tensor:
    """``log π(a_t | o_t, z)`` of every step, with the latent's ``log q(z)`` added at ``t = 0``.

    Args:
        out: The policies' outputs on the episodes.
        actions: ``[N, T, R, act_dim]``.
        latents: ``[N, R, K]`` the episodes' latents (:meth:`GaussianMLPPolicy.latents`).

    Returns:
        ``[N, T, R]``.
    """
    logp = gaussian_log_prob(out.mean, out.log_std, actions)
    if latents.shape[-1] == 0:
        return logp
    first = gaussian_log_prob(out.latent_mean.unsqueeze(1), out.latent_log_std.unsqueeze(1), latents)
    return torch.cat([(logp[:, 0] + first).unsqueeze(1), logp[:, 1:]], dim=1)


def step_log_prob(policy: GaussianMLPPolicy, params: Params, obs: Tensor, actions: Tensor) -> Tensor:
    """:func:`outputs_log_prob` of stacked ``params`` on episodes' ``obs`` and ``actions``: ``[N, T, R]``."""
    return outputs_log_prob(task_outputs(policy, params, obs), actions, policy.latents(obs))


def outputs_kl(old: PolicyOutputs, new: PolicyOutputs, masks: Tensor) -> Tensor:
    """Each task's masked mean over steps of ``KL(old ‖ new)``, the latent's KL counted at ``t = 0``.

    Args:
        old, new: Outputs on the same episodes.
        masks: ``[N, T, R]``.

    Returns:
        ``[N]``.
    """
    total = (gaussian_kl(old.mean, old.log_std, new.mean, new.log_std) * masks).sum((1, 2))
    if old.latent_mean.shape[-1] > 0:
        latent = gaussian_kl(old.latent_mean, old.latent_log_std, new.latent_mean, new.latent_log_std)
        total = total + latent * masks[:, 0].sum(-1)
    return total / masks.sum((1, 2)).clamp(min=1.0)


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
