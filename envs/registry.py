"""The task-family registry: names → constructors, and gymnasium ids ``metarl/<Name>-v0``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from metarl.envs.base import FamilyEnv, Task, TaskError, TaskFamily


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """How to build one family.

    Attributes:
        name: Registry name, e.g. ``"Navigation2D"``.
        options_type: Frozen dataclass of the family's options (the ``family:`` config keys).
        factory: Builds the family from an options instance.
        summary: One line for ``metarl families``.
    """

    name: str
    options_type: type[Any]
    factory: Callable[[Any], TaskFamily]
    summary: str

    @property
    def gym_id(self) -> str:
        return f"metarl/{self.name}-v0"


_FAMILIES: dict[str, FamilySpec] = {}


def register_family(spec: FamilySpec) -> None:
    """Adds a family to the registry and registers its gymnasium id."""
    _FAMILIES[spec.name] = spec
    if spec.gym_id not in gym.registry:
        gym.register(
            id=spec.gym_id,
            entry_point="metarl.envs.registry:make_gym_env",
            kwargs={"family": spec.name},
        )


def family_names() -> list[str]:
    """Registered family names, in registration order."""
    return list(_FAMILIES)


def family_spec(name: str) -> FamilySpec:
    """Returns the spec of a family, or raises a one-line :class:`TaskError`."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise TaskError(f"unknown family {name!r}; allowed: {', '.join(_FAMILIES)}") from None


def make_family(name: str, options: Mapping[str, Any] | Any | None = None) -> TaskFamily:
    """Builds a family by name from its options (a mapping, an options instance or None)."""
    spec = family_spec(name)
    if options is None:
        options = {}
    if isinstance(options, Mapping):
        options = build_options(spec, options)
    return spec.factory(options)


def build_options(spec: FamilySpec, values: Mapping[str, Any]) -> Any:
    """Builds a family's options dataclass, refusing unknown keys with one line."""
    names = [f.name for f in dataclasses.fields(spec.options_type)]
    for key in values:
        if key not in names:
            raise TaskError(f"family.{key} is not an option of {spec.name}; allowed: {', '.join(names)}")
    return spec.options_type(**values)


def make_gym_env(
    family: str,
    task: Task | str | Mapping[str, Any] | None = None,
    render_mode: str | None = None,
    **options: Any,
) -> FamilyEnv:
    """Entry point of ``gym.make("metarl/<Name>-v0", task=..., **family_options)``."""
    return FamilyEnv(make_family(family, options), task=task, render_mode=render_mode)
