"""Builds the pieces of an experiment (family, policy, sampler) from its configuration."""

from __future__ import annotations

import dataclasses
import os

import torch

from metarl.config import Config
from metarl.envs.base import TaskFamily
from metarl.envs.registry import make_family
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler, make_sampler


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
    policy = GaussianMLPPolicy(obs_dim, act_dim, p.hidden_sizes, init_std=p.init_std, min_std=p.min_std)
    sampler = make_sampler(config, family, policy)
    return Experiment(config, family, policy, sampler)
