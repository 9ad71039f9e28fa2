"""Builds the pieces of an experiment (family, policy, sampler) from its configuration or a checkpoint."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from metarl.checkpoint import Checkpoint, CheckpointError, check_params, load_checkpoint
from metarl.config import Config, ConfigError, apply_overrides, config_from_dict
from metarl.envs.base import TaskFamily
from metarl.envs.registry import make_family
from metarl.policies import GaussianMLPPolicy
from metarl.ray_sampler import RaySampler
from metarl.samplers import BatchSampler, Sampler


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The family, the policy architecture and the sampler of one configuration."""

    config: Config
    family: TaskFamily
    policy: GaussianMLPPolicy
    sampler: Sampler


def build_experiment(config: Config) -> Experiment:
    """Creates the family, policy and sampler; sets the torch thread count of this process."""
    cores = os.cpu_count() or 1
    torch.set_num_threads(min(config.sampler.torch_threads or cores, cores))
    family = make_family(config.family.name, config.family.options)
    obs_dim = int(family.observation_space.shape[0])
    act_dim = int(family.action_space.shape[0])
    p = config.policy
    try:
        policy = GaussianMLPPolicy(
            obs_dim,
            act_dim,
            p.hidden_sizes,
            init_std=p.init_std,
            min_std=p.min_std,
            latent_dim=p.latent_dim,
            latent_std=p.latent_std or None,
            latent_action=p.latent_action,
            fixed_latent_std=p.fixed_latent_std,
            latent_std_decay=p.latent_std_decay,
            latent_input=p.latent_input,
            latent_natural=p.latent_natural,
            latent_open_loop=p.latent_open_loop,
            latent_centred=p.latent_centred,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_inner_step(config)
    sampler = make_sampler(config, family, policy)
    return Experiment(config, family, policy, sampler)


def check_inner_step(config: Config) -> None:
    """Refuses an inner loop that moves nothing: ``inner.fast_lr`` 0 adapts the latent alone.

    Raises:
        ConfigError: ``inner.fast_lr=0`` without a latent, or with its step size 0 (one line).
    """
    inner = config.inner
    if inner.fast_lr == 0 and inner.steps > 0 and (config.policy.latent_dim == 0 or inner.latent_step == 0):
        raise ConfigError(
            "inner.fast_lr=0 adapts nothing here; allowed: a number above 0, or 0 with a latent that adapts "
            "alone (policy.latent_dim > 0 and inner.latent_lr > 0)"
        )
    if inner.fast_lr == 0 and inner.algorithm == "reptile":
        raise ConfigError(
            "inner.fast_lr=0 with inner.algorithm=reptile never trains the network (reptile moves it towards its "
            "adapted copy); allowed: inner.fast_lr above 0, or inner.algorithm maml_trpo or fomaml"
        )


def make_sampler(config: Config, family: TaskFamily, policy: GaussianMLPPolicy) -> Sampler:
    """The sampler that ``config.sampler`` asks for: :class:`BatchSampler` or a :class:`RaySampler`.

    Raises:
        ConfigError: ``backend: ray`` without Ray installed (one line saying how to install it).
    """
    s = config.sampler
    if s.backend == "local":
        return BatchSampler(family, policy, num_threads=s.num_threads)
    if s.backend == "ray":
        return RaySampler.from_config(config, family, policy)
    raise ConfigError(f"sampler.backend={s.backend!r} is not allowed; allowed: local, ray")


def saved_config(ckpt: Checkpoint, path: Path) -> dict[str, Any]:
    """The configuration mapping a checkpoint was trained with, as written (not yet checked).

    Raises:
        CheckpointError: The stored configuration is not a YAML mapping (one line naming ``path``).
    """
    try:
        data = yaml.safe_load(ckpt.config_yaml)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has a malformed config")
    return data


def check_architecture(ckpt: Checkpoint, policy: GaussianMLPPolicy, path: Path) -> None:
    """Refuses a checkpoint whose parameters (or those of any step of its adaptation) do not fit ``policy``.

    Raises:
        CheckpointError: One line naming ``path`` and every missing, unexpected or mis-shaped tensor.
    """
    expected = policy.init_params(torch.Generator().manual_seed(0))
    check_params(ckpt.params, expected, what=f"checkpoint {str(path)!r}")
    for params in ckpt.adaptation.step_params if ckpt.adaptation is not None else ():
        check_params(params, expected, what=f"checkpoint {str(path)!r} (a step of its adaptation)")


def load_experiment(path: Path, overrides: Sequence[str] = ()) -> tuple[Experiment, Checkpoint]:
    """A checkpoint and the experiment its configuration builds, its parameters checked against the policy.

    Args:
        path: The checkpoint.
        overrides: ``section.key=value`` changes to the stored configuration (``--set``), e.g. an
            evaluation with another inner step; one that changes the policy's shape is refused.

    Raises:
        CheckpointError: A missing, corrupt or foreign file, a malformed configuration, or
            parameters that do not fit the policy (one line).
        ConfigError: A configuration this version refuses, or a malformed override.
    """
    ckpt = load_checkpoint(path)
    exp = build_experiment(config_from_dict(apply_overrides(saved_config(ckpt, path), overrides)))
    try:
        check_architecture(ckpt, exp.policy, path)
    except CheckpointError:
        exp.sampler.close()
        raise
    return exp, ckpt
