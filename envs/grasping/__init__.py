"""Grasping task family (issue 4). Not built yet: no family is registered from here."""

from __future__ import annotations

from metarl.envs.registry import FamilySpec

FAMILY_SPECS: list[FamilySpec] = []
