"""The grasp family's reward landscape: return, success and tilt of a scripted pinch moved away
from each object's centre of mass, for one or more ``family.level_tilt`` settings.

What an inner step has to go on: a policy pinching ``shift`` from the centre of mass gets about
this return, so the slope between rows is the signal a gradient step follows.

    python experiments/grasp_landscape.py --objects 24 --seed 5 --level-tilt 30 90
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
    args = parser.parse_args()
    shifts = np.arange(-args.max_shift, args.max_shift + 1e-9, 0.01)
    for level_tilt in args.level_tilt:
        family = GraspObject(GraspOptions(level_tilt=level_tilt))
        tasks = family.sample_tasks(args.objects, np.random.default_rng(args.seed))
        base = ctl.com_plan([t.object for t in tasks if isinstance(t, GraspTask)])
        print(f"family.level_tilt={level_tilt:g}: {args.objects} training objects (seed {args.seed})")
        print(f"{'shift':>8} {'return':>16} {'success':>8} {'tilt':>7}")
        for shift in shifts:
            plan = ctl.PinchPlan(base.offset + shift, base.height, np.ones(len(tasks)))
            out = ctl.rollout(family, tasks, ctl.PlanController(plan), seed=0, num_threads=2)
            print(
                f"{100 * shift:+6.0f}cm {out.returns.mean():7.1f} ± {out.returns.std():5.1f} "
                f"{out.success.mean():8.2f} {np.degrees(out.tilt).mean():6.1f}°"
            )


if __name__ == "__main__":
    main()
