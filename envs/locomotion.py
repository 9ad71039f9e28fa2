"""Locomotion task families (issue 3). Not built yet: no family is registered from here."""

from __future__ import annotations

from metarl.envs.registry import FamilySpec

FAMILY_SPECS: list[FamilySpec] = []
