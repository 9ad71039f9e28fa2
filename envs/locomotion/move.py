"""What the reward of one batched locomotion step depends on (read by robots and task kinds alike)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from metarl.envs.mujoco_batch import PhysicsBatch


class Move(NamedTuple):
    """One batched step, as the reward terms see it.

    Attributes:
        velocity: ``[B, 2]`` torso velocity in the plane over the step (m/s).
        xy: ``[B, 2]`` torso position after the step (m).
        action: ``[B, act_dim]`` actions as given.
        goal: ``[B, k]`` the tasks as numbers (:meth:`TaskKind.goal_array
            <metarl.envs.locomotion.kinds.TaskKind.goal_array>`).
        physics: The batch after the step (contact forces, actuator ranges).
    """

    velocity: np.ndarray
    xy: np.ndarray
    action: np.ndarray
    goal: np.ndarray
    physics: PhysicsBatch
