"""Learning tests (slow; run with ``pytest -m slow``): the paper configurations really learn."""

from __future__ import annotations

from pathlib import Path

import pytest

from metarl.config import load_config
from metarl.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_navigation_paper_config_adapts_in_one_step(tmp_path: Path) -> None:
    """MAML paper, 2-D navigation: after meta-training, one gradient step on a held-out goal
    brings the average return to -15 or better (the paper reports about -10 after one step)."""
    config = load_config(ROOT / "experiments" / "navigation.yaml", ["log.tensorboard=false"])
    trainer = Trainer.create(config, tmp_path / "run", quiet=True)
    summary = trainer.train()
    assert summary.last_eval is not None
    pre, post = summary.last_eval.steps[0], summary.last_eval.steps[1]
    print(f"held-out: pre {pre.return_mean:.2f}, post-1-step {post.return_mean:.2f}")
    assert post.return_mean >= -15.0
    assert post.return_mean > pre.return_mean + 5.0
