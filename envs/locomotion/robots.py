"""The robots: a gymnasium MuJoCo model, what is observed of it, when it is healthy, what it costs to move.

A robot knows nothing of the task; a task kind (:mod:`metarl.envs.locomotion.kinds`) knows
nothing of the robot. A family (:mod:`metarl.envs.locomotion.families`) is one of each. A new
robot is a :class:`Robot` (or a subclass overriding the health check, the observation or its
reward terms) and a model file under gymnasium's assets.

Observations (all float64; "m" metres, "rad" radians, "m/s" and "rad/s" velocities)
====================================================================================

==============  ==========  ===================================================================
Robot           Size        Content (as gymnasium's v5 environments, default options)
==============  ==========  ===================================================================
HalfCheetah     17          ``qpos[1:]`` (8: rootz m, rooty rad, 6 joint angles rad),
                            ``qvel`` (9: m/s, rad/s)
Ant             105 (27)    ``qpos[2:]`` (13: torso z m, torso quaternion, 8 joint angles rad),
                            ``qvel`` (14), ``clip(cfrc_ext[1:], −1, 1)`` (78: per-body external
                            contact wrench, torque N·m then force N, 13 bodies × 6); the last
                            block is left out with ``include_cfrc_ext_in_observation=False``
Walker2d        17          ``qpos[1:]`` (8), ``clip(qvel, −10, 10)`` (9)
Hopper          11          ``qpos[1:]`` (5), ``clip(qvel, −10, 10)`` (6)
==============  ==========  ===================================================================

Actions: joint torque commands in ``[−1, 1]`` (the actuators' ``ctrlrange``), 6 for
HalfCheetah and Walker2d, 8 for the Ant, 3 for the Hopper; each is multiplied by the actuator's
gear (N·m).

Reward terms of the robot (after the task kind's, summed into the reward):

=============  =================================================================================
Robot          Terms
=============  =================================================================================
HalfCheetah    ``control = −w‖a‖²`` (``w`` = ``ctrl_cost_weight``, on ``clip(a)`` by default)
Ant            ``control``, ``contact = −5·10⁻⁴ Σ clip(cfrc_ext, −1, 1)²``, ``survive = 0.05``
               while healthy
Walker2d,      ``healthy = 1`` while healthy, ``control`` (on the raw action by default)
Hopper
=============  =================================================================================

``clip(a)`` is the action clipped to its bounds ``[−1, 1]``: MuJoCo clamps the applied control to
the actuator range, and the MAML paper's code charges the control cost on the clipped action too
(rllab's ``normalize`` wrapper clips every action before the environment sees it). gymnasium v5
charges the raw action instead; ``family.ctrl_cost_on_clipped: false`` does that.

Contact forces. gymnasium's Ant-v5 *includes* the clipped ``cfrc_ext`` in its observation by
default (``include_cfrc_ext_in_observation=True``; v4's ``use_contact_forces=False`` default is
gone) and always charges the contact cost. ``mujoco.batch.Batch`` cannot call
``mj_rnePostConstraint`` after a step, so an accelerometer added with MjSpec makes MuJoCo
compute ``cfrc_ext`` inside ``mj_step`` (at the start of the last substep). gymnasium instead
calls ``mj_rnePostConstraint`` after ``mj_step``, which with the Ant's RK4 integrator evaluates
the forces at RK4's last intermediate stage: the two differ while a foot is in contact. Positions,
velocities and the forward velocity are identical to gymnasium's (tested to 1e-9).

Forward velocity ``v_x`` (m/s): the change of the torso's x position over one control step divided
by ``dt = frame_skip · timestep``. HalfCheetah, Walker2d and Hopper read it from ``qpos[0]``; the
Ant reads the torso body's ``xpos`` as gymnasium's Ant-v5 does (MuJoCo's derived positions after
``mj_step``, which with the Ant's RK4 integrator lag the state by part of a substep).

Initial state: ``qpos0 + U(−σ, σ)`` and ``σ·N(0, 1)`` velocities for HalfCheetah and Ant (σ = 0.1),
``U(−σ, σ)`` velocities for Walker2d and Hopper (σ = 0.005), drawn from the environment's own
generator in gymnasium's order (so a seeded reset matches gymnasium's ``reset(seed=...)``).

Termination (gymnasium v5 semantics; the HalfCheetah never terminates):

* Ant: unhealthy when the state is not finite or the torso height ``qpos[2]`` leaves
  ``[0.2, 1.0]`` m.
* Walker2d: unhealthy unless ``0.8 < qpos[1] < 2.0`` m and ``−1 < qpos[2] < 1`` rad.
* Hopper: unhealthy unless ``0.7 < qpos[1]``, ``−0.2 < qpos[2] < 0.2`` rad and every entry of
  ``qpos[2:]``, ``qvel`` lies in ``(−100, 100)``.

With ``terminate_when_unhealthy`` (the default) an unhealthy state ends the episode, and the
``survive``/``healthy`` term is 0 on that step.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import mujoco
import numpy as np

from metarl.envs.locomotion.move import Move
from metarl.envs.locomotion.options import AntOptions, LocomotionOptions, RandParamsOptions
from metarl.envs.mujoco_batch import PhysicsBatch, load_gymnasium_model

OptionsT = TypeVar("OptionsT", bound=LocomotionOptions)


@dataclasses.dataclass(frozen=True)
class Robot(Generic[OptionsT]):
    """A gymnasium MuJoCo model and how a family reads it; as it is, a robot that cannot fall (the HalfCheetah).

    Attributes:
        xml: Model file under gymnasium's assets.
        torso: Name of the root body.
        skip_qpos: Leading ``qpos`` entries left out of the observation (the x or x, y position).
        xy_from_xpos: Read the torso position from ``xpos`` (Ant) rather than ``qpos[0]``.
        qvel_clip: Observed velocities are clipped to ``[−clip, clip]``, or None.
        normal_qvel_noise: Initial velocities ``σ·N(0, 1)`` (else ``U(−σ, σ)``).
        contact_forces: Compute ``cfrc_ext`` (adds the MjSpec contact probe).
        camera_distance: Distance of the tracking render camera (m).
    """

    xml: str
    torso: str
    skip_qpos: int
    xy_from_xpos: bool
    qvel_clip: float | None
    normal_qvel_noise: bool
    contact_forces: bool
    camera_distance: float

    def model(self) -> mujoco.MjModel:
        """The compiled model (built once per process; never modified)."""
        return robot_model(self)

    def obs_dim(self, options: OptionsT) -> int:
        """Size of one observation."""
        model = self.model()
        return int(model.nq - self.skip_qpos + model.nv)

    def observe(self, physics: PhysicsBatch, options: OptionsT) -> np.ndarray:
        """``[B, obs_dim]`` observations of the current state."""
        qvel = physics.qvel
        if self.qvel_clip is not None:
            qvel = np.clip(qvel, -self.qvel_clip, self.qvel_clip)
        return np.concatenate([physics.qpos[:, self.skip_qpos :], qvel], axis=1)

    def healthy(self, physics: PhysicsBatch, options: OptionsT) -> np.ndarray:
        """``[B]`` bool, whether each state is healthy (always, for a robot that cannot fall)."""
        return np.ones(physics.num_envs, dtype=bool)

    def terminates(self, options: OptionsT) -> bool:
        """Whether an unhealthy state ends the episode."""
        return False

    def reward_terms(self, move: Move, healthy: np.ndarray, options: OptionsT) -> dict[str, np.ndarray]:
        """The robot's named reward terms of one step, each ``[B]`` (``healthy``: after the step)."""
        return {"control": control_cost(move, options)}

    def initial_state(self, rngs: Sequence[np.random.Generator], scale: float) -> tuple[np.ndarray, np.ndarray]:
        """``[B, nq]`` and ``[B, nv]`` noisy initial states, one per generator, drawn in gymnasium's order."""
        model = self.model()
        qpos = np.empty((len(rngs), model.nq))
        qvel = np.empty((len(rngs), model.nv))
        for i, rng in enumerate(rngs):
            qpos[i] = model.qpos0 + rng.uniform(-scale, scale, size=model.nq)
            if self.normal_qvel_noise:
                qvel[i] = scale * rng.standard_normal(model.nv)
            else:
                qvel[i] = rng.uniform(-scale, scale, size=model.nv)
        return qpos, qvel

    def torso_xy(self, physics: PhysicsBatch) -> np.ndarray:
        """``[B, 2]`` torso position in the plane (``y = 0`` for the planar robots)."""
        if self.xy_from_xpos:
            return np.array(physics.output("xpos")[:, 1, :2])
        xy = np.zeros((physics.num_envs, 2))
        xy[:, 0] = physics.qpos[:, 0]
        return xy


def control_cost(move: Move, options: LocomotionOptions) -> np.ndarray:
    """``[B]`` control term ``−w‖a‖²``, on ``clip(a, low, high)`` with ``ctrl_cost_on_clipped``."""
    action = move.action
    if options.ctrl_cost_on_clipped:
        ctrl_range = move.physics.model.actuator_ctrlrange
        action = np.clip(action, ctrl_range[:, 0], ctrl_range[:, 1])
    cost: np.ndarray = -options.ctrl_cost_weight * np.sum(np.square(action), axis=1)
    return cost


@dataclasses.dataclass(frozen=True)
class Ant(Robot[AntOptions]):
    """The Ant: contact forces observed and charged, a health check on the torso height, MAML's survive bonus."""

    def obs_dim(self, options: AntOptions) -> int:
        model = self.model()
        extra = 6 * (model.nbody - 1) if options.include_cfrc_ext_in_observation else 0
        return int(model.nq - self.skip_qpos + model.nv + extra)

    def observe(self, physics: PhysicsBatch, options: AntOptions) -> np.ndarray:
        obs = super().observe(physics, options)
        if not options.include_cfrc_ext_in_observation:
            return obs
        forces = np.clip(physics.output("cfrc_ext")[:, 1:], -1.0, 1.0).reshape(physics.num_envs, -1)
        return np.concatenate([obs, forces], axis=1)

    def healthy(self, physics: PhysicsBatch, options: AntOptions) -> np.ndarray:
        finite = np.isfinite(physics.qpos).all(axis=1) & np.isfinite(physics.qvel).all(axis=1)
        z = physics.qpos[:, 2]
        ok: np.ndarray = finite & (options.healthy_z_min <= z) & (z <= options.healthy_z_max)
        return ok

    def terminates(self, options: AntOptions) -> bool:
        return bool(options.terminate_when_unhealthy)

    def reward_terms(self, move: Move, healthy: np.ndarray, options: AntOptions) -> dict[str, np.ndarray]:
        forces = np.clip(move.physics.output("cfrc_ext"), -1.0, 1.0)
        contact = -options.contact_cost_weight * np.sum(np.square(forces), axis=(1, 2))
        survive = np.where(healthy, float(options.survive_reward), 0.0)
        return {"control": control_cost(move, options), "contact": contact, "survive": survive}


@dataclasses.dataclass(frozen=True)
class PlanarWalker(Robot[RandParamsOptions]):
    """A planar robot that can fall (Walker2d, Hopper): gymnasium v5's health check and healthy bonus.

    Attributes:
        healthy_z: Open interval of healthy torso heights ``qpos[1]`` (m); None: no upper end.
        healthy_angle: Open interval of healthy torso angles ``qpos[2]`` (rad).
        healthy_state: Every entry of ``qpos[2:]`` and ``qvel`` must lie in ``(−limit, limit)``, or None.
    """

    healthy_z: tuple[float, float | None]
    healthy_angle: tuple[float, float]
    healthy_state: float | None

    def healthy(self, physics: PhysicsBatch, options: RandParamsOptions) -> np.ndarray:
        z, angle = physics.qpos[:, 1], physics.qpos[:, 2]
        (z_low, z_high), (angle_low, angle_high) = self.healthy_z, self.healthy_angle
        ok: np.ndarray = (z > z_low) & (angle > angle_low) & (angle < angle_high)
        if z_high is not None:
            ok &= z < z_high
        if self.healthy_state is not None:
            state = np.concatenate([physics.qpos[:, 2:], physics.qvel], axis=1)
            ok &= ((state > -self.healthy_state) & (state < self.healthy_state)).all(axis=1)
        return ok

    def terminates(self, options: RandParamsOptions) -> bool:
        return bool(options.terminate_when_unhealthy)

    def reward_terms(self, move: Move, healthy: np.ndarray, options: RandParamsOptions) -> dict[str, np.ndarray]:
        return {
            "healthy": np.where(healthy, float(options.healthy_reward), 0.0),
            "control": control_cost(move, options),
        }


HALF_CHEETAH: Robot[LocomotionOptions] = Robot("half_cheetah.xml", "torso", 1, False, None, True, False, 3.5)
ANT = Ant("ant.xml", "torso", 2, True, None, True, True, 5.0)
WALKER2D = PlanarWalker(
    "walker2d_v5.xml", "torso", 1, False, 10.0, False, False, 3.5, (0.8, 2.0), (-1.0, 1.0), healthy_state=None
)
HOPPER = PlanarWalker(
    "hopper.xml", "torso", 1, False, 10.0, False, False, 3.0, (0.7, None), (-0.2, 0.2), healthy_state=100.0
)


@functools.cache
def robot_model(robot: Robot[Any]) -> mujoco.MjModel:
    """The compiled model of a robot (built once per process; never modified)."""
    return load_gymnasium_model(robot.xml, robot.torso if robot.contact_forces else None)
