"""The adaptation curve of a checkpoint over several evaluation seeds, as RESULTS.md reports it.

    python experiments/seeds_table.py CKPT [--tasks test] [--steps 3] [--seeds 0 1 2] [--fast-lr A]
        [--set K=V] [--json OUT]

For each step count: the held-out return (mean ± std over the seeds of the mean over tasks and
rollouts) and the success rate where the family has one, and the env steps and seconds of one
evaluation. Each seed is ``metarl evaluate CKPT --tasks T --steps K --seed S``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from curves_table import over_seeds  # beside this script

from metarl.evaluate import evaluate_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--tasks", default="test")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fast-lr", type=float, default=None, help="inner step size (default: the run's)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="as metarl evaluate --set")
    args = parser.parse_args()
    reports, seconds = [], []
    for seed in args.seeds:
        start = time.perf_counter()
        reports.append(
            evaluate_checkpoint(
                args.checkpoint, args.tasks, steps=args.steps, seed=seed, fast_lr=args.fast_lr, overrides=args.overrides
            )
        )
        seconds.append(time.perf_counter() - start)
    rows = over_seeds(reports)
    print(f"{args.checkpoint} on {args.tasks} tasks, seeds {args.seeds}")
    print("step   return (mean ± std over seeds)   success")
    for row in rows:
        success = (
            ""
            if row["success_mean"] is None
            else f"{100 * row['success_mean']:5.1f} ± {100 * row['success_std']:4.1f} %"
        )
        print(f"{row['step']:4d}   {row['return_mean']:9.2f} ± {row['return_std']:6.2f}              {success}")
    print(
        f"env steps per evaluation: {sum(r['env_steps'] for r in rows)}; seconds per evaluation: "
        f"{statistics.fmean(seconds):.1f}"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"checkpoint": str(args.checkpoint), "seeds": args.seeds, "rows": rows}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
