"""``metarl bench``: sampler throughput beside the physics limit, update time beside sampling time.

Everything is measured in one process, on the same cores and the same batch, so the printed
ratios hold on a noisy shared machine even when the absolute numbers drift.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from typing import Any

import numpy as np
import torch

from metarl.adaptation import collect_adaptation
from metarl.config import Config
from metarl.experiment import build_experiment
from metarl.maml import MetaBatch, meta_update


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Figures of one benchmark run (``*_s`` are seconds per meta-iteration, medians)."""

    family: str
    algorithm: str
    batch: str
    physics_limit_steps_per_s: float
    sampler_steps_per_s: float
    sampler_over_limit: float
    sampling_s: float
    update_s: float
    iteration_s: float
    update_over_sampling: float
    iterations: int
    torch_threads: int
    peak_rss_mb: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def table(self) -> str:
        rows = [
            ("family", f"{self.family} ({self.algorithm}), batch {self.batch} tasks x rollouts"),
            ("physics limit", f"{self.physics_limit_steps_per_s:12,.0f} env-steps/s (no policy)"),
            (
                "sampler",
                f"{self.sampler_steps_per_s:12,.0f} env-steps/s ({100 * self.sampler_over_limit:.0f}% of the limit)",
            ),
            ("sampling", f"{self.sampling_s:12.3f} s per meta-iteration (all inner steps + query)"),
            (
                "meta-update",
                f"{self.update_s:12.3f} s per meta-iteration ({self.update_over_sampling:.2f}x sampling)",
            ),
            ("iteration", f"{self.iteration_s:12.3f} s (median of {self.iterations})"),
            ("peak RSS", f"{self.peak_rss_mb:12.0f} MB, torch threads {self.torch_threads}"),
        ]
        return "\n".join(f"{k:>14}  {v}" for k, v in rows)


def physics_limit(config: Config, num_tasks: int, rollouts: int, seconds: float = 1.0) -> float:
    """Env-steps/s of the family's batched environment with constant zero actions, no policy."""
    exp = build_experiment(config)
    tasks = exp.family.sample_tasks(num_tasks, np.random.default_rng(0))
    b = num_tasks * rollouts
    env = exp.family.make_batch_env(b, config.sampler.num_threads)
    env.set_tasks([t for t in tasks for _ in range(rollouts)])
    action = np.zeros((b, exp.family.action_space.shape[0]))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset(np.random.default_rng(0).spawn(b))
        for _ in range(exp.family.horizon):
            env.step(action)
        steps += exp.family.horizon * b
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def run_bench(config: Config, iterations: int = 3) -> BenchResult:
    """Measures sampling and meta-update of ``iterations`` meta-iterations (after one warm-up)."""
    exp = build_experiment(config)
    n, r = config.outer.meta_batch_size, config.inner.rollouts
    limit = physics_limit(config, n, r)
    rng = np.random.default_rng(config.run.seed)
    generator = torch.Generator().manual_seed(config.run.seed)
    params = exp.policy.init_params(generator)
    sampling, updating, steps_per_s = [], [], []
    for i in range(iterations + 1):
        tasks = exp.family.sample_tasks(n, rng)
        t0 = time.perf_counter()
        batches = collect_adaptation(
            exp.sampler,
            params,
            tasks,
            config.inner.steps,
            r,
            config.inner.fast_lr,
            config.advantage,
            rng,
            generator,
        )
        t1 = time.perf_counter()
        params, _ = meta_update(
            exp.policy, params, MetaBatch(tuple(batches[:-1]), batches[-1]), config.inner, config.outer
        )
        t2 = time.perf_counter()
        if i > 0:  # the first iteration warms up allocators and caches
            sampling.append(t1 - t0)
            updating.append(t2 - t1)
            steps_per_s.append(sum(b.num_steps for b in batches) / (t1 - t0))
    exp.sampler.close()
    sampler_rate = float(np.median(steps_per_s))
    samp, upd = float(np.median(sampling)), float(np.median(updating))
    return BenchResult(
        family=config.family.name,
        algorithm=config.inner.algorithm,
        batch=f"{n}x{r}",
        physics_limit_steps_per_s=limit,
        sampler_steps_per_s=sampler_rate,
        sampler_over_limit=sampler_rate / limit,
        sampling_s=samp,
        update_s=upd,
        iteration_s=float(np.median(np.add(sampling, updating))),
        update_over_sampling=upd / samp,
        iterations=iterations,
        torch_threads=torch.get_num_threads(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    )
