"""Grasping task family (issue 4): a parallel-jaw gripper lifts objects whose shape is the task.

``GraspObject`` (gym id ``metarl/GraspObject-v0``) builds its scenes with ``mujoco.MjSpec`` and
steps them with ``mujoco.batch.Batch``; objects come from
:class:`~metarl.envs.grasping.objects.ObjectSpec` (one-line string, mapping, or mesh file).
"""

from __future__ import annotations

from metarl.envs.grasping.family import GraspBatchEnv, GraspObject, GraspOptions, GraspTask
from metarl.envs.grasping.objects import ObjectSpec
from metarl.envs.registry import FamilySpec

FAMILY_SPECS: list[FamilySpec] = [
    FamilySpec(
        name="GraspObject",
        options_type=GraspOptions,
        factory=GraspObject,
        summary="parallel-jaw gripper lifts an object whose unseen shape is the task (MjSpec scenes)",
    )
]

__all__ = ["FAMILY_SPECS", "GraspBatchEnv", "GraspObject", "GraspOptions", "GraspTask", "ObjectSpec"]
