"""Options of the locomotion families (the ``family:`` section of a config), each checked where it is declared.

Options are flat (one YAML key each), so a family's options class is its robot's options plus the
fields its task kind adds: ``AntVelOptions`` is :class:`AntOptions` with :class:`VelocityRange`.
Every field declares its allowed range with :func:`option`; :class:`LocomotionOptions` checks them
all on construction and refuses a bad value with one line naming ``family.<key>``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from metarl.envs.base import TaskError, check_finite_range
from metarl.envs.locomotion.tasks import GOAL_LIMIT, MAX_LOG_SCALE, VELOCITY_LIMIT


def option(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    finite: bool = False,
    whole: bool = False,
    flag: bool = False,
    below: str | None = None,
) -> Any:
    """Declares an option with what it allows.

    Args:
        default: The value when the config does not set it.
        low: Lower bound (a finite number is required when any bound or ``finite`` is given).
        high: Upper bound.
        low_open: Whether ``low`` itself is excluded.
        finite: Any finite number (no bounds).
        whole: Must be a whole number.
        flag: Must be true or false.
        below: The option this one must stay below (the lower end of an interval).
    """
    checked = finite or low is not None or high is not None
    meta = {"range": (low, high, low_open) if checked else None, "whole": whole, "flag": flag, "below": below}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class LocomotionOptions:
    """Options every locomotion family has; the HalfCheetah's as they are.

    Attributes:
        horizon: Control steps per episode.
        frame_skip: MuJoCo steps per control step.
        reset_noise_scale: Scale σ of the initial-state noise.
        ctrl_cost_weight: Weight of the ``control`` term ``−w‖a‖²``.
        ctrl_cost_on_clipped: Charge the ``control`` term on the action clipped to its bounds (the
            MAML paper's code) rather than on the action as given (gymnasium v5).
        num_test_tasks: Number of held-out test tasks (ignored by the direction families).
    """

    horizon: int = option(200, low=1, high=100_000, whole=True)
    frame_skip: int = option(5, low=1, high=1000, whole=True)
    reset_noise_scale: float = option(0.1, low=0.0, high=10.0)
    ctrl_cost_weight: float = option(0.05, low=0.0)
    ctrl_cost_on_clipped: bool = option(True, flag=True)
    num_test_tasks: int = option(40, low=1, high=10_000, whole=True)

    def __post_init__(self) -> None:
        fields = dataclasses.fields(self)
        for f in fields:
            _check(f"family.{f.name}", getattr(self, f.name), f.metadata)
        for f in fields:
            upper = f.metadata.get("below")
            if upper is not None and not getattr(self, f.name) < getattr(self, upper):
                raise TaskError(
                    f"family.{f.name}={getattr(self, f.name)!r} must be below family.{upper}={getattr(self, upper)!r}"
                )


def _check(key: str, value: Any, meta: Any) -> None:
    """Refuses ``value`` unless it is what the option's declaration allows (one line naming ``key``)."""
    if meta.get("range") is not None:
        low, high, low_open = meta["range"]
        check_finite_range(key, value, low, high, low_open=low_open)
    if meta.get("whole") and not isinstance(value, (int, np.integer)):
        raise TaskError(f"{key}={value!r} must be a whole number")
    if meta.get("flag") and not isinstance(value, bool):
        raise TaskError(f"{key}={value!r} must be true or false")


@dataclasses.dataclass(frozen=True)
class VelocityRange:
    """The options of the goal-velocity task kind.

    Attributes:
        velocity_low: Goal velocities are uniform in ``[velocity_low, velocity_high]`` (m/s).
        velocity_high: Upper end of that interval (m/s).
    """

    velocity_low: float = option(0.0, low=-VELOCITY_LIMIT, high=VELOCITY_LIMIT, below="velocity_high")
    velocity_high: float = option(2.0, low=-VELOCITY_LIMIT, high=VELOCITY_LIMIT)


@dataclasses.dataclass(frozen=True)
class AntOptions(LocomotionOptions):
    """The Ant's options; see :class:`LocomotionOptions`.

    Attributes:
        contact_cost_weight: Weight of ``contact = −w Σ clip(cfrc_ext, −1, 1)²``.
        survive_reward: The ``survive`` term while healthy.
        healthy_z_min: Lowest healthy torso height (m).
        healthy_z_max: Highest healthy torso height (m).
        terminate_when_unhealthy: Whether an unhealthy state ends the episode.
        include_cfrc_ext_in_observation: Whether the clipped contact forces are observed.
    """

    ctrl_cost_weight: float = option(0.005, low=0.0)
    contact_cost_weight: float = option(5e-4, low=0.0)
    survive_reward: float = option(0.05, finite=True)
    healthy_z_min: float = option(0.2, low=-100.0, high=100.0, below="healthy_z_max")
    healthy_z_max: float = option(1.0, low=-100.0, high=100.0)
    terminate_when_unhealthy: bool = True
    include_cfrc_ext_in_observation: bool = True


@dataclasses.dataclass(frozen=True)
class RandParamsOptions(LocomotionOptions):
    """Options of the random-parameter families (the Walker2d's and Hopper's, gymnasium v5's
    defaults, and the range of the random physics); see :class:`LocomotionOptions`.

    Attributes:
        healthy_reward: The ``healthy`` term while healthy.
        terminate_when_unhealthy: Whether an unhealthy state ends the episode.
        log_scale_limit: Scales are ``1.5^u`` with ``u`` uniform in ``[−limit, limit]``, limit ≤ 3.
    """

    frame_skip: int = option(4, low=1, high=1000, whole=True)
    reset_noise_scale: float = option(5e-3, low=0.0, high=10.0)
    ctrl_cost_weight: float = option(1e-3, low=0.0)
    ctrl_cost_on_clipped: bool = option(False, flag=True)  # gymnasium v5's reward, as ProMP's rand_param_envs charge it
    healthy_reward: float = option(1.0, finite=True)
    terminate_when_unhealthy: bool = True
    log_scale_limit: float = option(MAX_LOG_SCALE, low=0.0, high=MAX_LOG_SCALE)


@dataclasses.dataclass(frozen=True)
class HalfCheetahVelOptions(VelocityRange, LocomotionOptions):
    """HalfCheetahVel options: :class:`LocomotionOptions` and :class:`VelocityRange`."""


@dataclasses.dataclass(frozen=True)
class HalfCheetahDirOptions(LocomotionOptions):
    """HalfCheetahDir options; see :class:`LocomotionOptions`."""


@dataclasses.dataclass(frozen=True)
class AntVelOptions(VelocityRange, AntOptions):
    """AntVel options: :class:`AntOptions` and :class:`VelocityRange`, goal velocities up to 3 m/s."""

    velocity_high: float = option(3.0, low=-VELOCITY_LIMIT, high=VELOCITY_LIMIT)


@dataclasses.dataclass(frozen=True)
class AntDirOptions(AntOptions):
    """AntDir options; see :class:`AntOptions`."""


@dataclasses.dataclass(frozen=True)
class AntGoalOptions(AntOptions):
    """AntGoal options; see :class:`AntOptions`.

    Attributes:
        goal_radius: Goals are uniform in the disc of this radius around the origin (m).
    """

    goal_radius: float = option(3.0, low=0.0, high=GOAL_LIMIT, low_open=True)


@dataclasses.dataclass(frozen=True)
class Walker2dParamsOptions(RandParamsOptions):
    """Walker2dParams options; see :class:`RandParamsOptions`."""


@dataclasses.dataclass(frozen=True)
class HopperParamsOptions(RandParamsOptions):
    """HopperParams options; see :class:`RandParamsOptions`."""
