"""The grasp family's reward landscape: return, success and tilt of a scripted pinch moved away
from each object's centre of mass, for one or more ``family.level_tilt`` settings.

What an inner step has to go on: a policy pinching ``shift`` from the centre of mass gets about
this return, so the slope between rows is the signal a gradient step follows.

    python experiments/grasp_landscape.py --objects 24 --seed 5 --level-tilt 30 90
    python experiments/grasp_landscape.py --tasks test --max-shift 0.12 --per-object

``--tasks test`` sweeps the family's held-out objects instead of drawn training ones;
``--per-object`` prints each object's return (and ``*`` where it lifted level) at every shift.
"""

from __future__ import annotations

import argparse

import numpy as np

from metarl.envs.grasping import GraspObject, GraspTask
from metarl.envs.grasping import controllers as ctl
from metarl.envs.grasping.family import GraspOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=24, help="training objects drawn")
    parser.add_argument("--seed", type=int, default=5, help="seed of the objects drawn")
    parser.add_argument("--level-tilt", type=float, nargs="+", default=[30.0], help="family.level_tilt values (°)")
    parser.add_argument("--max-shift", type=float, default=0.06, help="largest shift from the centre of mass (m)")
    parser.add_argument("--tasks", choices=("train", "test"), default="train", help="training or held-out")
    parser.add_argument("--per-object", action="store_true", help="each object's return at every shift")
    parser.add_argument("--lift-rise", type=float, default=0.05, help="family.lift_rise (m): the reward's lift cap")
    args = parser.parse_args()
    shifts = np.arange(-args.max_shift, args.max_shift + 1e-9, 0.01)
    for level_tilt in args.level_tilt:
        family = GraspObject(GraspOptions(level_tilt=level_tilt, lift_rise=args.lift_rise))
        if args.tasks == "test":
            tasks = family.test_tasks()
            print(f"family.level_tilt={level_tilt:g}, lift_rise={args.lift_rise:g}: the {len(tasks)} held-out objects")
        else:
            tasks = family.sample_tasks(args.objects, np.random.default_rng(args.seed))
            print(
                f"family.level_tilt={level_tilt:g}, lift_rise={args.lift_rise:g}: "
                f"{args.objects} training objects (seed {args.seed})"
            )
        specs = [t.object for t in tasks if isinstance(t, GraspTask)]
        base = ctl.com_plan(specs)
        print(f"{'shift':>8} {'return':>16} {'success':>8} {'tilt':>7}")
        outs = []
        for shift in shifts:
            plan = ctl.PinchPlan(base.offset + shift, base.height, np.ones(len(tasks)))
            out = ctl.rollout(family, tasks, ctl.PlanController(plan), seed=0, num_threads=2)
            outs.append(out)
            print(
                f"{100 * shift:+6.0f}cm {out.returns.mean():7.1f} ± {out.returns.std():5.1f} "
                f"{out.success.mean():8.2f} {np.degrees(out.tilt).mean():6.1f}°"
            )
        if args.per_object:
            print("per object: return at each shift (cm from the centre of mass); * lifted level")
            print(" " * 9 + "".join(f"{100 * shift:+6.0f}" for shift in shifts))
            for i, spec in enumerate(specs):
                cells = "".join(f"{out.returns[i]:5.0f}{'*' if out.success[i] else ' '}" for out in outs)
                print(f"com{100 * spec.com[0]:+5.1f} {cells}  {spec.to_string()[:40]}")


if __name__ == "__main__":
    main()
