"""Scripted controllers for the grasp family, and the family's *adaptation gap*.

All controllers follow one plan: move above a pinch point, descend with the fingers open, close,
lift. A :class:`PinchPlan` says where (an offset along x from the tracked point), how high and
how hard. The *oracle* reads each object's specification and plans a pinch at its centre of
mass; a *blind* controller reads only the observation, so one plan must serve every object (it
cannot tell them apart before touching them). The *probing* blind controller also reacts to what
it feels: it lifts a little, watches which way the tracked point swings, and re-grasps on the
heavy side. The oracle's success rate minus the best blind controller's is the adaptation gap:
what a policy can only win by learning about the object from a few rollouts.

Everything here is batched over environments and used by tests and by ``metarl gap``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from metarl.envs.base import Task
from metarl.envs.grasping.family import HIGH, LOW, REACH, GraspObject, GraspTask
from metarl.envs.grasping.objects import ObjectSpec
from metarl.envs.grasping.scene import HAND_RANGE, resting_height

APPROACH_HEIGHT = 0.09  # m, pinch height while moving over the object
_FLOOR = HAND_RANGE[2][0]  # the lowest pinch height
LIFT_HEIGHT = 0.1  # m the plans lift by
LIFT_SPEED = 0.02  # m per step (0.25 m/s)
_CLOSE_STEPS = 3
_DESCEND_STEPS = 3


@dataclasses.dataclass(frozen=True)
class PinchPlan:
    """Where and how to pinch, per environment (arrays of shape ``[B]``).

    Attributes:
        offset: Pinch point along x from the tracked point (m).
        height: Pinch height above the table (m); clipped to the hand's lowest reach.
        grip: Grip action while closed, in (-1, 1].
    """

    offset: np.ndarray
    height: np.ndarray
    grip: np.ndarray

    @classmethod
    def fixed(cls, n: int, offset: float, height: float = _FLOOR, grip: float = 1.0) -> PinchPlan:
        """The same plan for ``n`` environments (what a blind controller does)."""
        return cls(np.full(n, offset), np.full(n, height), np.full(n, grip))


def com_plan(specs: Sequence[ObjectSpec]) -> PinchPlan:
    """Pinch right at the centre of mass (turned with the object's yaw), at the mid-height of the
    part under it, as low as the hand goes if lower."""
    offsets, heights = [], []
    for spec in specs:
        com = spec.com[0]
        under = [p for p in spec.parts() if abs(com - p.pos[0]) <= p.size[0]]
        part = min(under, key=lambda p: p.size[1]) if under else None
        offsets.append(-com if math.cos(math.radians(spec.yaw)) < 0 else com)  # laid the other way round
        heights.append(resting_height(spec) + (part.pos[2] if part is not None else 0.0))
    return PinchPlan(np.array(offsets), np.maximum(np.array(heights), _FLOOR), np.ones(len(specs)))


ORACLE_SHIFTS = (-0.015, -0.01, -0.005, 0.0, 0.005, 0.01, 0.015)  # m, tried around the centre of mass


def oracle_plan(family: GraspObject, tasks: Sequence[Task], seed: int = 10_000) -> PinchPlan:
    """The oracle: knows each object, so it tries pinching at its centre of mass and a few
    millimetres to either side (:data:`ORACLE_SHIFTS`; a wide part next to the centre of mass can
    stop the fingers) in simulation, and keeps the pinch that lifts it most level."""
    specs = [t.object for t in tasks if isinstance(t, GraspTask)]
    base = com_plan(specs)
    k, n = len(ORACLE_SHIFTS), len(specs)
    shifts = np.tile(np.asarray(ORACLE_SHIFTS), n)
    trial = PinchPlan(np.repeat(base.offset, k) + shifts, np.repeat(base.height, k), np.ones(n * k))
    outcome = rollout(family, [t for t in tasks for _ in range(k)], PlanController(trial), seed, num_threads=2)
    score = (outcome.success.astype(float) - outcome.tilt).reshape(n, k)  # lifted first, then most level
    best = score.argmax(axis=1)
    return PinchPlan(base.offset + np.asarray(ORACLE_SHIFTS)[best], base.height, np.ones(n))


def _height_action(height: np.ndarray) -> np.ndarray:
    """The ``act[2]`` that commands pinch height ``height`` (m)."""
    return np.clip(2 * (height - LOW) / (HIGH - LOW) - 1, -1.0, 1.0)


def plan_action(obs: np.ndarray, t: int, plan: PinchPlan, descend_at: int = 4) -> np.ndarray:
    """``[B, 4]`` action at step ``t`` of the approach-descend-close-lift plan, from ``[B, 18]`` observations.

    Over the pinch point at the approach height until ``descend_at``, down to the plan's height for
    6 steps, closed for :data:`_CLOSE_STEPS` (from then on holding its x, y), then up by
    :data:`LIFT_HEIGHT` at :data:`LIFT_SPEED` (a gentle lift keeps a heavy object in the grip).
    """
    close_at = descend_at + _DESCEND_STEPS
    lift_at = close_at + _CLOSE_STEPS
    act = np.zeros((len(obs), 4))
    if t < close_at:  # over the pinch point, then down
        act[:, 0] = np.clip(plan.offset / REACH, -1.0, 1.0)
    else:  # hold still across: where the hand is, relative to the tracked point
        act[:, 0:2] = np.clip(-obs[:, 10:12] / REACH, -1.0, 1.0)
    if t < descend_at:
        height = np.full(len(obs), APPROACH_HEIGHT)
    elif t < lift_at:
        height = np.maximum(plan.height, _FLOOR)
    else:
        height = np.maximum(plan.height, _FLOOR) + min(LIFT_HEIGHT, LIFT_SPEED * (t + 1 - lift_at))
    act[:, 2] = _height_action(height)
    act[:, 3] = -1.0 if t < close_at else plan.grip
    return act


class Controller(Protocol):
    """Maps ``[B, 18]`` observations at step ``t`` to ``[B, 4]`` actions (it may keep state)."""

    def __call__(self, obs: np.ndarray, t: int) -> np.ndarray: ...


class PlanController:
    """Follows one :class:`PinchPlan` (see :func:`plan_action`), descending at step ``descend_at``."""

    def __init__(self, plan: PinchPlan, descend_at: int = 4):
        self.plan = plan
        self.descend_at = descend_at

    def __call__(self, obs: np.ndarray, t: int) -> np.ndarray:
        return plan_action(obs, t, self.plan, self.descend_at)


class ProbingController:
    """A blind controller that feels before it lifts: it pinches ``probe`` from the tracked point,
    lifts 2 cm and reads how far the tracked point has swung relative to the hand (a grip away
    from the centre of mass lets the object turn: the heavy side sinks), puts the object down and
    re-grasps ``gain`` metres per metre of swing towards the heavy side.

    Args:
        n: Environments.
        probe: Offset of the first pinch along x from the tracked point (m).
        gain: How far to move the second pinch per metre the tracked point sank below the hand.
    """

    def __init__(self, n: int, probe: float = 0.03, gain: float = 10.0):
        self.first = PinchPlan.fixed(n, probe)
        self.probe, self.gain = probe, gain
        self.lift_at = 4 + _DESCEND_STEPS + _CLOSE_STEPS
        self.feel_at = self.lift_at + 2
        self.second: PinchPlan | None = None
        self.start: np.ndarray | None = None

    def __call__(self, obs: np.ndarray, t: int) -> np.ndarray:
        if t < self.lift_at:
            return plan_action(obs, t, self.first)
        if t < self.feel_at:  # lift gently
            if t == self.lift_at:
                self.start = obs[:, 2] - obs[:, 12]  # hand height minus tracked-point rise
            action = plan_action(obs, t, self.first)  # lifting gently, closed
            return action
        if self.second is None:
            assert self.start is not None
            sink = (obs[:, 2] - obs[:, 12]) - self.start  # how far the tracked point fell behind the hand
            # the tracked point lies -probe from the grip: it sinks when the heavy side is its side
            direction = -np.sign(self.probe) if self.probe != 0 else 1.0
            self.second = PinchPlan.fixed(len(obs), 0.0)
            self.second = dataclasses.replace(self.second, offset=self.probe + direction * self.gain * sink)
        return plan_action(obs, t - self.feel_at, self.second, descend_at=2)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a controller achieved on a batch: ``[B]`` success, return, final tilt (rad) and rise (m)."""

    success: np.ndarray
    returns: np.ndarray
    tilt: np.ndarray
    rise: np.ndarray


def rollout(
    family: GraspObject, tasks: Sequence[Task], controller: Controller, seed: int = 0, num_threads: int = 1
) -> Outcome:
    """One episode per task under ``controller``; environment ``i`` is reset with seed ``[seed, i]``."""
    env = family.make_batch_env(len(tasks), num_threads)
    try:
        env.set_tasks(tasks)
        obs = env.reset([np.random.default_rng([seed, i]) for i in range(len(tasks))])
        success = np.zeros(len(tasks), dtype=bool)
        returns = np.zeros(len(tasks))
        for t in range(family.horizon):
            result = env.step(controller(obs, t))
            obs = result.obs
            returns += result.reward
            if result.success is not None:
                success |= result.success
        return Outcome(success, returns, env.tilt(), env.lift_height())
    finally:
        env.close()


def blind_plans() -> list[tuple[str, PinchPlan, int]]:
    """The fixed plans a blind controller can choose from: ``(name, plan, descend_at)`` for pinch
    offsets -8..8 cm, two heights, two grips and two lift times (the later, the less time an
    off-centre grip has to turn before the end)."""
    plans = []
    for offset in np.arange(-0.08, 0.0801, 0.01):
        for height in (_FLOOR, _FLOOR + 0.01):
            for grip in (0.5, 1.0):
                for descend_at in (4, 6):
                    name = (
                        f"pinch {100 * offset:+.0f} cm, height {100 * height:.1f} cm, grip {grip:g}, "
                        f"lift at step {descend_at + _DESCEND_STEPS + _CLOSE_STEPS}"
                    )
                    plans.append((name, PinchPlan.fixed(1, float(offset), height, grip), descend_at))
    return plans


def probing_variants() -> list[tuple[str, float, float]]:
    """``(name, probe, gain)`` of the probing controllers tried."""
    return [(f"probe {100 * p:+.0f} cm, gain {g:g}", p, g) for p in (-0.03, 0.03) for g in (6.0, 10.0, 14.0)]


@dataclasses.dataclass(frozen=True)
class GapRow:
    """Success rates of one object class (or ``"all"``).

    Attributes:
        name: Object class (shape) or ``"all"``.
        count: Episodes.
        oracle: Success of the oracle.
        blind: Success of the best fixed blind plan, chosen on all the objects (one plan for all).
        probing: Success of the best probing controller, chosen likewise.
        class_best_blind: Success of the fixed plan best for this class alone (a blind controller
            told the class: an upper bound).
    """

    name: str
    count: int
    oracle: float
    blind: float
    probing: float
    class_best_blind: float

    @property
    def gap(self) -> float:
        """Oracle minus the better of the two blind controllers."""
        return self.oracle - max(self.blind, self.probing)


@dataclasses.dataclass(frozen=True)
class GapReport:
    """The adaptation gap of a set of objects: one row per class, then ``"all"``; the chosen plans."""

    rows: tuple[GapRow, ...]
    blind_plan: str
    probing_plan: str

    def format(self) -> str:
        """A text table."""
        lines = [
            f"best fixed blind plan: {self.blind_plan}; best probing controller: {self.probing_plan}",
            f"{'class':<10} {'n':>4} {'oracle':>7} {'blind':>7} {'probing':>8} {'gap':>6}"
            "   (blind best for the class alone)",
        ]
        for r in self.rows:
            lines.append(
                f"{r.name:<10} {r.count:>4} {100 * r.oracle:6.0f}% {100 * r.blind:6.0f}% {100 * r.probing:7.0f}% "
                f"{100 * r.gap:5.0f}%   ({100 * r.class_best_blind:.0f}%)"
            )
        return "\n".join(lines)


def adaptation_gap(family: GraspObject, tasks: Sequence[Task], repeats: int = 2, seed: int = 0) -> GapReport:
    """Oracle, best fixed blind plan and best probing controller on ``tasks``, per object class.

    Args:
        family: The grasp family.
        tasks: The objects (e.g. the held-out set).
        repeats: Episodes per object (each with its own reset jitter).
        seed: Base reset seed.
    """
    batch = [task for _ in range(repeats) for task in tasks]
    n = len(batch)
    oracle = rollout(family, batch, PlanController(oracle_plan(family, batch)), seed, 2).success
    blind = []
    for name, p, descend_at in blind_plans():
        plan = PinchPlan.fixed(n, float(p.offset[0]), float(p.height[0]), float(p.grip[0]))
        blind.append((name, rollout(family, batch, PlanController(plan, descend_at), seed, 2).success))
    probing = [
        (name, rollout(family, batch, ProbingController(n, probe, gain), seed, 2).success)
        for name, probe, gain in probing_variants()
    ]
    best_blind_name, best_blind = max(blind, key=lambda item: float(item[1].mean()))
    best_probe_name, best_probe = max(probing, key=lambda item: float(item[1].mean()))
    classes = [object_class(t) for t in batch]
    rows = []
    for name in [*dict.fromkeys(classes), "all"]:
        mask = np.array([name in ("all", c) for c in classes])
        rows.append(
            GapRow(
                name=name,
                count=int(mask.sum()),
                oracle=float(oracle[mask].mean()),
                blind=float(best_blind[mask].mean()),
                probing=float(best_probe[mask].mean()),
                class_best_blind=max(float(success[mask].mean()) for _, success in blind),
            )
        )
    return GapReport(tuple(rows), best_blind_name, best_probe_name)


def object_class(task: Task) -> str:
    """The class an object is reported under: its shape name."""
    assert isinstance(task, GraspTask)
    return task.object.shape
