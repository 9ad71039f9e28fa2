"""The checkpoints shipped under experiments/checkpoints/: they load, and (slow) adapt as reported.

``experiments/checkpoints/reported.yaml`` lists each file with the figure experiments/RESULTS.md
reports for it: the held-out return (and success) after ``steps`` gradient steps, mean and std
over evaluation seeds, and the command that measured it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from metarl.evaluate import evaluate_checkpoint
from metarl.experiment import load_experiment

SHIPPED = Path(__file__).resolve().parents[1] / "experiments" / "checkpoints"
REPORTED: dict[str, dict[str, Any]] = yaml.safe_load((SHIPPED / "reported.yaml").read_text())


def test_every_shipped_checkpoint_is_listed_small_and_loads() -> None:
    files = sorted(p.name for p in SHIPPED.glob("*.pt"))
    assert files == sorted(entry["file"] for entry in REPORTED.values())
    for name, entry in REPORTED.items():
        path = SHIPPED / entry["file"]
        assert path.stat().st_size < 1_000_000, f"{name}: a shipped checkpoint is small"
        exp, ckpt = load_experiment(path)
        exp.sampler.close()
        assert exp.family.name == entry["family"] and ckpt.iteration == entry["iteration"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REPORTED))
def test_shipped_checkpoint_adapts_on_held_out_tasks_as_reported(name: str) -> None:
    entry = REPORTED[name]
    report = evaluate_checkpoint(SHIPPED / entry["file"], "test", steps=entry["steps"], seed=entry["check_seed"])
    after = report.steps[-1]
    floor = entry["return_mean"] - 2 * entry["return_std"]
    print(f"{name}: return after {entry['steps']} step(s) {after.return_mean:.2f} (reported floor {floor:.2f})")
    assert after.return_mean >= floor


@pytest.mark.slow
def test_shipped_grasp_policy_lifts_the_demo_bottle_more_often_after_adapting() -> None:
    """The README's main command: the shipped grasp checkpoint adapted in three steps to the demo's
    bottle (a held-out shape) lifts it in 20 % of 20 rollouts before and 95 % after (seed 0, as
    ``make demo`` prints); a rise of at least 25 points is asserted."""
    from metarl.evaluate import adapt_checkpoint

    bottle = "bottle length=0.22 radius=0.03 neck=0.012 neck_length=0.07 mass=0.3"
    report = adapt_checkpoint(SHIPPED / REPORTED["grasp_object"]["file"], bottle, steps=3, seed=0).report
    before, after = report.steps[0].success_rate, report.steps[-1].success_rate
    assert before is not None and after is not None
    print(f"grasp_object on the demo bottle: success {before:.0%} before, {after:.0%} after three steps")
    assert after >= before + 0.25
