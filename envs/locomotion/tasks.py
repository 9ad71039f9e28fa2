"""The locomotion tasks: small frozen dataclasses, each validating its fields in one line.

A task kind (:mod:`metarl.envs.locomotion.kinds`) draws them; each family has a task class of
its own (``HalfCheetahVelTask``, ``AntVelTask`` …), so that a batch env refuses another family's
task by its type.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from metarl.envs.base import Task, TaskError, check_finite_range, check_point, describe_range

VELOCITY_LIMIT = 10.0  # m/s, the largest goal speed any task or option may ask for
GOAL_LIMIT = 10.0  # m, the largest AntGoal coordinate
PARAM_BASE = 1.5  # random-parameter scales are PARAM_BASE ** u
MAX_LOG_SCALE = 3.0  # |u| <= 3: the rand_param_envs range
SCALE_LOW, SCALE_HIGH = PARAM_BASE**-MAX_LOG_SCALE, PARAM_BASE**MAX_LOG_SCALE


@dataclasses.dataclass(frozen=True)
class VelocityTask(Task):
    """Move forward at a goal velocity (base of the goal-velocity tasks).

    Attributes:
        goal_velocity: Target forward velocity (m/s), in [-10, 10].
    """

    goal_velocity: float

    def __post_init__(self) -> None:
        check_finite_range("goal_velocity", self.goal_velocity, -VELOCITY_LIMIT, VELOCITY_LIMIT)
        object.__setattr__(self, "goal_velocity", float(self.goal_velocity))


@dataclasses.dataclass(frozen=True)
class DirectionTask(Task):
    """Move as fast as possible in a direction (base of the direction tasks).

    Attributes:
        direction: 1 (forward, +x) or -1 (backward).
    """

    direction: int

    def __post_init__(self) -> None:
        value = self.direction
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not number or value not in (-1, 1):
            raise TaskError(f"direction={value!r} is not allowed; allowed: -1 (backward) or 1 (forward)")
        object.__setattr__(self, "direction", int(value))


@dataclasses.dataclass(frozen=True)
class HalfCheetahVelTask(VelocityTask):
    """HalfCheetah runs at ``goal_velocity`` (m/s)."""


@dataclasses.dataclass(frozen=True)
class HalfCheetahDirTask(DirectionTask):
    """HalfCheetah runs forward (``direction=1``) or backward (``-1``)."""


@dataclasses.dataclass(frozen=True)
class AntVelTask(VelocityTask):
    """The Ant walks at ``goal_velocity`` (m/s)."""


@dataclasses.dataclass(frozen=True)
class AntDirTask(DirectionTask):
    """The Ant walks forward (``direction=1``) or backward (``-1``)."""


@dataclasses.dataclass(frozen=True)
class AntGoalTask(Task):
    """Walk to a goal position in the plane.

    Attributes:
        goal: ``(x, y)`` in metres, each in [-10, 10].
    """

    goal: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "goal", check_point("goal", self.goal, GOAL_LIMIT))


def param_sizes(bodies: int, dofs: int, geoms: int) -> dict[str, int]:
    """How many scales a random-parameter task holds per field, for a model of ``bodies`` bodies (the
    world left out), ``dofs`` degrees of freedom and ``geoms`` geoms."""
    return {"body_mass": bodies, "body_inertia": 3 * bodies, "dof_damping": dofs, "geom_friction": 3 * geoms}


@dataclasses.dataclass(frozen=True)
class RandParamsTask(Task):
    """Multipliers of the model's physical parameters (base of the random-parameter tasks).

    Every scale lies in ``[1.5^-3, 1.5^3] = [0.2963, 3.375]``.

    Attributes:
        body_mass: One scale per body except the world, ``[nbody - 1]``.
        body_inertia: Three per body except the world (principal inertias), ``[3 (nbody - 1)]``.
        dof_damping: One per degree of freedom, ``[nv]`` (the root's have zero damping).
        geom_friction: Three per geom (sliding, torsional, rolling), ``[3 ngeom]``.
    """

    body_mass: tuple[float, ...]
    body_inertia: tuple[float, ...]
    dof_damping: tuple[float, ...]
    geom_friction: tuple[float, ...]

    sizes: ClassVar[dict[str, int]] = {}

    def __post_init__(self) -> None:
        for name, size in self.sizes.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != size:
                raise TaskError(
                    f"{name}={value!r} must be {size} comma-separated scales; "
                    f"allowed: each in {describe_range(SCALE_LOW, SCALE_HIGH)}"
                )
            for i, scale in enumerate(value):
                check_finite_range(f"{name}[{i}]", scale, SCALE_LOW, SCALE_HIGH)
            object.__setattr__(self, name, tuple(float(s) for s in value))

    def scales(self) -> dict[str, np.ndarray]:
        """The multipliers shaped as the model fields: ``{field: [nbody] / [nbody, 3] / ...}``."""
        return {
            "body_mass": np.concatenate([[1.0], self.body_mass]),
            "body_inertia": np.concatenate([[1.0, 1.0, 1.0], self.body_inertia]).reshape(-1, 3),
            "dof_damping": np.asarray(self.dof_damping),
            "geom_friction": np.asarray(self.geom_friction).reshape(-1, 3),
        }


@dataclasses.dataclass(frozen=True)
class Walker2dParamsTask(RandParamsTask):
    """Walker2d with scaled masses, inertias, damping and friction (7 bodies, 9 dofs, 8 geoms)."""

    sizes: ClassVar[dict[str, int]] = param_sizes(bodies=7, dofs=9, geoms=8)


@dataclasses.dataclass(frozen=True)
class HopperParamsTask(RandParamsTask):
    """Hopper with scaled masses, inertias, damping and friction (4 bodies, 6 dofs, 5 geoms)."""

    sizes: ClassVar[dict[str, int]] = param_sizes(bodies=4, dofs=6, geoms=5)
