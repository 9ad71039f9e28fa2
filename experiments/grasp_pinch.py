"""Does a grasp policy adapt, or only get better at lifting? Where it pinches, step by step.

For each checkpoint: adapt to every object of a task set for K steps (as ``metarl evaluate``),
and after each step print the return, the success rate, how often the pads closed on the
object, how far from the hidden centre of mass they closed (|offset|), and the correlation over
objects between where the policy pinched and where the mass is, and how far apart one object's
rollouts pinch (the spread of its exploration; see
``metarl.envs.grasping.diagnostics``). A policy that adapts pinches closer to the mass after
each step and its correlation rises from about 0.

    python experiments/grasp_pinch.py CKPT [CKPT ...] [--tasks test] [--steps 3] [--fast-lr A]
        [--rollouts 20] [--seed 0] [--set K=V] [--json OUT] [--per-object]

``--per-object`` adds, per object and step, its centre of mass, the mean signed pinch offset from
it and its success rate: which objects an inner step moves, and which it does not.

``--fast-lr`` replaces the checkpoint's step size (to fine-tune a non-adapting policy with the
step that suits it best).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from metarl.envs.grasping.diagnostics import pinch_offsets, pinch_stats
from metarl.envs.grasping.family import GraspTask
from metarl.evaluate import task_set
from metarl.experiment import load_experiment
from metarl.rollouts import AdaptationSettings, Streams, collect_adaptation


def measure(
    path: Path, tasks_name: str, steps: int, rollouts: int, fast_lr: float | None, seed: int, overrides: list[str]
) -> list[dict]:
    """One row per step count: return, success and pinch statistics."""
    exp, ckpt = load_experiment(path, overrides)
    try:
        tasks = task_set(exp.family, tasks_name, exp.config)
        settings = AdaptationSettings.evaluation(exp.config, steps, rollouts)
        if fast_lr is not None:
            settings = dataclasses.replace(settings, fast_lr=fast_lr)
        adaptation = collect_adaptation(exp.sampler, ckpt.params, tasks, settings, Streams.from_seed(seed))
    finally:
        exp.sampler.close()
    rows = []
    for k, episodes in enumerate(adaptation.episodes):
        offsets = pinch_offsets(tasks, episodes.obs.numpy(), episodes.masks.numpy())
        stats = pinch_stats(tasks, offsets)
        success = episodes.success.numpy().reshape(len(tasks), -1)
        objects = [
            {
                "object": task.object.to_string() if isinstance(task, GraspTask) else str(task),
                "com": float(task.object.com[0]) if isinstance(task, GraspTask) else math.nan,
                "offset": float(np.nanmean(offsets[i])) if np.isfinite(offsets[i]).any() else math.nan,
                "success": float(np.nanmean(success[i])),
            }
            for i, task in enumerate(tasks)
        ]
        rows.append(
            {
                "checkpoint": str(path),
                "fast_lr": settings.fast_lr,
                "step": k,
                "return": float(episodes.returns().mean()),
                "success": float(np.nanmean(episodes.success.numpy())),
                **dataclasses.asdict(stats),
                "objects": objects,
            }
        )
    return rows


def print_per_object(rows: list[dict]) -> None:
    """Per checkpoint and object: centre of mass, then signed pinch offset (cm) and success per step."""
    for path in dict.fromkeys(row["checkpoint"] for row in rows):
        steps = [row for row in rows if row["checkpoint"] == path]
        last = len(steps) - 1
        print(f"\n{path}: per object, signed pinch offset from the centre of mass (cm) and success, step 0..{last}")
        for i, obj in enumerate(steps[0]["objects"]):
            cells = "  ".join(
                f"{100 * s['objects'][i]['offset']:+6.2f} {100 * s['objects'][i]['success']:4.0f}%" for s in steps
            )
            print(f"  com {100 * obj['com']:+5.1f} cm  {cells}   {obj['object'][:70]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--tasks", default="test")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--fast-lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="as metarl evaluate --set")
    parser.add_argument("--per-object", action="store_true", help="also print each object's pinch and success")
    args = parser.parse_args()
    rows = []
    print(
        "checkpoint                               lr    step  return  success  grasped  |offset| cm  corr(pinch, com)"
        "  spread cm"
    )
    for path in args.checkpoints:
        for row in measure(path, args.tasks, args.steps, args.rollouts, args.fast_lr, args.seed, args.overrides):
            rows.append(row)
            print(
                f"{str(path)[-40:]:40s} {row['fast_lr']:5.3f} {row['step']:4d} {row['return']:7.2f} "
                f"{100 * row['success']:7.1f}% {100 * row['grasped']:7.1f}% {100 * row['abs_offset']:10.2f} "
                f"{row['com_corr']:12.2f} {100 * row['spread']:10.2f}"
            )
    if args.per_object:
        print_per_object(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
