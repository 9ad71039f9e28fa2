"""MuJoCo locomotion task families of the MAML paper, plus the random-parameter walkers.

A family is one robot and one task kind, composed (:mod:`~metarl.envs.locomotion.families` has
the table):

* :mod:`~metarl.envs.locomotion.robots`: the gymnasium MuJoCo model, the observation, the health
  check and the robot's own reward terms (HalfCheetah, Ant, Walker2d, Hopper);
* :mod:`~metarl.envs.locomotion.kinds`: what a task asks (goal velocity, direction, goal
  position, random physics), how tasks are drawn, held out and rewarded;
* :mod:`~metarl.envs.locomotion.tasks` and :mod:`~metarl.envs.locomotion.options`: the task
  dataclasses and the ``family:`` options (each family's options class is in the registry:
  ``family_spec(name).options_type``);
* :mod:`~metarl.envs.locomotion.env`: the batched environment, every simulation of a batch
  stepped by one threaded :class:`mujoco.batch.Batch` call (:mod:`metarl.envs.mujoco_batch`).

All families use the MuJoCo models that gymnasium ships (``half_cheetah.xml``, ``ant.xml``,
``walker2d_v5.xml``, ``hopper.xml``), edited with :class:`mujoco.MjSpec`. Observations and rewards
are numpy over the batch; the gymnasium view (``gym.make("metarl/HalfCheetahVel-v0")``) is the
same code with ``B = 1``.
"""

from metarl.envs.locomotion.env import LocomotionBatchEnv
from metarl.envs.locomotion.families import (
    FAMILY_SPECS,
    AntDir,
    AntGoal,
    AntVel,
    HalfCheetahDir,
    HalfCheetahVel,
    HopperParams,
    LocomotionFamily,
    Walker2dParams,
    compose,
)
from metarl.envs.locomotion.kinds import Direction, Goal, RandomPhysics, TaskKind, Velocity
from metarl.envs.locomotion.move import Move
from metarl.envs.locomotion.options import LocomotionOptions
from metarl.envs.locomotion.robots import ANT, HALF_CHEETAH, HOPPER, WALKER2D, Ant, PlanarWalker, Robot, robot_model
from metarl.envs.locomotion.tasks import (
    AntDirTask,
    AntGoalTask,
    AntVelTask,
    DirectionTask,
    HalfCheetahDirTask,
    HalfCheetahVelTask,
    HopperParamsTask,
    RandParamsTask,
    VelocityTask,
    Walker2dParamsTask,
)

__all__ = [
    "ANT",
    "FAMILY_SPECS",
    "HALF_CHEETAH",
    "HOPPER",
    "WALKER2D",
    "Ant",
    "AntDir",
    "AntDirTask",
    "AntGoal",
    "AntGoalTask",
    "AntVel",
    "AntVelTask",
    "Direction",
    "DirectionTask",
    "Goal",
    "HalfCheetahDir",
    "HalfCheetahDirTask",
    "HalfCheetahVel",
    "HalfCheetahVelTask",
    "HopperParams",
    "HopperParamsTask",
    "LocomotionBatchEnv",
    "LocomotionFamily",
    "LocomotionOptions",
    "Move",
    "PlanarWalker",
    "RandParamsTask",
    "RandomPhysics",
    "Robot",
    "TaskKind",
    "Velocity",
    "VelocityTask",
    "Walker2dParams",
    "Walker2dParamsTask",
    "compose",
    "robot_model",
]
