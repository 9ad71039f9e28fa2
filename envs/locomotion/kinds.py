"""The task kinds: what a locomotion task asks (a velocity, a direction, a goal, other physics) and how tasks are drawn.

A task kind knows nothing of the robot: it draws tasks, turns them into numbers for the step
(:meth:`TaskKind.goal_array`), writes what they change into the physics (random parameters) and
adds its reward term; the robot (:mod:`metarl.envs.locomotion.robots`) adds its own terms after it.
A new kind is a :class:`TaskKind` subclass and a task dataclass.

=====================  ====================================  =========================================
Kind                   Task                                  Reward term (first in the sum)
=====================  ====================================  =========================================
:class:`Velocity`      goal velocity ~ U[low, high] m/s      ``velocity = offset − |v_x − v_goal|``
:class:`Direction`     direction ∈ {−1, 1}                   ``velocity = direction·v_x``
:class:`Goal`          goal (x, y) uniform in a disc         ``goal = offset − ‖xy − goal‖₁``
:class:`RandomPhysics` body masses, inertias, joint          ``forward = v_x``
                       damping, geom friction, each
                       × 1.5^u, u ~ U[−limit, limit]
=====================  ====================================  =========================================

Held-out test tasks: a kind with a continuous task space has its test set drawn once from the
fixed seed :data:`~metarl.envs.base.TEST_SEED` (``num_test_tasks`` of them), and training never
draws one of them (a draw that equals one exactly is redrawn). The direction kind's space is
finite: its test set is both directions, which training draws too (as in the MAML paper), ``n // 2``
of each per draw (the odd one random), in random order.

Validation tasks (they choose ``best.pt``; test tasks are for reporting): training draws from the
fixed seed :data:`~metarl.envs.base.VALIDATION_SEED`, as many as the test tasks, so never a test
task. The direction kind's are its test tasks, evaluated with other rollout seeds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import ClassVar, cast

import mujoco
import numpy as np

from metarl.envs.base import Task, TaskError, describe_range
from metarl.envs.locomotion.move import Move
from metarl.envs.locomotion.tasks import (
    PARAM_BASE,
    SCALE_HIGH,
    SCALE_LOW,
    AntGoalTask,
    DirectionTask,
    RandParamsTask,
    VelocityTask,
    param_sizes,
)
from metarl.envs.mujoco_batch import PhysicsBatch


class TaskKind:
    """How one kind of task is drawn, read and rewarded.

    Attributes:
        task_type: The task dataclass (each family has its own).
        space: The values of a finite task space (the directions; then :meth:`tasks` is the test
            set and training draws test tasks too); None for a continuous space.
    """

    task_type: type[Task]
    space: ClassVar[tuple[int, ...] | None] = None

    def draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        """``n`` tasks from ``rng`` (held-out tasks are redrawn by the family, not here)."""
        raise NotImplementedError

    def tasks(self) -> list[Task]:
        """Every task of a finite space (see :attr:`space`)."""
        raise NotImplementedError

    def task_space(self) -> dict[str, str]:
        """``{parameter: allowed range}`` for ``metarl families``."""
        raise NotImplementedError

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        """The tasks as numbers, ``[B, k]`` (goal velocity, direction, goal position; ``k = 0``: none)."""
        return np.zeros((len(tasks), 0))

    def check_model(self, model: mujoco.MjModel, what: str) -> None:
        """Refuses a robot's model the kind's tasks were not written for (``what`` names it)."""

    def apply_tasks(self, physics: PhysicsBatch, tasks: Sequence[Task]) -> None:
        """Writes what the tasks change in the model into the batch (before a reset)."""

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        """The kind's named reward terms of one step, each ``[B]``."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Velocity(TaskKind):
    """Run at a goal velocity, uniform in ``[low, high]`` m/s.

    Attributes:
        task_type: A :class:`~metarl.envs.locomotion.tasks.VelocityTask` class.
        low: Lowest goal velocity (m/s).
        high: Highest goal velocity (m/s).
        offset: Constant added to the ``velocity`` term (0 for the cheetah, 1 for the ant).
    """

    task_type: type[VelocityTask]
    low: float
    high: float
    offset: float = 0.0

    def draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        return [self.task_type(goal_velocity=float(v)) for v in rng.uniform(self.low, self.high, size=n)]

    def task_space(self) -> dict[str, str]:
        return {"goal_velocity": f"uniform in {describe_range(self.low, self.high)} m/s"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[cast(VelocityTask, task).goal_velocity] for task in tasks], dtype=np.float64)

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        velocity = -np.abs(move.velocity[:, 0] - move.goal[:, 0])
        if self.offset:
            velocity += self.offset
        return {"velocity": velocity}


@dataclasses.dataclass(frozen=True)
class Direction(TaskKind):
    """Run as fast as possible forward (+1) or backward (−1), both equally often.

    Attributes:
        task_type: A :class:`~metarl.envs.locomotion.tasks.DirectionTask` class.
    """

    task_type: type[DirectionTask]
    space: ClassVar[tuple[int, ...] | None] = (1, -1)

    def draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        directions = [1] * (n // 2) + [-1] * (n // 2)
        if n % 2:
            directions.append(int(rng.choice([-1, 1])))
        return [self.task_type(direction=int(d)) for d in rng.permutation(directions)]

    def tasks(self) -> list[Task]:
        return [self.task_type(direction=d) for d in self.space or ()]

    def task_space(self) -> dict[str, str]:
        return {"direction": "-1 (backward) or 1 (forward), equally often; the test tasks are both, seen in training"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[cast(DirectionTask, task).direction] for task in tasks], dtype=np.float64)

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"velocity": move.goal[:, 0] * move.velocity[:, 0]}


@dataclasses.dataclass(frozen=True)
class Goal(TaskKind):
    """Walk to a goal position uniform in the disc of radius ``radius`` m around the origin.

    Attributes:
        radius: The disc's radius (m).
        offset: Constant of the ``goal`` term (4 in the MAML paper's code).
    """

    radius: float
    offset: float = 4.0
    task_type: type[AntGoalTask] = AntGoalTask

    def draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        angle = rng.uniform(0.0, 2.0 * math.pi, size=n)
        radius = self.radius * np.sqrt(rng.uniform(0.0, 1.0, size=n))  # uniform in the disc
        return [
            self.task_type(goal=(float(x), float(y)))
            for x, y in zip(radius * np.cos(angle), radius * np.sin(angle), strict=True)
        ]

    def task_space(self) -> dict[str, str]:
        return {"goal": f"x, y uniform in the disc of radius {self.radius:g} m around the origin"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([cast(AntGoalTask, task).goal for task in tasks], dtype=np.float64)

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"goal": self.offset - np.sum(np.abs(move.xy - move.goal), axis=1)}


@dataclasses.dataclass(frozen=True)
class RandomPhysics(TaskKind):
    """Other physics per task: the model's masses, inertias, damping and friction scaled by ``1.5^u``.

    Attributes:
        task_type: A :class:`~metarl.envs.locomotion.tasks.RandParamsTask` class (its ``sizes``
            fit the robot's model).
        log_scale_limit: ``u`` is uniform in ``[−limit, limit]`` per parameter.
    """

    task_type: type[RandParamsTask]
    log_scale_limit: float

    def draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        sizes = self.task_type.sizes
        limit = self.log_scale_limit
        tasks: list[Task] = []
        for _ in range(n):
            u = rng.uniform(-limit, limit, size=sum(sizes.values()))
            scales = np.clip(PARAM_BASE**u, SCALE_LOW, SCALE_HIGH)
            parts = np.split(scales, np.cumsum(list(sizes.values()))[:-1])
            tasks.append(self.task_type(**{k: tuple(map(float, p)) for k, p in zip(sizes, parts, strict=True)}))
        return tasks

    def task_space(self) -> dict[str, str]:
        law = f"scales 1.5^u, u uniform in {describe_range(-self.log_scale_limit, self.log_scale_limit)}"
        return {name: f"{size} {law}" for name, size in self.task_type.sizes.items()}

    def check_model(self, model: mujoco.MjModel, what: str) -> None:
        actual = param_sizes(bodies=model.nbody - 1, dofs=model.nv, geoms=model.ngeom)
        if actual != self.task_type.sizes:  # a different gymnasium model than the one the task was written for
            raise TaskError(f"{what} has sizes {actual}, tasks expect {self.task_type.sizes}")

    def apply_tasks(self, physics: PhysicsBatch, tasks: Sequence[Task]) -> None:
        per_task = [cast(RandParamsTask, task).scales() for task in tasks]
        physics.scale_parameters({name: np.stack([s[name] for s in per_task]) for name in per_task[0]})

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"forward": move.velocity[:, 0].copy()}
