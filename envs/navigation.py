"""2-D point navigation: the MAML paper's seconds-fast meta-RL task (numpy only).

A point agent starts at the origin of the plane and must walk to a goal it cannot see; the
only signal about the goal is the reward.

=================  ==============================================  ==========
Observation        Meaning                                         Unit
=================  ==============================================  ==========
``obs[0:2]``       agent position (x, y)                           m
=================  ==============================================  ==========

=================  ==============================================  ==========
Action             Meaning                                         Range
=================  ==============================================  ==========
``act[0:2]``       displacement this step, clipped to the range    [-0.1, 0.1]
=================  ==============================================  ==========

With ``normalized_actions`` (the MAML paper's code: rllab's ``normalize`` wrapper) the action
space is ``[-1, 1]²`` and the displacement is ``max_step · clip(act, -1, 1)``: a policy's unit
noise moves the point ``0.1 · N(0, 1)`` per step instead of saturating the clip.

Reward (one term, ``distance``): ``-‖position − goal‖`` after the move.
An episode terminates when the agent is within ``goal_tolerance`` of the goal and is
truncated at the horizon (100 steps). There is no physical clock; for videos one step counts as
``control_dt`` = 0.05 s (20 frames per second).

Task space: goal uniform in ``[-goal_range, goal_range]²`` (0.5 in the paper). The held-out
test goals are drawn once from a fixed seed and are never produced by ``sample_tasks``. The
validation goals (they choose ``best.pt``) are ``sample_tasks`` from another fixed seed, as many
as the test goals.

Version history: v0, the MAML paper's setting (Finn et al., 2017, section 5.3); the option
``normalized_actions`` (off by default, so v0's steps are unchanged) added the paper's code's
action scaling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from metarl.envs.base import (
    TEST_SEED,
    VALIDATION_SEED,
    FlatTaskFamily,
    StepResult,
    Task,
    TaskError,
    check_finite_range,
    check_generators,
    check_point,
    check_tasks,
    describe_range,
)

CONTROL_DT = 0.05  # s per step: the point has no physical clock; videos play 20 steps per second
_GOAL_LIMIT = 10.0  # largest goal coordinate any option may ask for


@dataclasses.dataclass(frozen=True)
class NavigationTask(Task):
    """A goal position in the plane.

    Attributes:
        goal: ``(x, y)`` in metres.
    """

    goal: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "goal", check_point("goal", self.goal, _GOAL_LIMIT))


@dataclasses.dataclass(frozen=True)
class NavigationOptions:
    """Options of the 2-D navigation family (``family:`` section of a config).

    Attributes:
        goal_range: Goals are uniform in ``[-goal_range, goal_range]²`` (m).
        horizon: Steps per episode.
        max_step: Largest displacement per axis and step (m).
        goal_tolerance: The episode terminates within this distance of the goal (m).
        num_test_tasks: Number of held-out test goals.
        normalized_actions: Actions lie in ``[-1, 1]`` and are scaled by ``max_step`` (the MAML
            paper's code); otherwise an action is the displacement itself, clipped to
            ``[-max_step, max_step]``.
    """

    goal_range: float = 0.5
    horizon: int = 100
    max_step: float = 0.1
    goal_tolerance: float = 0.01
    num_test_tasks: int = 40
    normalized_actions: bool = False

    def __post_init__(self) -> None:
        check_finite_range("family.goal_range", self.goal_range, 0.0, _GOAL_LIMIT, low_open=True)
        check_finite_range("family.horizon", self.horizon, 1, 100_000)
        check_finite_range("family.max_step", self.max_step, 0.0, None, low_open=True)
        check_finite_range("family.goal_tolerance", self.goal_tolerance, 0.0, None)
        check_finite_range("family.num_test_tasks", self.num_test_tasks, 1, 10_000)
        if not isinstance(self.normalized_actions, bool):
            raise TaskError(f"family.normalized_actions={self.normalized_actions!r} must be true or false")

    @property
    def action_bound(self) -> float:
        """Per-axis bound of an action: 1 with ``normalized_actions``, else ``max_step``."""
        return 1.0 if self.normalized_actions else self.max_step


class Navigation2D(FlatTaskFamily):
    """The 2-D navigation task family; see the module docstring for the full specification."""

    name: ClassVar[str] = "Navigation2D"
    task_type: type[Task] = NavigationTask
    test_tasks_held_out: ClassVar[bool] = True

    def __init__(self, options: NavigationOptions | None = None):
        self.options = options or NavigationOptions()
        self.horizon = self.options.horizon
        self.control_dt = CONTROL_DT
        high = np.full(2, self.options.horizon * self.options.max_step)  # farthest reachable point
        self.observation_space = spaces.Box(-high, high, dtype=np.float64)
        bound = self.options.action_bound
        self.action_space = spaces.Box(-bound, bound, shape=(2,), dtype=np.float64)
        rng = np.random.default_rng(TEST_SEED)
        goals = self._draw_goals(self.options.num_test_tasks, rng)
        self._test_goals = goals
        self._test_set = {tuple(g) for g in goals.tolist()}

    def _draw_goals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        r = self.options.goal_range
        return rng.uniform(-r, r, size=(n, 2))

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_finite_range("n", n, 0, None)
        goals = self._draw_goals(n, rng)
        clash = [i for i, g in enumerate(goals.tolist()) if tuple(g) in self._test_set]
        while clash:  # measure zero, but the held-out set must stay held out
            goals[clash] = self._draw_goals(len(clash), rng)
            clash = [i for i, g in enumerate(goals.tolist()) if tuple(g) in self._test_set]
        return [NavigationTask(goal=(float(x), float(y))) for x, y in goals]

    def test_tasks(self) -> list[Task]:
        return [NavigationTask(goal=(float(x), float(y))) for x, y in self._test_goals]

    def validation_tasks(self) -> list[Task]:
        return self.sample_tasks(self.options.num_test_tasks, np.random.default_rng(VALIDATION_SEED))

    def task_space(self) -> dict[str, str]:
        r = self.options.goal_range
        return {"goal": f"x, y each uniform in {describe_range(-r, r)} m"}

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> NavigationBatchEnv:
        return NavigationBatchEnv(self.options, num_envs)


def navigation_reward(position: np.ndarray, goal: np.ndarray) -> dict[str, np.ndarray]:
    """Named reward terms for a batch of positions.

    Args:
        position: ``[B, 2]`` positions after the move.
        goal: ``[B, 2]`` goals.

    Returns:
        ``{"distance": [B]}``, the negative Euclidean distance to the goal.
    """
    return {"distance": -np.linalg.norm(position - goal, axis=-1)}


class NavigationBatchEnv:
    """``B`` point agents, each with its own goal, advanced by one array operation per step."""

    def __init__(self, options: NavigationOptions, num_envs: int):
        check_finite_range("num_envs", num_envs, 1, None)
        self.options = options
        self.num_envs = int(num_envs)
        self._goal = np.zeros((self.num_envs, 2))
        self._pos = np.zeros((self.num_envs, 2))
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._trail: list[np.ndarray] = [self._pos.copy()]

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        goals = [task.goal for task in check_tasks(tasks, self.num_envs, NavigationTask)]
        self._goal = np.asarray(goals, dtype=np.float64)

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        check_generators(rngs, self.num_envs)
        self._pos = np.zeros((self.num_envs, 2))
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._trail = [self._pos.copy()]
        return self._pos.copy()

    def step(self, action: np.ndarray) -> StepResult:
        bound = self.options.action_bound
        act = np.clip(np.asarray(action, dtype=np.float64).reshape(self.num_envs, 2), -bound, bound)
        self._pos = self._pos + act * (self.options.max_step / bound)
        terms = navigation_reward(self._pos, self._goal)
        reward = terms["distance"].copy()
        reached = -reward < self.options.goal_tolerance
        unstable = np.asarray(~np.isfinite(self._pos).all(axis=-1))
        terminated = reached | unstable
        self._done |= terminated
        self._trail.append(self._pos.copy())
        return StepResult(
            obs=self._pos.copy(),
            reward=reward,
            terminated=terminated,
            terms=terms,
            success=None,
            unstable=unstable,
        )

    def render(self, index: int, width: int = 256, height: int = 256) -> np.ndarray:
        """Draws environment ``index``: goal (green), path so far (grey) and agent (blue).

        Returns:
            ``[height, width, 3]`` uint8 image of the square ``[-1, 1]²`` (or larger if the goal
            or the agent lies outside it).
        """
        trail = np.stack([p[index] for p in self._trail])
        extent = max(1.0, float(np.abs(trail).max()) + 0.1, float(np.abs(self._goal[index]).max()) + 0.1)
        image = np.full((height, width, 3), 255, dtype=np.uint8)
        scale = np.array([width, height]) / (2 * extent)

        def to_pixels(points: np.ndarray) -> np.ndarray:
            px = (points * np.array([1.0, -1.0]) + extent) * scale
            return np.clip(px.round().astype(int), 0, [width - 1, height - 1])

        origin = to_pixels(np.zeros((1, 2)))[0]
        image[origin[1], :] = 220  # axes
        image[:, origin[0]] = 220

        def disc(center: np.ndarray, radius: float, color: tuple[int, int, int]) -> None:
            # only the pixels of the disc's bounding box: a frame's cost does not grow with its area per point
            x0, x1 = max(int(center[0] - radius), 0), min(int(center[0] + radius) + 1, width)
            y0, y1 = max(int(center[1] - radius), 0), min(int(center[1] + radius) + 1, height)
            yy, xx = np.ogrid[y0:y1, x0:x1]
            mask = (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius**2
            image[y0:y1, x0:x1][mask] = color

        radius = max(2.0, width / 64)
        disc(to_pixels(self._goal[index][None])[0], 1.6 * radius, (40, 170, 60))
        for point in to_pixels(trail[:-1]):
            disc(point, radius / 2, (150, 150, 150))
        disc(to_pixels(trail[-1:])[0], radius, (40, 80, 220))
        return image

    def close(self) -> None:
        pass
