"""The grasping scene, built with ``mujoco.MjSpec``: a table, a parallel-jaw gripper and one object.

The gripper's hand moves on three slide joints (x, y, z), each driven by a position actuator;
gravity compensation carries the hand. Its two fingers close along the world y axis: they slide
towards each other on force-limited position actuators, so a command past closed squeezes with at
most ``GRIP_FORCE`` newtons. Objects are held by friction at the finger pads alone: an object
pinched away from its centre of mass turns in the grip under its own weight.

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
from metarl.envs.grasping.shapes import MAX_PARTS, Part
from metarl.envs.mujoco_batch import quiet_mujoco_log

TIMESTEP = 0.008  # s
SUBSTEPS = 10  # physics steps per control step: 12.5 Hz control
GRIP_FORCE = 2.25  # N, largest squeeze of each finger
FINGER_OPEN = 0.055  # m, half-gap between the pads when open
FINGER_CLOSED_TARGET = -0.02  # m, the position target that "close" commands (past touching)
PAD_HALF = (0.006, 0.004, 0.02)  # m, pad half-sizes: along the jaw (narrow fingertips), thickness, height
PAD_FRICTION = 1.2
HAND_RANGE = ((-0.2, 0.2), (-0.2, 0.2), (PAD_HALF[2] + 0.002, 0.35))  # m, pinch-point workspace
HAND_FILTER = 0.04  # s, time constant of the hand's position targets
HAND_HOME = (0.0, 0.0, 0.09)  # m, pinch point at reset (before jitter)
OBJECT_DROP = 0.0005  # m, gap between the object and the table at reset
CAMERA = "overview"
MAX_HULL_VERTICES = 64

HAND_JOINTS = ("hand_x", "hand_y", "hand_z")
# MuJoCo treats a free body whose centre of mass is exactly its origin as "simple", which changes
# mjData's layout; a batch needs one layout, so every object's centre of mass sits 1 µm lower.
_NOT_SIMPLE = 1e-6  # m
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
        hand_qpos: x, y, z (3 entries). ``hand_dof`` likewise.
        finger_qpos: Left and right finger (2 entries). ``finger_dof`` likewise.
        object_qpos: The object's free joint: position and quaternion (7 entries).
        object_dof: Its linear (world frame) and angular (body frame) velocity (6 entries).
        touch: Left then right finger's contact sensor with the object (``2 * TOUCH_DATA`` entries).
    """

    hand_qpos: slice
    finger_qpos: slice
    object_qpos: slice
    hand_dof: slice
    finger_dof: slice
    object_dof: slice
    touch: slice


_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "mesh": mujoco.mjtGeom.mjGEOM_MESH,
}
_S = math.sqrt(0.5)
_AXIS_QUAT = {
    "x": [_S, 0.0, _S, 0.0],
    "y": [_S, -_S, 0.0, 0.0],
    "z": [1.0, 0.0, 0.0, 0.0],
}  # turns geom z onto the axis


def part_geom(part: Part) -> tuple[mujoco.mjtGeom, list[float], list[float]]:
    """MuJoCo geom type, size and orientation (quaternion) of one part."""
    if part.kind in ("capsule", "cylinder"):
        r, h = part.radius, part.half_length
        size = [r, h - r if part.kind == "capsule" else h, 0.0]
        return _GEOM_TYPES[part.kind], size, _AXIS_QUAT[part.axis]
    if part.kind == "sphere":
        return _GEOM_TYPES["sphere"], [part.radius, 0.0, 0.0], _AXIS_QUAT["z"]
    size = [0.0, 0.0, 0.0] if part.kind == "mesh" else list(part.size)
    return _GEOM_TYPES[part.kind], size, _AXIS_QUAT["z"]


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
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
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
        touch=span([int(model.sensor_adr[model.sensor(n).id]) for n in ("touch_left", "touch_right")], TOUCH_DATA),
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
    for name, axis, limits in zip(HAND_JOINTS, axes, HAND_RANGE, strict=True):
        hand.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis, range=limits, damping=10.0, armature=0.1)
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
            damping=5.0,
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
    for name, (low, high) in zip(HAND_JOINTS, HAND_RANGE, strict=True):
        act = s.add_actuator(name=f"act_{name}", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=2000.0, kv=120.0)
        # the position target follows the command through a first-order filter: a new command
        # each control step does not jerk the hand (and a light grip keeps a heavy object)
        act.dyntype = mujoco.mjtDyn.mjDYN_FILTEREXACT
        act.dynprm[0] = HAND_FILTER
        act.ctrlrange = [low, high]
    for side in ("left", "right"):
        act = s.add_actuator(name=f"act_finger_{side}", target=f"finger_{side}", trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=1500.0)
        act.ctrlrange = [FINGER_CLOSED_TARGET, FINGER_OPEN]
        act.forcerange = [-config.grip_force, config.grip_force]


TOUCH_DATA = 4  # sensor entries per pad: contacts found, then the strongest contact's normal (world x, y, z)


def _add_touch_sensors(s: mujoco.MjSpec) -> None:
    """Contact sensors between each finger and the object: whether they touch, and the normal of
    the strongest contact, so that a pad resting on top of the object (normal vertical) can be
    told from a pad pressing on its side (normal across the jaws).
    """
    for side in ("left", "right"):
        s.add_sensor(
            name=f"touch_{side}",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=f"finger_{side}",
            reftype=mujoco.mjtObj.mjOBJ_BODY,
            refname="object",
            intprm=[1 | 32, 2, 1],  # data = found + normal, reduce = strongest contact, one contact
        )


def pad_contact_friction(spec: ObjectSpec, config: SceneConfig) -> float:
    """Sliding friction between a finger pad and the object: the geometric mean of the two."""
    return math.sqrt(spec.friction * config.pad_friction)


_UNUSED_PART_POS = [0.0, 0.0, -1.0]  # m below the object: no pad reaches it
_UNUSED_PART_BIT = 2


def _add_object(s: mujoco.MjSpec, spec: ObjectSpec, library: tuple[str, ...], config: SceneConfig) -> None:
    """The object: a free body with :data:`MAX_PARTS` geoms (unused ones tiny, disabled and out of
    reach, so every object gives one mjData layout), its mass properties set explicitly."""
    props = spec.mass_properties()
    inertia = props.inertia
    body = s.worldbody.add_body(
        name="object",
        pos=[0, 0, resting_height(spec) + OBJECT_DROP],
        mass=spec.mass,
        ipos=[float(props.com[0]), float(props.com[1]), float(props.com[2]) - _NOT_SIMPLE],
        fullinertia=[inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]],
        explicitinertial=True,
    )
    body.add_freejoint(name="object")
    own = spec.dim("path") if spec.shape == "mesh" else None
    if own is not None and own not in library:
        library = (*library, own)
    for index, path in enumerate(library):
        # unused meshes are shrunk out of the way; scale never changes a mesh's hull topology
        points = spec.mesh_points() if path == own else mesh_vertices(path) * 0.01
        s.add_mesh(name=f"mesh{index}", uservert=points.ravel().tolist(), maxhullvert=MAX_HULL_VERTICES)
    parts = spec.parts()
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{spec.shape} has {len(parts)} parts; allowed: at most {MAX_PARTS}")
    mu = pad_contact_friction(spec, config)
    for index in range(MAX_PARTS):
        name = f"object{index}"
        if index < len(parts):
            part = parts[index]
            geom_type, size, quat = part_geom(part)
            geom = body.add_geom(
                name=name,
                type=geom_type,
                size=size,
                pos=list(part.pos),
                quat=quat,
                material="object",
                friction=[spec.friction, 0.005, 0.0001],
                condim=4,
                priority=1,
                mass=0.0,
            )
            if geom_type == mujoco.mjtGeom.mjGEOM_MESH:
                geom.meshname = f"mesh{library.index(own)}"
        else:
            body.add_geom(
                name=name,
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[1e-3, 0.0, 0.0],
                pos=_UNUSED_PART_POS,
                contype=_UNUSED_PART_BIT,  # a bit no other geom has: in the collision tree (same
                conaffinity=_UNUSED_PART_BIT,  # layout as a used part) but never in contact
                rgba=[0, 0, 0, 0],
                mass=0.0,
            )
        for side in ("left", "right"):  # an explicit pair replaces the pad-object contact MuJoCo would make
            s.add_pair(geomname1=f"pad_{side}", geomname2=name, condim=4, friction=[mu, mu, 0.01, 1e-4, 1e-4])
