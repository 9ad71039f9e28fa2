"""MuJoCo locomotion task families of the MAML paper, plus the random-parameter walkers.

All families use the MuJoCo models that gymnasium ships (``half_cheetah.xml``, ``ant.xml``,
``walker2d_v5.xml``, ``hopper.xml``), edited with :class:`mujoco.MjSpec`, and step every
environment of a batch with one threaded :class:`mujoco.batch.Batch` call
(:mod:`metarl.envs.mujoco_batch`). Observations and rewards are numpy over the batch; the
gymnasium view (``gym.make("metarl/HalfCheetahVel-v0")``) is the same code with ``B = 1``.

Families (registered as ``metarl/<Name>-v0``)
=============================================

=================  =============================  ===============================================
Family             Task                           Reward terms (summed into the reward)
=================  =============================  ===============================================
HalfCheetahVel     goal velocity ~ U[0, 2] m/s    ``velocity = −|v_x − v_goal|``,
                                                  ``control = −0.05‖clip(a)‖²``
HalfCheetahDir     direction ∈ {−1, 1}            ``velocity = direction·v_x``, ``control``
AntVel             goal velocity ~ U[0, 3] m/s    ``velocity = 1 − |v_x − v_goal|``,
                                                  ``control = −0.005‖clip(a)‖²``,
                                                  ``contact = −5·10⁻⁴ Σ clip(cfrc_ext, −1, 1)²``,
                                                  ``survive = 0.05`` while healthy
AntDir             direction ∈ {−1, 1}            ``velocity = direction·v_x``, ``control``,
                                                  ``contact``, ``survive``
AntGoal            goal (x, y) uniform in the     ``goal = 4 − ‖xy − goal‖₁``, ``control``,
                   disc of radius 3 m             ``contact``, ``survive``
Walker2dParams     body masses, inertias, joint   ``forward = v_x``, ``healthy = 1`` while
                   damping, geom friction, each   healthy, ``control = −10⁻³‖a‖²`` (unclipped)
                   × 1.5^u, u ~ U[−3, 3]
HopperParams       as Walker2dParams              as Walker2dParams
=================  =============================  ===============================================

``v_x`` is the forward velocity (m/s) over one control step: the change of the torso's x
position divided by ``dt = frame_skip · timestep``. HalfCheetah, Walker2d and Hopper read it
from ``qpos[0]``; the Ant reads the torso body's ``xpos`` as gymnasium's Ant-v5 does
(MuJoCo's derived positions after ``mj_step``, which with the Ant's RK4 integrator lag the
state by part of a substep). ``clip(a)`` is the action clipped to its bounds ``[−1, 1]``: MuJoCo
clamps the applied control to the actuator range, and the MAML paper's code charges the control
cost on the clipped action too (rllab's ``normalize`` wrapper clips every action before the
environment sees it). gymnasium v5 charges the raw action instead; ``family.ctrl_cost_on_clipped:
false`` does that, and the random-parameter families do it by default.

The reward constants are those of the MAML paper's code (Finn et al. 2017: cbfinn/maml_rl's
rllab ``HalfCheetahEnvRand``, ``HalfCheetahEnvRandDirec``, ``AntEnvRand``, ``AntEnvRandDirec``,
``AntEnvRandGoal``, carried over by pytorch-maml-rl). AntGoal is in that code but not among the
paper's experiments. What still differs from the paper (control step, models, observations,
velocity, initial states, policy, curvature) is listed in one place, the README's section
"Differences from the MAML paper". The random-parameter families are the ``rand_param_envs``
family of ProMP (Rothfuss et al. 2019) with gymnasium v5's reward, health checks and
observations. The weights are options (``family:`` section of a config), except the constant
offsets (+1 in AntVel, +4 in AntGoal) and the Walker2d/Hopper health ranges.

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

Contact forces. gymnasium's Ant-v5 *includes* the clipped ``cfrc_ext`` in its observation by
default (``include_cfrc_ext_in_observation=True``; v4's ``use_contact_forces=False`` default is
gone) and always charges the contact cost. ``mujoco.batch.Batch`` cannot call
``mj_rnePostConstraint`` after a step, so an accelerometer added with MjSpec makes MuJoCo
compute ``cfrc_ext`` inside ``mj_step`` (at the start of the last substep). gymnasium instead
calls ``mj_rnePostConstraint`` after ``mj_step``, which with the Ant's RK4 integrator evaluates
the forces at RK4's last intermediate stage: the two differ while a foot is in contact. Positions,
velocities and the forward velocity are identical to gymnasium's (tested to 1e-9).

Episodes
========

Horizon 200 control steps for every family (an option). ``frame_skip`` is gymnasium's: 5 for
HalfCheetah and Ant (``dt = 0.05`` s), 4 for Walker2d and Hopper (``dt = 0.008`` s); ``dt`` is the
family's ``control_dt``, and the gymnasium view's ``metadata["render_fps"]`` is ``1 / dt``. Initial
state: ``qpos0 + U(−σ, σ)`` and ``σ·N(0, 1)`` velocities for HalfCheetah and Ant (σ = 0.1),
``U(−σ, σ)`` velocities for Walker2d and Hopper (σ = 0.005), drawn from the environment's own
generator in gymnasium's order (so a seeded reset matches gymnasium's ``reset(seed=...)``).

Termination (gymnasium v5 semantics; the HalfCheetah never terminates):

* Ant: unhealthy when the state is not finite or the torso height ``qpos[2]`` leaves
  ``[0.2, 1.0]`` m.
* Walker2d: unhealthy unless ``0.8 < qpos[1] < 2.0`` m and ``−1 < qpos[2] < 1`` rad.
* Hopper: unhealthy unless ``0.7 < qpos[1]``, ``−0.2 < qpos[2] < 0.2`` rad and every entry of
  ``qpos[2:]``, ``qvel`` lies in ``(−100, 100)``.

With ``terminate_when_unhealthy`` (the default) an unhealthy state ends the episode, and the
``survive``/``healthy`` term is 0 on that step. Physics instability (MuJoCo warning, MuJoCo
error, NaN/Inf state) ends the episode with ``unstable=True`` (``info["physics_unstable"]``);
its step's reward terms are 0. MuJoCo resets an unstable simulation internally, so the returned
observation stays finite; the batch never auto-resets on its own. An environment that
terminated stays terminated, is not stepped, returns its last observation and zero reward until
the batch is reset.

Held-out test tasks
===================

* Velocity families: 40 goal velocities drawn once from a fixed seed; ``sample_tasks`` never
  returns one of them (a draw that equals one exactly is redrawn).
* Direction families: the test set is simply both directions, ``−1`` and ``1``. With only two
  tasks there is nothing to hold out, so training draws them too (as in the MAML paper).
  ``sample_tasks`` returns as many of each as possible (``n // 2`` each, the odd one random), in
  random order.
* AntGoal: 40 goals drawn once from a fixed seed, never returned by ``sample_tasks``.
* Random-parameter families: 40 parameter sets drawn once from a fixed seed, never returned by
  ``sample_tasks``.

Validation tasks (``validation_tasks``, they choose ``best.pt``; test tasks are for reporting):
``sample_tasks`` from another fixed seed, as many as the test tasks, so never a test task. The
direction families have only two tasks: their validation tasks are the same two directions as
their test tasks, evaluated with other rollout seeds, so for them ``best.pt`` is chosen on the
tasks it is reported on.

Version history: v0, first release (gymnasium 1.x models, MuJoCo 4); before the release the
HalfCheetah and Ant families' control cost moved to the clipped action (the MAML paper's code).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, cast

import mujoco
import numpy as np
from gymnasium import spaces

from metarl.envs.base import (
    FlatTaskFamily,
    StepResult,
    Task,
    TaskError,
    check_finite_range,
    check_point,
    describe_range,
)
from metarl.envs.mujoco_batch import PhysicsBatch, load_gymnasium_model, tracking_camera
from metarl.envs.registry import FamilySpec

_TEST_SEED = 20170309  # fixed seed of every held-out test set (the MAML paper's arXiv date)
_VALIDATION_SEED = 170303400  # fixed seed of every validation set (the MAML paper's arXiv number)
_VELOCITY_LIMIT = 10.0  # m/s, the largest goal speed any task or option may ask for
_GOAL_LIMIT = 10.0  # m, the largest AntGoal coordinate
_PARAM_BASE = 1.5  # random-parameter scales are _PARAM_BASE ** u
_MAX_LOG_SCALE = 3.0  # |u| <= 3: the rand_param_envs range
_SCALE_LOW, _SCALE_HIGH = _PARAM_BASE**-_MAX_LOG_SCALE, _PARAM_BASE**_MAX_LOG_SCALE


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VelocityTask(Task):
    """Move forward at a goal velocity (base of the goal-velocity tasks).

    Attributes:
        goal_velocity: Target forward velocity (m/s), in [-10, 10].
    """

    goal_velocity: float

    def __post_init__(self) -> None:
        check_finite_range("goal_velocity", self.goal_velocity, -_VELOCITY_LIMIT, _VELOCITY_LIMIT)
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
        object.__setattr__(self, "goal", check_point("goal", self.goal, _GOAL_LIMIT))


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
                    f"allowed: each in {describe_range(_SCALE_LOW, _SCALE_HIGH)}"
                )
            for i, scale in enumerate(value):
                check_finite_range(f"{name}[{i}]", scale, _SCALE_LOW, _SCALE_HIGH)
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

    sizes: ClassVar[dict[str, int]] = {
        "body_mass": 7,
        "body_inertia": 21,
        "dof_damping": 9,
        "geom_friction": 24,
    }


@dataclasses.dataclass(frozen=True)
class HopperParamsTask(RandParamsTask):
    """Hopper with scaled masses, inertias, damping and friction (4 bodies, 6 dofs, 5 geoms)."""

    sizes: ClassVar[dict[str, int]] = {
        "body_mass": 4,
        "body_inertia": 12,
        "dof_damping": 6,
        "geom_friction": 15,
    }


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LocomotionOptions:
    """Options every locomotion family has (``family:`` section of a config).

    Attributes:
        horizon: Control steps per episode.
        frame_skip: MuJoCo steps per control step.
        reset_noise_scale: Scale σ of the initial-state noise.
        ctrl_cost_weight: Weight of the ``control`` term ``−w‖a‖²``.
        ctrl_cost_on_clipped: Charge the ``control`` term on the action clipped to its bounds (the
            MAML paper's code) rather than on the action as given (gymnasium v5).
        num_test_tasks: Number of held-out test tasks (ignored by the direction families).
    """

    horizon: int = 200
    frame_skip: int = 5
    reset_noise_scale: float = 0.1
    ctrl_cost_weight: float = 0.05
    ctrl_cost_on_clipped: bool = True
    num_test_tasks: int = 40

    def __post_init__(self) -> None:
        check_finite_range("family.horizon", self.horizon, 1, 100_000)
        check_finite_range("family.frame_skip", self.frame_skip, 1, 1000)
        check_finite_range("family.reset_noise_scale", self.reset_noise_scale, 0.0, 10.0)
        check_finite_range("family.ctrl_cost_weight", self.ctrl_cost_weight, 0.0, None)
        check_finite_range("family.num_test_tasks", self.num_test_tasks, 1, 10_000)
        for name in ("horizon", "frame_skip", "num_test_tasks"):
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise TaskError(f"family.{name}={getattr(self, name)!r} must be a whole number")
        if not isinstance(self.ctrl_cost_on_clipped, bool):
            raise TaskError(f"family.ctrl_cost_on_clipped={self.ctrl_cost_on_clipped!r} must be true or false")


def _check_interval(low_name: str, low: float, high_name: str, high: float, limit: float) -> None:
    check_finite_range(f"family.{low_name}", low, -limit, limit)
    check_finite_range(f"family.{high_name}", high, -limit, limit)
    if not low < high:
        raise TaskError(f"family.{low_name}={low!r} must be below family.{high_name}={high!r}")


@dataclasses.dataclass(frozen=True)
class HalfCheetahVelOptions(LocomotionOptions):
    """HalfCheetahVel options; see :class:`LocomotionOptions`.

    Attributes:
        velocity_low: Goal velocities are uniform in ``[velocity_low, velocity_high]`` (m/s).
        velocity_high: Upper end of that interval (m/s).
    """

    velocity_low: float = 0.0
    velocity_high: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_interval("velocity_low", self.velocity_low, "velocity_high", self.velocity_high, _VELOCITY_LIMIT)


@dataclasses.dataclass(frozen=True)
class HalfCheetahDirOptions(LocomotionOptions):
    """HalfCheetahDir options; see :class:`LocomotionOptions`."""


@dataclasses.dataclass(frozen=True)
class AntOptions(LocomotionOptions):
    """Options shared by the Ant families; see :class:`LocomotionOptions`.

    Attributes:
        contact_cost_weight: Weight of ``contact = −w Σ clip(cfrc_ext, −1, 1)²``.
        survive_reward: The ``survive`` term while healthy.
        healthy_z_min: Lowest healthy torso height (m).
        healthy_z_max: Highest healthy torso height (m).
        terminate_when_unhealthy: Whether an unhealthy state ends the episode.
        include_cfrc_ext_in_observation: Whether the clipped contact forces are observed.
    """

    ctrl_cost_weight: float = 0.005
    contact_cost_weight: float = 5e-4
    survive_reward: float = 0.05
    healthy_z_min: float = 0.2
    healthy_z_max: float = 1.0
    terminate_when_unhealthy: bool = True
    include_cfrc_ext_in_observation: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_finite_range("family.contact_cost_weight", self.contact_cost_weight, 0.0, None)
        check_finite_range("family.survive_reward", self.survive_reward, None, None)
        _check_interval("healthy_z_min", self.healthy_z_min, "healthy_z_max", self.healthy_z_max, 100.0)


@dataclasses.dataclass(frozen=True)
class AntVelOptions(AntOptions):
    """AntVel options; see :class:`AntOptions`.

    Attributes:
        velocity_low: Goal velocities are uniform in ``[velocity_low, velocity_high]`` (m/s).
        velocity_high: Upper end of that interval (m/s).
    """

    velocity_low: float = 0.0
    velocity_high: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_interval("velocity_low", self.velocity_low, "velocity_high", self.velocity_high, _VELOCITY_LIMIT)


@dataclasses.dataclass(frozen=True)
class AntDirOptions(AntOptions):
    """AntDir options; see :class:`AntOptions`."""


@dataclasses.dataclass(frozen=True)
class AntGoalOptions(AntOptions):
    """AntGoal options; see :class:`AntOptions`.

    Attributes:
        goal_radius: Goals are uniform in the disc of this radius around the origin (m).
    """

    goal_radius: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_finite_range("family.goal_radius", self.goal_radius, 0.0, _GOAL_LIMIT, low_open=True)


@dataclasses.dataclass(frozen=True)
class RandParamsOptions(LocomotionOptions):
    """Options of the random-parameter families; see :class:`LocomotionOptions`.

    Attributes:
        healthy_reward: The ``healthy`` term while healthy.
        terminate_when_unhealthy: Whether an unhealthy state ends the episode.
        log_scale_limit: Scales are ``1.5^u`` with ``u`` uniform in ``[−limit, limit]``, limit ≤ 3.
    """

    frame_skip: int = 4
    reset_noise_scale: float = 5e-3
    ctrl_cost_weight: float = 1e-3
    ctrl_cost_on_clipped: bool = False  # gymnasium v5's reward, as ProMP's rand_param_envs (gym) charge it
    healthy_reward: float = 1.0
    terminate_when_unhealthy: bool = True
    log_scale_limit: float = _MAX_LOG_SCALE

    def __post_init__(self) -> None:
        super().__post_init__()
        check_finite_range("family.healthy_reward", self.healthy_reward, None, None)
        check_finite_range("family.log_scale_limit", self.log_scale_limit, 0.0, _MAX_LOG_SCALE)


@dataclasses.dataclass(frozen=True)
class Walker2dParamsOptions(RandParamsOptions):
    """Walker2dParams options; see :class:`RandParamsOptions`."""


@dataclasses.dataclass(frozen=True)
class HopperParamsOptions(RandParamsOptions):
    """HopperParams options; see :class:`RandParamsOptions`."""


# --------------------------------------------------------------------------------------------
# Robots
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Robot:
    """What a family needs to know about a gymnasium MuJoCo model.

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


HALF_CHEETAH = Robot("half_cheetah.xml", "torso", 1, False, None, True, False, 3.5)
ANT = Robot("ant.xml", "torso", 2, True, None, True, True, 5.0)
WALKER2D = Robot("walker2d_v5.xml", "torso", 1, False, 10.0, False, False, 3.5)
HOPPER = Robot("hopper.xml", "torso", 1, False, 10.0, False, False, 3.0)


@functools.cache
def robot_model(robot: Robot) -> mujoco.MjModel:
    """The compiled model of a robot (built once per process; never modified)."""
    return load_gymnasium_model(robot.xml, robot.torso if robot.contact_forces else None)


# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------


class Move(NamedTuple):
    """What the reward of one batched step depends on.

    Attributes:
        velocity: ``[B, 2]`` torso velocity in the plane over the step (m/s).
        xy: ``[B, 2]`` torso position after the step (m).
        action: ``[B, act_dim]`` actions as given.
        goal: ``[B, k]`` the tasks as numbers (:meth:`LocomotionFamily.goal_array`).
        physics: The batch after the step (contact forces).
    """

    velocity: np.ndarray
    xy: np.ndarray
    action: np.ndarray
    goal: np.ndarray
    physics: PhysicsBatch


class LocomotionFamily(FlatTaskFamily):
    """Shared machinery of the locomotion families; see the module docstring.

    Subclasses set ``robot``, ``name``, ``task_type``, ``options_type`` and implement the task
    hooks (:meth:`goal_array`, :meth:`reward_terms`, sampling).
    """

    robot: ClassVar[Robot]
    options_type: ClassVar[type[LocomotionOptions]]
    test_tasks_held_out: ClassVar[bool] = True
    """Whether ``sample_tasks`` never draws a test task (False for the ±1 direction families)."""

    def __init__(self, options: LocomotionOptions | None = None):
        self.options = options if options is not None else self.options_type()
        if not isinstance(self.options, self.options_type):
            raise TaskError(f"{self.name} options must be {self.options_type.__name__}, got {options!r}")
        self.horizon = int(self.options.horizon)
        self.model = robot_model(self.robot)
        self.control_dt = float(self.model.opt.timestep) * int(self.options.frame_skip)
        high = np.full(self.obs_dim, np.inf)
        self.observation_space = spaces.Box(-high, high, dtype=np.float64)
        ctrl_range = self.model.actuator_ctrlrange
        self.action_space = spaces.Box(ctrl_range[:, 0].copy(), ctrl_range[:, 1].copy(), dtype=np.float64)

    @property
    def obs_dim(self) -> int:
        """Size of one observation."""
        return int(self.model.nq - self.robot.skip_qpos + self.model.nv)

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> LocomotionBatchEnv:
        return LocomotionBatchEnv(self, num_envs, num_threads)

    # ---- hooks -------------------------------------------------------------------------------

    def check_task(self, task: Task) -> None:
        """Raises :class:`TaskError` unless ``task`` belongs to this family."""
        if not isinstance(task, self.task_type):
            raise TaskError(f"task {task!r} is not a {self.task_type.__name__}")

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        """The tasks as numbers, ``[B, k]`` (goal velocity, direction or goal position)."""
        raise NotImplementedError

    def apply_tasks(self, physics: PhysicsBatch, tasks: Sequence[Task]) -> None:
        """Writes task-dependent model parameters into the batch (random-parameter families)."""

    def observe(self, physics: PhysicsBatch) -> np.ndarray:
        """``[B, obs_dim]`` observations of the current state."""
        qvel = physics.qvel
        if self.robot.qvel_clip is not None:
            qvel = np.clip(qvel, -self.robot.qvel_clip, self.robot.qvel_clip)
        return np.concatenate([physics.qpos[:, self.robot.skip_qpos :], qvel], axis=1)

    def healthy(self, physics: PhysicsBatch) -> np.ndarray:
        """``[B]`` bool, whether each state is healthy (always, for robots that cannot fall)."""
        return np.ones(physics.num_envs, dtype=bool)

    @property
    def terminate_when_unhealthy(self) -> bool:
        """Whether an unhealthy state ends the episode."""
        return False

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        """Named reward terms of one step, each ``[B]``."""
        raise NotImplementedError

    def control_cost(self, action: np.ndarray) -> np.ndarray:
        """``[B]`` control term ``−w‖a‖²``, on ``clip(a, low, high)`` with ``ctrl_cost_on_clipped``."""
        if self.options.ctrl_cost_on_clipped:
            action = np.clip(action, self.action_space.low, self.action_space.high)
        cost: np.ndarray = -self.options.ctrl_cost_weight * np.sum(np.square(action), axis=1)
        return cost

    # ---- shared task plumbing ----------------------------------------------------------------

    def validation_tasks(self) -> list[Task]:
        """``sample_tasks`` from the fixed validation seed, as many as the test tasks (see the module
        docstring); the direction families' are their test tasks, the whole task space."""
        if not self.test_tasks_held_out:
            return self.test_tasks()
        return self.sample_tasks(self.options.num_test_tasks, np.random.default_rng(_VALIDATION_SEED))

    def _held_out(self, draw: Any) -> list[Task]:
        """Draws the fixed test tasks with ``draw(n, rng)`` from the fixed seed."""
        tasks: list[Task] = draw(self.options.num_test_tasks, np.random.default_rng(_TEST_SEED))
        return tasks

    def _draw_avoiding(self, n: int, rng: np.random.Generator, draw: Any, test: Sequence[Task]) -> list[Task]:
        """Draws ``n`` tasks with ``draw``, redrawing any that equals a held-out task."""
        check_finite_range("n", n, 0, None)
        held_out = set(test)
        tasks: list[Task] = draw(int(n), rng)
        for i, task in enumerate(tasks):
            while task in held_out:  # measure zero, but the held-out set must stay held out
                task = draw(1, rng)[0]
            tasks[i] = task
        return tasks


class _VelocityMixin(LocomotionFamily):
    """Goal-velocity task sampling (uniform in an interval, held-out set from a fixed seed)."""

    task_type: ClassVar[type[VelocityTask]]

    def __init__(self, options: LocomotionOptions | None = None):
        super().__init__(options)
        self._test = self._held_out(self._draw)

    def _interval(self) -> tuple[float, float]:
        """The goal-velocity interval ``(low, high)`` of the options (m/s)."""
        options = self.options
        assert isinstance(options, (HalfCheetahVelOptions, AntVelOptions))
        return float(options.velocity_low), float(options.velocity_high)

    def _draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        low, high = self._interval()
        return [self.task_type(goal_velocity=float(v)) for v in rng.uniform(low, high, size=n)]

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self._draw_avoiding(n, rng, self._draw, self._test)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def task_space(self) -> dict[str, str]:
        low, high = self._interval()
        return {"goal_velocity": f"uniform in {describe_range(low, high)} m/s"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[cast(VelocityTask, task).goal_velocity] for task in tasks], dtype=np.float64)


class _DirectionMixin(LocomotionFamily):
    """Direction task sampling: ±1, balanced within a draw; the test set is both directions."""

    task_type: ClassVar[type[DirectionTask]]
    test_tasks_held_out: ClassVar[bool] = False  # two tasks only: training sees both

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_finite_range("n", n, 0, None)
        n = int(n)
        directions = [1] * (n // 2) + [-1] * (n // 2)
        if n % 2:
            directions.append(int(rng.choice([-1, 1])))
        return [self.task_type(direction=int(d)) for d in rng.permutation(directions)]

    def test_tasks(self) -> list[Task]:
        return [self.task_type(direction=1), self.task_type(direction=-1)]

    def task_space(self) -> dict[str, str]:
        return {"direction": "-1 (backward) or 1 (forward), equally often; the test tasks are both, seen in training"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[cast(DirectionTask, task).direction] for task in tasks], dtype=np.float64)


class _AntMixin(LocomotionFamily):
    """The Ant robot: contact forces, health check, MAML's survive/contact terms."""

    robot: ClassVar[Robot] = ANT
    options: AntOptions

    @property
    def obs_dim(self) -> int:
        extra = 6 * (self.model.nbody - 1) if self.options.include_cfrc_ext_in_observation else 0
        return int(self.model.nq - 2 + self.model.nv + extra)

    def observe(self, physics: PhysicsBatch) -> np.ndarray:
        obs = super().observe(physics)
        if not self.options.include_cfrc_ext_in_observation:
            return obs
        forces = np.clip(physics.output("cfrc_ext")[:, 1:], -1.0, 1.0).reshape(physics.num_envs, -1)
        return np.concatenate([obs, forces], axis=1)

    def healthy(self, physics: PhysicsBatch) -> np.ndarray:
        finite = np.isfinite(physics.qpos).all(axis=1) & np.isfinite(physics.qvel).all(axis=1)
        z = physics.qpos[:, 2]
        ok: np.ndarray = finite & (self.options.healthy_z_min <= z) & (z <= self.options.healthy_z_max)
        return ok

    @property
    def terminate_when_unhealthy(self) -> bool:
        return bool(self.options.terminate_when_unhealthy)

    def ant_terms(self, move: Move) -> dict[str, np.ndarray]:
        """The ``control``, ``contact`` and ``survive`` terms (``survive`` is zeroed later if unhealthy)."""
        forces = np.clip(move.physics.output("cfrc_ext"), -1.0, 1.0)
        contact = -self.options.contact_cost_weight * np.sum(np.square(forces), axis=(1, 2))
        survive = np.full(len(forces), float(self.options.survive_reward))
        return {"control": self.control_cost(move.action), "contact": contact, "survive": survive}


class HalfCheetahVel(_VelocityMixin):
    """HalfCheetah running at a goal velocity; see the module docstring."""

    name: ClassVar[str] = "HalfCheetahVel"
    task_type: ClassVar[type[VelocityTask]] = HalfCheetahVelTask
    options_type: ClassVar[type[LocomotionOptions]] = HalfCheetahVelOptions
    robot: ClassVar[Robot] = HALF_CHEETAH

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {
            "velocity": -np.abs(move.velocity[:, 0] - move.goal[:, 0]),
            "control": self.control_cost(move.action),
        }


class HalfCheetahDir(_DirectionMixin):
    """HalfCheetah running forward or backward; see the module docstring."""

    name: ClassVar[str] = "HalfCheetahDir"
    task_type: ClassVar[type[DirectionTask]] = HalfCheetahDirTask
    options_type: ClassVar[type[LocomotionOptions]] = HalfCheetahDirOptions
    robot: ClassVar[Robot] = HALF_CHEETAH

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"velocity": move.goal[:, 0] * move.velocity[:, 0], "control": self.control_cost(move.action)}


class AntVel(_AntMixin, _VelocityMixin):
    """Ant walking at a goal velocity; see the module docstring."""

    name: ClassVar[str] = "AntVel"
    task_type: ClassVar[type[VelocityTask]] = AntVelTask
    options_type: ClassVar[type[LocomotionOptions]] = AntVelOptions

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"velocity": 1.0 - np.abs(move.velocity[:, 0] - move.goal[:, 0]), **self.ant_terms(move)}


class AntDir(_AntMixin, _DirectionMixin):
    """Ant walking forward or backward; see the module docstring."""

    name: ClassVar[str] = "AntDir"
    task_type: ClassVar[type[DirectionTask]] = AntDirTask
    options_type: ClassVar[type[LocomotionOptions]] = AntDirOptions

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"velocity": move.goal[:, 0] * move.velocity[:, 0], **self.ant_terms(move)}


class AntGoal(_AntMixin, LocomotionFamily):
    """Ant walking to a goal position; see the module docstring."""

    name: ClassVar[str] = "AntGoal"
    task_type: ClassVar[type[Task]] = AntGoalTask
    options_type: ClassVar[type[LocomotionOptions]] = AntGoalOptions
    options: AntGoalOptions

    def __init__(self, options: LocomotionOptions | None = None):
        super().__init__(options)
        self._test = self._held_out(self._draw)

    def _draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        angle = rng.uniform(0.0, 2.0 * math.pi, size=n)
        radius = self.options.goal_radius * np.sqrt(rng.uniform(0.0, 1.0, size=n))  # uniform in the disc
        return [
            AntGoalTask(goal=(float(x), float(y)))
            for x, y in zip(radius * np.cos(angle), radius * np.sin(angle), strict=True)
        ]

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self._draw_avoiding(n, rng, self._draw, self._test)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def task_space(self) -> dict[str, str]:
        return {"goal": f"x, y uniform in the disc of radius {self.options.goal_radius:g} m around the origin"}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([cast(AntGoalTask, task).goal for task in tasks], dtype=np.float64)

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        return {"goal": 4.0 - np.sum(np.abs(move.xy - move.goal), axis=1), **self.ant_terms(move)}


class RandParamsFamily(LocomotionFamily):
    """Walker2d/Hopper with random physical parameters (gymnasium v5 reward and health check)."""

    options: RandParamsOptions
    task_type: ClassVar[type[RandParamsTask]]

    def __init__(self, options: LocomotionOptions | None = None):
        super().__init__(options)
        sizes = self.task_type.sizes
        model = self.model
        actual = {
            "body_mass": model.nbody - 1,
            "body_inertia": 3 * (model.nbody - 1),
            "dof_damping": model.nv,
            "geom_friction": 3 * model.ngeom,
        }
        if actual != sizes:  # a different gymnasium model than the one the task was written for
            raise TaskError(f"{self.name}: model {self.robot.xml} has sizes {actual}, tasks expect {sizes}")
        self._test = self._held_out(self._draw)

    def _draw(self, n: int, rng: np.random.Generator) -> list[Task]:
        sizes: dict[str, int] = self.task_type.sizes
        limit = self.options.log_scale_limit
        tasks: list[Task] = []
        for _ in range(n):
            u = rng.uniform(-limit, limit, size=sum(sizes.values()))
            scales = np.clip(_PARAM_BASE**u, _SCALE_LOW, _SCALE_HIGH)
            parts = np.split(scales, np.cumsum(list(sizes.values()))[:-1])
            tasks.append(self.task_type(**{k: tuple(map(float, p)) for k, p in zip(sizes, parts, strict=True)}))
        return tasks

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self._draw_avoiding(n, rng, self._draw, self._test)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def task_space(self) -> dict[str, str]:
        limit = self.options.log_scale_limit
        law = f"scales 1.5^u, u uniform in {describe_range(-limit, limit)}"
        sizes: dict[str, int] = self.task_type.sizes
        return {name: f"{size} {law}" for name, size in sizes.items()}

    def goal_array(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.zeros((len(tasks), 0))

    def apply_tasks(self, physics: PhysicsBatch, tasks: Sequence[Task]) -> None:
        per_task = [cast(RandParamsTask, task).scales() for task in tasks]
        physics.scale_parameters({name: np.stack([s[name] for s in per_task]) for name in per_task[0]})

    @property
    def terminate_when_unhealthy(self) -> bool:
        return bool(self.options.terminate_when_unhealthy)

    def reward_terms(self, move: Move) -> dict[str, np.ndarray]:
        healthy = np.full(len(move.xy), float(self.options.healthy_reward))
        return {
            "forward": move.velocity[:, 0].copy(),
            "healthy": healthy,
            "control": self.control_cost(move.action),
        }


class Walker2dParams(RandParamsFamily):
    """Walker2d with random masses, inertias, damping and friction; see the module docstring."""

    name: ClassVar[str] = "Walker2dParams"
    task_type: ClassVar[type[RandParamsTask]] = Walker2dParamsTask
    options_type: ClassVar[type[LocomotionOptions]] = Walker2dParamsOptions
    robot: ClassVar[Robot] = WALKER2D

    def healthy(self, physics: PhysicsBatch) -> np.ndarray:
        z, angle = physics.qpos[:, 1], physics.qpos[:, 2]
        ok: np.ndarray = (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)
        return ok


class HopperParams(RandParamsFamily):
    """Hopper with random masses, inertias, damping and friction; see the module docstring."""

    name: ClassVar[str] = "HopperParams"
    task_type: ClassVar[type[RandParamsTask]] = HopperParamsTask
    options_type: ClassVar[type[LocomotionOptions]] = HopperParamsOptions
    robot: ClassVar[Robot] = HOPPER

    def healthy(self, physics: PhysicsBatch) -> np.ndarray:
        z, angle = physics.qpos[:, 1], physics.qpos[:, 2]
        state = np.concatenate([physics.qpos[:, 2:], physics.qvel], axis=1)
        in_range = ((state > -100.0) & (state < 100.0)).all(axis=1)
        ok: np.ndarray = in_range & (z > 0.7) & (angle > -0.2) & (angle < 0.2)
        return ok


# --------------------------------------------------------------------------------------------
# The batched environment
# --------------------------------------------------------------------------------------------


class LocomotionBatchEnv:
    """``B`` environments of one locomotion family, stepped by one ``mujoco.batch.Batch`` call.

    Implements :class:`metarl.envs.base.BatchEnv`; see the module docstring for the semantics.
    """

    def __init__(self, family: LocomotionFamily, num_envs: int, num_threads: int = 1):
        check_finite_range("num_envs", num_envs, 1, None)
        check_finite_range("num_threads", num_threads, 1, 1024)
        self.family = family
        self.num_envs = int(num_envs)
        outputs = ["xpos"] + (["cfrc_ext"] if family.robot.contact_forces else [])
        self._physics = PhysicsBatch(
            family.model, self.num_envs, int(num_threads), int(family.options.frame_skip), outputs
        )
        self._tasks: list[Task] | None = None
        self._applied: list[Task] | None = None
        self._goal = np.zeros((self.num_envs, 0))
        self._xy = np.zeros((self.num_envs, 2))
        self._done = np.ones(self.num_envs, dtype=bool)  # nothing runs before the first reset
        self._camera = tracking_camera(1, family.robot.camera_distance)

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        if len(tasks) != self.num_envs:
            raise TaskError(f"got {len(tasks)} tasks for {self.num_envs} environments")
        for task in tasks:
            self.family.check_task(task)
        self._tasks = list(tasks)

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        if len(rngs) != self.num_envs:
            raise ValueError(f"got {len(rngs)} generators for {self.num_envs} environments")
        if self._tasks is None:
            raise TaskError(f"{self.family.name}: call set_tasks before reset")
        if self._applied != self._tasks:
            self.family.apply_tasks(self._physics, self._tasks)
            self._applied = list(self._tasks)
        self._goal = self.family.goal_array(self._tasks)
        qpos, qvel = self._initial_state(rngs)
        self._physics.reset(qpos, qvel)
        self._xy = self._torso_xy()
        self._done = np.zeros(self.num_envs, dtype=bool)
        return self.family.observe(self._physics)

    def _initial_state(self, rngs: Sequence[np.random.Generator]) -> tuple[np.ndarray, np.ndarray]:
        """``[B, nq]`` and ``[B, nv]`` noisy initial states, drawn in gymnasium's order."""
        model, scale = self.family.model, self.family.options.reset_noise_scale
        qpos = np.empty((self.num_envs, model.nq))
        qvel = np.empty((self.num_envs, model.nv))
        for i, rng in enumerate(rngs):
            qpos[i] = model.qpos0 + rng.uniform(-scale, scale, size=model.nq)
            if self.family.robot.normal_qvel_noise:
                qvel[i] = scale * rng.standard_normal(model.nv)
            else:
                qvel[i] = rng.uniform(-scale, scale, size=model.nv)
        return qpos, qvel

    def _torso_xy(self) -> np.ndarray:
        """``[B, 2]`` torso position in the plane (``y = 0`` for the planar robots)."""
        if self.family.robot.xy_from_xpos:
            return np.array(self._physics.output("xpos")[:, 1, :2])
        xy = np.zeros((self.num_envs, 2))
        xy[:, 0] = self._physics.qpos[:, 0]
        return xy

    def step(self, action: np.ndarray) -> StepResult:
        family = self.family
        action = np.asarray(action, dtype=np.float64).reshape(self.num_envs, family.model.nu)
        active = ~self._done
        unstable = self._physics.step(action, active)
        xy = self._torso_xy()
        velocity = (xy - self._xy) / family.control_dt
        healthy = family.healthy(self._physics) & ~unstable
        terms = family.reward_terms(Move(velocity, xy, action, self._goal, self._physics))
        for survival in ("survive", "healthy"):
            if survival in terms:
                terms[survival] = np.where(healthy, terms[survival], 0.0)
        stepped = active & ~unstable
        if not stepped.all():
            terms = {name: np.where(stepped, value, 0.0) for name, value in terms.items()}
            xy = np.where(stepped[:, None], xy, self._xy)
        ended = (unstable | ~healthy) if family.terminate_when_unhealthy else unstable
        self._done |= active & ended
        self._xy = xy
        values = list(terms.values())
        reward = values[0].copy()
        for value in values[1:]:
            reward += value
        return StepResult(
            obs=family.observe(self._physics),
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


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def _spec(family: type[LocomotionFamily], summary: str) -> FamilySpec:
    return FamilySpec(name=family.name, options_type=family.options_type, factory=family, summary=summary)


FAMILY_SPECS: list[FamilySpec] = [
    _spec(HalfCheetahVel, "half-cheetah runs at a goal velocity in [0, 2] m/s (MAML paper)"),
    _spec(HalfCheetahDir, "half-cheetah runs forward or backward (MAML paper)"),
    _spec(AntVel, "ant walks at a goal velocity in [0, 3] m/s (MAML paper)"),
    _spec(AntDir, "ant walks forward or backward (MAML paper)"),
    _spec(AntGoal, "ant walks to a goal in the disc of radius 3 m (MAML/ProMP)"),
    _spec(Walker2dParams, "walker2d with random masses, inertias, damping and friction (ProMP rand_param)"),
    _spec(HopperParams, "hopper with random masses, inertias, damping and friction (ProMP rand_param)"),
]
