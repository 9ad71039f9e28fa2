"""How well does a grasp policy lift once it pinches in the right place? Its ceiling.

A policy with an open-loop latent pinch (``policy.latent_open_loop``) chooses where along the
object to pinch by its latent ``z`` alone; everything else (across, how high, the grip, when to
lift) is the network's. This script puts each object's latent mean where the pinch lands on the
object's hidden centre of mass (measured from the rollouts and corrected ``--passes`` times) with a
latent spread of 1 mm, and prints the success of 20 rollouts per object after each pass: what
adaptation along x could reach at best with this network. ``--noise-scale`` multiplies the
network's own action noise (every action but the latent's) by a factor, to see what that noise
costs.

    python experiments/grasp_ceiling.py CKPT [--tasks test] [--passes 3] [--noise-scale 1.0]
        [--seed 0] [--set K=V] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from metarl.envs.grasping.diagnostics import pinch_offsets
from metarl.envs.grasping.family import GraspTask
from metarl.evaluate import task_set
from metarl.experiment import load_experiment
from metarl.rollouts import AdaptationSettings, Streams, collect_adaptation

REACH = 0.1  # m of pinch per unit of the x action (the family's docstring)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--tasks", default="test")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--noise-scale", type=float, default=1.0, help="factor on the network's action std")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="as metarl evaluate --set")
    args = parser.parse_args()
    exp, ckpt = load_experiment(args.checkpoint, args.overrides)
    policy = exp.policy
    if not (policy.latent_open_loop and policy.latent_dim == 1):
        print(f"{args.checkpoint}: needs a policy with one open-loop latent (policy.latent_open_loop)", file=sys.stderr)
        return 2
    try:
        tasks = [t for t in task_set(exp.family, args.tasks, exp.config) if isinstance(t, GraspTask)]
        settings = AdaptationSettings.evaluation(exp.config, 0, args.rollouts)
        shift = np.zeros(len(tasks))  # latent mean per object, action units
        sign = np.array([math.cos(math.radians(t.object.yaw)) for t in tasks])  # yaw 180: object x is world -x
        passes = []
        for k in range(args.passes):
            success, offsets = [], []
            for i, task in enumerate(tasks):
                params = {name: value.clone() for name, value in ckpt.params.items()}
                params["latent_mean"][:] = float(shift[i])
                params["latent_log_std"][:] = math.log(0.001 / REACH)
                params["log_std"][policy.latent_dim :] += math.log(args.noise_scale)  # not the latent's action
                adaptation = collect_adaptation(exp.sampler, params, [task], settings, Streams.from_seed(args.seed + k))
                episodes = adaptation.episodes[0]
                off = pinch_offsets([task], episodes.obs.numpy(), episodes.masks.numpy())
                offsets.append(float(np.nanmean(off)) if np.isfinite(off).any() else 0.0)
                success.append(float(np.nanmean(episodes.success.numpy())))
            passes.append(
                {
                    "pass": k,
                    "success": float(np.mean(success)),
                    "mean_abs_offset_m": float(np.mean(np.abs(offsets))),
                    "objects": [
                        {"object": t.object.to_string(), "success": s, "offset_m": o}
                        for t, s, o in zip(tasks, success, offsets, strict=True)
                    ],
                }
            )
            print(
                f"pass {k}: success {100 * np.mean(success):5.1f} %  |pinch - centre of mass| "
                f"{100 * np.mean(np.abs(offsets)):.2f} cm  per object: {' '.join(f'{100 * s:.0f}' for s in success)}"
            )
            shift = shift - np.array(offsets) * sign / REACH
    finally:
        exp.sampler.close()
    if args.json is not None:
        out = {"checkpoint": str(args.checkpoint), "noise_scale": args.noise_scale, "passes": passes}
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
