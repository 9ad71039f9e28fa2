"""``metarl bench``: the physics limit steps the raw MuJoCo batch; the result has every figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metarl.bench import PhysicsLimit, RecordingEnv, find_physics, run_bench
from metarl.cli import main
from metarl.config import load_config
from metarl.envs.mujoco_batch import PhysicsBatch
from metarl.envs.registry import family_names, make_family
from metarl.policies import GaussianMLPPolicy, stack_params
from metarl.samplers import BatchSampler

REQUIRED = (
    "family",
    "batch",
    "physics_limit_steps_per_s",
    "sampler_steps_per_s",
    "sampler_over_limit",
    "sampling_s",
    "update_s",
    "update_exact_s",
    "update_over_exact",
    "peak_rss_mb",
)


@pytest.mark.parametrize("name", family_names())
def test_physics_limit_replays_the_sampler_physics_on_the_raw_batch(name: str) -> None:
    """The limit steps the family's own mujoco.batch.Batch and reproduces the sampled states exactly."""
    family = make_family(name, {"horizon": 6})
    policy = GaussianMLPPolicy(int(family.observation_space.shape[0]), int(family.action_space.shape[0]), (8,))
    params = stack_params(policy.init_params(torch.Generator().manual_seed(0), dtype=torch.float64), 2)
    tasks = family.sample_tasks(2, np.random.default_rng(0))
    sampler = BatchSampler(family, policy)
    recorder = RecordingEnv(family.make_batch_env(4))
    sampler.use_env(recorder)
    episodes = sampler.collect(params, tasks, 2, np.random.default_rng(1), torch.Generator().manual_seed(1))
    masks = episodes.masks.permute(1, 0, 2).reshape(6, 4).numpy()
    limit = PhysicsLimit(family, 4, num_threads=1)
    record = recorder.episodes[-1] if recorder.episodes else None
    steps, seconds = limit.episode(tasks, 2, record, masks)
    assert seconds > 0
    if name == "Navigation2D":
        assert record is None and limit.physics is None and limit.kind == "BatchEnv.step"
        assert steps == 6 * 4
    else:
        assert record is not None and isinstance(limit.physics, PhysicsBatch) and limit.kind == "mujoco.batch.Batch"
        assert steps == episodes.num_steps
        sampled = find_physics(recorder.env)
        assert sampled is not None
        np.testing.assert_array_equal(limit.physics.qpos, sampled.qpos)  # the very same physics, bit for bit
        np.testing.assert_array_equal(limit.physics.qvel, sampled.qvel)
    limit.close()
    sampler.close()


def test_run_bench_reports_every_figure() -> None:
    config = load_config(
        None,
        [
            "outer.meta_batch_size=2",
            "inner.rollouts=2",
            "family.horizon=10",
            "sampler.torch_threads=1",
            "outer.hvp_subsample=0.5",
        ],
    )
    result = run_bench(config, iterations=1)
    data = result.to_dict()
    for key in REQUIRED:
        assert key in data
    assert data["hvp_subsample"] == 0.5 and data["update_exact_s"] > 0  # the exact update is timed as well
    assert data["update_over_exact"] == pytest.approx(data["update_s"] / data["update_exact_s"])
    assert "exact curvature" in result.table()
    assert data["batch"] == "2x2" and data["physics"] == "BatchEnv.step"
    assert data["sampler_over_limit"] == pytest.approx(data["sampler_steps_per_s"] / data["physics_limit_steps_per_s"])
    assert data["sampler_over_limit"] > 0 and data["update_s"] > 0 and data["peak_rss_mb"] > 0
    assert "physics limit" in result.table()


def test_cli_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--set", "family.horizon=5", "--set", "sampler.torch_threads=1"]
    code = main(["bench", "--family", "Navigation2D", "--batch", "2x2", "--iterations", "1", "--json", *overrides])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "Navigation2D" and data["batch"] == "2x2"
    for key in REQUIRED:
        assert key in data
    assert data["hvp_subsample"] == 1.0 and data["update_exact_s"] == data["update_s"]  # exact already: one timing
