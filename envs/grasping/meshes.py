"""Mesh vertices for ``mesh`` objects: OBJ/STL readers and procedurally generated solids.

Only vertices matter: MuJoCo collides a mesh through its convex hull, and the scene builds the
mesh from its vertices alone, so the compiler computes that hull (and its faces) itself.
Every reader raises :class:`MeshError` with one line on a file that is missing or does not parse.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from pathlib import Path

import numpy as np

BUILTIN_PREFIX = "builtin:"


class MeshError(ValueError):
    """A mesh file is missing, unreadable or has no solid volume. The message is one line."""


def builtin_names() -> list[str]:
    """Names of the procedurally generated meshes (used as ``path=builtin:<name>``)."""
    return sorted(_BUILTINS)


def mesh_vertices(path: str) -> np.ndarray:
    """Loads the vertices of a mesh, centred on its bounding box.

    Args:
        path: An ``.obj`` or ``.stl`` file, or ``builtin:<name>`` for a generated solid.

    Returns:
        ``[N, 3]`` float64 unique vertices in the file's units, bounding-box centre at the origin.

    Raises:
        MeshError: When the file is missing or does not parse, or the points span no volume.
    """
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX) :]
        if name not in _BUILTINS:
            raise MeshError(f"path={path!r} names no built-in mesh; allowed: {', '.join(builtin_names())}")
        return _builtin_vertices(name).copy()
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError:
        raise MeshError(f"path={path!r}: mesh file not found") from None
    if not file.is_file():
        raise MeshError(f"path={path!r} is not a file")
    return _load_file(str(file.resolve()), stat.st_mtime_ns, stat.st_size).copy()


@functools.cache
def _builtin_vertices(name: str) -> np.ndarray:
    """The checked vertices of a built-in mesh, generated once (every scene carries every built-in mesh)."""
    return _BUILTINS[name]()


@functools.lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """Reads and checks a mesh file; ``mtime_ns`` and ``size`` only key the cache."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise MeshError(f"path={path!r}: cannot read mesh file ({err.strerror})") from None
    if suffix == ".obj":
        points = _parse_obj(raw, path)
    elif suffix == ".stl":
        points = _parse_stl(raw, path)
    else:
        raise MeshError(f"path={path!r}: unknown mesh format {suffix!r}; allowed: .obj, .stl")
    return _checked(points, path)


def _checked(points: np.ndarray, path: str) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4:
        raise MeshError(f"path={path!r}: mesh has {len(points)} vertices; needs at least 4 spanning a volume")
    if not np.isfinite(points).all():
        raise MeshError(f"path={path!r}: mesh has non-finite vertex coordinates")
    points = np.unique(points, axis=0)
    centred = points - (points.min(axis=0) + points.max(axis=0)) / 2
    extent = float(np.abs(centred).max())
    if len(points) < 4 or extent == 0.0 or np.linalg.matrix_rank(centred / extent, tol=1e-9) < 3:
        raise MeshError(f"path={path!r}: mesh vertices are flat or degenerate; they must span a volume")
    result: np.ndarray = centred
    return result


def _vertex_lines(text: str, keyword: str, path: str, kind: str) -> np.ndarray:
    """The points of the ``<keyword> x y z`` lines of a text mesh file (OBJ ``v``, ASCII STL ``vertex``).

    Returns:
        ``[N, 3]`` float64 points, ``N >= 1``.

    Raises:
        MeshError: A vertex line does not hold three numbers, or there is none.
    """
    points: list[tuple[float, float, float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != keyword:
            continue
        try:
            x, y, z = (float(v) for v in fields[1:4])
        except ValueError:
            raise MeshError(f"path={path!r}: line {number} is not a vertex line '{keyword} x y z'") from None
        points.append((x, y, z))
    if not points:
        raise MeshError(f"path={path!r}: {kind} file has no vertex lines '{keyword} x y z'")
    return np.asarray(points, dtype=np.float64)


def _parse_obj(raw: bytes, path: str) -> np.ndarray:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MeshError(f"path={path!r}: OBJ file is not UTF-8 text") from None
    return _vertex_lines(text, "v", path, "OBJ")


def _parse_stl(raw: bytes, path: str) -> np.ndarray:
    if len(raw) >= 84:
        (count,) = struct.unpack_from("<I", raw, 80)
        if len(raw) == 84 + 50 * count and count > 0:
            records = np.frombuffer(raw, dtype=np.uint8, offset=84).reshape(count, 50)
            floats = records[:, 12:48].copy().view("<f4").reshape(count * 3, 3)
            return floats.astype(np.float64)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise MeshError(f"path={path!r}: STL file is neither binary nor ASCII STL") from None
    if not text.lstrip().lower().startswith("solid"):
        raise MeshError(f"path={path!r}: STL file is neither binary nor ASCII STL")
    return _vertex_lines(text, "vertex", path, "ASCII STL")


def prism(sides: int) -> np.ndarray:
    """A right prism over a regular polygon: circumradius 1, height 2.

    Args:
        sides: Number of sides of the base polygon (>= 3).

    Returns:
        ``[2 * sides, 3]`` vertices, centred on the origin, a vertex on the +x axis.
    """
    angle = np.arange(sides) * (2 * math.pi / sides)
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    bottom = np.concatenate([ring, -np.ones((sides, 1))], axis=-1)
    top = np.concatenate([ring, np.ones((sides, 1))], axis=-1)
    return np.concatenate([bottom, top])


def tapered_cup(bottom_radius: float = 0.7, segments: int = 16) -> np.ndarray:
    """A cup-like frustum: a circle of radius ``bottom_radius`` at z = -1 widening to radius 1 at z = 1.

    Returns:
        ``[2 * segments, 3]`` vertices, centred on the bounding box.
    """
    angle = np.arange(segments) * (2 * math.pi / segments)
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    bottom = np.concatenate([bottom_radius * ring, -np.ones((segments, 1))], axis=-1)
    top = np.concatenate([ring, np.ones((segments, 1))], axis=-1)
    return np.concatenate([bottom, top])


def wedge() -> np.ndarray:
    """A triangular wedge (a ramp), 2 x 2 x 2, its slope rising along +x."""
    base = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1]], dtype=np.float64)
    ridge = np.array([[1, -1, 1], [1, 1, 1]], dtype=np.float64)
    return np.concatenate([base, ridge])


def bar(sides: int, taper: float = 1.0) -> np.ndarray:
    """A prism lying along x over a regular polygon (a face down), its far end scaled by ``taper``.

    Args:
        sides: Sides of the cross-section (>= 3).
        taper: Size of the +x end relative to the -x end (1: a straight bar).

    Returns:
        ``[2 * sides, 3]`` vertices spanning about ``[-1, 1]`` along x.
    """
    angle = np.arange(sides) * (2 * math.pi / sides) + math.pi / sides - math.pi / 2  # a flat side down (and,
    # for 4k sides, flat sides facing the jaws)
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    near = np.concatenate([-np.ones((sides, 1)), ring / taper], axis=-1)
    far = np.concatenate([np.ones((sides, 1)), ring], axis=-1)
    return np.concatenate([near, far])


def _builtin(points: np.ndarray, name: str) -> np.ndarray:
    return _checked(points, BUILTIN_PREFIX + name)


_BUILTINS = {
    "prism5": lambda: _builtin(prism(5), "prism5"),
    "prism6": lambda: _builtin(prism(6), "prism6"),
    "prism8": lambda: _builtin(prism(8), "prism8"),
    "prism3": lambda: _builtin(prism(3), "prism3"),
    "cup": lambda: _builtin(tapered_cup(), "cup"),
    "wedge": lambda: _builtin(wedge(), "wedge"),
    "octbar": lambda: _builtin(bar(8), "octbar"),
    "taper": lambda: _builtin(bar(8, taper=1.4), "taper"),
}
