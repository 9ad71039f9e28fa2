"""Sampling past one machine: the batched sampler inside Ray actors, one slice of the tasks each.

The driver draws all the randomness of a collection (reset seeds and action noise, see
:func:`metarl.samplers.draw_noise`), cuts the tasks into contiguous slices, and sends each actor
its slice of the parameters, tasks and draws. Each actor runs
:meth:`metarl.samplers.BatchSampler.collect_drawn` (one batched environment, one policy forward
per step) and returns its episodes; the driver concatenates them along the task axis. Only
parameters, draws and episode arrays cross process boundaries, and the episodes equal those of
the local backend for the same seeds.

A worker that dies or does not answer within ``timeout_s`` raises :class:`SamplerError` with one
line; the sampler then stops every actor (no orphan processes) and refuses further work.

Ray is an optional extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from metarl.config import Config, ConfigError
from metarl.envs.base import Task, TaskFamily
from metarl.envs.registry import make_family
from metarl.episodes import Episodes
from metarl.policies import GaussianMLPPolicy, Params
from metarl.samplers import BatchSampler, RolloutNoise, SamplerError, draw_noise


def import_ray() -> Any:
    """Returns the ``ray`` module, or raises one :class:`ConfigError` line saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(
            f"sampler.backend=ray needs Ray, which is not importable ({err}); install it with pip install -e '.[ray]'"
        ) from None
    return ray


class SamplerWorker:
    """What one Ray actor holds: a family, the policy architecture and a :class:`BatchSampler`.

    Args:
        family_factory: Builds the task family inside the actor's process.
        policy: The policy architecture (its parameters arrive with every collection).
        num_threads: Physics threads of the actor's batched environment.
    """

    def __init__(self, family_factory: Callable[[], TaskFamily], policy: GaussianMLPPolicy, num_threads: int):
        torch.set_num_threads(1)
        self.sampler = BatchSampler(family_factory(), policy, num_threads=num_threads)

    def pid(self) -> int:
        """The actor's process id (tests check that it is gone after a failure)."""
        return os.getpid()

    def collect_drawn(self, params: Params, tasks: Sequence[Task], draws: RolloutNoise) -> Episodes:
        """Episodes of this actor's slice of the tasks (see :meth:`BatchSampler.collect_drawn`)."""
        return self.sampler.collect_drawn(params, tasks, draws)


class RaySampler:
    """Collects episodes on ``num_workers`` Ray actors; same interface and episodes as :class:`BatchSampler`.

    Args:
        family_factory: Builds the family (in the driver and in each actor); must pickle.
        policy: The policy architecture.
        num_workers: Actors; each owns a contiguous slice of the tasks (fewer run when there are
            fewer tasks than actors).
        num_threads: Physics threads per actor (and the CPUs each actor reserves).
        timeout_s: Seconds one collection may take before the workers are declared hung.
        address: Ray cluster to join (``"auto"``, ``"ray://head:10001"``); empty starts Ray on
            this machine. Ignored when Ray is already initialized in this process.
    """

    def __init__(
        self,
        family_factory: Callable[[], TaskFamily],
        policy: GaussianMLPPolicy,
        *,
        num_workers: int = 2,
        num_threads: int = 1,
        timeout_s: float = 600.0,
        address: str = "",
    ):
        ray = import_ray()
        if num_workers < 1:
            raise ConfigError(f"sampler.num_workers={num_workers} is out of range; allowed: [1, inf)")
        self._ray = ray
        self.family = family_factory()
        self.policy = policy
        self.timeout_s = float(timeout_s)
        self._started_ray = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address)
            else:
                ray.init(include_dashboard=False)
            self._started_ray = True
        cpus = float(ray.cluster_resources().get("CPU", 0.0))
        if num_workers * num_threads > cpus:
            if self._started_ray:
                ray.shutdown()
            raise ConfigError(
                f"sampler.num_workers={num_workers} x sampler.num_threads={num_threads} needs "
                f"{num_workers * num_threads} CPUs but the Ray cluster has {cpus:g}; lower one of them"
            )
        actor = ray.remote(num_cpus=num_threads)(SamplerWorker)
        self._workers: list[Any] = [actor.remote(family_factory, policy, num_threads) for _ in range(num_workers)]
        self._failed: str | None = None

    @classmethod
    def from_config(cls, config: Config, family: TaskFamily, policy: GaussianMLPPolicy) -> RaySampler:
        """The sampler of ``config.sampler`` (``backend: ray``) for ``family`` (built again in each actor)."""
        del family  # rebuilt from the config, in the driver and in every actor
        s = config.sampler
        factory = functools.partial(make_family, config.family.name, config.family.options)
        return cls(
            factory,
            policy,
            num_workers=s.num_workers,
            num_threads=s.num_threads,
            timeout_s=s.worker_timeout_s,
            address=s.ray_address,
        )

    @property
    def num_workers(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        """Process ids of the actors (waits for them to start)."""
        pids: list[int] = self._gather([w.pid.remote() for w in self._workers], what="start")
        return pids

    def collect(
        self,
        params: Params,
        tasks: Sequence[Task],
        rollouts: int,
        rng: np.random.Generator,
        generator: torch.Generator,
    ) -> Episodes:
        """Runs ``rollouts`` episodes of every task on the actors (see :meth:`BatchSampler.collect`).

        Raises:
            SamplerError: A worker died, raised, or did not answer within ``timeout_s``.
        """
        n = len(tasks)
        dtype = next(iter(params.values())).dtype
        draws = draw_noise(
            n, rollouts, self.family.horizon, self.policy.act_dim, dtype, rng, generator, self.policy.latent_dim
        )
        bounds = _slices(n, self.num_workers)
        refs = []
        for worker, (a, b) in zip(self._workers, bounds, strict=False):
            part = {k: v.detach()[a:b].contiguous() for k, v in params.items()}
            noise = RolloutNoise(
                draws.seeds[a:b].copy(), draws.noise[:, a:b].contiguous(), draws.latent[a:b].contiguous()
            )
            refs.append(worker.collect_drawn.remote(part, list(tasks[a:b]), noise))
        parts: list[Episodes] = self._gather(refs, what="collect")
        return Episodes(*(torch.cat(fields, dim=0) for fields in zip(*parts, strict=True)))

    def _gather(self, refs: list[Any], what: str) -> list[Any]:
        """The results of ``refs`` (one per worker, in order), or a one-line :class:`SamplerError`."""
        ray = self._ray
        if self._failed is not None:
            raise SamplerError(f"ray sampler was stopped after an earlier failure: {self._failed}")
        deadline = time.monotonic() + self.timeout_s
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                hung = ", ".join(str(refs.index(r)) for r in pending)
                self._fail(
                    f"worker {hung} did not {what} within sampler.worker_timeout_s={self.timeout_s:g} s "
                    "(hung, or the cluster has too few free CPUs for the actors)"
                )
            for ref in ready:
                try:
                    ray.get(ref)
                except ray.exceptions.RayActorError:
                    self._fail(f"worker {refs.index(ref)} died during {what} (its process exited)")
                except ray.exceptions.RayTaskError as err:
                    cause = err.cause if isinstance(err.cause, BaseException) else err
                    reason = " ".join(str(cause).split()) or type(cause).__name__
                    self._fail(f"worker {refs.index(ref)} raised during {what}: {type(cause).__name__}: {reason}")
        return [ray.get(ref) for ref in refs]

    def _fail(self, message: str) -> None:
        self._failed = message
        self._stop_workers()
        raise SamplerError(f"ray sampler: {message}; every worker was stopped")

    def _stop_workers(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(Exception):  # an actor that is already gone needs no killing
                self._ray.kill(worker, no_restart=True)

    def close(self) -> None:
        """Stops the actors, and Ray itself when this sampler started it."""
        self._stop_workers()
        self._workers = []
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False


def _slices(n: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous, nearly equal ``[a, b)`` slices of ``range(n)``, empty ones dropped."""
    size = math.ceil(n / k) if n else 0
    return [(a, min(a + size, n)) for a in range(0, n, size)] if size else []
