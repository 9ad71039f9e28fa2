"""GraspObject: a parallel-jaw gripper lifts an object whose shape is the task.

The policy never sees the shape: it must find out, within a few rollouts, how wide to open,
where to pinch and how to turn the hand for an object it has not met before.

=================  ====================================================================  ========
Observation        Meaning                                                               Unit
=================  ====================================================================  ========
``obs[0:3]``       pinch point (between the finger pads) x, y, z; table centre at 0      m
``obs[3]``         hand yaw                                                              rad
``obs[4:6]``       left, right finger position (half-gap between the pads)               m
``obs[6:9]``       pinch point velocity                                                  m/s
``obs[9]``         hand yaw rate                                                         rad/s
``obs[10:12]``     finger velocities                                                     m/s
``obs[12:15]``     object position relative to the pinch point, in the hand's frame      m
``obs[15:21]``     object orientation in the hand's frame: rotation matrix columns x, y  1
``obs[21:24]``     object linear velocity (world frame)                                  m/s
``obs[24:27]``     object angular velocity (object frame)                                rad/s
``obs[27:29]``     left, right pad touches the object (0 or 1; from the last substep)    1
=================  ====================================================================  ========

=================  ====================================================================  ========
Action             Meaning                                                               Range
=================  ====================================================================  ========
``act[0:3]``       move the pinch point's position target by ``act * 0.025`` m           [-1, 1]
``act[3]``         turn the yaw target by ``act * 0.25`` rad                             [-1, 1]
``act[4]``         grip: each finger's target runs linearly from open (-1) to 2 cm past   [-1, 1]
                   closed (+1), so +1 squeezes with the full ``grip_force`` (15 N)
=================  ====================================================================  ========

Targets are relative to the hand's current pose and clipped to the workspace
(x, y in [-0.2, 0.2] m, pinch height in [0.022, 0.35] m, yaw in [-π/2, π/2]). One control step is
5 physics steps of 4 ms (50 Hz); an episode is truncated after ``horizon`` = 100 steps (2 s).

Reward, the sum of four named terms (in ``info``), per step:

* ``reach`` = ``0.5 (1 - tanh(10 d))``, ``d`` the distance (m) from the pinch point to the
  object's origin (the centre of its bounding box);
* ``grasp`` = 0.5 while both pads touch the object;
* ``lift`` = ``2 clip(h / 0.05, 0, 1)`` while both pads touch it, ``h`` its height (m) above rest;
* ``action`` = ``-0.005 ‖act‖²``.

``success`` holds while both pads touch the object and it is at least 5 cm above its resting
height. Episodes terminate only on physics instability (NaN/Inf state or a MuJoCo warning), with
``info["physics_unstable"]``.

Physics: the object is held by friction alone. A pad-object contact has the friction
``sqrt(object friction x pad_friction)`` (pads 1.2 by default), the object-table contact the
object's own; contacts are 4-dimensional (torsional friction) in a pyramidal cone.
``grip_force`` and ``pad_friction`` are the difficulty knobs (3 N with pad friction 0.5 halves
the scripted controller's success).

Task space: an :class:`~metarl.envs.grasping.objects.ObjectSpec`. Training draws boxes,
cylinders, spheres and lying capsules with height/width ratios in [0.75, 2]; the held-out test
set holds ellipsoids, procedurally generated meshes (prisms, a tapered cup, a wedge) and boxes and
cylinders of other proportions. Reset noise (the env's generator): object x, y uniform in ±4 cm,
object yaw uniform; hand x, y in ±3 cm, height in ±2 cm.

Version history: v0, first version.
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
from metarl.envs.grasping.objects import ObjectSpec
from metarl.envs.mujoco_batch import quiet_mujoco_log

_MOVE_STEP = 0.025  # m per control step
_YAW_STEP = 0.25  # rad per control step
_POSE_STEP = np.array([_MOVE_STEP, _MOVE_STEP, _MOVE_STEP, _YAW_STEP])  # x, y, z, yaw per unit of action
_LIFT_TARGET = 0.05  # m above the resting height
_HAND_JITTER = (0.03, 0.03, 0.02)  # m
_OBJECT_JITTER = 0.04  # m
_TRAIN_ASPECT = (0.75, 2.0)  # height / narrower horizontal side
TRAIN_SHAPES = ("box", "cylinder", "sphere", "capsule")
OBS_DIM, ACT_DIM = 29, 5


@dataclasses.dataclass(frozen=True)
class GraspTask(Task):
    """One object to lift.

    Attributes:
        object: The object's shape, size, mass and friction.
    """

    object: ObjectSpec

    def __post_init__(self) -> None:
        if not isinstance(self.object, ObjectSpec):
            raise TaskError(f"object={self.object!r} must be an ObjectSpec")

    def to_dict(self) -> dict[str, Any]:
        """The object's mapping, e.g. ``{"shape": "sphere", "radius": 0.03, "mass": 0.1, ...}``."""
        return self.object.to_dict()

    def to_string(self) -> str:
        """The object's one-line form, e.g. ``"sphere radius=0.03 mass=0.1 friction=1.0"``."""
        return self.object.to_string()


@dataclasses.dataclass(frozen=True)
class GraspOptions:
    """Options of the grasping family (``family:`` section of a config).

    Attributes:
        horizon: Control steps per episode (50 per second).
        grip_force: Largest squeeze of each finger (N); with ``pad_friction``, the difficulty knob.
        pad_friction: Friction of the finger pads; a pad-object contact has
            ``sqrt(object friction x pad_friction)``.
        mass_range: Training object masses (kg), uniform.
        friction_range: Training object friction coefficients, uniform.
    """

    horizon: int = 100
    grip_force: float = scene.GRIP_FORCE
    pad_friction: float = scene.PAD_FRICTION
    mass_range: tuple[float, float] = (0.05, 0.3)
    friction_range: tuple[float, float] = (0.8, 1.2)

    def __post_init__(self) -> None:
        check_finite_range("family.horizon", self.horizon, 1, 100_000)
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

    def __init__(self, options: GraspOptions | None = None):
        self.options = options or GraspOptions()
        self.horizon = self.options.horizon
        self.control_dt = scene.TIMESTEP * scene.SUBSTEPS  # s, 50 Hz
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ACT_DIM,), dtype=np.float64)
        self._config = scene.SceneConfig(grip_force=self.options.grip_force, pad_friction=self.options.pad_friction)
        self._models = ModelCache(self._config)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_finite_range("n", n, 0, None)
        return [GraspTask(self._draw_object(rng)) for _ in range(int(n))]

    def _draw_object(self, rng: np.random.Generator) -> ObjectSpec:
        shape = TRAIN_SHAPES[int(rng.integers(len(TRAIN_SHAPES)))]
        aspect = float(rng.uniform(*_TRAIN_ASPECT))
        dims: dict[str, float]
        if shape == "box":
            length, width = (float(v) for v in rng.uniform(0.03, 0.07, size=2))
            dims = {"length": length, "width": width, "height": aspect * min(length, width)}
        elif shape == "cylinder":
            radius = float(rng.uniform(0.015, 0.035))
            dims = {"radius": radius, "height": aspect * 2 * radius}
        elif shape == "sphere":
            dims = {"radius": float(rng.uniform(0.02, 0.04))}
        else:
            radius = float(rng.uniform(0.015, 0.03))
            dims = {"radius": radius, "length": float(rng.uniform(3.0, 5.0)) * radius}
        mass = float(rng.uniform(*self.options.mass_range))
        friction = float(rng.uniform(*self.options.friction_range))
        return ObjectSpec(shape=shape, dims=tuple(dims.items()), mass=mass, friction=friction)

    def test_tasks(self) -> list[Task]:
        return [GraspTask(ObjectSpec.parse(text)) for text in TEST_OBJECTS]

    def validation_tasks(self) -> list[Task]:
        """Training-distribution objects that choose ``best.pt``: ``sample_tasks`` from a fixed seed."""
        return self.sample_tasks(len(TEST_OBJECTS), np.random.default_rng(170303400))

    def parse_task(self, text: str) -> Task:
        return GraspTask(ObjectSpec.parse(text))

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        return GraspTask(ObjectSpec.from_dict(data))

    def task_space(self) -> dict[str, str]:
        mass, friction = self.options.mass_range, self.options.friction_range
        aspect = describe_range(*_TRAIN_ASPECT)
        return {
            "shape": f"training: {', '.join(TRAIN_SHAPES)}; test also ellipsoid and mesh",
            "box": f"length, width in [0.03, 0.07] m, height = {aspect} x the narrower side",
            "cylinder": f"radius in [0.015, 0.035] m, height = {aspect} x the diameter",
            "sphere": "radius in [0.02, 0.04] m",
            "capsule": "radius in [0.015, 0.03] m, length (tip to tip) in [3, 5] x radius, lying",
            "mass": f"{describe_range(*mass)} kg",
            "friction": f"{describe_range(*friction)}",
        }

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> GraspBatchEnv:
        return GraspBatchEnv(self.options, self._models, num_envs, num_threads)

    def make_env(self, task: Task | None = None, render_mode: str | None = None) -> FamilyEnv:
        """The gymnasium view: this family's batched environment with ``B = 1``."""
        return FamilyEnv(self, task=task, render_mode=render_mode)


TEST_OBJECTS = (
    "ellipsoid length=0.07 width=0.045 height=0.05 mass=0.15 friction=1.0",
    "ellipsoid length=0.06 width=0.06 height=0.035 mass=0.1 friction=1.0",
    "box length=0.08 width=0.06 height=0.03 mass=0.2 friction=1.0",
    "box length=0.03 width=0.03 height=0.14 mass=0.15 friction=1.0",
    "cylinder radius=0.015 height=0.15 mass=0.1 friction=1.0",
    "cylinder radius=0.04 height=0.035 mass=0.15 friction=1.0",
    "mesh path=builtin:prism3 scale=0.035,0.035,0.04 mass=0.1 friction=1.0",
    "mesh path=builtin:prism5 scale=0.03,0.03,0.04 mass=0.15 friction=1.0",
    "mesh path=builtin:prism6 scale=0.03,0.03,0.05 mass=0.2 friction=1.0",
    "mesh path=builtin:prism8 scale=0.025,0.025,0.06 mass=0.15 friction=1.0",
    "mesh path=builtin:cup scale=0.035,0.035,0.05 mass=0.15 friction=1.0",
    "mesh path=builtin:wedge scale=0.025,0.03,0.025 mass=0.1 friction=1.0",
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


class GraspBatchEnv:
    """``B`` grasping scenes, one object each, stepped together by ``mujoco.batch.Batch``."""

    def __init__(self, options: GraspOptions, models: ModelCache, num_envs: int, num_threads: int = 1):
        check_finite_range("num_envs", num_envs, 1, None)
        check_finite_range("num_threads", num_threads, 1, 1024)
        self.options = options
        self.num_envs = int(num_envs)
        self._cache = models
        self._sim = physics.GraspPhysics(self.num_envs, int(num_threads))
        self._specs: list[ObjectSpec] | None = None
        self._rest_height = np.zeros(self.num_envs)
        self._rest_heights: dict[ObjectSpec, float] = {}  # by object, across resets
        self._done = np.ones(self.num_envs, dtype=bool)
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
        library = scene.mesh_library(self._specs)
        self._sim.set_models(self._cache.get_many(self._specs, library, self._sim.num_threads))
        self._rest_height = np.array([self._resting_height(s) for s in self._specs])
        # each environment's generator draws, in order: hand jitter (3), object x, y (2), object yaw (1)
        draws = np.empty((self.num_envs, 6))
        for i, rng in enumerate(rngs):
            rng.random(out=draws[i])
        # rng.uniform(low, high) is low + (high - low) * rng.random(), here for all environments at once
        jitter = -1.0 + 2.0 * draws[:, 0:3]
        xy = -_OBJECT_JITTER + (_OBJECT_JITTER - -_OBJECT_JITTER) * draws[:, 3:5]
        yaw = -math.pi + (math.pi - -math.pi) * draws[:, 5]
        hand = np.zeros((self.num_envs, 4))
        hand[:, :3] = np.asarray(scene.HAND_HOME) + jitter * np.asarray(_HAND_JITTER)
        objects = np.zeros((self.num_envs, 7))
        objects[:, :2] = xy
        objects[:, 2] = self._rest_height + scene.OBJECT_DROP
        objects[:, 3] = [math.cos(a / 2) for a in yaw.tolist()]  # math, not numpy: the same bits everywhere
        objects[:, 6] = [math.sin(a / 2) for a in yaw.tolist()]
        self._sim.reset(hand, objects)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._started = True
        return self._observe()[0]

    def _resting_height(self, spec: ObjectSpec) -> float:
        height = self._rest_heights.get(spec)
        if height is None:
            if len(self._rest_heights) >= self._cache.max_models:
                self._rest_heights.clear()
            height = self._rest_heights[spec] = scene.resting_height(spec)
        return height

    def step(self, action: np.ndarray) -> StepResult:
        if not self._started:
            raise RuntimeError("reset must be called before step")
        act = np.clip(np.asarray(action, dtype=np.float64).reshape(self.num_envs, ACT_DIM), -1.0, 1.0)
        if np.isnan(act).any():
            act = np.nan_to_num(act, nan=0.0)
        act_rows = act.T
        target = np.empty((6, self.num_envs))  # one row per actuator
        np.add(self._sim.state().hand_pose.T, act_rows[:4] * _POSE_STEP[:, None], out=target[:4])
        closing = act_rows[4] + 1
        closing /= 2  # 0 open ... 1 squeezing
        closing *= scene.FINGER_CLOSED_TARGET - scene.FINGER_OPEN
        np.add(scene.FINGER_OPEN, closing, out=target[4:6])
        unstable = self._sim.step(target.T, active=~self._done)
        obs, offset = self._observe()
        terms, success = self._reward(act, offset)
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
        reward += terms["action"]
        self._done |= bad
        return StepResult(obs=obs, reward=reward, terminated=bad, terms=terms, success=success, unstable=bad)

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        """The observations, and ``[3, B]`` the object's position relative to the pinch point (world frame).

        Computed one row per quantity (``[29, B]``): long rows make each operation cheap.
        """
        s = self._sim.state()
        rows = np.empty((OBS_DIM, self.num_envs))
        rows[0:4] = s.hand_pose.T
        rows[4:6] = s.finger_pos.T
        rows[6:10] = s.hand_pose_rate.T
        rows[10:12] = s.finger_vel.T
        rows[21:27] = s.object_twist.T
        rows[27:29] = s.touch.T
        # the object's offset, x axis and y axis in the world frame, turned into the hand's frame by yaw
        world = np.empty((9, self.num_envs))
        offset = np.subtract(s.object_pos.T, s.hand_pos.T, out=world[0:3])
        physics.axes_rows(s.object_quat.T, out=world[3:9])
        by_cos, by_sin = np.cos(s.hand_yaw) * world, np.sin(s.hand_yaw) * world
        np.add(by_cos[0::3], by_sin[1::3], out=rows[12:21:3])  # x' = cos x + sin y
        np.subtract(by_cos[1::3], by_sin[0::3], out=rows[13:21:3])  # y' = -sin x + cos y
        rows[14:21:3] = world[2::3]  # z' = z
        return np.ascontiguousarray(rows.T), offset

    def _reward(self, act: np.ndarray, offset: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Reward terms and success; ``offset`` is ``[3, B]``, the object's position relative to the pinch point."""
        s = self._sim.state()
        squares = offset * offset
        distance = squares[0] + squares[1]  # (x² + y²) + z², in the order np.linalg.norm(axis=1) adds them
        distance += squares[2]
        np.sqrt(distance, out=distance)
        grasped = s.touch[:, 0] & s.touch[:, 1]
        height = s.object_pos[:, 2] - self._rest_height
        terms = {
            "reach": 0.5 * (1.0 - np.tanh(10.0 * distance)),
            "grasp": 0.5 * grasped,
            "lift": 2.0 * grasped * np.clip(height / _LIFT_TARGET, 0.0, 1.0),
            "action": -0.005 * np.add.reduce(act**2, axis=1),
        }
        success = grasped & (height >= _LIFT_TARGET)
        return terms, success

    @property
    def physics(self) -> physics.GraspPhysics:
        """The simulations behind this env (for tests, benchmarks and domain randomization)."""
        return self._sim

    def lift_height(self) -> np.ndarray:
        """``[B]`` height (m) of each object above its resting height."""
        return self._sim.state().object_pos[:, 2] - self._rest_height

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
