"""The Ray backend against a local Ray instance: same episodes as the local sampler, failures detected.

Needs the optional ``ray`` extra (``pip install -e '.[ray]'``, part of ``.[dev]``); without it the
module is skipped with that reason. Ray runs with ``RAY_AUTH_MODE=disabled`` (no token written
under the home directory) and its session files in a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from metarl.config import ConfigError
from metarl.envs.base import BatchEnv, StepResult, TaskFamily
from metarl.envs.registry import make_family
from metarl.policies import GaussianMLPPolicy, stack_params
from metarl.samplers import BatchSampler, SamplerError

ray = pytest.importorskip(
    "ray", reason="the optional 'ray' extra is not installed (pip install -e '.[ray]'): Ray backend not tested"
)
from metarl.ray_sampler import RaySampler  # noqa: E402

HORIZON = 15


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A 2-CPU Ray instance for this module, its files in a short temporary folder (socket paths)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors can rebuild the helpers below
    ray.init(
        num_cpus=2,
        _temp_dir=temp,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


class FamilyFactory:
    """Builds a short-horizon family in any process; ``fault`` makes its environments misbehave."""

    def __init__(self, name: str, fault: str = ""):
        self.name, self.fault = name, fault

    def __call__(self) -> TaskFamily:
        family = make_family(self.name, {"horizon": HORIZON})
        return FaultyFamily(family, self.fault) if self.fault else family


class FaultyFamily:
    """Delegates to a family, but its batched environments die or hang at the first step."""

    def __init__(self, family: TaskFamily, fault: str):
        self._family, self._fault = family, fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._family, name)

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> BatchEnv:
        return FaultyEnv(self._family.make_batch_env(num_envs, num_threads), self._fault)


class FaultyEnv:
    def __init__(self, env: BatchEnv, fault: str):
        self._env, self._fault = env, fault
        self.num_envs = env.num_envs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def step(self, action: np.ndarray) -> StepResult:
        if self._fault == "die":
            os._exit(3)
        if self._fault == "hang":
            time.sleep(3600)
        raise ValueError("mass=-1 is out of range")


def _policy(family: TaskFamily) -> GaussianMLPPolicy:
    return GaussianMLPPolicy(int(family.observation_space.shape[0]), int(family.action_space.shape[0]), (8,))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.parametrize("name", ["Navigation2D", "HalfCheetahVel"])
def test_ray_backend_gives_the_local_episodes(local_ray: None, name: str) -> None:
    factory = FamilyFactory(name)
    family = factory()
    policy = _policy(family)
    tasks = family.sample_tasks(3, np.random.default_rng(0))  # 3 tasks on 2 workers: slices of 2 and 1
    params = stack_params(policy.init_params(torch.Generator().manual_seed(0)), 3)
    sampler = RaySampler(factory, policy, num_workers=2, timeout_s=120)
    try:
        assert sampler.num_workers == 2
        remote = [sampler.collect(params, tasks, 2, np.random.default_rng(5), torch.Generator().manual_seed(5))]
        local = BatchSampler(family, policy).collect(
            params, tasks, 2, np.random.default_rng(5), torch.Generator().manual_seed(5)
        )
    finally:
        sampler.close()
    for a, b in zip(remote[0], local, strict=True):
        assert torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize(
    ("fault", "message"),
    [("die", r"worker \d died during collect"), ("hang", r"worker .* did not collect within"), ("raise", "ValueError")],
)
def test_a_failing_worker_is_reported_and_every_worker_stopped(local_ray: None, fault: str, message: str) -> None:
    factory = FamilyFactory("Navigation2D", fault)
    family = factory()
    policy = _policy(family)
    sampler = RaySampler(factory, policy, num_workers=2, timeout_s=120)
    pids = sampler.worker_pids()  # started (a slow start is not a hang)
    sampler.timeout_s = 20 if fault != "hang" else 3
    params = stack_params(policy.init_params(torch.Generator().manual_seed(0)), 2)
    start = time.monotonic()
    with pytest.raises(SamplerError, match=message) as err:
        sampler.collect(
            params, family.sample_tasks(2, np.random.default_rng(0)), 1, np.random.default_rng(0), torch.Generator()
        )
    assert time.monotonic() - start < 30
    assert "\n" not in str(err.value)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids), "a worker process outlived the failure"
    with pytest.raises(SamplerError, match="stopped after an earlier failure"):
        sampler.collect(
            params, family.sample_tasks(2, np.random.default_rng(0)), 1, np.random.default_rng(0), torch.Generator()
        )
    sampler.close()


def test_more_actor_cpus_than_the_cluster_has_is_refused(local_ray: None) -> None:
    factory = FamilyFactory("Navigation2D")
    with pytest.raises(ConfigError, match=r"needs 4 CPUs but the Ray cluster has 2"):
        RaySampler(factory, _policy(factory()), num_workers=2, num_threads=2)
