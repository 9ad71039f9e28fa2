"""The solid parts an object is made of, and their mass properties.

A primitive object (box, capsule, ...) is one part; a *compound* object — a hammer, a dumbbell, a
lying bottle, a mallet — is a few parts built from its named dimensions (:data:`COMPOUNDS`). Every
compound lies along x with its parts resting on the table (or, for the bottle, on its body), its
bounding box centred on the origin. Parts have relative densities (a steel head on a wooden
handle), so where the mass is follows from the shape: the gripper must find it by touch.

Mass properties are computed here (not by MuJoCo) so that the environment and the scripted
oracle know the centre of mass; a test checks them against MuJoCo's own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

KINDS = ("box", "capsule", "cylinder", "sphere", "ellipsoid", "mesh")
AXES = ("x", "y", "z")


@dataclasses.dataclass(frozen=True)
class Part:
    """One convex solid of an object.

    Attributes:
        kind: One of :data:`KINDS`.
        size: Half-extents of the part's bounding box (m), object frame.
        pos: Centre of that box, object frame (m).
        axis: The long axis of a capsule or cylinder (``"x"``, ``"y"`` or ``"z"``).
        density: Density relative to the object's other parts.
    """

    kind: str
    size: tuple[float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: str = "z"
    density: float = 1.0

    @property
    def radius(self) -> float:
        """Radius of a capsule, cylinder or sphere: its smallest half-extent across the axis."""
        across = [s for a, s in zip(AXES, self.size, strict=True) if a != self.axis or self.kind == "sphere"]
        return min(across)

    @property
    def half_length(self) -> float:
        """Half the length of a capsule or cylinder along its axis (tip to tip for a capsule)."""
        return self.size[AXES.index(self.axis)]

    def volume(self) -> float:
        """Volume (m³); a mesh is counted as its bounding box."""
        hx, hy, hz = self.size
        if self.kind in ("box", "mesh"):
            return 8 * hx * hy * hz
        if self.kind == "ellipsoid":
            return 4 / 3 * math.pi * hx * hy * hz
        if self.kind == "sphere":
            return 4 / 3 * math.pi * self.radius**3
        r, h = self.radius, self.half_length
        if self.kind == "cylinder":
            return math.pi * r * r * 2 * h
        return math.pi * r * r * 2 * (h - r) + 4 / 3 * math.pi * r**3  # capsule

    def inertia(self, mass: float) -> np.ndarray:
        """``[3, 3]`` inertia (kg m²) about the part's own centre, object axes.

        Capsules are treated as cylinders of their full length and meshes as their bounding box:
        close, and positive definite.
        """
        hx, hy, hz = self.size
        if self.kind in ("box", "mesh"):
            diag = mass / 3 * np.array([hy**2 + hz**2, hx**2 + hz**2, hx**2 + hy**2])
        elif self.kind == "ellipsoid":
            diag = mass / 5 * np.array([hy**2 + hz**2, hx**2 + hz**2, hx**2 + hy**2])
        elif self.kind == "sphere":
            diag = np.full(3, 0.4 * mass * self.radius**2)
        else:
            r, h = self.radius, self.half_length
            side = mass * (3 * r**2 + (2 * h) ** 2) / 12
            diag = np.full(3, side)
            diag[AXES.index(self.axis)] = 0.5 * mass * r**2
        return np.diag(diag)


@dataclasses.dataclass(frozen=True)
class MassProperties:
    """Mass distribution of a whole object.

    Attributes:
        com: ``[3]`` centre of mass, object frame (m).
        inertia: ``[3, 3]`` inertia about the centre of mass (kg m²).
        part_masses: ``[P]`` mass of each part (kg).
    """

    com: np.ndarray
    inertia: np.ndarray
    part_masses: np.ndarray


def mass_properties(parts: tuple[Part, ...], mass: float) -> MassProperties:
    """Splits ``mass`` over ``parts`` by volume × density and combines them (parallel-axis theorem)."""
    weights = np.array([p.volume() * p.density for p in parts])
    masses = mass * weights / weights.sum()
    centres = np.array([p.pos for p in parts])
    com = (masses[:, None] * centres).sum(0) / mass
    inertia = np.zeros((3, 3))
    for part, m, c in zip(parts, masses, centres, strict=True):
        d = c - com
        inertia += part.inertia(float(m)) + m * (float(d @ d) * np.eye(3) - np.outer(d, d))
    return MassProperties(com=com, inertia=inertia, part_masses=masses)


def bounding_half_extents(parts: tuple[Part, ...]) -> np.ndarray:
    """``[3]`` half-extents of the box around all parts, which must be centred on the origin."""
    low = np.min([np.subtract(p.pos, p.size) for p in parts], axis=0)
    high = np.max([np.add(p.pos, p.size) for p in parts], axis=0)
    return np.asarray((high - low) / 2, dtype=np.float64)


def _stack_on_table(parts: list[Part]) -> tuple[Part, ...]:
    """Shifts every part so that all rest on the table (bottoms level) and the whole object's
    bounding box is centred on the origin."""
    low = np.min([np.subtract(p.pos, p.size) for p in parts], axis=0)
    high = np.max([np.add(p.pos, p.size) for p in parts], axis=0)
    centre = (low + high) / 2
    out = []
    for p in parts:
        x, y, _ = np.subtract(p.pos, centre)
        z = low[2] - centre[2] + p.size[2]  # its bottom on the object's bottom
        out.append(dataclasses.replace(p, pos=(float(x), float(y), float(z))))
    return tuple(out)


def _hammer(d: Mapping[str, float]) -> tuple[Part, ...]:
    """A square wooden handle along x and a steel head (6x denser) across its +x end."""
    length, handle, head = d["length"], d["handle"], d["head"]
    handle_len = length - head
    return _stack_on_table(
        [
            Part("box", (handle_len / 2, handle / 2, handle / 2), (-head / 2, 0.0, 0.0)),
            Part(
                "box",
                (head / 2, d["head_width"] / 2, d["head_height"] / 2),
                (length / 2 - head / 2, 0.0, 0.0),
                density=6.0,
            ),
        ]
    )


def _dumbbell(d: Mapping[str, float]) -> tuple[Part, ...]:
    """A square bar along x between two cube weights of their own sizes."""
    length, bar, left, right = d["length"], d["bar"], d["left"], d["right"]
    bar_len = length - left - right
    return _stack_on_table(
        [
            Part("box", (left / 2, left / 2, left / 2), (-length / 2 + left / 2, 0.0, 0.0), density=4.0),
            Part("box", (bar_len / 2, bar / 2, bar / 2), ((left - right) / 2, 0.0, 0.0)),
            Part("box", (right / 2, right / 2, right / 2), (length / 2 - right / 2, 0.0, 0.0), density=4.0),
        ]
    )


def _bottle(d: Mapping[str, float]) -> tuple[Part, ...]:
    """A bottle lying on its side: a capsule body and a narrower neck on the same axis (+x)."""
    length, radius, neck, neck_length = d["length"], d["radius"], d["neck"], d["neck_length"]
    body_len = length - neck_length
    overlap = min(radius, body_len / 2)  # the neck starts inside the body's rounded end
    neck_full = neck_length + overlap
    return (
        Part("capsule", (body_len / 2, radius, radius), (-length / 2 + body_len / 2, 0.0, 0.0), axis="x"),
        Part("capsule", (neck_full / 2, neck, neck), (length / 2 - neck_full / 2, 0.0, 0.0), axis="x", density=1.5),
    )


def _mallet(d: Mapping[str, float]) -> tuple[Part, ...]:
    """A square handle along x and a cylindrical head, its axis across (y), at the +x end."""
    length, handle, head = d["length"], d["handle"], d["head"]
    radius = head / 2
    handle_len = length - head
    return _stack_on_table(
        [
            Part("box", (handle_len / 2, handle / 2, handle / 2), (-head / 2, 0.0, 0.0)),
            Part(
                "cylinder",
                (radius, d["head_width"] / 2, radius),
                (length / 2 - radius, 0.0, 0.0),
                axis="y",
                density=2.0,
            ),
        ]
    )


@dataclasses.dataclass(frozen=True)
class Compound:
    """A named compound shape: its dimensions (in order) and how they build its parts."""

    dims: tuple[str, ...]
    build: Callable[[Mapping[str, float]], tuple[Part, ...]]
    doc: str


COMPOUNDS: dict[str, Compound] = {
    "hammer": Compound(("length", "handle", "head", "head_width", "head_height"), _hammer, _hammer.__doc__ or ""),
    "dumbbell": Compound(("length", "bar", "left", "right"), _dumbbell, _dumbbell.__doc__ or ""),
    "bottle": Compound(("length", "radius", "neck", "neck_length"), _bottle, _bottle.__doc__ or ""),
    "mallet": Compound(("length", "handle", "head", "head_width"), _mallet, _mallet.__doc__ or ""),
}
MAX_PARTS = 3  # every object's body carries this many geoms (unused ones disabled): one mjData layout
