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
