"""Run logging: one CSV row per iteration and the same scalars as TensorBoard events."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
    "valid/pre_return",
    "valid/post_return",
    "valid/post_success",
    "test/pre_return",
    "test/post_return",
    "test/post_success",
    "sampler/steps_per_s",
    "time/sampling_s",
    "time/update_s",
    "time/iteration_s",
)
TIMING_COLUMNS = ("sampler/steps_per_s", "time/sampling_s", "time/update_s", "time/iteration_s")
RENAMED = {
    "eval/pre_return": "test/pre_return",
    "eval/post_return": "test/post_return",
    "eval/post_success": "test/post_success",
}
"""Columns of older runs under their current names (``eval/*`` was the test-task evaluation)."""


def _current_names(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with the columns of older runs renamed (:data:`RENAMED`)."""
    return {RENAMED.get(k, k): v for k, v in row.items()}


def read_progress(path: Path) -> list[dict[str, float]]:
    """Reads ``progress.csv`` back as floats (empty cells become NaN)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [
            {k: float(v) if v != "" else math.nan for k, v in _current_names(row).items()} for row in csv.DictReader(fh)
        ]


class RunLogger:
    """Appends iteration rows to ``progress.csv`` and TensorBoard events under ``tb/``.

    The CSV is the record of the run; the TensorBoard log is a view of it. On resume the CSV
    keeps the rows up to the checkpoint and ``tb/`` is rebuilt from them, so the events of
    iterations that run again never appear twice (TensorBoard's own ``purge_step`` leaves that
    to the order in which the viewer reads event files, which two processes started within
    the same second do not fix).

    Args:
        run_dir: The run directory.
        tensorboard: Whether to write TensorBoard events.
        resume_after: On resume, the iteration of the checkpoint: rows after it (from iterations
            that will run again) are dropped from the CSV and the TensorBoard log.
    """

    def __init__(self, run_dir: Path, tensorboard: bool, resume_after: int | None = None):
        self.path = run_dir / "progress.csv"
        rows = _rows_up_to(self.path, resume_after) if resume_after is not None else []
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)  # a crash here leaves the old file, never half of it
        self._writer: Any = None
        tb_dir = run_dir / "tb"
        if tb_dir.exists():
            shutil.rmtree(tb_dir)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # heavy import, only when asked

            self._writer = SummaryWriter(str(tb_dir), flush_secs=10)
            for row in rows:
                self._add_scalars(int(row["iteration"]), {k: float(v) for k, v in row.items() if v != ""})

    def log(self, iteration: int, metrics: Mapping[str, float | None]) -> None:
        """Writes one row; keys must be among :data:`COLUMNS`."""
        unknown = set(metrics) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric(s): {sorted(unknown)}")
        row = {"iteration": iteration, **metrics}
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS).writerow({k: _cell(row.get(k)) for k in COLUMNS})
        self._add_scalars(iteration, metrics)

    def image(self, tag: str, image: np.ndarray, iteration: int) -> None:
        """Shows a ``[H, W, 3]`` uint8 image in TensorBoard (nothing without TensorBoard)."""
        if self._writer is not None:
            self._writer.add_image(tag, image, iteration, dataformats="HWC")

    def _add_scalars(self, iteration: int, metrics: Mapping[str, float | None]) -> None:
        if self._writer is None:
            return
        for key, value in metrics.items():
            if key != "iteration" and value is not None and math.isfinite(value):
                self._writer.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _rows_up_to(path: Path, last: int) -> list[dict[str, str]]:
    """The complete rows of ``path`` for iterations ``1..last``, cells kept as written.

    The text is kept (not re-formatted through floats) so that a resumed run's CSV is the same
    file as an uninterrupted run's. A row cut short by a crash mid-write is dropped, and so is
    every row of an iteration after ``last`` (it will run again).
    """
    if not path.is_file():
        return []
    rows: list[dict[str, str]] = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if None in row or any(v is None for v in row.values()):
                continue  # too many or too few cells: a torn write
            try:
                iteration = int(row["iteration"])
            except (KeyError, ValueError):
                continue
            if iteration == len(rows) + 1 and iteration <= last:
                current = _current_names(row)
                rows.append({k: current.get(k, "") for k in COLUMNS})
    return rows


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def columns_without_timing() -> Sequence[str]:
    """The columns that depend only on the seed (not on wall-clock time)."""
    return [c for c in COLUMNS if c not in TIMING_COLUMNS]
