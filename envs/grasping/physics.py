"""The physics of a batch of grasping scenes: one :class:`~metarl.envs.mujoco_batch.PhysicsBatch`, one
model per scene.

This module maps the grasping scene onto the shared MuJoCo plumbing (stepping, resets,
instability checks and rendering live in :mod:`metarl.envs.mujoco_batch`); the family turns its
:class:`PhysicsState` into observations and rewards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import mujoco
import mujoco.batch
import numpy as np

from metarl.envs.grasping import scene
from metarl.envs.mujoco_batch import BodyFraming, PhysicsBatch

CAMERA = BodyFraming(("hand", "object"), azimuth=135.0, elevation=-25.0)  # the hand and the object, closely


@dataclasses.dataclass(frozen=True)
class PhysicsState:
    """What the environment reads from the simulations after a reset or a step.

    Attributes:
        qpos: ``[B, nq]`` joint positions (a copy; the fields below are views of it). It is the
            transpose of a ``[nq, B]`` array, so that ``field.T`` gives each field one row per
            coordinate: long rows, cheap to compute on.
        qvel: ``[B, nv]`` joint velocities (likewise).
        hand_pos: ``[B, 3]`` pinch point position (m).
        finger_pos: ``[B, 2]`` finger positions, the half-gap of each pad (m).
        hand_vel: ``[B, 3]`` pinch point velocity (m/s).
        finger_vel: ``[B, 2]`` (m/s).
        object_pos: ``[B, 3]`` object body origin (m).
        object_quat: ``[B, 4]`` object orientation (w, x, y, z).
        object_vel: ``[B, 3]`` object linear velocity, world frame (m/s).
        object_angvel: ``[B, 3]`` object angular velocity, object frame (rad/s).
        touch: ``[B, 2]`` bool, the left / right pad presses on the object's side (last substep).
    """

    qpos: np.ndarray
    qvel: np.ndarray
    hand_pos: np.ndarray
    finger_pos: np.ndarray
    hand_vel: np.ndarray
    finger_vel: np.ndarray
    object_pos: np.ndarray
    object_quat: np.ndarray
    object_vel: np.ndarray
    object_angvel: np.ndarray
    touch: np.ndarray


# Quaternion components (w, x, y, z = 0, 1, 2, 3) multiplied pairwise: the x axis is
# (1 - 2(yy + zz), 2(xy + zw), 2(xz - yw)), the y axis (2(xy - zw), 1 - 2(xx + zz), 2(yz + xw)); the
# first six products are the left terms of those sums, the last six the right terms, with their sign.
_PRODUCT_LEFT = np.array([2, 1, 1, 1, 1, 2, 3, 3, 2, 3, 3, 1])
_PRODUCT_RIGHT = np.array([2, 2, 3, 2, 1, 3, 3, 0, 0, 0, 3, 0])
_RIGHT_SIGN = np.array([1.0, 1.0, -1.0, -1.0, 1.0, 1.0])


def quat_to_axes(quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two columns of the rotation matrices of unit quaternions.

    Args:
        quat: ``[B, 4]`` quaternions (w, x, y, z).

    Returns:
        ``([B, 3], [B, 3])``: the rotated x axis and the rotated y axis.
    """
    rows = axes_rows(quat.T)
    return rows[0:3].T, rows[3:6].T


def axes_rows(quat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`quat_to_axes` on quaternions stored one component per row (a handful of long operations).

    The x axis is ``(1 - 2(y² + z²), 2(xy + zw), 2(xz - yw))`` and the y axis
    ``(2(xy - zw), 1 - 2(x² + z²), 2(yz + xw))``.

    Args:
        quat: ``[4, B]`` rows w, x, y, z.
        out: ``[6, B]`` array to write into, or None for a new one.

    Returns:
        ``[6, B]``: the x axis's three components, then the y axis's.
    """
    products = quat[_PRODUCT_LEFT] * quat[_PRODUCT_RIGHT]
    axes: np.ndarray = np.add(products[:6], products[6:] * _RIGHT_SIGN[:, None], out=out)
    axes *= 2
    np.subtract(1, axes[0::4], out=axes[0::4])
    return axes


PINCH_NORMAL = 0.5  # |normal · y| above which a contact presses across the jaws, not on a pad's edge from above


def _pinching(touch: np.ndarray) -> np.ndarray:
    """``[B, 2]`` bool: each pad presses on the object's side, from ``[B, 2 * TOUCH_DATA]`` sensor data."""
    data = touch.reshape(len(touch), 2, scene.TOUCH_DATA)
    return (data[:, :, 0] > 0) & (np.abs(data[:, :, 2]) > PINCH_NORMAL)


class GraspPhysics:
    """``num_envs`` grasping scenes on ``num_threads`` threads.

    Args:
        num_envs: Number of simulations ``B``.
        num_threads: Threads of the batch (1 runs on the caller's thread).
    """

    def __init__(self, num_envs: int, num_threads: int):
        self.num_envs = num_envs
        self.num_threads = num_threads
        self._physics: PhysicsBatch | None = None
        self._layout_key: tuple[int, ...] | None = None
        self._layout: scene.SceneLayout | None = None
        self._state: PhysicsState | None = None
        self._ctrl_low, self._ctrl_high = np.zeros(0), np.zeros(0)

    def set_models(self, models: Sequence[mujoco.MjModel]) -> None:
        """Runs simulation ``i`` on ``models[i]`` from the next :meth:`reset` on.

        All models must come from :func:`scene.compile_scene` with one mesh library; a batch of
        another library (another ``mjData`` layout) gets a new :class:`PhysicsBatch`.
        """
        first = models[0]
        key = (first.nq, first.nv, first.nbvh, first.nmesh, first.nsensordata)
        if self._physics is None or key != self._layout_key:
            if self._physics is not None:
                self._physics.close()
            self._physics = PhysicsBatch(first, self.num_envs, self.num_threads, scene.SUBSTEPS, ("sensordata",))
            self._layout_key = key
            self._layout = scene.scene_layout(first)
            self._ctrl_low, self._ctrl_high = first.actuator_ctrlrange.T.copy()
        self._physics.set_models(models)

    def reset(self, hand: np.ndarray, objects: np.ndarray) -> None:
        """Resets every simulation: fingers open, the hand and the object at the given poses.

        Args:
            hand: ``[B, 3]`` pinch point x, y, z (m).
            objects: ``[B, 7]`` object position (m) and quaternion (w, x, y, z).
        """
        physics, layout = self._bound()
        qpos = np.zeros_like(physics.qpos)
        qpos[:, layout.hand_qpos] = hand
        qpos[:, layout.finger_qpos] = scene.FINGER_OPEN
        qpos[:, layout.object_qpos] = objects
        ctrl = np.empty((self.num_envs, len(self._ctrl_low)))
        ctrl[:, :3] = hand
        ctrl[:, 3:5] = scene.FINGER_OPEN
        physics.reset(qpos, np.zeros_like(physics.qvel), ctrl, act=hand)  # the hand's filtered targets
        self._state = self._read()

    def step(self, target: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Sets the actuator targets and advances the active simulations by one control step.

        Args:
            target: ``[B, 5]`` position targets: pinch point x, y, z (m), fingers (m).
            active: ``[B]`` bool; inactive (finished) simulations are left as they are.

        Returns:
            ``[B]`` bool, the simulation raised an error or a warning, or its state is not finite.
        """
        physics, _ = self._bound()
        unstable = physics.step(np.clip(target, self._ctrl_low, self._ctrl_high), active)
        self._state = self._read()
        return unstable

    def physics_batch(self) -> PhysicsBatch | None:
        """The batch of the current models; None before the first :meth:`set_models`."""
        return self._physics

    @property
    def batch(self) -> mujoco.batch.Batch:
        """The ``mujoco.batch.Batch`` (bound arrays such as ``batch.bind("qvel")`` are live)."""
        return self._bound()[0].batch

    def state(self) -> PhysicsState:
        """The state after the last reset or step."""
        if self._state is None:
            raise RuntimeError("reset must be called before the state is read")
        return self._state

    def _bound(self) -> tuple[PhysicsBatch, scene.SceneLayout]:
        if self._physics is None or self._layout is None:
            raise RuntimeError("set_models must be called before reset")
        return self._physics, self._layout

    def _read(self) -> PhysicsState:
        physics, layout = self._bound()
        rows = physics.state_rows()  # computing on long rows is much cheaper than on [B, 3] columns
        nq = physics.qpos.shape[1]
        q, v = rows[:nq], rows[nq:]
        o, d, h, hd = layout.object_qpos.start, layout.object_dof.start, layout.hand_qpos.start, layout.hand_dof.start
        return PhysicsState(
            qpos=q.T,
            qvel=v.T,
            hand_pos=q[h : h + 3].T,
            finger_pos=q[layout.finger_qpos].T,
            hand_vel=v[hd : hd + 3].T,
            finger_vel=v[layout.finger_dof].T,
            object_pos=q[o : o + 3].T,
            object_quat=q[o + 3 : o + 7].T,
            object_vel=v[d : d + 3].T,
            object_angvel=v[d + 3 : d + 6].T,
            touch=_pinching(physics.output("sensordata")[:, layout.touch]),
        )

    def render(self, index: int, width: int, height: int) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of simulation ``index``, the hand and the object framed closely."""
        physics, _ = self._bound()
        return physics.render(index, width, height, CAMERA)

    def close(self) -> None:
        """Frees the renderers and the batch's threads."""
        if self._physics is not None:
            self._physics.close()
        self._physics = None
        self._layout_key = None
