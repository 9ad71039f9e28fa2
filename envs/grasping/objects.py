"""What the gripper lifts: :class:`ObjectSpec`, its one-line / mapping forms and its geometry.

One line names the shape, then ``key=value`` pairs (metres, kilograms)::

    box length=0.05 width=0.04 height=0.08 mass=0.2 friction=1.0
    cylinder radius=0.03 height=0.12 mass=0.2
    sphere radius=0.03
    capsule radius=0.02 length=0.1          # tip to tip; lies on its side
    ellipsoid length=0.08 width=0.05 height=0.04
    mesh path=mug.obj scale=0.01 mass=0.3   # OBJ or STL, z up; collides as its convex hull
    mesh path=builtin:prism6 scale=0.03,0.03,0.05

``scale`` multiplies the file's coordinates (one number, or one per axis). Built-in meshes
(:func:`metarl.envs.grasping.meshes.builtin_names`) span ``[-1, 1]`` per axis, so their scale is
their half-extent in metres. ``mass`` defaults to 0.1 kg and ``friction`` to 1.0. Every check
runs before MuJoCo sees the object and fails with one :class:`~metarl.envs.base.TaskError` line.
"""

from __future__ import annotations

import dataclasses
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

SHAPES = ("box", "cylinder", "sphere", "capsule", "ellipsoid", "mesh")
SHAPE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "box": ("length", "width", "height"),
    "cylinder": ("radius", "height"),
    "sphere": ("radius",),
    "capsule": ("radius", "length"),
    "ellipsoid": ("length", "width", "height"),
    "mesh": ("path", "scale"),
}
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
    """

    shape: str
    dims: tuple[tuple[str, Any], ...]
    mass: float = DEFAULT_MASS
    friction: float = DEFAULT_FRICTION

    KEYS: ClassVar[tuple[str, ...]] = ("shape", "mass", "friction")

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
        return cls(shape=shape, dims=dims, mass=mass, friction=friction)

    def to_dict(self) -> dict[str, Any]:
        """The mapping form; :meth:`from_dict` round-trips it."""
        out: dict[str, Any] = {"shape": self.shape}
        for name, value in self.dims:
            out[name] = list(value) if isinstance(value, tuple) else value
        out["mass"] = self.mass
        out["friction"] = self.friction
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

    def half_extents(self) -> np.ndarray:
        """``[3]`` half-extents (m) of the object's bounding box in its resting pose."""
        if self.shape == "mesh":
            return np.asarray(np.abs(self.mesh_points()).max(axis=0), dtype=np.float64)
        if self.shape in ("box", "ellipsoid"):
            return np.array([self.dim("length"), self.dim("width"), self.dim("height")]) / 2
        if self.shape == "cylinder":
            r = self.dim("radius")
            return np.array([r, r, self.dim("height") / 2])
        if self.shape == "sphere":
            return np.full(3, self.dim("radius"))
        r = self.dim("radius")  # capsule, lying along x
        return np.array([self.dim("length") / 2, r, r])

    def grasp_width(self) -> float:
        """Narrowest horizontal extent of the resting object (m): what the fingers must span."""
        return float(2 * self.half_extents()[:2].min())


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
    low, high = (MIN_EXTENT / 2, MAX_EXTENT / 2) if name == "radius" else (MIN_EXTENT, MAX_EXTENT)
    check_finite_range(name, value, low, high)
    return float(value)


def _load_mesh(path: str) -> np.ndarray:
    try:
        return mesh_vertices(path)
    except MeshError as err:
        raise TaskError(str(err)) from None


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
    width = spec.grasp_width()
    if width > MAX_GRASP_WIDTH + 1e-12:
        raise TaskError(
            f"{spec.shape} grasp width={width:.4g} m is too large for the open gripper; "
            f"allowed: {describe_range(0.0, MAX_GRASP_WIDTH, low_open=True)} m (narrower horizontal side)"
        )
    if not math.isfinite(width):
        raise TaskError(f"{spec.shape} has a non-finite size")
