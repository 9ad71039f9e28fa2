"""``metarl bench``: sampler throughput beside the physics limit, update time beside sampling time.

Everything is measured in one process, on the same cores and the same batch. The meta-update is
timed with the configuration's curvature and, where that is a subsample (``outer.hvp_subsample``
below 1), again with the exact curvature on the same batch, so both stand beside the sampling time. The physics limit
and the sampler are timed alternately, once per meta-iteration, and the ratio is taken per
iteration before the median, so the printed ratios hold on a noisy shared machine even when the
absolute numbers drift.

The physics limit is the sampler's own episodes replayed on the family's models by their
:class:`mujoco.batch.Batch` alone: the recorded initial states and controls, the same
simulations stepped at each step, and no policy, no observation or reward work, no Python per
environment (see :class:`PhysicsLimit`). For a family without MuJoCo (Navigation2D) its numpy
step with zero actions is the physics.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from metarl.config import Config, ConfigError
from metarl.envs.base import BatchEnv, SimulatedBatchEnv, StepResult, Task, TaskFamily
from metarl.envs.mujoco_batch import PhysicsBatch
from metarl.experiment import build_experiment
from metarl.maml import MetaBatch, meta_update
from metarl.rollouts import AdaptationSettings, Streams, collect_adaptation
from metarl.samplers import BatchSampler


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Figures of one benchmark run (rates and ``*_s`` are medians over the measured iterations).

    Attributes:
        physics_limit_steps_per_s: Env-steps/s of the raw physics (see the module docstring).
        sampler_steps_per_s: Env-steps/s of the sampler, policy in the loop (steps that happened,
            over the time spent inside its ``collect`` calls).
        sampler_over_limit: Median of the per-iteration ratios sampler / physics limit.
        sampling_s: Seconds of sampling per meta-iteration (every inner step plus the query set),
            including what happens between the collections: baseline fits, advantages and the
            inner gradient steps.
        update_s: Seconds of the meta-update per meta-iteration, with the configuration's curvature
            (``outer.hvp_subsample``).
        update_exact_s: Seconds of the same update with the exact curvature (``hvp_subsample`` 1),
            timed on the same batch right after it (its result is discarded); equal to ``update_s``
            where the configuration is exact already.
        iteration_s: ``sampling_s + update_s`` (median of the sums).
        physics: What the limit stepped: ``mujoco.batch.Batch`` or ``BatchEnv.step``.
        load_avg: 1-minute load average of the machine at the start and at the end.
    """

    family: str
    algorithm: str
    batch: str
    horizon: int
    physics_limit_steps_per_s: float
    sampler_steps_per_s: float
    sampler_over_limit: float
    sampling_s: float
    update_s: float
    update_exact_s: float
    iteration_s: float
    update_over_sampling: float
    iterations: int
    physics: str
    physics_threads: int
    torch_threads: int
    hvp_subsample: float
    peak_rss_mb: float
    load_avg: tuple[float, float]

    @property
    def update_over_exact(self) -> float:
        """The configured update's time over the exact one's (1 where they are the same update)."""
        return self.update_s / self.update_exact_s

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["update_over_exact"] = self.update_over_exact
        out["load_avg"] = list(self.load_avg)
        return out

    def table(self) -> str:
        rows = [
            (
                "family",
                f"{self.family} ({self.algorithm}), batch {self.batch} tasks x rollouts, horizon {self.horizon}",
            ),
            ("physics limit", f"{self.physics_limit_steps_per_s:12,.0f} env-steps/s ({self.physics}, no policy)"),
            (
                "sampler",
                f"{self.sampler_steps_per_s:12,.0f} env-steps/s ({100 * self.sampler_over_limit:.0f}% of the limit)",
            ),
            ("sampling", f"{self.sampling_s:12.3f} s per meta-iteration (all inner steps + query)"),
            (
                "meta-update",
                f"{self.update_s:12.3f} s per meta-iteration ({self.update_over_sampling:.2f}x sampling, "
                f"hvp_subsample {self.hvp_subsample:g})",
            ),
            (
                "exact curv.",
                f"{self.update_exact_s:12.3f} s per meta-update with the exact curvature "
                f"({self.update_over_exact:.2f}x of it with hvp_subsample {self.hvp_subsample:g})",
            ),
            ("iteration", f"{self.iteration_s:12.3f} s (median of {self.iterations})"),
            (
                "machine",
                f"{self.physics_threads} physics threads, {self.torch_threads} torch threads (learner), "
                f"load {self.load_avg[0]:.2f} -> {self.load_avg[1]:.2f}",
            ),
            ("peak RSS", f"{self.peak_rss_mb:12.0f} MB"),
        ]
        return "\n".join(f"{k:>14}  {v}" for k, v in rows)


def find_physics(env: BatchEnv) -> PhysicsBatch | None:
    """The :class:`PhysicsBatch` behind a MuJoCo family's batched environment, or None (numpy family).

    Call after every ``reset`` (batches may be built or rebuilt there); see
    :class:`~metarl.envs.base.SimulatedBatchEnv`.
    """
    return env.physics_batch() if isinstance(env, SimulatedBatchEnv) else None


@dataclasses.dataclass
class RecordedEpisode:
    """The physics inputs of one batched episode: initial state and the controls of every step.

    Attributes:
        qpos: ``[B, nq]`` state after the reset.
        qvel: ``[B, nv]``.
        ctrl0: ``[B, nu]`` controls after the reset.
        act0: ``[B, na]`` actuator activations (filtered targets) after the reset.
        ctrl: ``T'`` arrays ``[B, nu]``, the controls in force during each step taken.
    """

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl0: np.ndarray
    act0: np.ndarray
    ctrl: list[np.ndarray]


class RecordingEnv:
    """A :class:`BatchEnv` that passes everything through and records its MuJoCo inputs.

    The copies cost a few microseconds per step (``[B, nu]`` floats), far below the physics.
    """

    def __init__(self, env: BatchEnv):
        self.env = env
        self.num_envs = env.num_envs
        self.episodes: list[RecordedEpisode] = []

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        self.env.set_tasks(tasks)

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        obs = self.env.reset(rngs)
        physics = find_physics(self.env)
        if physics is not None:
            ctrl = physics.batch.bind("ctrl")
            self.episodes.append(
                RecordedEpisode(physics.qpos.copy(), physics.qvel.copy(), np.array(ctrl), physics.act.copy(), [])
            )
        return obs

    def step(self, action: np.ndarray) -> StepResult:
        result = self.env.step(action)
        physics = find_physics(self.env)
        if physics is not None and self.episodes:
            self.episodes[-1].ctrl.append(np.array(physics.batch.bind("ctrl")))
        return result

    def close(self) -> None:
        self.env.close()


class PhysicsLimit:
    """Times the physics of the sampler's own episodes, without policy, observations or rewards.

    For a MuJoCo family the limit replays a recorded episode on a second batch of the same
    environments (same tasks, hence the same models): it resets the recorded initial state, then
    at each step writes the recorded controls and calls :meth:`mujoco.batch.Batch.step` for the
    simulations that were still running (episode masks), exactly the physics the sampler asked
    for. Constant controls would change the work: a zero-torque cheetah lies on its back in
    contact, a motionless gripper never touches its object. For a family without MuJoCo the
    numpy step with zero actions is the physics.

    Args:
        family: The family.
        num_envs: ``N × R``, the sampler's batch.
        num_threads: Physics threads (the sampler's).
    """

    def __init__(self, family: TaskFamily, num_envs: int, num_threads: int):
        self.horizon = family.horizon
        self.num_envs = num_envs
        self.env = family.make_batch_env(num_envs, num_threads)
        self.physics: PhysicsBatch | None = None
        self._zero = np.zeros((num_envs, int(family.action_space.shape[0])))

    @property
    def kind(self) -> str:
        return "BatchEnv.step" if self.physics is None else "mujoco.batch.Batch"

    def episode(
        self, tasks: Sequence[Task], rollouts: int, recorded: RecordedEpisode | None, masks: np.ndarray | None
    ) -> tuple[int, float]:
        """Sets the tasks and the initial state (untimed), then times the physics of one episode.

        Args:
            tasks: ``N`` tasks (environment ``i·R + k`` runs task ``i``).
            rollouts: ``R``.
            recorded: The sampler's episode on these tasks (None: zero actions for ``T`` steps).
            masks: ``[T, B]`` which environments were stepped at each step (None: all).

        Returns:
            ``(env-steps, seconds)``.
        """
        self.env.set_tasks([t for t in tasks for _ in range(rollouts)])
        self.env.reset(np.random.default_rng(0).spawn(self.num_envs))
        self.physics = find_physics(self.env)  # after the reset: a batch may be rebuilt for new models
        if self.physics is None or recorded is None:
            start = time.perf_counter()
            for _ in range(self.horizon):
                self.env.step(self._zero)
            return self.horizon * self.num_envs, time.perf_counter() - start
        physics = self.physics
        physics.reset(recorded.qpos, recorded.qvel, recorded.ctrl0, recorded.act0)
        batch, nstep, ctrl = physics.batch, physics.frame_skip, physics.batch.bind("ctrl")
        active = np.ones((len(recorded.ctrl), self.num_envs), dtype=bool) if masks is None else masks > 0
        ids = [None if row.all() else np.flatnonzero(row) for row in active]
        steps = int(active[: len(recorded.ctrl)].sum())
        start = time.perf_counter()
        for t, controls in enumerate(recorded.ctrl):
            ctrl[...] = controls
            batch.step(ids=ids[t], nstep=nstep)
        return steps, time.perf_counter() - start

    def close(self) -> None:
        self.env.close()


def run_bench(config: Config, iterations: int = 3) -> BenchResult:
    """Measures ``iterations`` meta-iterations (after one warm-up): physics limit, sampling, update.

    Each iteration samples (recording the physics inputs), updates, then replays the physics of
    every episode it sampled (see :class:`PhysicsLimit`), so both rates cover the same work.
    """
    load_start = os.getloadavg()[0]
    if config.sampler.backend != "local":
        raise ConfigError(f"sampler.backend={config.sampler.backend!r}: bench measures the local sampler; use local")
    exp = build_experiment(config)
    sampler = exp.sampler
    assert isinstance(sampler, BatchSampler)
    n, r = config.outer.meta_batch_size, config.inner.rollouts
    rng = np.random.default_rng(config.run.seed)
    generator = torch.Generator().manual_seed(config.run.seed)
    params = exp.policy.init_params(generator)
    limit = PhysicsLimit(exp.family, n * r, config.sampler.num_threads)
    recorder = RecordingEnv(exp.family.make_batch_env(n * r, config.sampler.num_threads))
    sampler.use_env(recorder)
    settings = AdaptationSettings.training(config)
    exact = dataclasses.replace(config.outer, hvp_subsample=1.0)
    time_exact = exact != config.outer and config.inner.algorithm != "reptile"
    sampling, updating, updating_exact, sampler_rates, limit_rates, ratios = [], [], [], [], [], []
    for i in range(iterations + 1):
        tasks = exp.family.sample_tasks(n, rng)
        recorder.episodes.clear()
        collect_s0, collect_steps0 = sampler.collect_seconds, sampler.collect_steps
        t0 = time.perf_counter()
        batches = collect_adaptation(sampler, params, tasks, settings, Streams(rng, generator)).episodes
        batch = MetaBatch(tuple(batches[:-1]), batches[-1])
        t1 = time.perf_counter()
        updated, _ = meta_update(exp.policy, params, batch, config.inner, config.outer)
        t2 = time.perf_counter()
        if time_exact:
            meta_update(exp.policy, params, batch, config.inner, exact)
        t3 = time.perf_counter() if time_exact else t2 + (t2 - t1)
        params = updated
        limit_steps, limit_seconds = 0, 0.0
        recorded: list[RecordedEpisode | None] = list(recorder.episodes) or [None] * len(batches)
        for episodes, record in zip(batches, recorded, strict=True):
            masks = episodes.masks.permute(1, 0, 2).reshape(exp.family.horizon, n * r).numpy()
            s, dt = limit.episode(tasks, r, record, masks)
            limit_steps, limit_seconds = limit_steps + s, limit_seconds + dt
        if i > 0:  # the first iteration warms up allocators and caches
            sampling.append(t1 - t0)
            updating.append(t2 - t1)
            updating_exact.append(t3 - t2)
            steps = sampler.collect_steps - collect_steps0
            rate = steps / (sampler.collect_seconds - collect_s0)  # inside the sampler's collect calls
            sampler_rates.append(rate)
            limit_rates.append(limit_steps / limit_seconds)
            ratios.append(rate / limit_rates[-1])
    kind = limit.kind
    limit.close()
    sampler.close()
    samp, upd = float(np.median(sampling)), float(np.median(updating))
    return BenchResult(
        family=config.family.name,
        algorithm=config.inner.algorithm,
        batch=f"{n}x{r}",
        horizon=exp.family.horizon,
        physics_limit_steps_per_s=float(np.median(limit_rates)),
        sampler_steps_per_s=float(np.median(sampler_rates)),
        sampler_over_limit=float(np.median(ratios)),
        sampling_s=samp,
        update_s=upd,
        update_exact_s=float(np.median(updating_exact)),
        iteration_s=float(np.median(np.add(sampling, updating))),
        update_over_sampling=upd / samp,
        iterations=iterations,
        physics=kind,
        physics_threads=config.sampler.num_threads,
        torch_threads=torch.get_num_threads(),
        hvp_subsample=config.outer.hvp_subsample,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        load_avg=(load_start, os.getloadavg()[0]),
    )
