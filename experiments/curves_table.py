"""Adaptation curves of one method over several seeds (``metarl baseline --out`` or ``evaluate --json``
files), as RESULTS.md reports them: per step, mean ± std over the files of the mean return, and of
the success rate where the family has one.

    python experiments/curves_table.py LABEL FILE [FILE ...]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from metarl.evaluate import read_curve


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    label, paths = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    curves = [read_curve(p) for p in paths]
    cells = []
    for k in range(len(curves[0].report.steps)):
        returns = [c.report.steps[k].return_mean for c in curves]
        rates = [c.report.steps[k].success_rate for c in curves]
        cell = f"{statistics.fmean(returns):.2f} ± {statistics.pstdev(returns):.2f}"
        if None not in rates:
            values = [100 * (r or 0.0) for r in rates]
            cell += f" ({statistics.fmean(values):.1f} ± {statistics.pstdev(values):.1f} %)"
        cells.append(cell)
    env_steps = sum(s.env_steps for s in curves[0].report.steps)
    print(f"| {label} | " + " | ".join(cells) + f" | {env_steps} | {len(curves)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
