"""The batched locomotion environment: one robot, one task kind, ``B`` simulations in one ``mujoco.batch.Batch``.

Each step advances the simulations still running (one threaded call), measures the torso's move,
and sums the task kind's reward term and then the robot's (their names are the ``terms`` of the
step). Physics instability (MuJoCo warning, MuJoCo error, NaN/Inf state) ends the episode with
``unstable=True`` (``info["physics_unstable"]``); its step's reward terms are 0. MuJoCo resets an
unstable simulation internally, so the returned observation stays finite; the batch never
auto-resets on its own. An environment that terminated stays terminated, is not stepped, returns
its last observation and zero reward until the batch is reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from metarl.envs.base import StepResult, Task, TaskError, check_finite_range, check_generators, check_tasks
from metarl.envs.locomotion.kinds import TaskKind
from metarl.envs.locomotion.move import Move
from metarl.envs.locomotion.options import LocomotionOptions
from metarl.envs.locomotion.robots import Robot
from metarl.envs.mujoco_batch import PhysicsBatch, tracking_camera


class LocomotionBatchEnv:
    """``B`` environments of one locomotion family, stepped by one ``mujoco.batch.Batch`` call.

    Implements :class:`metarl.envs.base.SimulatedBatchEnv`.

    Args:
        name: The family's name (for messages).
        robot: What is simulated and observed.
        kind: What the tasks ask.
        options: The family's options.
        num_envs: ``B``.
        num_threads: Physics threads.
    """

    def __init__(
        self,
        name: str,
        robot: Robot[Any],
        kind: TaskKind,
        options: LocomotionOptions,
        num_envs: int,
        num_threads: int = 1,
    ):
        check_finite_range("num_envs", num_envs, 1, None)
        check_finite_range("num_threads", num_threads, 1, 1024)
        self.name, self.robot, self.kind, self.options = name, robot, kind, options
        self.num_envs = int(num_envs)
        model = robot.model()
        self.control_dt = float(model.opt.timestep) * int(options.frame_skip)
        outputs = ["xpos"] + (["cfrc_ext"] if robot.contact_forces else [])
        self._physics = PhysicsBatch(model, self.num_envs, int(num_threads), int(options.frame_skip), outputs)
        self._terminates = robot.terminates(options)
        self._tasks: list[Task] | None = None
        self._applied: list[Task] | None = None
        self._goal = np.zeros((self.num_envs, 0))
        self._xy = np.zeros((self.num_envs, 2))
        self._done = np.ones(self.num_envs, dtype=bool)  # nothing runs before the first reset
        self._camera = tracking_camera(1, robot.camera_distance)

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        self._tasks = list(check_tasks(tasks, self.num_envs, self.kind.task_type))

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        check_generators(rngs, self.num_envs)
        if self._tasks is None:
            raise TaskError(f"{self.name}: call set_tasks before reset")
        if self._applied != self._tasks:
            self.kind.apply_tasks(self._physics, self._tasks)
            self._applied = list(self._tasks)
        self._goal = self.kind.goal_array(self._tasks)
        qpos, qvel = self.robot.initial_state(rngs, self.options.reset_noise_scale)
        self._physics.reset(qpos, qvel)
        self._xy = self.robot.torso_xy(self._physics)
        self._done = np.zeros(self.num_envs, dtype=bool)
        return self.robot.observe(self._physics, self.options)

    def step(self, action: np.ndarray) -> StepResult:
        robot, physics = self.robot, self._physics
        action = np.asarray(action, dtype=np.float64).reshape(self.num_envs, physics.model.nu)
        active = ~self._done
        unstable = physics.step(action, active)
        xy = robot.torso_xy(physics)
        velocity = (xy - self._xy) / self.control_dt
        healthy = robot.healthy(physics, self.options) & ~unstable
        move = Move(velocity, xy, action, self._goal, physics)
        terms = {**self.kind.reward_terms(move), **robot.reward_terms(move, healthy, self.options)}
        stepped = active & ~unstable
        if not stepped.all():
            terms = {name: np.where(stepped, value, 0.0) for name, value in terms.items()}
            xy = np.where(stepped[:, None], xy, self._xy)
        ended = (unstable | ~healthy) if self._terminates else unstable
        self._done |= active & ended
        self._xy = xy
        values = list(terms.values())
        reward = values[0].copy()
        for value in values[1:]:
            reward += value
        return StepResult(
            obs=robot.observe(physics, self.options),
            reward=reward,
            terminated=self._done.copy(),
            terms=terms,
            success=None,
            unstable=unstable,
        )

    def physics_batch(self) -> PhysicsBatch:
        """The batch the environments step in (see :class:`~metarl.envs.base.SimulatedBatchEnv`)."""
        return self._physics

    def model_of(self, index: int) -> mujoco.MjModel:
        """A copy of the model environment ``index`` runs on (its task's parameters included)."""
        return self._physics.model_of(index)

    def render(self, index: int, width: int = 480, height: int = 480) -> np.ndarray:
        """Renders environment ``index`` with a camera tracking the torso.

        Returns:
            ``[height, width, 3]`` uint8 image.
        """
        return self._physics.render(index, width, height, self._camera)

    def close(self) -> None:
        self._physics.close()
