"""GraspObject: a parallel-jaw gripper lifts a long object, level, without knowing where its mass is.

Every object lies along the table's x axis, across the gripper's jaws, and is longer than the open
gripper is wide. Where along it the hand must pinch depends on the object: pinched away from its
centre of mass, it turns in the grip under its own weight (the squeeze is a realistic 2.25 N per
finger on narrow fingertips, held by friction alone) and hangs tilted. The policy never sees the
shape, the mass or where the mass is: only its own hand and fingers, whether each pad touches, and
one tracked point of the object (the centre of its bounding box: where it lies on the table and how
far it has risen). The right pinch point must be found from the reward of a few rollouts, as the
goal is in 2-D navigation. A scripted controller that reads the object's specification lifts nearly
every object; one that reads only the observation cannot (``metarl.envs.grasping.controllers``).

=================  ====================================================================  ========
Observation        Meaning                                                               Unit
=================  ====================================================================  ========
``obs[0:3]``       pinch point (between the finger pads) x, y, z; table centre at 0      m
``obs[3:5]``       left, right finger position (half-gap between the pads)               m
``obs[5:8]``       pinch point velocity                                                  m/s
``obs[8:10]``      finger velocities                                                     m/s
``obs[10:12]``     tracked point x, y relative to the pinch point                        m
``obs[12]``        tracked point height above where it rests                             m
``obs[13:16]``     tracked point velocity                                                m/s
``obs[16:18]``     left, right pad touches the object (0 or 1; from the last substep)    1
=================  ====================================================================  ========

=================  ====================================================================  ========
Action             Meaning                                                               Range
=================  ====================================================================  ========
``act[0:2]``       where the pinch point should go, x and y relative to the tracked      [-1, 1]
                   point: ``act * 0.1`` m
``act[2]``         pinch height to go to, from the lowest (-1, 0.022 m) to 0.2 m (+1)     [-1, 1]
``act[3]``         grip: each finger's target runs linearly from open (-1) to 2 cm past   [-1, 1]
                   closed (+1), so +1 squeezes with the full ``grip_force`` (2.25 N)
=================  ====================================================================  ========

The hand's position target moves towards the commanded point by at most 4 cm per step along each
axis (0.5 m/s) and reaches the actuators through a 40 ms first-order filter (a new command does not
jerk the hand, so a light grip keeps a heavy object), within the workspace (x, y in [-0.2, 0.2] m, pinch
height in [0.022, 0.35] m). One control step is 10 physics steps of 8 ms (12.5 Hz); an episode
is truncated after ``horizon`` = 30 steps (2.4 s): time for one grasp, not for a probe and a re-grasp
followed by the 0.8 s hold that success asks for.

Reward, the sum of four named terms (in ``info``), per step:

* ``reach`` = ``0.5 (1 - tanh(10 d))``, ``d`` the distance (m) from the pinch point to the
  object's bounding box (0 inside it);
* ``grasp`` = 0.5 while both pads touch the object;
* ``lift`` = ``clip(h / 0.05, 0, 1)`` while both pads touch it, ``h`` the rise (m) of its centre
  of mass (0.05 m is ``family.lift_rise``);
* ``level`` = ``2 clip(1 - tilt / 30°, 0, 1)`` while both pads touch it and ``h >= 0.05``,
  ``tilt`` the angle of its long axis (x) out of the horizontal (30° is ``family.level_tilt``);
* ``action`` = ``-0.005 ‖act‖²``.

``success`` is decided at the last step of the episode: for the last 10 steps (0.8 s) both pads
have touched the object with its centre of mass at least 5 cm above where it rested, and it is
within 15° of level. Episodes terminate only on physics instability (NaN/Inf
state or a MuJoCo warning), with ``info["physics_unstable"]``.

Physics: a pad-object contact has the friction ``sqrt(object friction x pad_friction)`` (pads
1.2), the object-table contact the object's own; contacts are 4-dimensional (torsional friction)
in an elliptic cone with ``impratio`` 10, the settings MuJoCo recommends for grasping: with its
default (pyramidal, 1) an off-centre grip creeps on and on, so that putting the object down and
lifting it again paid better than holding it. Here it turns until the grip's friction balances the
weight's torque, within about 0.3 s of lifting: a 0.3 kg bar pinched 1 cm from its centre of mass
settles at about 2°, 1.5 cm away at 16°, 2 cm away at 30°, 3 cm away at 55°.

Task space: an :class:`~metarl.envs.grasping.objects.ObjectSpec` lying along x. Training draws
boxes and lying capsules 14-24 cm long with a hidden weight (centre of mass up to 30 % of the
length from the middle), hammers and dumbbells, each laid either way round (yaw 0° or 180°); the
held-out test set holds shapes never trained on (bottles, mallets, octagonal mesh bars) and other
proportions. Reset noise (the env's generator): object x, y uniform in ±3 cm and yaw in ±3°;
hand x, y in ±3 cm, height in ±1 cm around 9 cm above the table.

Version history: v0, first version (any-shape objects, yaw, full object pose observed, 50 Hz);
v1, long objects whose centre of mass is the task, observation without the object's pose,
12.5 Hz.

The module is past 500 lines because the family and its batch env are one contract (the task, its
options, the action, observation, reward and success read together); the scene, the physics, the
objects and the scripted controllers are already apart. :class:`ModelCache` is the part to move
into a module of its own when it grows.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces

from metarl.envs.base import FamilyEnv, StepResult, Task, TaskError, check_finite_range, describe_range
from metarl.envs.grasping import physics, scene
from metarl.envs.grasping.objects import ObjectSpec, load_object
from metarl.envs.mujoco_batch import PhysicsBatch, quiet_mujoco_log

MOVE_STEP = 0.04  # m: the hand's target moves at most this far per control step along each axis
REACH = 0.1  # m: the commanded pinch point's x, y from the tracked point at action ±1
LOW, HIGH = scene.HAND_RANGE[2][0], 0.2  # m: the commanded pinch height at action -1, +1
LEVEL_TILT = 30.0  # degrees: by default the level term falls to 0 at this tilt (``family.level_tilt``)
SUCCESS_RISE = 0.05  # m
SUCCESS_TILT = math.radians(15.0)
SUCCESS_HOLD = 10  # control steps (0.8 s) the object must have been held up at the end
_HAND_JITTER = (0.03, 0.03, 0.01)  # m
_OBJECT_JITTER = 0.03  # m
_YAW_JITTER = math.radians(3.0)
TRAIN_SHAPES = ("box", "capsule", "hammer", "dumbbell")
TRAIN_LENGTH = (0.14, 0.24)  # m
TRAIN_COM = 0.3  # largest centre-of-mass offset, as a fraction of the length
OBS_DIM, ACT_DIM = 18, 4


@dataclasses.dataclass(frozen=True)
class GraspTask(Task):
    """One object to lift.

    Attributes:
        object: The object's shape, size, mass, friction and centre of mass.
    """

    object: ObjectSpec

    def __post_init__(self) -> None:
        if not isinstance(self.object, ObjectSpec):
            raise TaskError(f"object={self.object!r} must be an ObjectSpec")

    def to_dict(self) -> dict[str, Any]:
        """The object's mapping, e.g. ``{"shape": "box", "length": 0.2, ..., "com": [0.05, 0, 0]}``."""
        return self.object.to_dict()

    def to_string(self) -> str:
        """The object's one-line form, e.g. ``"capsule radius=0.02 length=0.2 mass=0.3 friction=1.0 com=0.04,0,0"``."""
        return self.object.to_string()


@dataclasses.dataclass(frozen=True)
class GraspOptions:
    """Options of the grasping family (``family:`` section of a config).

    Attributes:
        horizon: Control steps per episode (12.5 per second).
        grip_force: Largest squeeze of each finger (N); with ``pad_friction``, the difficulty knob.
        pad_friction: Friction of the finger pads; a pad-object contact has
            ``sqrt(object friction x pad_friction)``.
        mass_range: Training object masses (kg), uniform.
        friction_range: Training object friction coefficients, uniform.
        level_tilt: Tilt (degrees) at which the ``level`` reward term reaches 0. A reward setting
            only: success still asks for 15°. Wider, the term still ranks pinches 2-4 cm from the
            centre of mass (tilted 30-45°), where the default gives them all 0.
        lift_rise: Rise (m) of the centre of mass at which the ``lift`` reward term saturates. A
            reward setting only: success still asks for 5 cm. Higher, the term keeps ranking grips
            that hold the object up tilted: the farther the pinch from the centre of mass, the lower
            that hangs below the hand.
    """

    horizon: int = 30
    grip_force: float = scene.GRIP_FORCE
    pad_friction: float = scene.PAD_FRICTION
    mass_range: tuple[float, float] = (0.15, 0.4)
    friction_range: tuple[float, float] = (0.8, 1.2)
    level_tilt: float = LEVEL_TILT
    lift_rise: float = SUCCESS_RISE

    def __post_init__(self) -> None:
        check_finite_range("family.horizon", self.horizon, 1, 100_000)
        check_finite_range("family.level_tilt", self.level_tilt, 0.0, 90.0, low_open=True)
        check_finite_range("family.lift_rise", self.lift_rise, 0.0, 0.3, low_open=True)
        check_finite_range("family.grip_force", self.grip_force, 0.0, 200.0, low_open=True)
        check_finite_range("family.pad_friction", self.pad_friction, 0.05, 3.0)
        for name, (low, high), limits in (
            ("family.mass_range", self.mass_range, (0.01, 5.0)),
            ("family.friction_range", self.friction_range, (0.05, 3.0)),
        ):
            check_finite_range(f"{name}[0]", low, *limits)
            check_finite_range(f"{name}[1]", high, low, limits[1])
        object.__setattr__(self, "mass_range", tuple(float(v) for v in self.mass_range))
        object.__setattr__(self, "friction_range", tuple(float(v) for v in self.friction_range))


class GraspObject:
    """The grasping task family; see the module docstring for the full specification."""

    name: ClassVar[str] = "GraspObject"
    has_success: ClassVar[bool] = True
    test_tasks_held_out: ClassVar[bool] = True

    def __init__(self, options: GraspOptions | None = None):
        self.options = options or GraspOptions()
        self.horizon = self.options.horizon
        self.control_dt = scene.TIMESTEP * scene.SUBSTEPS  # s, 12.5 Hz
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ACT_DIM,), dtype=np.float64)
        self._config = scene.SceneConfig(grip_force=self.options.grip_force, pad_friction=self.options.pad_friction)
        self._models = ModelCache(self._config)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_finite_range("n", n, 0, None)
        return [GraspTask(self._draw_object(rng)) for _ in range(int(n))]

    def _draw_object(self, rng: np.random.Generator) -> ObjectSpec:
        shape = TRAIN_SHAPES[int(rng.integers(len(TRAIN_SHAPES)))]
        u = rng.uniform
        dims: dict[str, float]
        com = 0.0
        if shape == "box":
            length = float(u(*TRAIN_LENGTH))
            dims = {"length": length, "width": float(u(0.03, 0.06)), "height": float(u(0.025, 0.05))}
            com = float(u(-TRAIN_COM, TRAIN_COM)) * length
        elif shape == "capsule":
            length = float(u(*TRAIN_LENGTH))
            dims = {"radius": float(u(0.015, 0.025)), "length": length}
            com = float(u(-TRAIN_COM, TRAIN_COM)) * length
        elif shape == "hammer":
            handle = float(u(0.02, 0.03))
            dims = {
                "length": float(u(0.18, 0.28)),
                "handle": handle,
                "head": float(u(0.025, 0.04)),
                "head_width": float(u(0.05, 0.09)),
                "head_height": float(u(handle, 0.04)),
            }
        else:
            dims = {
                "length": float(u(0.16, 0.26)),
                "bar": float(u(0.02, 0.03)),
                "left": float(u(0.03, 0.06)),
                "right": float(u(0.03, 0.06)),
            }
        mass = float(u(*self.options.mass_range))
        friction = float(u(*self.options.friction_range))
        yaw = 180.0 if rng.random() < 0.5 else 0.0
        return ObjectSpec(
            shape=shape, dims=tuple(dims.items()), mass=mass, friction=friction, com=(com, 0.0, 0.0), yaw=yaw
        )

    def test_tasks(self) -> list[Task]:
        return [GraspTask(ObjectSpec.parse(text)) for text in TEST_OBJECTS]

    def validation_tasks(self) -> list[Task]:
        """Training-distribution objects that choose ``best.pt``: ``sample_tasks`` from a fixed seed."""
        return self.sample_tasks(len(TEST_OBJECTS), np.random.default_rng(170303400))

    def parse_task(self, text: str) -> Task:
        return GraspTask(ObjectSpec.parse(text))

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        return GraspTask(ObjectSpec.from_dict(data))

    def load_task(self, source: str) -> Task:
        """The one-line form, a YAML file (a relative mesh path in it is taken beside it) or a bare OBJ/STL file."""
        return GraspTask(load_object(source))

    def task_space(self) -> dict[str, str]:
        mass, friction = self.options.mass_range, self.options.friction_range
        length = describe_range(*TRAIN_LENGTH)
        return {
            "shape": f"training: {', '.join(TRAIN_SHAPES)}, lying along x; test also other shapes and meshes",
            "length": f"{length} m (x)",
            "box": "width in [0.03, 0.06] m, height in [0.025, 0.05] m",
            "capsule": "radius in [0.012, 0.025] m",
            "ellipsoid": "width in [0.035, 0.06] m, height in [0.03, 0.05] m",
            "com": f"along x, uniform in ±{TRAIN_COM:g} x length from the middle",
            "mass": f"{describe_range(*mass)} kg",
            "friction": f"{describe_range(*friction)}",
        }

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> GraspBatchEnv:
        return GraspBatchEnv(self.options, self._models, num_envs, num_threads)

    def make_env(self, task: Task | None = None, render_mode: str | None = None) -> FamilyEnv:
        """The gymnasium view: this family's batched environment with ``B = 1``."""
        return FamilyEnv(self, task=task, render_mode=render_mode)


TEST_OBJECTS = (
    "bottle length=0.22 radius=0.03 neck=0.012 neck_length=0.07 mass=0.3",
    "bottle length=0.18 radius=0.025 neck=0.01 neck_length=0.05 mass=0.25 yaw=180",
    "mallet length=0.24 handle=0.02 head=0.05 head_width=0.08 mass=0.35",
    "mallet length=0.28 handle=0.025 head=0.045 head_width=0.07 mass=0.4 yaw=180",
    "mesh path=builtin:octbar scale=0.11,0.02,0.02 mass=0.3 com=0.05",
    "mesh path=builtin:octbar scale=0.13,0.018,0.018 mass=0.35 com=-0.06 yaw=180",
    "mesh path=builtin:octbar scale=0.09,0.025,0.02 mass=0.25 com=-0.03",
    "box length=0.27 width=0.025 height=0.025 mass=0.3 com=0.08",
    "capsule radius=0.03 length=0.26 mass=0.4 com=0.06",
    "hammer length=0.3 handle=0.022 head=0.02 head_width=0.09 head_height=0.04 mass=0.35",
    "dumbbell length=0.28 bar=0.02 left=0.07 right=0.03 mass=0.45 yaw=180",
    "box length=0.16 width=0.05 height=0.045 mass=0.2",
)


class ModelCache:
    """Compiled scenes by (object, mesh library), shared by a family's batch envs (LRU, bounded)."""

    def __init__(self, config: scene.SceneConfig, max_models: int = 512):
        self.config = config
        self.max_models = max_models
        self._models: collections.OrderedDict[tuple[ObjectSpec, tuple[str, ...]], mujoco.MjModel]
        self._models = collections.OrderedDict()

    def get(self, spec: ObjectSpec, library: tuple[str, ...]) -> mujoco.MjModel:
        """The compiled scene around ``spec`` carrying the meshes of ``library``."""
        return self.get_many([spec], library)[0]

    def get_many(
        self, specs: Sequence[ObjectSpec], library: tuple[str, ...], num_threads: int = 1
    ) -> list[mujoco.MjModel]:
        """The compiled scenes around ``specs`` (in order), each carrying the meshes of ``library``.

        Args:
            specs: The objects (repeats are compiled once).
            library: See :func:`scene.mesh_library`.
            num_threads: Threads compiling the scenes not in the cache (MuJoCo's compiler runs
                without Python's lock); the models do not depend on it.

        Raises:
            TaskError: For the first object in ``specs`` whose scene MuJoCo refuses to compile.
        """
        missing = list(dict.fromkeys(spec for spec in specs if (spec, library) not in self._models))
        compiled = self._compile(missing, library, num_threads) if missing else {}
        models = []
        for spec in specs:
            key = (spec, library)
            model = self._models.get(key)
            if model is None:
                result = compiled[spec]
                if isinstance(result, TaskError):
                    raise result
                model = self._models[key] = result
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            else:
                self._models.move_to_end(key)
            models.append(model)
        return models

    def _compile(
        self, specs: list[ObjectSpec], library: tuple[str, ...], num_threads: int
    ) -> dict[ObjectSpec, mujoco.MjModel | TaskError]:
        """Compiles the scenes of distinct ``specs``: each model, or the error that says why it failed.

        Specs are built on this thread and compiled, one per thread, on ``num_threads`` threads (each
        compile then single-threaded: faster overall than MuJoCo's threads within one compile, and
        the same model). MuJoCo's log settings are global, so they are kept quiet around all threads.
        """

        def failure(spec: ObjectSpec, err: ValueError) -> TaskError:  # e.g. a mesh MuJoCo refuses though we accepted it
            reason = " ".join(str(err).split())
            return TaskError(f"object {spec.to_string()!r} does not compile: {reason}")

        def compile_one(spec: ObjectSpec, built: mujoco.MjSpec) -> mujoco.MjModel | TaskError:
            try:
                model: mujoco.MjModel = built.compile()
            except ValueError as err:
                return failure(spec, err)
            return model

        results: dict[ObjectSpec, mujoco.MjModel | TaskError] = {}
        pending: dict[ObjectSpec, concurrent.futures.Future[mujoco.MjModel | TaskError]] = {}
        threads = min(num_threads, len(specs))
        pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            with quiet_mujoco_log():
                for spec in specs:
                    try:
                        built = scene.build_spec(spec, library, self.config)
                    except ValueError as err:
                        results[spec] = failure(spec, err)
                        continue
                    if pool is None:
                        results[spec] = compile_one(spec, built)
                    else:
                        built.compiler.usethread = False
                        pending[spec] = pool.submit(compile_one, spec, built)
                results.update((spec, future.result()) for spec, future in pending.items())
        finally:
            if pool is not None:
                pool.shutdown()
        return results


def _level(axes: np.ndarray) -> np.ndarray:
    """``[B]`` cosine of the tilt: of the angle between the object's long axis (x; rows ``axes[0:3]``)
    and the table. Rolling about that axis (a lying capsule or bottle turning) is not a tilt."""
    return np.sqrt(np.clip(1.0 - axes[2] * axes[2], 0.0, 1.0))


class GraspBatchEnv:
    """``B`` grasping scenes, one object each, stepped together by ``mujoco.batch.Batch``."""

    def __init__(self, options: GraspOptions, models: ModelCache, num_envs: int, num_threads: int = 1):
        check_finite_range("num_envs", num_envs, 1, None)
        check_finite_range("num_threads", num_threads, 1, 1024)
        self.options = options
        self._level_tilt = math.radians(options.level_tilt)
        self.num_envs = int(num_envs)
        self._cache = models
        self._sim = physics.GraspPhysics(self.num_envs, int(num_threads))
        self._specs: list[ObjectSpec] | None = None
        self._rest_height = np.zeros(self.num_envs)  # of the object's origin (bounding-box centre)
        self._com = np.zeros((3, self.num_envs))  # centre of mass in the object frame, one row per axis
        self._half = np.zeros((3, self.num_envs))  # bounding-box half-extents, one row per axis
        self._com_rest = np.zeros(self.num_envs)  # height of the centre of mass at rest
        self._target = np.zeros((3, self.num_envs))
        self._done = np.ones(self.num_envs, dtype=bool)
        self._held_up = np.zeros(self.num_envs, dtype=np.int64)
        self._t = 0
        self._started = False

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        if len(tasks) != self.num_envs:
            raise TaskError(f"got {len(tasks)} tasks for {self.num_envs} environments")
        specs = []
        for task in tasks:
            if not isinstance(task, GraspTask):
                raise TaskError(f"task {task!r} is not a GraspTask")
            specs.append(task.object)
        self._specs = specs

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        if len(rngs) != self.num_envs:
            raise ValueError(f"got {len(rngs)} generators for {self.num_envs} environments")
        if self._specs is None:
            raise TaskError("set_tasks must be called before the first reset")
        specs = self._specs
        library = scene.mesh_library(specs)
        self._sim.set_models(self._cache.get_many(specs, library, self._sim.num_threads))
        self._rest_height = np.array([scene.resting_height(s) for s in specs])
        self._com = np.array([s.com for s in specs]).T.copy()
        self._half = np.array([s.half_extents() for s in specs]).T.copy()
        # each environment's generator draws, in order: hand jitter (3), object x, y (2), object yaw (1)
        draws = np.empty((self.num_envs, 6))
        for i, rng in enumerate(rngs):
            rng.random(out=draws[i])
        unit = -1.0 + 2.0 * draws  # uniform in [-1, 1)
        placed = np.array([s.at for s in specs])
        hand = np.asarray(scene.HAND_HOME) + unit[:, 0:3] * np.asarray(_HAND_JITTER)
        hand[:, :2] += placed
        yaw = np.radians([s.yaw for s in specs]) + _YAW_JITTER * unit[:, 5]
        objects = np.zeros((self.num_envs, 7))
        objects[:, :2] = placed + _OBJECT_JITTER * unit[:, 3:5]
        objects[:, 2] = self._rest_height + scene.OBJECT_DROP
        objects[:, 3] = [math.cos(a / 2) for a in yaw.tolist()]  # math, not numpy: the same bits everywhere
        objects[:, 6] = [math.sin(a / 2) for a in yaw.tolist()]
        self._sim.reset(hand, objects)
        self._target = hand.T.copy()  # [3, B] the hand's position target
        self._com_rest = self._frame()[1][2]
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._held_up = np.zeros(self.num_envs, dtype=np.int64)  # consecutive steps held 5 cm up
        self._t = 0
        self._started = True
        return self._observe()

    def step(self, action: np.ndarray) -> StepResult:
        if not self._started:
            raise RuntimeError("reset must be called before step")
        act = np.clip(np.asarray(action, dtype=np.float64).reshape(self.num_envs, ACT_DIM), -1.0, 1.0)
        if np.isnan(act).any():
            act = np.nan_to_num(act, nan=0.0)
        act_rows = act.T
        state = self._sim.state()
        command = np.empty((3, self.num_envs))
        np.add(state.object_pos.T[:2], act_rows[:2] * REACH, out=command[:2])
        np.multiply(act_rows[2] + 1, (HIGH - LOW) / 2, out=command[2])
        command[2] += LOW
        move = np.clip(command - self._target, -MOVE_STEP, MOVE_STEP, out=command)
        self._target += move
        target = np.empty((5, self.num_envs))  # one row per actuator
        target[:3] = self._target
        closing = act_rows[3] + 1
        closing /= 2  # 0 open ... 1 squeezing
        closing *= scene.FINGER_CLOSED_TARGET - scene.FINGER_OPEN
        np.add(scene.FINGER_OPEN, closing, out=target[3:5])
        unstable = self._sim.step(target.T, active=~self._done)
        self._t += 1
        obs = self._observe()
        terms, success = self._reward(act)
        finite = np.isfinite(obs)
        if finite.all() and not unstable.any():
            bad = unstable
        else:  # finished envs keep finite, zero-reward outputs
            finite_rows = finite.all(axis=1)
            bad = unstable | (~finite_rows & ~self._done)
            obs = np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)
            for term in terms.values():
                term[bad | ~finite_rows] = 0.0
            success &= ~(bad | ~finite_rows)
        reward = terms["reach"] + terms["grasp"]  # the terms in order; no term is ever -0.0
        reward += terms["lift"]
        reward += terms["level"]
        reward += terms["action"]
        self._done |= bad
        return StepResult(obs=obs, reward=reward, terminated=bad, terms=terms, success=success, unstable=bad)

    def _frame(self) -> tuple[np.ndarray, np.ndarray]:
        """``[9, B]`` the object's x, y and z axes in the world (rows), and ``[3, B]`` its centre of mass."""
        s = self._sim.state()
        axes = np.empty((9, self.num_envs))
        physics.axes_rows(s.object_quat.T, out=axes[0:6])
        x, y = axes[0:3], axes[3:6]
        axes[6] = x[1] * y[2] - x[2] * y[1]  # z = x × y
        axes[7] = x[2] * y[0] - x[0] * y[2]
        axes[8] = x[0] * y[1] - x[1] * y[0]
        com = s.object_pos.T + axes[0:3] * self._com[0] + axes[3:6] * self._com[1] + axes[6:9] * self._com[2]
        return axes, com

    def _observe(self) -> np.ndarray:
        """The observations, computed one row per quantity (``[18, B]``): long rows are cheap."""
        s = self._sim.state()
        rows = np.empty((OBS_DIM, self.num_envs))
        rows[0:3] = s.hand_pos.T
        rows[3:5] = s.finger_pos.T
        rows[5:8] = s.hand_vel.T
        rows[8:10] = s.finger_vel.T
        np.subtract(s.object_pos.T[0:2], rows[0:2], out=rows[10:12])
        np.subtract(s.object_pos.T[2], self._rest_height, out=rows[12])
        rows[13:16] = s.object_vel.T
        rows[16:18] = s.touch.T
        return np.ascontiguousarray(rows.T)

    def _reward(self, act: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Reward terms and success (see the module docstring)."""
        s = self._sim.state()
        axes, com = self._frame()
        offset = s.hand_pos.T - s.object_pos.T  # [3, B] pinch point relative to the object's origin
        local = np.stack([(axes[3 * k : 3 * k + 3] * offset).sum(0) for k in range(3)])  # object frame
        outside = np.maximum(np.abs(local) - self._half, 0.0)
        distance = np.sqrt((outside * outside).sum(0))
        grasped = s.touch[:, 0] & s.touch[:, 1]
        rise = com[2] - self._com_rest
        up = _level(axes)  # cos(tilt)
        tilt = np.arccos(up)
        terms = {
            "reach": 0.5 * (1.0 - np.tanh(10.0 * distance)),
            "grasp": 0.5 * grasped,
            "lift": grasped * np.clip(rise / self.options.lift_rise, 0.0, 1.0),
            "level": 2.0 * (grasped & (rise >= SUCCESS_RISE)) * np.clip(1.0 - tilt / self._level_tilt, 0.0, 1.0),
            "action": -0.005 * np.add.reduce(act**2, axis=1),
        }
        up_and_held = grasped & (rise >= SUCCESS_RISE)
        self._held_up = np.where(up_and_held, self._held_up + 1, 0)
        success = (self._held_up >= min(SUCCESS_HOLD, self.options.horizon)) & (up >= math.cos(SUCCESS_TILT))
        if self._t < self.options.horizon:
            success = np.zeros_like(success)
        return terms, success

    def physics_batch(self) -> PhysicsBatch | None:
        """The batch the scenes step in (see :class:`~metarl.envs.base.SimulatedBatchEnv`)."""
        return self._sim.physics_batch()

    @property
    def physics(self) -> physics.GraspPhysics:
        """The simulations behind this env (for tests, benchmarks and domain randomization)."""
        return self._sim

    def lift_height(self) -> np.ndarray:
        """``[B]`` rise (m) of each object's centre of mass above where it rested."""
        return self._frame()[1][2] - self._com_rest

    def tilt(self) -> np.ndarray:
        """``[B]`` angle (rad) of each object's long axis (x) out of the horizontal."""
        return np.arccos(_level(self._frame()[0]))

    def render(self, index: int, width: int = 480, height: int = 360) -> np.ndarray:
        """Renders environment ``index`` from the scene's overview camera.

        Returns:
            ``[height, width, 3]`` uint8 image.
        """
        if not 0 <= index < self.num_envs:
            raise IndexError(f"index={index} is out of range; allowed: [0, {self.num_envs - 1}]")
        return self._sim.render(index, width, height)

    def close(self) -> None:
        self._sim.close()
