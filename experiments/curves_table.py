"""Adaptation curves of one method over several seeds (``metarl baseline --out`` or ``evaluate --json``
files), as RESULTS.md reports them: per step, mean ± std over the files of the mean return, and of
the success rate where the family has one.

    python experiments/curves_table.py LABEL FILE [FILE ...]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metarl.evaluate import AdaptationReport, read_curve


def over_seeds(reports: Sequence[AdaptationReport]) -> list[dict[str, Any]]:
    """Per step ``k``: mean and (population) std over the reports of the mean return and, where the
    family has one, of the success rate (None otherwise), and the env steps of the first report."""
    rows = []
    for k in range(len(reports[0].steps)):
        returns = [r.steps[k].return_mean for r in reports]
        rates = [r.steps[k].success_rate for r in reports]
        rows.append(
            {
                "step": k,
                "return_mean": statistics.fmean(returns),
                "return_std": statistics.pstdev(returns),
                "success_mean": None if None in rates else statistics.fmean(r or 0.0 for r in rates),
                "success_std": None if None in rates else statistics.pstdev(r or 0.0 for r in rates),
                "env_steps": reports[0].steps[k].env_steps,
            }
        )
    return rows


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    label, paths = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    curves = [read_curve(p) for p in paths]
    cells = []
    for row in over_seeds([c.report for c in curves]):
        cell = f"{row['return_mean']:.2f} ± {row['return_std']:.2f}"
        if row["success_mean"] is not None:
            cell += f" ({100 * row['success_mean']:.1f} ± {100 * row['success_std']:.1f} %)"
        cells.append(cell)
    env_steps = sum(s.env_steps for s in curves[0].report.steps)
    print(f"| {label} | " + " | ".join(cells) + f" | {env_steps} | {len(curves)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
