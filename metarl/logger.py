"""Run logging: one CSV row per iteration and the same scalars as TensorBoard events."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLUMNS: tuple[str, ...] = (
    "iteration",
    "adapt/pre_return",
    "adapt/post_return",
    "adapt/pre_success",
    "adapt/success",
    "trpo/surrogate_before",
    "trpo/surrogate_improvement",
    "trpo/kl",
    "trpo/line_search_steps",
    "trpo/rejected",
    "trpo/nonfinite",
    "trpo/grad_norm",
    "physics/unstable_episodes",
    "eval/pre_return",
    "eval/post_return",
    "eval/post_success",
    "sampler/steps_per_s",
    "time/sampling_s",
    "time/update_s",
    "time/iteration_s",
)
TIMING_COLUMNS = ("sampler/steps_per_s", "time/sampling_s", "time/update_s", "time/iteration_s")


def read_progress(path: Path) -> list[dict[str, float]]:
    """Reads ``progress.csv`` back as floats (empty cells become NaN)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [{k: float(v) if v != "" else math.nan for k, v in row.items()} for row in csv.DictReader(fh)]


class RunLogger:
    """Appends iteration rows to ``progress.csv`` and TensorBoard events under ``tb/``.

    Args:
        run_dir: The run directory.
        tensorboard: Whether to write TensorBoard events.
        resume_after: On resume, the iteration of the checkpoint: rows after it (from iterations
            that will run again) are dropped from the CSV and the TensorBoard log.
    """

    def __init__(self, run_dir: Path, tensorboard: bool, resume_after: int | None = None):
        self.path = run_dir / "progress.csv"
        rows: list[dict[str, float]] = []
        if resume_after is not None:
            rows = [r for r in read_progress(self.path) if r["iteration"] <= resume_after]
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # heavy import, only when asked

            purge = None if resume_after is None else resume_after + 1
            self._writer = SummaryWriter(str(run_dir / "tb"), purge_step=purge)

    def log(self, iteration: int, metrics: Mapping[str, float | None]) -> None:
        """Writes one row; keys must be among :data:`COLUMNS`."""
        unknown = set(metrics) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric(s): {sorted(unknown)}")
        row = {"iteration": iteration, **metrics}
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS).writerow({k: _cell(row.get(k)) for k in COLUMNS})
        if self._writer is not None:
            for key, value in metrics.items():
                if value is not None and math.isfinite(value):
                    self._writer.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def columns_without_timing() -> Sequence[str]:
    """The columns that depend only on the seed (not on wall-clock time)."""
    return [c for c in COLUMNS if c not in TIMING_COLUMNS]
