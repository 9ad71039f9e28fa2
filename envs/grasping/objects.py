"""What the gripper lifts: :class:`ObjectSpec`, its one-line / mapping forms and its geometry.

One line names the shape, then ``key=value`` pairs (metres, kilograms)::

    box length=0.05 width=0.04 height=0.08 mass=0.2 friction=1.0
    cylinder radius=0.03 height=0.12 mass=0.2
    sphere radius=0.03
    capsule radius=0.02 length=0.1          # tip to tip; lies on its side
    ellipsoid length=0.08 width=0.05 height=0.04
    mesh path=mug.obj scale=0.01 mass=0.3   # OBJ or STL, z up; collides as its convex hull
    mesh path=builtin:prism6 scale=0.03,0.03,0.05
    box length=0.2 width=0.04 height=0.03 mass=0.3 com=0.05   # heavier towards +x
    hammer length=0.25 handle=0.02 head=0.03 head_width=0.08 head_height=0.03 mass=0.4
    dumbbell length=0.2 bar=0.015 left=0.03 right=0.05 mass=0.4
    bottle length=0.22 radius=0.03 neck=0.012 neck_length=0.07 mass=0.3
    mallet length=0.24 handle=0.02 head=0.05 head_width=0.08 mass=0.35

Compound shapes (:data:`metarl.envs.grasping.shapes.COMPOUNDS`) are made of a few parts of
different densities; their centre of mass follows from the shape and cannot be given.

``com`` is the centre of mass relative to the centre of the object's bounding box, in the
object's frame (one number: along x, the long axis of the family's bars; or x,y,z); it must lie
inside the bounding box. Without it, the centre of mass is that of the solid: the middle of a
primitive, the centroid of a mesh's hull, and for a compound it follows from its parts (and cannot
be given). The placement ``at=x,y`` (m, the bounding-box centre on the table, within ±0.15 m) and
``yaw=`` (degrees about the vertical; 180 lays the object the other way round) default to 0.
``scale`` multiplies the file's coordinates (one number, or one per axis). Built-in meshes
(:func:`metarl.envs.grasping.meshes.builtin_names`) span ``[-1, 1]`` per axis, so their scale is
their half-extent in metres. ``mass`` defaults to 0.1 kg and ``friction`` to 1.0. Every check
runs before MuJoCo sees the object and fails with one :class:`~metarl.envs.base.TaskError` line.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from metarl.envs.base import TaskError, check_finite_range, describe_range
from metarl.envs.grasping.meshes import BUILTIN_PREFIX, MeshError, mesh_vertices
from metarl.envs.grasping.shapes import COMPOUNDS, MassProperties, Part, bounding_half_extents, mass_properties

PRIMITIVES = ("box", "cylinder", "sphere", "capsule", "ellipsoid", "mesh")
SHAPES = (*PRIMITIVES, *COMPOUNDS)
SHAPE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "box": ("length", "width", "height"),
    "cylinder": ("radius", "height"),
    "sphere": ("radius",),
    "capsule": ("radius", "length"),
    "ellipsoid": ("length", "width", "height"),
    "mesh": ("path", "scale"),
    **{name: compound.dims for name, compound in COMPOUNDS.items()},
}
RADIUS_DIMS = ("radius", "neck")  # dimensions that are half a width
MAX_GRASP_WIDTH = 0.09  # m: the open gripper's 0.11 m minus 1 cm of clearance on each side
MIN_EXTENT, MAX_EXTENT = 0.01, 0.3  # m, full extent of the object along any axis
MASS_RANGE = (0.0, 5.0)  # kg, lower bound excluded
FRICTION_RANGE = (0.05, 3.0)
DEFAULT_MASS, DEFAULT_FRICTION = 0.1, 1.0


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """A rigid object: its shape, dimensions, mass and friction. Build with :meth:`parse` or
    :meth:`from_dict`; the constructor validates every field.

    Attributes:
        shape: One of ``box, cylinder, sphere, capsule, ellipsoid, mesh``.
        dims: ``((name, value), ...)`` of the shape's dimensions, in the order of
            ``SHAPE_DIMENSIONS[shape]`` (metres; ``path`` a string and ``scale`` a tuple for meshes).
        mass: Mass in kg.
        friction: Sliding friction coefficient: of the object-table contact, and (combined with
            the pads' friction) of the finger contacts.
        com: Centre of mass relative to the bounding-box centre, object frame (m); inside the box.
            Zero (the default) stands for the solid's own (see :meth:`solid_com`).
        at: Where the bounding-box centre rests on the table, x and y (m).
        yaw: Turn about the vertical (degrees) of the object on the table.
    """

    shape: str
    dims: tuple[tuple[str, Any], ...]
    mass: float = DEFAULT_MASS
    friction: float = DEFAULT_FRICTION
    com: tuple[float, float, float] = (0.0, 0.0, 0.0)
    at: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0

    KEYS: ClassVar[tuple[str, ...]] = ("shape", "mass", "friction", "com", "at", "yaw")

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise TaskError(f"shape={self.shape!r} is unknown; allowed: {', '.join(SHAPES)}")
        pairs = self.dims if isinstance(self.dims, (tuple, list)) else None
        if pairs is None or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise TaskError(f"dims={self.dims!r} must be (name, value) pairs such as (('radius', 0.03),)")
        names = [name for name, _ in self.dims]
        allowed = SHAPE_DIMENSIONS[self.shape]
        for name in names:
            if name not in allowed:
                raise TaskError(f"{name} is not a dimension of a {self.shape}; allowed: {', '.join(allowed)}")
        dims = dict(self.dims)
        if self.shape == "mesh":
            dims.setdefault("scale", (1.0,))
        for name in allowed:
            if name not in dims:
                raise TaskError(f"{self.shape} needs {name}=...; dimensions: {', '.join(allowed)}")
        check_finite_range("mass", self.mass, *MASS_RANGE, low_open=True)
        check_finite_range("friction", self.friction, *FRICTION_RANGE)
        ordered = tuple((name, _checked_dimension(self.shape, name, dims[name])) for name in allowed)
        object.__setattr__(self, "dims", ordered)
        object.__setattr__(self, "mass", float(self.mass))
        object.__setattr__(self, "friction", float(self.friction))
        com = _checked_com(self.com)
        if self.shape in COMPOUNDS:
            _check_compound(self.shape, dict(ordered))
        solid = self.solid_com()
        if self.shape in COMPOUNDS and any(com) and not np.allclose(com, solid, rtol=0.0, atol=1e-12):
            raise TaskError(f"com= cannot be given for a {self.shape}; its centre of mass follows from its parts")
        object.__setattr__(self, "com", com if any(com) else solid)
        object.__setattr__(self, "at", _checked_placement(self.at))
        check_finite_range("yaw", self.yaw, -180.0, 180.0)
        object.__setattr__(self, "yaw", float(self.yaw))
        _check_fits(self)

    def dim(self, name: str) -> Any:
        """Returns one dimension by name (e.g. ``spec.dim("radius")``)."""
        return dict(self.dims)[name]

    @classmethod
    def parse(cls, text: str) -> ObjectSpec:
        """Parses the one-line form, e.g. ``"cylinder radius=0.03 height=0.12 mass=0.2"``.

        Raises:
            TaskError: On a malformed line or an invalid object.
        """
        if not isinstance(text, str):
            raise TaskError(f"object {text!r} must be a string such as 'sphere radius=0.03'")
        try:
            tokens = shlex.split(text)
        except ValueError as err:
            raise TaskError(f"object {text!r} does not parse: {err}") from None
        if not tokens:
            raise TaskError(f"object {text!r} is empty; write e.g. 'sphere radius=0.03 mass=0.1'")
        shape, *pairs = tokens
        if "=" in shape:
            raise TaskError(f"object {text!r} must start with its shape; allowed: {', '.join(SHAPES)}")
        data: dict[str, Any] = {"shape": shape}
        for token in pairs:
            key, sep, raw = token.partition("=")
            if not sep or not key or not raw:
                raise TaskError(f"object {text!r}: token {token!r} is not of the form key=value")
            if key in data:
                raise TaskError(f"object {text!r}: key {key!r} given twice")
            data[key] = raw if key == "path" else _parse_number(key, raw)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectSpec:
        """Builds a spec from ``{"shape": ..., <dimensions>..., "mass": ..., "friction": ...}``.

        Raises:
            TaskError: On an unknown key or an invalid object.
        """
        if not isinstance(data, Mapping):
            raise TaskError(f"object {data!r} must be a mapping such as {{shape: sphere, radius: 0.03}}")
        if "shape" not in data:
            raise TaskError(f"object {dict(data)!r} has no 'shape'; allowed: {', '.join(SHAPES)}")
        shape = data["shape"]
        if shape not in SHAPES:
            raise TaskError(f"shape={shape!r} is unknown; allowed: {', '.join(SHAPES)}")
        dim_names = SHAPE_DIMENSIONS[shape]
        for key in data:
            if key not in cls.KEYS and key not in dim_names:
                allowed = ", ".join((*cls.KEYS, *dim_names))
                raise TaskError(f"{key} is not a key of a {shape} object; allowed: {allowed}")
        dims = tuple((name, data[name]) for name in dim_names if name in data)
        mass = data.get("mass", DEFAULT_MASS)
        friction = data.get("friction", DEFAULT_FRICTION)
        com = data.get("com", (0.0, 0.0, 0.0))
        at = data.get("at", (0.0, 0.0))
        yaw = data.get("yaw", 0.0)
        return cls(shape=shape, dims=dims, mass=mass, friction=friction, com=com, at=at, yaw=yaw)

    def to_dict(self) -> dict[str, Any]:
        """The mapping form; :meth:`from_dict` round-trips it."""
        out: dict[str, Any] = {"shape": self.shape}
        for name, value in self.dims:
            out[name] = list(value) if isinstance(value, tuple) else value
        out["mass"] = self.mass
        out["friction"] = self.friction
        if not np.allclose(self.com, self.solid_com(), rtol=0.0, atol=1e-12):
            out["com"] = self.com[0] if not any(self.com[1:]) else list(self.com)
        if any(self.at):
            out["at"] = list(self.at)
        if self.yaw:
            out["yaw"] = self.yaw
        return out

    def to_string(self) -> str:
        """The one-line form; :meth:`parse` round-trips it."""
        parts = [self.shape]
        for key, value in self.to_dict().items():
            if key == "shape":
                continue
            if isinstance(value, list):
                text = ",".join(repr(float(v)) for v in value)
            elif isinstance(value, float):
                text = repr(value)
            else:
                text = str(value)
            parts.append(shlex.quote(f"{key}={text}"))
        return " ".join(parts)

    def mesh_points(self) -> np.ndarray:
        """``[N, 3]`` vertices of a ``mesh`` object in metres (scaled, bounding box centred)."""
        if self.shape != "mesh":
            raise TaskError(f"shape={self.shape!r} has no mesh vertices")
        return _load_mesh(self.dim("path")) * np.asarray(self.dim("scale"))

    def parts(self) -> tuple[Part, ...]:
        """The object's solid parts, object frame (bounding box centred on the origin)."""
        if self.shape in COMPOUNDS:
            return COMPOUNDS[self.shape].build(dict(self.dims))
        if self.shape == "mesh":
            half = np.abs(self.mesh_points()).max(axis=0)
            return (Part("mesh", (float(half[0]), float(half[1]), float(half[2]))),)
        if self.shape in ("box", "ellipsoid"):
            half = (self.dim("length") / 2, self.dim("width") / 2, self.dim("height") / 2)
            return (Part(self.shape, half),)
        r = self.dim("radius")
        if self.shape == "cylinder":  # standing
            return (Part("cylinder", (r, r, self.dim("height") / 2), axis="z"),)
        if self.shape == "sphere":
            return (Part("sphere", (r, r, r)),)
        return (Part("capsule", (self.dim("length") / 2, r, r), axis="x"),)  # lying along x

    def solid_com(self) -> tuple[float, float, float]:
        """The centre of mass of the solid at uniform density (per part for a compound): the middle
        of a primitive, the centroid of a mesh's convex hull, the parts' combination for a compound."""
        if self.shape in COMPOUNDS:
            com = mass_properties(self.parts(), 1.0).com
        elif self.shape == "mesh":
            com = hull_centroid(self.dim("path"), self.dim("scale"))
        else:
            return (0.0, 0.0, 0.0)
        return (float(com[0]), float(com[1]), float(com[2]))

    def mass_properties(self) -> MassProperties:
        """Centre of mass and inertia: from the parts of a compound, else the solid's own inertia
        about its centre with the centre of mass moved to ``com`` (a weight hidden inside)."""
        props = mass_properties(self.parts(), self.mass)
        return dataclasses.replace(props, com=np.asarray(self.com, dtype=np.float64))

    def half_extents(self) -> np.ndarray:
        """``[3]`` half-extents (m) of the object's bounding box in its resting pose."""
        return bounding_half_extents(self.parts())

    def grasp_width(self) -> float:
        """Width across the jaws (y) of the object's narrowest part (m): the least the fingers
        must span to pinch it somewhere. The hand does not turn; objects lie along x."""
        return float(2 * min(part.size[1] for part in self.parts()))


def load_object(source: str | os.PathLike[str] | Mapping[str, Any]) -> ObjectSpec:
    """Reads an object from any of its three user-facing forms.

    Args:
        source: A mapping (``{"shape": "sphere", "radius": 0.03}``, optionally under an ``object``
            key); a path to a YAML file holding such a mapping (a relative mesh ``path`` in it is
            taken relative to the YAML file); a path to an ``.obj`` / ``.stl`` file (scale 1, so
            the file must be in metres; default mass and friction); or the one-line form.

    Raises:
        TaskError: With one line, when the source is unreadable or the object invalid.
    """
    if isinstance(source, Mapping):
        return ObjectSpec.from_dict(source.get("object", source))
    text = os.fspath(source)
    suffix = os.path.splitext(text)[1].lower()
    if suffix in (".yaml", ".yml") and "=" not in text:
        return _load_yaml(Path(text))
    if suffix in (".obj", ".stl") and "=" not in text and " " not in text.strip():
        return ObjectSpec(shape="mesh", dims=(("path", text.strip()),))
    return ObjectSpec.parse(text)


def _load_yaml(file: Path) -> ObjectSpec:
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as err:
        raise TaskError(f"object file {str(file)!r} cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise TaskError(f"object file {str(file)!r} is not valid YAML{line}") from None
    if isinstance(data, Mapping) and isinstance(data.get("object"), Mapping):
        data = data["object"]
    if not isinstance(data, Mapping):
        raise TaskError(f"object file {str(file)!r} must hold a mapping such as {{shape: sphere, radius: 0.03}}")
    data = dict(data)
    mesh = data.get("path")
    if data.get("shape") == "mesh" and isinstance(mesh, str) and not mesh.startswith(BUILTIN_PREFIX):
        beside = file.parent / mesh
        if not Path(mesh).is_absolute() and beside.exists():
            data["path"] = str(beside)
    return ObjectSpec.from_dict(data)


def _parse_number(key: str, raw: str) -> Any:
    parts = raw.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise TaskError(f"{key}={raw!r} is not a number; allowed: a number, or x,y,z for scale") from None
    return values if len(values) > 1 else values[0]


def _checked_dimension(shape: str, name: str, value: Any) -> Any:
    if name == "path":
        if not isinstance(value, str) or not value:
            raise TaskError(f"path={value!r} must be a mesh file (.obj, .stl) or {BUILTIN_PREFIX}<name>")
        _load_mesh(value)
        return value
    if name == "scale":
        scale = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if len(scale) not in (1, 3):
            raise TaskError(f"scale={value!r} must be one number or three (x,y,z); allowed: each in (0, inf)")
        for axis, entry in zip("xyz", scale, strict=False):
            check_finite_range(f"scale.{axis}" if len(scale) == 3 else "scale", entry, 0.0, None, low_open=True)
        return tuple(float(s) for s in scale)
    low, high = (MIN_EXTENT / 2, MAX_EXTENT / 2) if name in RADIUS_DIMS else (MIN_EXTENT, MAX_EXTENT)
    check_finite_range(name, value, low, high)
    return float(value)


def _load_mesh(path: str) -> np.ndarray:
    try:
        return mesh_vertices(path)
    except MeshError as err:
        raise TaskError(str(err)) from None


def _checked_com(value: Any) -> tuple[float, float, float]:
    """``com`` as three floats: one number is an offset along x."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) == 1:
        items += [0.0, 0.0]
    if len(items) != 3:
        raise TaskError(
            f"com={value!r} must be one number (along x) or three (x,y,z); allowed: metres inside the object"
        )
    for axis, entry in zip("xyz", items, strict=True):
        check_finite_range(f"com.{axis}", entry, -MAX_EXTENT / 2, MAX_EXTENT / 2)
    return (float(items[0]), float(items[1]), float(items[2]))


PLACEMENT_LIMIT = 0.15  # m: |x|, |y| of an object's centre on the table, within the hand's reach


def _checked_placement(value: Any) -> tuple[float, float]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) != 2:
        raise TaskError(f"at={value!r} must be two numbers x,y (m); allowed: each in [-0.15, 0.15]")
    for axis, entry in zip("xy", items, strict=True):
        check_finite_range(f"at.{axis}", entry, None, None)
        if abs(entry) > PLACEMENT_LIMIT:
            allowed = describe_range(-PLACEMENT_LIMIT, PLACEMENT_LIMIT)
            raise TaskError(
                f"at.{axis}={entry:g} places the object off the table's reachable area; allowed: {allowed} m"
            )
    return (float(items[0]), float(items[1]))


@functools.lru_cache(maxsize=256)
def hull_centroid(path: str, scale: tuple[float, ...]) -> np.ndarray:
    """``[3]`` centroid (m) of the convex hull of a mesh's scaled vertices, bounding box centred,
    as MuJoCo computes it for the mesh's inertia."""
    import mujoco  # here: objects are parsed without MuJoCo otherwise

    points = _load_mesh(path) * np.asarray(scale)
    spec = mujoco.MjSpec()
    spec.add_mesh(name="hull", uservert=points.ravel().tolist())
    body = spec.worldbody.add_body(name="solid")
    body.add_freejoint()
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="hull", density=1000.0)
    try:
        model = spec.compile()
    except ValueError as err:
        raise TaskError(f"path={path!r}: MuJoCo cannot build the mesh's hull ({' '.join(str(err).split())})") from None
    return np.array(model.body_ipos[1], dtype=np.float64)


def _check_compound(shape: str, dims: dict[str, Any]) -> None:
    """Proportions a compound needs to be built at all (its parts must fit in its length)."""
    length = dims["length"]
    if shape in ("hammer", "mallet") and dims["head"] >= length:
        raise TaskError(
            f"head={dims['head']:g} of a {shape} must be shorter than length={length:g}; allowed: (0, length)"
        )
    if shape == "dumbbell" and dims["left"] + dims["right"] >= length:
        raise TaskError(
            f"left + right = {dims['left'] + dims['right']:g} of a dumbbell must be shorter than length={length:g}"
            "; allowed: (0, length)"
        )
    if shape == "bottle":
        if dims["neck"] >= dims["radius"]:
            raise TaskError(
                f"neck={dims['neck']:g} of a bottle must be below radius={dims['radius']:g}; allowed: (0, radius)"
            )
        if dims["neck_length"] >= length - 2 * dims["radius"]:
            allowed = describe_range(0.0, length - 2 * dims["radius"], low_open=True, high_open=True)
            raise TaskError(f"neck_length={dims['neck_length']:g} of a bottle is too long; allowed: {allowed}")


def _check_fits(spec: ObjectSpec) -> None:
    """Checks shape-specific proportions and that the open gripper can span the object."""
    if spec.shape == "capsule" and spec.dim("length") <= 2 * spec.dim("radius"):
        allowed = describe_range(2 * spec.dim("radius"), MAX_EXTENT, low_open=True)
        raise TaskError(f"length={spec.dim('length')!r} of a capsule is too short; allowed: {allowed} (> 2*radius)")
    extent = 2 * spec.half_extents()
    if spec.shape == "mesh":
        for axis, value in zip("xyz", extent, strict=True):
            if not MIN_EXTENT <= value <= MAX_EXTENT:
                allowed = describe_range(MIN_EXTENT, MAX_EXTENT)
                scale = ",".join(f"{v:g}" for v in spec.dim("scale"))
                size = "large" if value > MAX_EXTENT else "small"
                raise TaskError(
                    f"scale={scale} makes the mesh {value:.4g} m along {axis}, too {size}; allowed: {allowed} m"
                )
    half = spec.half_extents()
    for axis, offset, limit in zip("xyz", spec.com, half, strict=True):
        if abs(offset) > limit:
            raise TaskError(
                f"com.{axis}={offset:g} lies outside the object; allowed: {describe_range(-limit, limit)} m "
                "(within its bounding box)"
            )
    width = spec.grasp_width()
    if width > MAX_GRASP_WIDTH + 1e-12:
        raise TaskError(
            f"{spec.shape} grasp width={width:.4g} m is too large for the open gripper; "
            f"allowed: {describe_range(0.0, MAX_GRASP_WIDTH, low_open=True)} m (across the jaws, y, "
            "of its narrowest part)"
        )
    if not math.isfinite(width):
        raise TaskError(f"{spec.shape} has a non-finite size")
