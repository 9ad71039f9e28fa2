"""Learning tests (slow; run with ``pytest -m slow``): the paper configurations really learn."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from metarl.config import load_config
from metarl.evaluate import evaluate_adaptation
from metarl.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_navigation_paper_config_adapts_in_one_step(tmp_path: Path) -> None:
    """MAML paper, 2-D navigation: after meta-training, one gradient step with 20 rollouts on the
    held-out goals brings the average return to -15 or better (3 evaluation seeds averaged)."""
    config = load_config(ROOT / "experiments" / "navigation.yaml", ["log.tensorboard=false"])
    trainer = Trainer.create(config, tmp_path / "run", quiet=True)
    start = time.perf_counter()
    trainer.train()
    seconds = (time.perf_counter() - start) / config.run.iterations
    exp = trainer.exp
    tasks = exp.family.test_tasks()
    reports = [
        evaluate_adaptation(exp.sampler, trainer.params, tasks, 1, 20, config.inner.fast_lr, config.advantage, seed)
        for seed in range(3)
    ]
    pre = sum(r.steps[0].return_mean for r in reports) / 3
    post = sum(r.steps[1].return_mean for r in reports) / 3
    print(f"\nheld-out goals: pre {pre:.2f}, post-1-step {post:.2f}; {seconds:.2f} s per meta-iteration")
    assert post >= -15.0
    assert post > pre + 10.0
