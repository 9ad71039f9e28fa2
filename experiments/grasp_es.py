"""How wide must a grasp policy explore for a few policy-gradient steps to find where to pinch?

A blind controller that adapts from rewards only: per object, it keeps a Gaussian over the pinch
offset along x from the tracked point, ``N(μ, σ²)`` (``μ`` 0: the tracked point, where every
meta-trained policy pinches before adapting), runs ``R`` rollouts of the scripted
approach-descend-close-lift plan (:mod:`metarl.envs.grasping.controllers`) at offsets drawn from
it, and takes one score-function step on ``μ`` per batch, with the advantages normalised as the
learner's are: ``μ ← μ + η σ mean_r(Â_r ε_r)``. It reads no specification: only its own
rollouts' returns. This is what a MAML policy could do in ``k`` steps if its exploration were a
consistent pinch point spread by ``σ`` per rollout; the table says which ``σ`` (and step ``η``)
the family asks for.

Per step ``k`` it prints the success of the ``R`` exploring rollouts (what ``metarl evaluate``
measures for a policy after ``k`` steps) and of ``R`` rollouts at ``μ_k`` with a narrow spread
``--exploit-sigma`` (a policy that also narrows its noise after adapting), and the mean
``|μ_k − centre of mass|``.

    python experiments/grasp_es.py --tasks train --objects 40 --sigma 0.01 0.02 0.03 0.05 --eta 0.5 1 2
    python experiments/grasp_es.py --tasks test --sigma 0.03 --eta 1 --decay 1 0.5

``--decay`` narrows the spread after every step (``σ_k = σ decay^k``): the exploring rollouts then
approach the success at ``μ_k``.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from metarl.envs.grasping import GraspObject, GraspTask
from metarl.envs.grasping import controllers as ctl
from metarl.envs.grasping.family import GraspOptions
from metarl.envs.grasping.scene import HAND_RANGE


def run_batch(
    family: GraspObject, tasks: list[GraspTask], offsets: np.ndarray, height: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and successes ``[N, R]`` of one rollout per offset ``offsets[i, r]`` on object ``i``."""
    n, r = offsets.shape
    plan = ctl.PinchPlan(offsets.reshape(-1), np.full(n * r, height), np.ones(n * r))
    out = ctl.rollout(family, [t for t in tasks for _ in range(r)], ctl.PlanController(plan), seed=seed)
    return out.returns.reshape(n, r), out.success.reshape(n, r)


def adapt(
    family: GraspObject,
    tasks: list[GraspTask],
    sigma: float,
    eta: float,
    steps: int,
    rollouts: int,
    height: float,
    exploit_sigma: float,
    seed: int,
    decay: float = 1.0,
) -> list[tuple[float, float, float]]:
    """``(exploring success, exploiting success, mean |μ − com|)`` after 0..``steps`` steps; the
    spread after ``k`` steps is ``σ decay^k``."""
    rng = np.random.default_rng(seed)
    n = len(tasks)
    com = np.array([t.object.com[0] * (1.0 if np.cos(np.radians(t.object.yaw)) > 0 else -1.0) for t in tasks])
    mu = np.zeros(n)
    rows = []
    for k in range(steps + 1):
        eps = rng.standard_normal((n, rollouts))
        returns, success = run_batch(family, tasks, mu[:, None] + sigma * eps, height, seed=1000 * seed + 2 * k)
        exploit = mu[:, None] + exploit_sigma * rng.standard_normal((n, rollouts))
        _, exploit_success = run_batch(family, tasks, exploit, height, seed=1000 * seed + 2 * k + 1)
        rows.append((float(success.mean()), float(exploit_success.mean()), float(np.abs(mu - com).mean())))
        adv = (returns - returns.mean(1, keepdims=True)) / (returns.std(1, keepdims=True) + 1e-8)
        mu = mu + eta * sigma * (adv * eps).mean(1)
        sigma = sigma * decay
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", choices=("train", "test"), default="test")
    parser.add_argument("--objects", type=int, default=40, help="training objects drawn (--tasks train)")
    parser.add_argument("--sigma", type=float, nargs="+", default=[0.007, 0.02, 0.03, 0.05], help="spread (m)")
    parser.add_argument("--eta", type=float, nargs="+", default=[1.0], help="step size, in units of sigma")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--height", type=float, default=HAND_RANGE[2][0], help="pinch height (m); default lowest")
    parser.add_argument("--exploit-sigma", type=float, default=0.005, help="spread of the exploiting rollouts (m)")
    parser.add_argument("--decay", type=float, nargs="+", default=[1.0], help="spread's factor per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lift-rise", type=float, default=0.05, help="family.lift_rise (m): the reward's lift cap")
    args = parser.parse_args()
    family = GraspObject(GraspOptions(lift_rise=args.lift_rise))
    if args.tasks == "test":
        tasks = [t for t in family.test_tasks() if isinstance(t, GraspTask)]
    else:
        drawn = family.sample_tasks(args.objects, np.random.default_rng(3))
        tasks = [t for t in drawn if isinstance(t, GraspTask)]
    print(
        f"{len(tasks)} {args.tasks} objects, {args.rollouts} rollouts per step, seed {args.seed}, "
        f"family.lift_rise={args.lift_rise:g}"
    )
    print("sigma cm   eta decay  step: success exploring / at mu / |mu - com| cm")
    for sigma, eta, decay in itertools.product(args.sigma, args.eta, args.decay):
        rows = adapt(
            family, tasks, sigma, eta, args.steps, args.rollouts, args.height, args.exploit_sigma, args.seed, decay
        )
        cells = "   ".join(f"{k}: {100 * a:3.0f}/{100 * b:3.0f}/{100 * d:4.1f}" for k, (a, b, d) in enumerate(rows))
        print(f"{100 * sigma:7.1f} {eta:5.1f} {decay:5.2f}  {cells}")


if __name__ == "__main__":
    main()
