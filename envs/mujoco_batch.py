"""MuJoCo plumbing shared by the MuJoCo families (locomotion, grasping): models, batched physics, rendering.

* :func:`load_gymnasium_model` compiles one of the XML models that gymnasium ships, edited with
  :class:`mujoco.MjSpec` (never string-pasted XML): the deprecated ``settotalmass`` compiler
  setting is replaced by ``mj_setTotalmass`` + ``mj_setConst`` on the compiled model (bit-identical
  masses, no deprecation warning), and an optional accelerometer makes MuJoCo compute the
  external contact forces ``cfrc_ext`` during ``mj_step``.
* :class:`PhysicsBatch` steps ``B`` simulations with one threaded :class:`mujoco.batch.Batch` call
  (only the simulations still running), gives each simulation its own parameters (scaled fields
  of one model, or a model of its own), reports unstable simulations (NaN/Inf state, MuJoCo
  warnings, MuJoCo errors) instead of letting them reset silently, and renders one of them.
* :class:`OffscreenRenderer` draws frames without a window: through ``MUJOCO_GL`` when it is set,
  else through EGL on a Linux machine without a display. Its :class:`RenderQuality` trades
  MuJoCo's defaults (4096² shadow maps for every light, floor reflections) for frames several
  times faster on a CPU rasterizer with shadows that still look right: one key light casts them,
  from a map fitted to what the camera sees (the README's performance table has the figures).
* Cameras: :func:`tracking_camera` follows a body (locomotion); :class:`BodyFraming` aims at named
  bodies and comes close enough that they fill the frame (the gripper and its object).
* :func:`quiet_mujoco_log` keeps MuJoCo's own warning printout and ``MUJOCO_LOG.TXT`` out of the
  user's console and working directory while our calls run; instability is reported through
  :attr:`StepResult.unstable <metarl.envs.base.StepResult>` instead.

The module is past 500 lines because the batch and the renderer it draws its simulations with
(:class:`OffscreenRenderer`, its quality settings and the cameras) live together; the renderer
(from :func:`_gl_context` down) is the part to move into a module of its own when either grows.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import mujoco.batch
import numpy as np

GYMNASIUM_ASSETS = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"
CONTACT_PROBE = "metarl_contact_probe"  # name of the site and sensor that switch on cfrc_ext
_OFFSCREEN_SIZE = (1920, 1080)  # offscreen buffer of the gymnasium models: their largest frame (width, height)


@contextlib.contextmanager
def quiet_mujoco_log() -> Iterator[None]:
    """Silences MuJoCo's console and file logging (``MUJOCO_LOG.TXT``) inside the block.

    The previous configuration is restored on exit, so code outside our calls keeps MuJoCo's
    defaults.
    """
    previous = mujoco.MjLogConfig.get()
    quiet = mujoco.MjLogConfig.get()
    quiet.logto_console = False
    quiet.logto_file = False
    quiet.set()
    try:
        yield
    finally:
        previous.set()


def load_gymnasium_spec(xml_name: str) -> mujoco.MjSpec:
    """Loads one of gymnasium's MuJoCo XML models (e.g. ``"ant.xml"``) as an editable spec."""
    path = GYMNASIUM_ASSETS / xml_name
    if not path.is_file():
        raise FileNotFoundError(f"gymnasium ships no MuJoCo model {xml_name!r} (looked in {GYMNASIUM_ASSETS})")
    return mujoco.MjSpec.from_file(str(path))


def add_contact_probe(spec: mujoco.MjSpec, body: str) -> None:
    """Adds an accelerometer on ``body`` so that ``mj_step`` computes ``cfrc_ext`` for all bodies.

    MuJoCo computes the per-body external contact forces (``mj_rnePostConstraint``) only when an
    acceleration-stage sensor needs them; :class:`mujoco.batch.Batch` cannot call that function
    itself. The sensor adds no force and does not change the dynamics.
    """
    spec.body(body).add_site(name=CONTACT_PROBE)
    spec.add_sensor(
        name=CONTACT_PROBE,
        type=mujoco.mjtSensor.mjSENS_ACCELEROMETER,
        objtype=mujoco.mjtObj.mjOBJ_SITE,
        objname=CONTACT_PROBE,
    )


def compile_spec(spec: mujoco.MjSpec) -> mujoco.MjModel:
    """Compiles a spec quietly, replacing the deprecated ``settotalmass`` compiler setting.

    MuJoCo 4 warns about ``<compiler settotalmass=...>`` (gymnasium's HalfCheetah uses it). The
    setting is removed from the spec and applied to the compiled model with ``mj_setTotalmass``
    followed by ``mj_setConst``, which gives the same masses, inertias and derived constants.
    """
    total_mass = float(spec.compiler.settotalmass)
    spec.compiler.settotalmass = -1.0
    width, height = _OFFSCREEN_SIZE
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, width)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, height)
    with quiet_mujoco_log():
        model = spec.compile()
        if total_mass > 0:
            mujoco.mj_setTotalmass(model, total_mass)
            mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def load_gymnasium_model(xml_name: str, contact_probe_body: str | None = None) -> mujoco.MjModel:
    """Compiles gymnasium's ``xml_name``, optionally with a contact-force probe on a body.

    Args:
        xml_name: File name under gymnasium's ``envs/mujoco/assets``.
        contact_probe_body: Body that carries the probe of :func:`add_contact_probe`, or None.
    """
    spec = load_gymnasium_spec(xml_name)
    if contact_probe_body is not None:
        add_contact_probe(spec, contact_probe_body)
    return compile_spec(spec)


class PhysicsBatch:
    """``B`` simulations stepped together by one :class:`mujoco.batch.Batch`.

    Every simulation starts from ``model``; per-simulation parameters come either from
    :meth:`scale_parameters` (fields of ``model`` scaled per simulation) or from :meth:`set_models`
    (a model of its own per simulation, with the same ``mjData`` layout).

    Attributes:
        model: The batch's model.
        num_envs: ``B``.
        frame_skip: MuJoCo steps per control step.
        qpos: Live ``[B, nq]`` view of the positions.
        qvel: Live ``[B, nv]`` view of the velocities.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        num_threads: int,
        frame_skip: int,
        outputs: Sequence[str] = (),
    ):
        """Creates the batch.

        Args:
            model: Model every simulation starts from.
            num_envs: Number of simulations ``B``.
            num_threads: Threads stepping them (the caller's thread included).
            frame_skip: MuJoCo steps per :meth:`step`.
            outputs: Derived ``MjData`` fields to copy out after every call (``"xpos"``,
                ``"cfrc_ext"``, ``"sensordata"`` ...), read with :meth:`output`.
        """
        self.model = model
        self.num_envs = int(num_envs)
        self.frame_skip = int(frame_skip)
        self._batch = mujoco.batch.Batch(model, self.num_envs, int(num_threads))
        self.qpos = self._batch.bind("qpos")
        self.qvel = self._batch.bind("qvel")
        self._qpos_qvel = _adjacent(self._batch.state, self.qpos, self.qvel)
        self._ctrl = self._batch.bind("ctrl")
        self._act = self._batch.bind("act")
        # outputs are bound before the first call: a field bound later stays zero until a call
        self._outputs = {name: self._batch.bind(name) for name in outputs}
        self._models: list[mujoco.MjModel] = []
        self._render_model: mujoco.MjModel | None = None
        self._render_data: tuple[mujoco.MjModel, mujoco.MjData] | None = None  # of the last model drawn
        self._renderers: dict[tuple[int, int], OffscreenRenderer] = {}

    @property
    def batch(self) -> mujoco.batch.Batch:
        """The underlying batch (views such as ``batch.bind("qvel")`` are live)."""
        return self._batch

    def state_rows(self) -> np.ndarray:
        """A copy of the positions and velocities, one row per coordinate (long rows, cheap to compute on).

        Returns:
            ``[nq + nv, B]``: ``qpos`` transposed, then ``qvel`` transposed.
        """
        nq = self.qpos.shape[1]
        rows = np.empty((nq + self.qvel.shape[1], self.num_envs))
        if self._qpos_qvel is not None:
            np.copyto(rows.T, self._qpos_qvel)
        else:
            np.copyto(rows[:nq].T, self.qpos)
            np.copyto(rows[nq:].T, self.qvel)
        return rows

    def output(self, name: str) -> np.ndarray:
        """The ``[B, ...]`` values of a derived field named in ``outputs`` (read-only)."""
        return self._outputs[name]

    def model_of(self, index: int) -> mujoco.MjModel:
        """A copy of the model simulation ``index`` runs on, per-simulation parameters included."""
        return self._batch.get_model(index)

    def set_models(self, models: Sequence[mujoco.MjModel]) -> None:
        """Runs simulation ``i`` on ``models[i]`` from the next :meth:`reset` on.

        Args:
            models: ``B`` models with the ``mjData`` layout of :attr:`model` (compiled from one
                spec with other parameters or other mesh shapes). Setting the same model objects
                again costs nothing.
        """
        if len(models) != self.num_envs:
            raise ValueError(f"got {len(models)} models for {self.num_envs} simulations")
        if len(self._models) != len(models) or any(a is not b for a, b in zip(self._models, models, strict=True)):
            self._batch.set_models(list(models))
            self._models = list(models)

    def scale_parameters(self, scales: dict[str, np.ndarray]) -> None:
        """Sets per-simulation model fields to ``model value × scale`` and re-derives constants.

        Args:
            scales: ``{model field: [B, *field shape] multipliers}``, e.g. ``"body_mass"``.
                ``mj_setConst`` then runs per simulation, so derived quantities
                (``body_subtreemass``, ``dof_invweight0``, ``actuator_acc0`` ...) stay consistent.
        """
        for name, scale in scales.items():
            base = getattr(self.model, name)
            self._batch.expand(name)[...] = base[None] * scale
        with quiet_mujoco_log():
            self._batch.set_const()

    def reset(
        self, qpos: np.ndarray, qvel: np.ndarray, ctrl: np.ndarray | None = None, act: np.ndarray | None = None
    ) -> None:
        """Resets every simulation to the given state and runs ``mj_forward``.

        Args:
            qpos: ``[B, nq]`` positions.
            qvel: ``[B, nv]`` velocities.
            ctrl: ``[B, nu]`` controls, or None for zeros.
            act: ``[B, na]`` actuator activations (filtered targets), or None for zeros.
        """
        with quiet_mujoco_log():
            self._batch.reset(stage=mujoco.mjtStage.mjSTAGE_NONE)
            self.qpos[...] = qpos
            self.qvel[...] = qvel
            if ctrl is not None:
                self._ctrl[...] = ctrl
            if act is not None:
                self._act[...] = act
            self._batch.forward()

    @property
    def act(self) -> np.ndarray:
        """Live ``[B, na]`` view of the actuator activations."""
        return self._act

    def step(self, ctrl: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Advances the active simulations by ``frame_skip`` MuJoCo steps with controls ``ctrl``.

        Args:
            ctrl: ``[B, nu]`` controls (MuJoCo clamps them to the actuators' ``ctrlrange``).
            active: ``[B]`` bool; inactive simulations are not stepped and keep their state.

        Returns:
            ``[B]`` bool, the active simulations that became unstable: a MuJoCo warning was
            raised (MuJoCo then resets that simulation internally), a MuJoCo error was raised,
            or the state is no longer finite.
        """
        everyone = bool(active.all())
        ids = None if everyone else np.flatnonzero(active)
        if ids is None:
            self._ctrl[...] = ctrl
        elif ids.size:
            self._ctrl[ids] = ctrl[ids]
        failed = None
        if ids is None or ids.size:
            with quiet_mujoco_log():
                try:
                    self._batch.step(ids=ids, nstep=self.frame_skip)
                except mujoco.batch.SimulationError as err:
                    failed = np.zeros(self.num_envs, dtype=bool)
                    failed[np.asarray(err.ids, dtype=int)] = True
        # Each check first looks at the whole batch at once and only then, rarely, row by row.
        warning = self._batch.warning  # [B, warnings, (last info, count)]; zeros since the last reset
        warned = warning[:, :, 1].any(axis=1) if warning.any() else None
        finite = self._finite_rows()
        if warned is None and failed is None and finite is None:
            return np.zeros(self.num_envs, dtype=bool)
        flagged = np.zeros(self.num_envs, dtype=bool) if finite is None else ~finite
        if warned is not None:
            flagged |= warned
        if failed is not None:
            flagged |= failed
        unstable: np.ndarray = active & flagged
        return unstable

    def _finite_rows(self) -> np.ndarray | None:
        """``[B]`` bool, the state of the simulation is finite; None when every one is."""
        if self._qpos_qvel is not None:
            finite = np.isfinite(self._qpos_qvel)
            if finite.all():
                return None
            rows: np.ndarray = finite.all(axis=1)
            return rows
        finite_qpos, finite_qvel = np.isfinite(self.qpos), np.isfinite(self.qvel)
        if finite_qpos.all() and finite_qvel.all():
            return None
        rows = finite_qpos.all(axis=1) & finite_qvel.all(axis=1)
        return rows

    def render(self, index: int, width: int, height: int, camera: mujoco.MjvCamera | BodyFraming) -> np.ndarray:
        """Renders simulation ``index`` from ``camera`` (a framing is aimed at this simulation's bodies).

        Returns:
            ``[height, width, 3]`` uint8 image.

        Raises:
            IndexError: ``index`` is not a simulation of the batch.
        """
        if not 0 <= index < self.num_envs:
            raise IndexError(f"index={index} is out of range; allowed: [0, {self.num_envs - 1}]")
        if self._models:  # a model of its own: drawn as it is (its meshes may differ from the others')
            model = self._models[index]
        else:  # the batch's model with this simulation's parameters, copied into one reused model
            self._render_model = self._batch.get_model(index, self._render_model)
            model = self._render_model
        if self._render_data is None or self._render_data[0] is not model:
            self._render_data = (model, mujoco.MjData(model))
        data = self._batch.get_data(index, self._render_data[1])
        with quiet_mujoco_log():
            mujoco.mj_forward(model, data)
        if isinstance(camera, BodyFraming):
            camera = camera.camera(model, data)
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = OffscreenRenderer(width, height)
            self._renderers[(width, height)] = renderer
        return renderer.render(model, data, camera)

    def close(self) -> None:
        """Frees the renderers (the batch's threads go with the object)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._render_data = None


def _adjacent(state: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray | None:
    """The ``[B, nq + nv]`` view of ``state`` over ``qpos`` followed by ``qvel``, or None when they are not adjacent.

    ``mujoco.batch.Batch`` keeps each simulation's state in one row (time, qpos, qvel, act, ...), so
    positions and velocities can be checked and copied in one operation instead of two.
    """
    item = state.itemsize
    start, rest = divmod(qpos.ctypes.data - state.ctypes.data, item)
    nq, nv = qpos.shape[1], qvel.shape[1]
    if (
        rest
        or not 0 <= start <= state.shape[1] - nq - nv
        or qpos.strides != (state.strides[0], item)
        or qvel.strides != (state.strides[0], item)
        or qvel.ctypes.data != qpos.ctypes.data + nq * item
    ):
        return None
    view: np.ndarray = state[:, start : start + nq + nv]
    return view


def _gl_context(width: int, height: int) -> Any:
    """An OpenGL context for offscreen rendering.

    Uses ``MUJOCO_GL`` when set (``egl``, ``osmesa``, ``glfw``); without it, EGL on a Linux
    machine without a display (where GLFW cannot open one), else GLFW.
    """
    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if backend == "egl" or (not backend and headless):
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.glfw import GLContext
    return GLContext(width, height)


@dataclasses.dataclass(frozen=True)
class RenderQuality:
    """How :class:`OffscreenRenderer` draws: what costs frames per second on a CPU rasterizer.

    Attributes:
        shadow_size: Texels per side of a shadow map (MuJoCo's default is 4096).
        shadow_lights: How many lights cast shadows, the brightest first (by diffuse colour); the
            others still light the scene. Each one costs a depth pass and a pass over every geom.
        shadow_reach: Half-width of a directional light's shadow map, in multiples of the
            camera's distance: the map covers what the camera sees instead of the whole model
            (``stat.extent × shadowclip``, 8 m for gymnasium's robots), and it moves with the
            camera, so a robot that runs away keeps its shadow. Spot lights keep their cone.
            None keeps MuJoCo's map, fixed where the model puts the light.
        samples: Multisamples per pixel (antialiasing; 0 for none).
        reflections: Draw reflections in reflective floors (one more pass over every geom).
    """

    shadow_size: int = 1024
    shadow_lights: int = 1
    shadow_reach: float | None = 1.0
    samples: int = 4
    reflections: bool = False


MUJOCO_QUALITY = RenderQuality(shadow_size=4096, shadow_lights=8, shadow_reach=None, samples=4, reflections=True)
"""What MuJoCo (and gymnasium's renderer) draw by default: the reference for speed and looks."""


class OffscreenRenderer:
    """Draws frames of one size offscreen (``mujoco.Renderer`` without its global backend choice).

    One OpenGL context serves any number of models: each model gets its own scene and MuJoCo
    render context (which holds its meshes, textures, shadow map and an offscreen buffer of
    exactly this frame size), the ``max_models`` most recent kept.
    """

    def __init__(self, width: int, height: int, max_models: int = 8, quality: RenderQuality | None = None):
        """Creates the OpenGL context.

        Args:
            width: Frame width (pixels).
            height: Frame height (pixels).
            max_models: Models whose render contexts are kept.
            quality: Shadows, antialiasing and reflections (default :class:`RenderQuality`).
        """
        self.width, self.height = width, height
        self.max_models = max_models
        self.quality = quality or RenderQuality()
        self._context = _gl_context(width, height)
        self._option = mujoco.MjvOption()
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)
        # id(model) -> (model, scene, render context); the model is kept so that its id stays unique
        self._per_model: collections.OrderedDict[int, tuple[mujoco.MjModel, mujoco.MjvScene, mujoco.MjrContext]]
        self._per_model = collections.OrderedDict()

    def _scene_of(self, model: mujoco.MjModel, camera: mujoco.MjvCamera) -> tuple[mujoco.MjvScene, mujoco.MjrContext]:
        entry = self._per_model.get(id(model))
        if entry is None:
            scene = mujoco.MjvScene(model, maxgeom=1000)
            scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self.quality.reflections
            mjr = self._make_context(model, camera)
            entry = (model, scene, mjr)
            self._per_model[id(model)] = entry
            while len(self._per_model) > self.max_models:
                _, (_, _, old) = self._per_model.popitem(last=False)
                old.free()
        else:
            self._per_model.move_to_end(id(model))
        return entry[1], entry[2]

    def _make_context(self, model: mujoco.MjModel, camera: mujoco.MjvCamera) -> mujoco.MjrContext:
        """A MuJoCo render context for ``model`` with this renderer's buffer size and shadow settings.

        ``mjr_makeContext`` reads the sizes, the multisamples and the shadow clip from the model
        once; they are set on the model for that call and put back, so the model stays as it was.
        """
        vis = model.vis
        saved = (vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples, vis.quality.shadowsize)
        saved_clip = vis.map.shadowclip
        distance = camera.distance if camera.type != mujoco.mjtCamera.mjCAMERA_FIXED else model.stat.extent
        try:
            vis.global_.offwidth, vis.global_.offheight = self.width, self.height
            vis.quality.offsamples = self.quality.samples
            vis.quality.shadowsize = self.quality.shadow_size
            if self.quality.shadow_reach is not None:
                vis.map.shadowclip = self.quality.shadow_reach * float(distance) / max(model.stat.extent, 1e-9)
            mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        finally:
            vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples, vis.quality.shadowsize = saved
            vis.map.shadowclip = saved_clip
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, mjr)
        return mjr

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: mujoco.MjvCamera) -> np.ndarray:
        """Draws ``data`` and returns a fresh ``[height, width, 3]`` uint8 image."""
        self._context.make_current()
        scene, mjr = self._scene_of(model, camera)
        mujoco.mjv_updateScene(model, data, self._option, None, camera, mujoco.mjtCatBit.mjCAT_ALL.value, scene)
        self._place_shadows(model, scene, camera)
        viewport = mujoco.MjrRect(0, 0, self.width, self.height)
        mujoco.mjr_render(viewport, scene, mjr)
        mujoco.mjr_readPixels(self._pixels, None, viewport, mjr)
        return np.flipud(self._pixels).copy()

    def _place_shadows(self, model: mujoco.MjModel, scene: mujoco.MjvScene, camera: mujoco.MjvCamera) -> None:
        """Keeps the shadows of the brightest lights only; centres directional shadow maps on the view.

        A directional light shines from infinitely far, so its position only places its shadow
        map: moved above the point the camera looks at, the map covers what is on screen.
        """
        lights = [scene.lights[i] for i in range(scene.nlight)]
        casting = sorted((light for light in lights if light.castshadow), key=lambda li: -float(np.sum(li.diffuse)))
        for light in casting[self.quality.shadow_lights :]:
            light.castshadow = False
        if camera.type == mujoco.mjtCamera.mjCAMERA_FIXED or self.quality.shadow_reach is None:
            return
        for light in casting[: self.quality.shadow_lights]:
            if light.type == mujoco.mjtLightType.mjLIGHT_DIRECTIONAL:
                direction = np.asarray(light.dir, dtype=np.float64)
                direction /= max(float(np.linalg.norm(direction)), 1e-9)
                light.pos[:] = np.asarray(camera.lookat) - model.stat.extent * direction

    def close(self) -> None:
        """Frees the OpenGL resources."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._context.make_current()
            for _, _, mjr in self._per_model.values():
                mjr.free()
            self._per_model.clear()
            self._context.free()


def tracking_camera(body: int, distance: float, elevation: float = -20.0, azimuth: float = 90.0) -> mujoco.MjvCamera:
    """A camera that follows ``body`` at ``distance`` metres."""
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = body
    camera.distance = distance
    camera.elevation = elevation
    camera.azimuth = azimuth
    return camera


def fixed_camera(model: mujoco.MjModel, name: str) -> mujoco.MjvCamera:
    """The model's camera ``name`` (a ``<camera>`` of the model, fixed or attached to a body)."""
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
    camera.fixedcamid = model.camera(name).id
    return camera


@dataclasses.dataclass(frozen=True)
class BodyFraming:
    """A camera aimed at named bodies, close enough that they fill the frame.

    It looks at the centre of the box around the visible geoms of ``bodies`` and of every body
    attached below them, from a fixed direction, at the distance where the sphere around that box
    (times ``margin``) spans the vertical field of view. Nothing else about the scene is assumed,
    so a redesigned scene keeps its framing as long as the bodies keep their names. The camera
    moves with the bodies: when a hand rises away from an object, the view widens to keep both.

    Attributes:
        bodies: Names of the bodies to frame, e.g. ``("hand", "object")``.
        azimuth: Direction of view in the horizontal plane (degrees, MuJoCo's free camera).
        elevation: Direction of view above the horizon (degrees; negative looks down).
        margin: Room around the bodies (1 is a tight fit).
        min_radius: Radius (m) of the smallest sphere framed, so that small objects are not blown up.
    """

    bodies: tuple[str, ...]
    azimuth: float = 135.0
    elevation: float = -25.0
    margin: float = 1.15
    min_radius: float = 0.1

    def geoms(self, model: mujoco.MjModel) -> np.ndarray:
        """Indices of the visible geoms of the framed bodies and their descendants.

        Raises:
            ValueError: A body of :attr:`bodies` is not in the model.
        """
        names = {model.body(i).name for i in range(model.nbody)}
        missing = [name for name in self.bodies if name not in names]
        if missing:
            raise ValueError(f"cannot frame body {missing[0]!r}: the model has no such body; it has {sorted(names)}")
        framed = np.zeros(model.nbody, dtype=bool)
        for name in self.bodies:
            framed[model.body(name).id] = True
        for body in range(1, model.nbody):  # a parent always comes before its children
            framed[body] |= framed[model.body_parentid[body]]
        visible = (model.geom_rgba[:, 3] > 0) & (model.geom_group < 3)
        return np.flatnonzero(framed[model.geom_bodyid] & visible)

    def camera(self, model: mujoco.MjModel, data: mujoco.MjData) -> mujoco.MjvCamera:
        """The free camera for the current state of ``data`` (positions computed by ``mj_forward``)."""
        geoms = self.geoms(model)
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.azimuth = self.azimuth
        camera.elevation = self.elevation
        if geoms.size == 0:
            camera.lookat[:] = data.xpos[model.body(self.bodies[0]).id]
            camera.distance = self.min_radius / math.sin(math.radians(model.vis.global_.fovy) / 2)
            return camera
        reach = model.geom_rbound[geoms][:, None]
        low = (data.geom_xpos[geoms] - reach).min(axis=0)
        high = (data.geom_xpos[geoms] + reach).max(axis=0)
        radius = max(float(np.linalg.norm(high - low)) / 2, self.min_radius)
        camera.lookat[:] = (low + high) / 2
        camera.distance = self.margin * radius / math.sin(math.radians(model.vis.global_.fovy) / 2)
        return camera
