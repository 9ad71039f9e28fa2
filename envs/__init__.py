"""Task families for meta-RL (installed as ``metarl.envs``).

Importing this package registers every family with gymnasium, so
``gym.make("metarl/Navigation2D-v0")`` works after ``import metarl.envs``.
"""

from metarl.envs import grasping, locomotion
from metarl.envs.base import BatchEnv, FamilyEnv, StepResult, Task, TaskError, TaskFamily
from metarl.envs.navigation import Navigation2D, NavigationOptions, NavigationTask
from metarl.envs.registry import (
    FamilySpec,
    family_names,
    family_spec,
    make_family,
    register_family,
)

register_family(
    FamilySpec(
        name="Navigation2D",
        options_type=NavigationOptions,
        factory=Navigation2D,
        summary="point agent walks to an unseen goal in the plane (MAML paper, 2-D navigation)",
    )
)
for _spec in (*locomotion.FAMILY_SPECS, *grasping.FAMILY_SPECS):
    register_family(_spec)

__all__ = [
    "BatchEnv",
    "FamilyEnv",
    "FamilySpec",
    "Navigation2D",
    "NavigationOptions",
    "NavigationTask",
    "StepResult",
    "Task",
    "TaskError",
    "TaskFamily",
    "family_names",
    "family_spec",
    "make_family",
    "register_family",
]
