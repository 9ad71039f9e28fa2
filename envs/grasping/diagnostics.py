"""Where a policy pinches, read back from its rollouts: the evidence that adaptation finds the mass.

The task of the grasp family is where an object's centre of mass lies along its long axis, and the
policy never observes it. A policy that *adapts* moves its pinch point towards the centre of mass
of the object in hand after a few rollouts; a policy that only gets better at lifting in general
does not. :func:`pinch_offsets` measures that from the episodes alone (no simulator state): the
first step at which both pads press on the object, where the hand then was along the object's
long axis, relative to the object's centre of mass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from metarl.envs.base import Task
from metarl.envs.grasping.family import GraspTask

# Observation rows the measurement reads (see GraspBatchEnv._observe).
_TRACKED_REL = slice(10, 12)  # tracked point (object origin) minus the pinch point, world x and y
_TOUCH = slice(16, 18)  # left / right pad pressing on the object


def pinch_offsets(tasks: Sequence[Task], obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Where along each object's long axis the fingers first closed on it, from its centre of mass.

    The object frame's x axis is taken at the task's ``yaw``; the few degrees of per-episode yaw
    jitter are ignored (at 3° they move the estimate by 5 % of the offset).

    Args:
        tasks: ``N`` grasp tasks.
        obs: ``[N, T, R, 18]`` their rollouts' observations (e.g. ``Episodes.obs``).
        masks: ``[N, T, R]`` 1 for steps that happened.

    Returns:
        ``[N, R]`` offset (m) of the pinch point from the centre of mass along the object's x
        axis (positive: towards +x), NaN where both pads never touched the object.

    Raises:
        TypeError: A task that is not a grasp task.
    """
    obs = np.asarray(obs, dtype=np.float64)
    masks = np.asarray(masks) > 0.0
    n, _, r, _ = obs.shape
    out = np.full((n, r), np.nan)
    for i, task in enumerate(tasks):
        if not isinstance(task, GraspTask):
            raise TypeError(f"task {i} is a {type(task).__name__}, not a GraspTask")
        spec = task.object
        yaw = math.radians(spec.yaw)
        axis = np.array([math.cos(yaw), math.sin(yaw)])
        touching = (obs[i, :, :, _TOUCH] > 0.5).all(axis=-1) & masks[i]  # [T, R]
        first = touching.argmax(axis=0)  # [R], 0 where never (masked out below)
        ever = touching.any(axis=0)
        rel = obs[i, first, np.arange(r), _TRACKED_REL]  # [R, 2] tracked point minus pinch point
        along = -(rel @ axis)  # pinch point along the object's x axis, from its origin
        out[i] = np.where(ever, along - spec.com[0], np.nan)
    return out


@dataclasses.dataclass(frozen=True)
class PinchStats:
    """How close to the centre of mass a batch of rollouts pinched.

    Attributes:
        grasped: Fraction of episodes in which both pads touched the object.
        abs_offset: Mean over tasks of the absolute mean offset (m) of the pinch from the centre
            of mass (tasks never grasped are left out).
        com_corr: Correlation over tasks between where the policy pinched (object frame) and
            where the centre of mass is: near 0 for a policy that cannot know it, towards 1 for
            one that has found it. NaN with fewer than 3 grasped tasks or no spread.
        spread: Mean over tasks of the standard deviation over rollouts of the pinch point (m):
            how far apart one task's rollouts pinch, i.e. how widely the policy explores where to
            pinch (tasks with fewer than 2 grasped rollouts are left out; NaN if none is left).
    """

    grasped: float
    abs_offset: float
    com_corr: float
    spread: float = math.nan


def pinch_stats(tasks: Sequence[Task], offsets: np.ndarray) -> PinchStats:
    """Summary of :func:`pinch_offsets` ``[N, R]`` over the tasks."""
    com = np.array([t.object.com[0] for t in tasks if isinstance(t, GraspTask)])
    grasped = ~np.isnan(offsets)
    any_grasp = grasped.any(axis=1)
    per_task = np.full(len(offsets), np.nan)
    per_task[any_grasp] = np.nanmean(offsets[any_grasp], axis=1)
    pinch = per_task + com  # where the policy pinched, object frame
    keep = ~np.isnan(per_task)
    abs_offset = float(np.abs(per_task[keep]).mean()) if keep.any() else math.nan
    if keep.sum() >= 3 and np.std(pinch[keep]) > 0 and np.std(com[keep]) > 0:
        corr = float(np.corrcoef(pinch[keep], com[keep])[0, 1])
    else:
        corr = math.nan
    several = grasped.sum(axis=1) >= 2
    spread = float(np.nanstd(offsets[several], axis=1).mean()) if several.any() else math.nan
    return PinchStats(float(grasped.mean()), abs_offset, corr, spread)
