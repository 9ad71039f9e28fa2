"""The grasping scene, built with ``mujoco.MjSpec``: a table, a parallel-jaw gripper and one object.

The gripper's hand moves on three slide joints (x, y, z) and one yaw hinge, each driven by a
position actuator; gravity compensation carries the hand. Two fingers slide towards each other
on force-limited position actuators, so a command past closed squeezes with at most
``GRIP_FORCE`` newtons. Objects are held by friction at the finger pads alone.

Every object gives the same ``mjData`` layout, so one ``mujoco.batch.Batch`` runs any mix of
them (``Batch.set_models``): the object body always has one geom, an explicit diagonal inertia
and the same mesh assets (:func:`mesh_library`), used by the object or not.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable

import mujoco
import numpy as np

from metarl.envs.grasping.meshes import BUILTIN_PREFIX, builtin_names, mesh_vertices
from metarl.envs.grasping.objects import ObjectSpec
from metarl.envs.mujoco_batch import quiet_mujoco_log

TIMESTEP = 0.004  # s
SUBSTEPS = 5  # physics steps per control step: 50 Hz control
GRIP_FORCE = 15.0  # N, largest squeeze of each finger
FINGER_OPEN = 0.055  # m, half-gap between the pads when open
FINGER_CLOSED_TARGET = -0.02  # m, the position target that "close" commands (past touching)
PAD_HALF = (0.012, 0.004, 0.02)  # m, pad half-sizes: along the jaw, thickness, height
PAD_FRICTION = 1.2
HAND_RANGE = ((-0.2, 0.2), (-0.2, 0.2), (PAD_HALF[2] + 0.002, 0.35))  # m, pinch-point workspace
YAW_RANGE = (-math.pi / 2, math.pi / 2)
HAND_HOME = (0.0, 0.0, 0.2)  # m, pinch point at reset (before jitter)
OBJECT_DROP = 0.0005  # m, gap between the object and the table at reset
CAMERA = "overview"
MAX_HULL_VERTICES = 64

HAND_JOINTS = ("hand_x", "hand_y", "hand_z", "hand_yaw")
FINGER_JOINTS = ("finger_left", "finger_right")


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """The gripper's knobs (the family's options pass them through).

    Attributes:
        grip_force: Largest squeeze of each finger (N).
        pad_friction: Sliding friction of the finger pads; a pad-object contact has the geometric
            mean of the pad's and the object's friction (:func:`pad_contact_friction`).
    """

    grip_force: float = GRIP_FORCE
    pad_friction: float = PAD_FRICTION


@dataclasses.dataclass(frozen=True)
class SceneLayout:
    """Where the environment's quantities live in ``qpos``, ``qvel`` and ``sensordata``; the same
    for every object (the gripper's joints come first, then the object's free joint).

    Attributes:
        hand_qpos: x, y, z, yaw (4 entries). ``hand_dof`` likewise.
        finger_qpos: Left and right finger (2 entries). ``finger_dof`` likewise.
        object_qpos: The object's free joint: position and quaternion (7 entries).
        object_dof: Its linear (world frame) and angular (body frame) velocity (6 entries).
        touch: "Left / right finger touches the object" contact-sensor counts (2 entries).
    """

    hand_qpos: slice
    finger_qpos: slice
    object_qpos: slice
    hand_dof: slice
    finger_dof: slice
    object_dof: slice
    touch: slice


def object_geom(spec: ObjectSpec) -> tuple[mujoco.mjtGeom, np.ndarray]:
    """MuJoCo geom type and size of an object (its long axis along body x for capsules)."""
    if spec.shape == "box":
        return mujoco.mjtGeom.mjGEOM_BOX, spec.half_extents()
    if spec.shape == "ellipsoid":
        return mujoco.mjtGeom.mjGEOM_ELLIPSOID, spec.half_extents()
    if spec.shape == "cylinder":
        return mujoco.mjtGeom.mjGEOM_CYLINDER, np.array([spec.dim("radius"), spec.dim("height") / 2, 0])
    if spec.shape == "sphere":
        return mujoco.mjtGeom.mjGEOM_SPHERE, np.array([spec.dim("radius"), 0, 0])
    if spec.shape == "capsule":
        r = spec.dim("radius")
        return mujoco.mjtGeom.mjGEOM_CAPSULE, np.array([r, spec.dim("length") / 2 - r, 0])
    return mujoco.mjtGeom.mjGEOM_MESH, np.zeros(3)


def object_inertia(spec: ObjectSpec) -> np.ndarray:
    """``[3]`` diagonal inertia (kg m²) about the body frame: solid primitives, and a solid box of
    the bounding box for meshes (a mesh's body frame is its bounding-box centre)."""
    m = spec.mass
    if spec.shape == "sphere":
        return np.full(3, 0.4 * m * spec.dim("radius") ** 2)
    if spec.shape == "cylinder":
        r, h = spec.dim("radius"), spec.dim("height")
        side = m * (3 * r**2 + h**2) / 12
        return np.array([side, side, 0.5 * m * r**2])
    if spec.shape == "ellipsoid":
        a, b, c = spec.half_extents()
        return m / 5 * np.array([b**2 + c**2, a**2 + c**2, a**2 + b**2])
    if spec.shape == "capsule":  # a cylinder of the full length: close, and positive definite
        r, length = spec.dim("radius"), spec.dim("length")
        side = m * (3 * r**2 + length**2) / 12
        return np.array([0.5 * m * r**2, side, side])
    a, b, c = 2 * spec.half_extents()  # box and mesh
    return m / 12 * np.array([b**2 + c**2, a**2 + c**2, a**2 + b**2])


def resting_height(spec: ObjectSpec) -> float:
    """Height (m) of the object's body origin above the table when it rests on it."""
    return float(spec.half_extents()[2])


def mesh_library(specs: Iterable[ObjectSpec]) -> tuple[str, ...]:
    """The mesh assets every model of a batch holding ``specs`` must carry: all built-in meshes,
    then each distinct mesh file among ``specs`` (sorted)."""
    files = {s.dim("path") for s in specs if s.shape == "mesh" and not s.dim("path").startswith(BUILTIN_PREFIX)}
    return tuple(BUILTIN_PREFIX + name for name in builtin_names()) + tuple(sorted(files))


def build_spec(spec: ObjectSpec, library: tuple[str, ...] = (), config: SceneConfig | None = None) -> mujoco.MjSpec:
    """Builds the scene around one object.

    Args:
        spec: The object on the table.
        library: Mesh paths to carry as assets (see :func:`mesh_library`); the object's own mesh
            is added when missing. Models that carry the same library share one ``mjData`` layout.
        config: Grip force and pad friction; the defaults when None.

    Returns:
        The uncompiled ``mujoco.MjSpec``; see :func:`compile_scene`.
    """
    config = config or SceneConfig()
    s = _base_spec(config).copy()
    _add_touch_sensors(s)
    _add_object(s, spec, library or mesh_library([spec]), config)
    return s


@functools.lru_cache(maxsize=8)
def _base_spec(config: SceneConfig) -> mujoco.MjSpec:
    """The scene without its object: options, assets, lights, table, camera and gripper.

    Built once per configuration; :func:`build_spec` adds the object to a copy, which compiles to
    the same model as a scene built from scratch.
    """
    s = mujoco.MjSpec()
    s.modelname = "grasp"
    opt = s.option
    opt.timestep = TIMESTEP
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    opt.impratio = 1.0
    s.compiler.autolimits = True
    s.visual.global_.offwidth = 1280
    s.visual.global_.offheight = 960
    _add_assets(s)
    world = s.worldbody
    world.add_light(pos=[0.3, -0.3, 1.2], dir=[-0.3, 0.3, -1.0], diffuse=[0.8, 0.8, 0.8])
    world.add_light(pos=[-0.4, 0.4, 1.0], dir=[0.4, -0.4, -1.0], diffuse=[0.3, 0.3, 0.3])
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[1.5, 1.5, 0.05],
        material="table",
    )
    world.add_camera(name=CAMERA, pos=[0.45, -0.45, 0.38], xyaxes=[1, 1, 0, -0.125, 0.125, 0.45], fovy=45)
    _add_gripper(s, config)
    return s


def compile_scene(spec: ObjectSpec, library: tuple[str, ...] = (), config: SceneConfig | None = None) -> mujoco.MjModel:
    """Builds and compiles the scene around ``spec`` (see :func:`build_spec`), MuJoCo's log kept quiet."""
    with quiet_mujoco_log():
        return build_spec(spec, library, config).compile()


def scene_layout(model: mujoco.MjModel) -> SceneLayout:
    """Reads the addresses the environment needs from a compiled scene."""

    def span(starts: list[int], size: int) -> slice:
        if starts != list(range(starts[0], starts[0] + size * len(starts), size)):
            raise ValueError(f"scene entries {starts} are not contiguous")
        return slice(starts[0], starts[0] + size * len(starts))

    def joints(names: tuple[str, ...], address: np.ndarray, size: int) -> slice:
        return span([int(address[model.joint(n).id]) for n in names], size)

    return SceneLayout(
        hand_qpos=joints(HAND_JOINTS, model.jnt_qposadr, 1),
        finger_qpos=joints(FINGER_JOINTS, model.jnt_qposadr, 1),
        object_qpos=joints(("object",), model.jnt_qposadr, 7),
        hand_dof=joints(HAND_JOINTS, model.jnt_dofadr, 1),
        finger_dof=joints(FINGER_JOINTS, model.jnt_dofadr, 1),
        object_dof=joints(("object",), model.jnt_dofadr, 6),
        touch=span([int(model.sensor_adr[model.sensor(n).id]) for n in ("touch_left", "touch_right")], 1),
    )


# the scene's textures: MuJoCo's procedural textures (name, type, builtin, colours), 256 x 256 pixels each
_TEXTURES = (
    (
        "sky",
        mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        (0.75, 0.82, 0.9),
        (0.25, 0.3, 0.38),
    ),
    ("grid", mujoco.mjtTexture.mjTEXTURE_2D, mujoco.mjtBuiltin.mjBUILTIN_CHECKER, (0.55, 0.45, 0.35), (0.5, 0.4, 0.3)),
)
_TEXTURE_SIZE = 256


@functools.cache
def _texture_pixels() -> tuple[tuple[int, int, int, bytes], ...]:
    """``(width, height, channels, pixels)`` of each of :data:`_TEXTURES`, generated by MuJoCo once.

    Generating the procedural textures is most of the cost of compiling a scene; every scene
    instead carries these pixels, which compile to the same model, byte for byte.
    """
    s = mujoco.MjSpec()
    for name, kind, builtin, rgb1, rgb2 in _TEXTURES:
        s.add_texture(
            name=name,
            type=kind,
            builtin=builtin,
            rgb1=list(rgb1),
            rgb2=list(rgb2),
            width=_TEXTURE_SIZE,
            height=_TEXTURE_SIZE,
        )
    with quiet_mujoco_log():
        model = s.compile()
    out = []
    for i in range(model.ntex):
        width, height, channels = (int(v) for v in (model.tex_width[i], model.tex_height[i], model.tex_nchannel[i]))
        start = int(model.tex_adr[i])
        out.append((width, height, channels, model.tex_data[start : start + width * height * channels].tobytes()))
    return tuple(out)


def _add_assets(s: mujoco.MjSpec) -> None:
    for (name, kind, _, _, _), (width, height, channels, pixels) in zip(_TEXTURES, _texture_pixels(), strict=True):
        texture = s.add_texture(name=name, type=kind, width=width, height=height, nchannel=channels)
        texture.data = pixels
    table = s.add_material(name="table", texrepeat=[24, 24], reflectance=0.05)
    table.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    s.add_material(name="metal", rgba=[0.6, 0.62, 0.66, 1])
    s.add_material(name="pad", rgba=[0.15, 0.15, 0.18, 1])
    s.add_material(name="object", rgba=[0.85, 0.35, 0.15, 1], specular=0.3)


def _add_gripper(s: mujoco.MjSpec, config: SceneConfig) -> None:
    hand = s.worldbody.add_body(name="hand", gravcomp=1.0)
    axes = ([1, 0, 0], [0, 1, 0], [0, 0, 1])
    for name, axis, limits in zip(HAND_JOINTS[:3], axes, HAND_RANGE, strict=True):
        hand.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis, range=limits, damping=10.0, armature=0.1)
    hand.add_joint(
        name="hand_yaw",
        type=mujoco.mjtJoint.mjJNT_HINGE,
        axis=[0, 0, 1],
        range=YAW_RANGE,
        damping=0.5,
        armature=0.002,
    )
    finger_top = PAD_HALF[2] + 0.06  # the palm sits this high above the pinch point
    hand.add_geom(
        name="palm",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.02, FINGER_OPEN + 0.015, 0.012],
        pos=[0, 0, finger_top + 0.012],
        material="metal",
        mass=0.4,
    )
    hand.add_geom(
        name="wrist",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.015, 0.04, 0],
        pos=[0, 0, finger_top + 0.064],
        material="metal",
        mass=0.1,
        contype=0,
        conaffinity=0,
    )
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add_body(name=f"finger_{side}", gravcomp=1.0)
        finger.add_joint(
            name=f"finger_{side}",
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0.0, FINGER_OPEN],
            damping=40.0,
            armature=0.01,
        )
        finger.add_geom(
            name=f"pad_{side}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(PAD_HALF),
            pos=[0, sign * PAD_HALF[1], 0],
            material="pad",
            friction=[config.pad_friction, 0.01, 0.0001],
            condim=4,
            mass=0.05,
        )
        link_half = (finger_top - PAD_HALF[2]) / 2
        finger.add_geom(
            name=f"link_{side}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[PAD_HALF[0], 0.004, link_half],
            pos=[0, sign * (2 * PAD_HALF[1] + 0.004), PAD_HALF[2] + link_half],
            material="metal",
            mass=0.05,
        )
    s.add_exclude(bodyname1="finger_left", bodyname2="finger_right")
    for name, (low, high) in zip(HAND_JOINTS[:3], HAND_RANGE, strict=True):
        act = s.add_actuator(name=f"act_{name}", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=2000.0, kv=120.0)
        act.ctrlrange = [low, high]
    yaw = s.add_actuator(name="act_hand_yaw", target="hand_yaw", trntype=mujoco.mjtTrn.mjTRN_JOINT)
    yaw.set_to_position(kp=20.0, kv=1.5)
    yaw.ctrlrange = list(YAW_RANGE)
    for side in ("left", "right"):
        act = s.add_actuator(name=f"act_finger_{side}", target=f"finger_{side}", trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=1500.0)
        act.ctrlrange = [FINGER_CLOSED_TARGET, FINGER_OPEN]
        act.forcerange = [-config.grip_force, config.grip_force]


def _add_touch_sensors(s: mujoco.MjSpec) -> None:
    """ "The left / right finger touches the object" sensors (added with the object they refer to)."""
    for side in ("left", "right"):
        s.add_sensor(
            name=f"touch_{side}",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=f"finger_{side}",
            reftype=mujoco.mjtObj.mjOBJ_BODY,
            refname="object",
            intprm=[1, 0, 1],  # data=found, reduce=none, num=1
        )


def pad_contact_friction(spec: ObjectSpec, config: SceneConfig) -> float:
    """Sliding friction between a finger pad and the object: the geometric mean of the two."""
    return math.sqrt(spec.friction * config.pad_friction)


def _add_object(s: mujoco.MjSpec, spec: ObjectSpec, library: tuple[str, ...], config: SceneConfig) -> None:
    body = s.worldbody.add_body(
        name="object",
        pos=[0, 0, resting_height(spec) + OBJECT_DROP],
        mass=spec.mass,
        inertia=object_inertia(spec).tolist(),
        explicitinertial=True,
    )
    body.add_freejoint(name="object")
    geom_type, size = object_geom(spec)
    own = spec.dim("path") if spec.shape == "mesh" else None
    if own is not None and own not in library:
        library = (*library, own)
    for index, path in enumerate(library):
        # unused meshes are shrunk out of the way; scale never changes a mesh's hull topology
        points = spec.mesh_points() if path == own else mesh_vertices(path) * 0.01
        s.add_mesh(name=f"mesh{index}", uservert=points.ravel().tolist(), maxhullvert=MAX_HULL_VERTICES)
    quat = [1.0, 0.0, 0.0, 0.0]
    if spec.shape == "capsule":  # capsule axis along body x: it lies on its side
        quat = [math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0]
    geom = body.add_geom(
        name="object",
        type=geom_type,
        size=size.tolist(),
        quat=quat,
        material="object",
        friction=[spec.friction, 0.005, 0.0001],
        condim=4,
        priority=1,
        mass=0.0,
    )
    if geom_type == mujoco.mjtGeom.mjGEOM_MESH:
        geom.meshname = f"mesh{library.index(own)}"
    mu = pad_contact_friction(spec, config)
    for side in ("left", "right"):  # an explicit pair replaces the pad-object contact MuJoCo would make
        s.add_pair(geomname1=f"pad_{side}", geomname2="object", condim=4, friction=[mu, mu, 0.01, 1e-4, 1e-4])
