"""The locomotion families: each one robot and one task kind, composed.

=================  ============  ==================  ==========================================
Family             Robot         Kind                Reward terms (summed, in this order)
=================  ============  ==================  ==========================================
HalfCheetahVel     HalfCheetah   Velocity [0, 2]     ``velocity = −|v_x − v_goal|``, ``control``
HalfCheetahDir     HalfCheetah   Direction           ``velocity = direction·v_x``, ``control``
AntVel             Ant           Velocity [0, 3]     ``velocity = 1 − |v_x − v_goal|``,
                                                     ``control``, ``contact``, ``survive``
AntDir             Ant           Direction           ``velocity``, ``control``, ``contact``, ``survive``
AntGoal            Ant           Goal, radius 3 m    ``goal = 4 − ‖xy − goal‖₁``, ``control``,
                                                     ``contact``, ``survive``
Walker2dParams     Walker2d      RandomPhysics       ``forward = v_x``, ``healthy``, ``control``
HopperParams       Hopper        RandomPhysics       as Walker2dParams
=================  ============  ==================  ==========================================

The robots (observations, health, their reward terms) are in :mod:`~metarl.envs.locomotion.robots`,
the task kinds (task spaces, held-out and validation sets, their reward term) in
:mod:`~metarl.envs.locomotion.kinds`. A family is one line here (:func:`compose`): its name, its
robot, its options class (:mod:`~metarl.envs.locomotion.options`) and the kind its options make;
and one line in :data:`FAMILY_SPECS`, which registers it.

The reward constants are those of the MAML paper's code (Finn et al. 2017: cbfinn/maml_rl's
rllab ``HalfCheetahEnvRand``, ``HalfCheetahEnvRandDirec``, ``AntEnvRand``, ``AntEnvRandDirec``,
``AntEnvRandGoal``, carried over by pytorch-maml-rl). AntGoal is in that code but not among the
paper's experiments. What still differs from the paper (control step, models, observations,
velocity, initial states, policy, curvature) is listed in one place, the README's section
"Differences from the MAML paper". The random-parameter families are the ``rand_param_envs``
family of ProMP (Rothfuss et al. 2019) with gymnasium v5's reward, health checks and
observations. The weights are options (``family:`` section of a config), except the constant
offsets (+1 in AntVel, +4 in AntGoal) and the Walker2d/Hopper health ranges.

Episodes: horizon 200 control steps for every family (an option). ``frame_skip`` is gymnasium's:
5 for HalfCheetah and Ant (``dt = 0.05`` s), 4 for Walker2d and Hopper (``dt = 0.008`` s); ``dt``
is the family's ``control_dt``, and the gymnasium view's ``metadata["render_fps"]`` is ``1 / dt``.

Version history: v0, first release (gymnasium 1.x models, MuJoCo 4); before the release the
HalfCheetah and Ant families' control cost moved to the clipped action (the MAML paper's code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces

from metarl.envs.base import TEST_SEED, VALIDATION_SEED, FlatTaskFamily, Task, TaskError, check_finite_range
from metarl.envs.locomotion.env import LocomotionBatchEnv
from metarl.envs.locomotion.kinds import Direction, Goal, RandomPhysics, TaskKind, Velocity
from metarl.envs.locomotion.options import (
    AntDirOptions,
    AntGoalOptions,
    AntVelOptions,
    HalfCheetahDirOptions,
    HalfCheetahVelOptions,
    HopperParamsOptions,
    LocomotionOptions,
    RandParamsOptions,
    VelocityRange,
    Walker2dParamsOptions,
)
from metarl.envs.locomotion.robots import ANT, HALF_CHEETAH, HOPPER, WALKER2D, Robot
from metarl.envs.locomotion.tasks import (
    AntDirTask,
    AntVelTask,
    DirectionTask,
    HalfCheetahDirTask,
    HalfCheetahVelTask,
    HopperParamsTask,
    RandParamsTask,
    VelocityTask,
    Walker2dParamsTask,
)
from metarl.envs.registry import FamilySpec


class LocomotionFamily(FlatTaskFamily):
    """A robot and a task kind; the task plumbing every locomotion family shares.

    The families are made by :func:`compose`: each class only names itself, its robot, its
    options class and how its options make its task kind.
    """

    robot: ClassVar[Robot[Any]]
    options_type: ClassVar[type[LocomotionOptions]]
    make_kind: ClassVar[Callable[[Any], TaskKind]]

    def __init__(self, options: LocomotionOptions | None = None):
        self.options = options if options is not None else self.options_type()
        if not isinstance(self.options, self.options_type):
            raise TaskError(f"{self.name} options must be {self.options_type.__name__}, got {options!r}")
        self.kind = type(self).make_kind(self.options)
        self.task_type = self.kind.task_type
        self.horizon = int(self.options.horizon)
        self.model = self.robot.model()
        self.kind.check_model(self.model, f"{self.name}: model {self.robot.xml}")
        self.control_dt = float(self.model.opt.timestep) * int(self.options.frame_skip)
        high = np.full(self.robot.obs_dim(self.options), np.inf)
        self.observation_space = spaces.Box(-high, high, dtype=np.float64)
        ctrl_range = self.model.actuator_ctrlrange
        self.action_space = spaces.Box(ctrl_range[:, 0].copy(), ctrl_range[:, 1].copy(), dtype=np.float64)
        if self.kind.space is not None:
            self._test = self.kind.tasks()
        else:
            self._test = self.kind.draw(self.options.num_test_tasks, np.random.default_rng(TEST_SEED))

    @property
    def test_tasks_held_out(self) -> bool:
        """Whether ``sample_tasks`` never draws a test task (False for the ±1 direction families)."""
        return self.kind.space is None

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_finite_range("n", n, 0, None)
        tasks = self.kind.draw(int(n), rng)
        if self.kind.space is None:
            held_out = set(self._test)
            for i, task in enumerate(tasks):
                while task in held_out:  # measure zero, but the held-out set must stay held out
                    task = self.kind.draw(1, rng)[0]
                tasks[i] = task
        return tasks

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def validation_tasks(self) -> list[Task]:
        """``sample_tasks`` from the fixed validation seed, as many as the test tasks; the direction
        families' are their test tasks, the whole task space (see :mod:`~metarl.envs.locomotion.kinds`)."""
        if self.kind.space is not None:
            return self.test_tasks()
        return self.sample_tasks(self.options.num_test_tasks, np.random.default_rng(VALIDATION_SEED))

    def task_space(self) -> dict[str, str]:
        return self.kind.task_space()

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> LocomotionBatchEnv:
        return LocomotionBatchEnv(self.name, self.robot, self.kind, self.options, num_envs, num_threads)


def compose(
    name: str, robot: Robot[Any], options_type: type[LocomotionOptions], kind: Callable[[Any], TaskKind]
) -> type[LocomotionFamily]:
    """The family class of ``robot`` doing the tasks of ``kind(options)``, options of ``options_type``."""
    namespace = {
        "name": name,
        "robot": robot,
        "options_type": options_type,
        "make_kind": staticmethod(kind),
        "__doc__": f"The {name} family: the robot of {robot.xml} and the task kind its options make; see {__name__}.",
        "__module__": __name__,
        "__qualname__": name,
    }
    return cast(type[LocomotionFamily], type(name, (LocomotionFamily,), namespace))


def velocity(task_type: type[VelocityTask], offset: float = 0.0) -> Callable[[VelocityRange], TaskKind]:
    """The goal-velocity kind over the options' ``[velocity_low, velocity_high]``."""
    return lambda options: Velocity(task_type, options.velocity_low, options.velocity_high, offset)


def direction(task_type: type[DirectionTask]) -> Callable[[LocomotionOptions], TaskKind]:
    """The ±1 direction kind."""
    return lambda options: Direction(task_type)


def goal(options: AntGoalOptions) -> TaskKind:
    """The goal-position kind in the disc of the options' ``goal_radius``."""
    return Goal(options.goal_radius)


def random_physics(task_type: type[RandParamsTask]) -> Callable[[RandParamsOptions], TaskKind]:
    """The random-physics kind with the options' ``log_scale_limit``."""
    return lambda options: RandomPhysics(task_type, options.log_scale_limit)


HalfCheetahVel = compose("HalfCheetahVel", HALF_CHEETAH, HalfCheetahVelOptions, velocity(HalfCheetahVelTask))
HalfCheetahDir = compose("HalfCheetahDir", HALF_CHEETAH, HalfCheetahDirOptions, direction(HalfCheetahDirTask))
AntVel = compose("AntVel", ANT, AntVelOptions, velocity(AntVelTask, offset=1.0))
AntDir = compose("AntDir", ANT, AntDirOptions, direction(AntDirTask))
AntGoal = compose("AntGoal", ANT, AntGoalOptions, goal)
Walker2dParams = compose("Walker2dParams", WALKER2D, Walker2dParamsOptions, random_physics(Walker2dParamsTask))
HopperParams = compose("HopperParams", HOPPER, HopperParamsOptions, random_physics(HopperParamsTask))


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
