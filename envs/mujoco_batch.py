"""MuJoCo plumbing shared by the locomotion families: models, batched physics, rendering.

* :func:`load_gymnasium_model` compiles one of the XML models that gymnasium ships, edited with
  :class:`mujoco.MjSpec` (never string-pasted XML): the deprecated ``settotalmass`` compiler
  setting is replaced by ``mj_setTotalmass`` + ``mj_setConst`` on the compiled model (bit-identical
  masses, no deprecation warning), and an optional accelerometer makes MuJoCo compute the
  external contact forces ``cfrc_ext`` during ``mj_step``.
* :class:`PhysicsBatch` steps ``B`` simulations with one threaded :class:`mujoco.batch.Batch` call,
  reports unstable simulations (NaN/Inf state, MuJoCo warnings, MuJoCo errors) instead of letting
  them reset silently, and renders one of them.
* :func:`quiet_mujoco_log` keeps MuJoCo's own warning printout and ``MUJOCO_LOG.TXT`` out of the
  user's console and working directory while our calls run; instability is reported through
  :attr:`StepResult.unstable <metarl.envs.base.StepResult>` instead.
"""

from __future__ import annotations

import contextlib
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
_OFFSCREEN_SIZE = (1920, 1080)  # largest frame render() accepts (width, height)


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
    """``B`` simulations of one model stepped together by :class:`mujoco.batch.Batch`.

    Attributes:
        model: The shared model (per-simulation parameters live in the batch, see
            :meth:`scale_parameters`).
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
                ``"cfrc_ext"`` ...), read with :meth:`output`.
        """
        self.model = model
        self.num_envs = int(num_envs)
        self.frame_skip = int(frame_skip)
        self._batch = mujoco.batch.Batch(model, self.num_envs, int(num_threads))
        self.qpos = self._batch.bind("qpos")
        self.qvel = self._batch.bind("qvel")
        self._ctrl = self._batch.bind("ctrl")
        # outputs are bound before the first call: a field bound later stays zero until a call
        self._outputs = {name: self._batch.bind(name) for name in outputs}
        self._render_model: mujoco.MjModel | None = None
        self._render_data: mujoco.MjData | None = None
        self._renderers: dict[tuple[int, int], OffscreenRenderer] = {}

    def output(self, name: str) -> np.ndarray:
        """The ``[B, ...]`` values of a derived field named in ``outputs`` (read-only)."""
        return self._outputs[name]

    def model_of(self, index: int) -> mujoco.MjModel:
        """A copy of the model simulation ``index`` runs on, per-simulation parameters included."""
        return self._batch.get_model(index)

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

    def reset(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Resets every simulation to the given state and runs ``mj_forward``.

        Args:
            qpos: ``[B, nq]`` positions.
            qvel: ``[B, nv]`` velocities.
        """
        with quiet_mujoco_log():
            self._batch.reset(stage=mujoco.mjtStage.mjSTAGE_NONE)
            self.qpos[...] = qpos
            self.qvel[...] = qvel
            self._batch.forward()

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
        failed = np.zeros(self.num_envs, dtype=bool)
        everyone = bool(active.all())
        ids = None if everyone else np.flatnonzero(active)
        if everyone:
            self._ctrl[...] = ctrl
        elif ids is not None and ids.size:
            self._ctrl[ids] = ctrl[ids]
        if everyone or (ids is not None and ids.size):
            with quiet_mujoco_log():
                try:
                    self._batch.step(ids=ids, nstep=self.frame_skip)
                except mujoco.batch.SimulationError as err:
                    failed[np.asarray(err.ids)] = True
        warned = self._batch.warning[:, :, 1].any(axis=1)  # [B]; counters restart at each reset
        finite = np.isfinite(self.qpos).all(axis=1) & np.isfinite(self.qvel).all(axis=1)
        unstable: np.ndarray = active & (warned | failed | ~finite)
        return unstable

    def render(self, index: int, width: int, height: int, camera: mujoco.MjvCamera) -> np.ndarray:
        """Renders simulation ``index`` from ``camera``.

        Returns:
            ``[height, width, 3]`` uint8 image.
        """
        if not 0 <= index < self.num_envs:
            raise IndexError(f"index={index} is out of range; allowed: [0, {self.num_envs - 1}]")
        max_width, max_height = _OFFSCREEN_SIZE
        if not (1 <= width <= max_width and 1 <= height <= max_height):
            raise ValueError(f"frame size {width}x{height} is out of range; allowed: up to {max_width}x{max_height}")
        if self._render_model is None:
            self._render_model = self._batch.get_model(index)
            self._render_data = mujoco.MjData(self._render_model)
        model = self._batch.get_model(index, self._render_model)
        data = self._batch.get_data(index, self._render_data)
        with quiet_mujoco_log():
            mujoco.mj_forward(model, data)
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = OffscreenRenderer(model, width, height)
            self._renderers[(width, height)] = renderer
        return renderer.render(model, data, camera)

    def close(self) -> None:
        """Frees the renderers (the batch's threads go with the object)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


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


class OffscreenRenderer:
    """A minimal offscreen renderer (``mujoco.Renderer`` without its global backend choice)."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        self.width, self.height = width, height
        self._context = _gl_context(width, height)
        self._context.make_current()
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        self._option = mujoco.MjvOption()
        self._mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._mjr)
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: mujoco.MjvCamera) -> np.ndarray:
        """Draws ``data`` and returns a fresh ``[height, width, 3]`` uint8 image."""
        self._context.make_current()
        mujoco.mjv_updateScene(model, data, self._option, None, camera, mujoco.mjtCatBit.mjCAT_ALL.value, self._scene)
        viewport = mujoco.MjrRect(0, 0, self.width, self.height)
        mujoco.mjr_render(viewport, self._scene, self._mjr)
        mujoco.mjr_readPixels(self._pixels, None, viewport, self._mjr)
        return np.flipud(self._pixels).copy()

    def close(self) -> None:
        """Frees the OpenGL resources."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._mjr.free()
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
