"""The contract every task family keeps.

A *task family* is a distribution over tasks (small frozen dataclasses: a goal position, a
goal velocity, an object shape) together with two views of the same dynamics:

* a :class:`BatchEnv`, which advances ``B`` environments at once with numpy (and, for MuJoCo
  families, one threaded physics call). The sampler uses this view.
* a gymnasium :class:`FamilyEnv`, which *is* the batched environment with ``B = 1``. There is
  no second implementation of observations or rewards to drift out of sync.

Episodes never auto-reset: an environment that terminates (or whose physics becomes unstable)
stays done until the sampler resets the whole batch.

This module is past 500 lines because it is the whole contract in one place: the task base class
and the checks every task and option uses (one-line errors), the protocols (:class:`BatchEnv`,
:class:`RenderableBatchEnv`, :class:`SimulatedBatchEnv`, :class:`TaskFamily`), the plumbing
families share (:class:`FamilyBase`, :class:`FlatTaskFamily`) and the gymnasium view
(:class:`FamilyEnv`). A family's author reads this file and nothing else of the package.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces

if TYPE_CHECKING:  # numpy-only families import no MuJoCo
    from metarl.envs.mujoco_batch import PhysicsBatch


TEST_SEED = 20170309  # fixed seed of the families' held-out test sets (the MAML paper's arXiv date)
VALIDATION_SEED = 170303400  # fixed seed of their validation sets (the MAML paper's arXiv number)


class TaskError(ValueError):
    """A task (or task option) is outside what its family allows. The message is one line."""


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class of all tasks: a frozen dataclass whose fields are the task parameters.

    Subclasses validate their fields in ``__post_init__`` and raise :class:`TaskError` with one
    line naming the field, the value and the allowed range.
    """

    def to_dict(self) -> dict[str, Any]:
        """Returns the task as a plain ``{field: value}`` mapping (YAML/JSON friendly)."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_string(self) -> str:
        """Returns the one-line form, e.g. ``"goal_velocity=1.3"``."""
        return " ".join(f"{k}={_format_value(v)}" for k, v in self.to_dict().items())


TaskT = TypeVar("TaskT", bound=Task)


def plain(value: Any) -> Any:
    """``value`` as YAML/JSON-friendly data: tuples become lists (recursively), numpy scalars Python numbers."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_format_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def check_finite_range(
    field: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raises :class:`TaskError` unless ``value`` is a finite number inside the given range.

    Args:
        field: Name used in the message.
        value: The number to check.
        low: Lower bound, or None for unbounded.
        high: Upper bound, or None for unbounded.
        low_open: Whether the lower bound itself is excluded.
        high_open: Whether the upper bound itself is excluded.
    """
    allowed = describe_range(low, high, low_open=low_open, high_open=high_open)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TaskError(f"{field}={value!r} is not a number; allowed: {allowed}")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or (v >= high if high_open else v > high)
    if bad:
        raise TaskError(f"{field}={value!r} is out of range; allowed: {allowed}")


def check_point(field: str, value: Any, limit: float) -> tuple[float, float]:
    """Returns ``value`` as an ``(x, y)`` pair of floats, each checked to lie in ``[-limit, limit]``.

    Args:
        field: Name used in the message (``"goal"`` gives ``goal.x``, ``goal.y``).
        value: A pair (tuple or list) of numbers.
        limit: Largest absolute coordinate.

    Raises:
        TaskError: Unless ``value`` is two finite numbers inside the range (one line).
    """
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TaskError(f"{field}={value!r} must be two numbers x,y; allowed: each in {describe_range(-limit, limit)}")
    for axis, coordinate in zip("xy", value, strict=True):
        check_finite_range(f"{field}.{axis}", coordinate, -limit, limit)
    return float(value[0]), float(value[1])


def describe_range(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False) -> str:
    """Returns a human-readable interval such as ``[0, 2]`` or ``(0, inf)``."""
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def task_from_mapping(cls: type[TaskT], data: Mapping[str, Any], *, family: str) -> TaskT:
    """Builds a flat task dataclass from a mapping, refusing unknown or missing keys.

    Args:
        cls: The task dataclass.
        data: ``{field: value}``; lists become tuples.
        family: Family name, used in error messages.

    Raises:
        TaskError: On an unknown key, a missing key, or a value the task refuses.
    """
    if not isinstance(data, Mapping):
        raise TaskError(f"{family} task must be a mapping of fields, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise TaskError(f"{family} task has unknown key {unknown[0]!r}; allowed keys: {', '.join(names)}")
    missing = [n for n in names if n not in data]
    if missing:
        raise TaskError(f"{family} task is missing key {missing[0]!r}; required keys: {', '.join(names)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def parse_key_values(text: str, *, what: str) -> dict[str, Any]:
    """Parses ``"a=1.5 b=2,3 c=name"`` into ``{"a": 1.5, "b": [2.0, 3.0], "c": "name"}``.

    Numbers become floats (or ints when written without a point), comma lists become lists.

    Raises:
        TaskError: When a token has no ``=`` or a key repeats.
    """
    out: dict[str, Any] = {}
    for token in text.split():
        key, sep, raw = token.partition("=")
        if not sep or not key or not raw:
            raise TaskError(f"{what}: token {token!r} is not of the form key=value")
        if key in out:
            raise TaskError(f"{what}: key {key!r} given twice")
        parts = [_parse_scalar(p) for p in raw.split(",")]
        out[key] = parts if len(parts) > 1 else parts[0]
    return out


def read_task_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a task's YAML file (``goal: [0.3, -0.2]``), refusing anything else in one line.

    Raises:
        TaskError: The file is missing, unreadable, not YAML or not a mapping.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise TaskError(f"task file {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TaskError(f"task file {str(file)!r} cannot be read ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TaskError(f"task file {str(file)!r} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise TaskError(f"task file {str(file)!r} must hold a mapping of task fields, got {data!r}")
    return data


def is_yaml_path(text: str) -> bool:
    """Whether what a user typed names a YAML file (``task.yaml``) rather than a one-line task."""
    stripped = text.strip()
    return stripped.lower().endswith((".yaml", ".yml")) and "=" not in stripped


def _parse_scalar(raw: str) -> Any:
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def check_tasks(tasks: Sequence[Task], num_envs: int, task_type: type[TaskT]) -> list[TaskT]:
    """``tasks`` for :meth:`BatchEnv.set_tasks`, checked: one per environment, each a ``task_type``.

    Raises:
        TaskError: Another count or another kind of task (one line).
    """
    if len(tasks) != num_envs:
        raise TaskError(f"got {len(tasks)} tasks for {num_envs} environments")
    checked = []
    for task in tasks:
        if not isinstance(task, task_type):
            raise TaskError(f"task {task!r} is not a {task_type.__name__}")
        checked.append(task)
    return checked


def check_generators(rngs: Sequence[np.random.Generator], num_envs: int) -> None:
    """Refuses a :meth:`BatchEnv.reset` with another number of generators than environments."""
    if len(rngs) != num_envs:
        raise ValueError(f"got {len(rngs)} generators for {num_envs} environments")


class StepResult(NamedTuple):
    """What one batched step returns. ``B`` is the number of environments.

    Attributes:
        obs: ``[B, obs_dim]`` float64 observations after the step.
        reward: ``[B]`` float64 rewards; equal to the sum of ``terms``.
        terminated: ``[B]`` bool, the task ended (includes ``unstable``).
        terms: Named reward terms, each ``[B]`` float64.
        success: ``[B]`` bool, or None where the family has no notion of success.
        unstable: ``[B]`` bool, the physics produced NaN/Inf or a solver warning.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    terms: dict[str, np.ndarray]
    success: np.ndarray | None
    unstable: np.ndarray


@runtime_checkable
class BatchEnv(Protocol):
    """``B`` environments of one family advancing together, one task per environment."""

    num_envs: int

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        """Assigns one task per environment (``len(tasks) == num_envs``). Takes effect at reset."""
        ...

    def reset(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """Resets every environment, drawing its initial-state noise from its own generator.

        Returns:
            ``[B, obs_dim]`` float64 observations.
        """
        ...

    def step(self, action: np.ndarray) -> StepResult:
        """Advances every environment by one control step with ``action`` ``[B, act_dim]``."""
        ...

    def close(self) -> None:
        """Frees native resources (threads, renderers)."""
        ...


@runtime_checkable
class RenderableBatchEnv(BatchEnv, Protocol):
    """A :class:`BatchEnv` that draws its environments (for videos and the gymnasium view)."""

    def render(self, index: int, width: int = ..., height: int = ...) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of environment ``index`` in its current state.

        MuJoCo families frame what matters (the robot, tracked; the hand and the object) and
        draw shadows; the size defaults are the family's.
        """
        ...


@runtime_checkable
class SimulatedBatchEnv(BatchEnv, Protocol):
    """A :class:`BatchEnv` whose environments are MuJoCo simulations in one
    :class:`~metarl.envs.mujoco_batch.PhysicsBatch` (``metarl bench`` replays their physics alone)."""

    def physics_batch(self) -> PhysicsBatch | None:
        """The batch the environments step in; None before the first reset (a batch may be built
        or rebuilt there, so read it again after every reset)."""
        ...


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks plus the dynamics that every task shares.

    The descriptive members are read-only properties, so a family may provide them as class
    variables (``name``), instance attributes (``horizon``, from the options) or properties.
    """

    @property
    def name(self) -> str:
        """Registry name, e.g. ``"HalfCheetahVel"``."""
        ...

    @property
    def horizon(self) -> int:
        """Control steps per episode; the gymnasium view truncates there."""
        ...

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per control step (videos play at ``1 / control_dt`` frames/s)."""
        ...

    @property
    def observation_space(self) -> spaces.Box:
        """Space of one observation, ``[obs_dim]`` float64."""
        ...

    @property
    def action_space(self) -> spaces.Box:
        """Space of one action, ``[act_dim]`` float64."""
        ...

    @property
    def has_success(self) -> bool:
        """Whether :attr:`StepResult.success` is defined (else it is None)."""
        ...

    @property
    def test_tasks_held_out(self) -> bool:
        """Whether :meth:`sample_tasks` never draws a test task; False where the task space is finite
        (the ±1 direction families) and the test set is all of it."""
        ...

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """Draws ``n`` training tasks from ``rng``. Never draws a held-out test task."""
        ...

    def test_tasks(self) -> list[Task]:
        """The fixed held-out tasks, the same on every call and every machine."""
        ...

    def validation_tasks(self) -> list[Task]:
        """Fixed tasks from the training distribution, for choosing a checkpoint (``best.pt``).

        Drawn once with :meth:`sample_tasks` from the family's own fixed seed (never the test
        set's seed), the same on every call and every machine; held-out test tasks are kept for
        reporting. Where the test set is the whole task space (the ±1 direction families) the
        validation tasks are those same tasks, evaluated with other rollout seeds.
        """
        ...

    def parse_task(self, text: str) -> Task:
        """Parses the one-line form (``task.to_string()`` round-trips)."""
        ...

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        """Builds a task from its YAML/JSON mapping (``task.to_dict()`` round-trips)."""
        ...

    def load_task(self, source: str) -> Task:
        """A task from what a user typed: its one-line form or a file.

        Every family reads a YAML file of the task's mapping (a path ending in ``.yaml``); a
        family may read other files too (the grasp family: an OBJ or STL mesh).
        """
        ...

    def task_space(self) -> dict[str, str]:
        """``{parameter: allowed range}`` for ``metarl families`` and error messages."""
        ...

    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> BatchEnv:
        """Creates ``num_envs`` environments stepped together on ``num_threads`` threads."""
        ...


class FamilyBase:
    """What every family shares: no success unless it says otherwise, and the gymnasium view :meth:`make_env`."""

    has_success: ClassVar[bool] = False

    def make_env(self, task: Task | None = None, render_mode: str | None = None) -> FamilyEnv:
        """The gymnasium view: this family's batched environment with ``B = 1``."""
        return FamilyEnv(cast(TaskFamily, self), task=task, render_mode=render_mode)  # every subclass is one


class FlatTaskFamily(FamilyBase, abc.ABC):
    """Shared plumbing for families whose task is a flat dataclass of numbers.

    Subclasses set ``name``, ``task_type``, the spaces, ``horizon`` and ``control_dt`` and
    implement ``sample_tasks``, ``test_tasks``, ``validation_tasks``, ``task_space`` and
    ``make_batch_env``.
    """

    name: ClassVar[str]
    task_type: type[Task]
    horizon: int
    control_dt: float
    observation_space: spaces.Box
    action_space: spaces.Box

    @abc.abstractmethod
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """Draws ``n`` training tasks from ``rng`` (see :class:`TaskFamily`)."""

    @abc.abstractmethod
    def test_tasks(self) -> list[Task]:
        """The fixed held-out tasks (see :class:`TaskFamily`)."""

    @abc.abstractmethod
    def validation_tasks(self) -> list[Task]:
        """The fixed tasks that choose ``best.pt`` (see :class:`TaskFamily`)."""

    @abc.abstractmethod
    def task_space(self) -> dict[str, str]:
        """``{parameter: allowed range}`` (see :class:`TaskFamily`)."""

    @abc.abstractmethod
    def make_batch_env(self, num_envs: int, num_threads: int = 1) -> BatchEnv:
        """Creates ``num_envs`` environments stepped together (see :class:`TaskFamily`)."""

    def parse_task(self, text: str) -> Task:
        return self.task_from_dict(parse_key_values(text, what=f"{self.name} task {text!r}"))

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        return task_from_mapping(self.task_type, data, family=self.name)

    def load_task(self, source: str) -> Task:
        if is_yaml_path(source):
            return self.task_from_dict(read_task_file(source.strip()))
        return self.parse_task(source)


def coerce_task(family: TaskFamily, given: Any, what: str = "task") -> Task:
    """A task of ``family`` from a Task, its dict form or its one-line string.

    Raises:
        TaskError: Anything else, or a form the family refuses (one line naming ``what``).
    """
    if isinstance(given, Task):
        return given
    if isinstance(given, str):
        return family.parse_task(given)
    if isinstance(given, Mapping):
        return family.task_from_dict(given)
    raise TaskError(f"{what}={given!r} must be a Task, its dict or its one-line string")


def render_fps(control_dt: float) -> int:
    """Frames per second of a video with one frame per control step of ``control_dt`` seconds.

    Rounded to a whole number (at least 1) as gymnasium's MuJoCo envs do: 20 for 0.05 s, 125 for 0.008 s.
    """
    check_finite_range("control_dt", control_dt, 0.0, None, low_open=True)
    return max(1, round(1.0 / float(control_dt)))


class FamilyEnv(gym.Env[np.ndarray, np.ndarray]):
    """A gymnasium env over one task of a family; the family's :class:`BatchEnv` with ``B = 1``.

    The task is given at construction or through ``reset(options={"task": task})`` (a Task, its
    dict form or its one-line string; see :func:`coerce_task`). Without either, every reset draws a fresh training task
    from the env's seeded generator (so ``reset(seed=s)`` is reproducible). Episodes are
    truncated at the family's horizon.

    ``info`` holds every named reward term (they sum to the reward), ``physics_unstable`` and,
    where the family defines it, ``success``.

    ``metadata["render_fps"]`` is the family's control rate ``1 / control_dt``, set per instance,
    so that a video of one frame per step plays in real time.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self, family: TaskFamily, task: Task | str | Mapping[str, Any] | None = None, render_mode: str | None = None
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; allowed: rgb_array or None")
        self.metadata = {**type(self).metadata, "render_fps": render_fps(family.control_dt)}
        self.family = family
        self.observation_space = family.observation_space
        self.action_space = family.action_space
        self.render_mode = render_mode
        self._batch = family.make_batch_env(1)
        self._task = coerce_task(family, task) if task is not None else None
        self._task_given = task is not None
        self._steps = 0

    @property
    def task(self) -> Task | None:
        """The task of the current (or next) episode."""
        return self._task

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        given = (options or {}).get("task")
        if given is not None:
            self._task = coerce_task(self.family, given, what="options['task']")
            self._task_given = True
        if not self._task_given:
            self._task = self.family.sample_tasks(1, self.np_random)[0]
        assert self._task is not None
        self._batch.set_tasks([self._task])
        self._steps = 0
        obs = self._batch.reset([self.np_random])
        return obs[0], {"task": self._task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        result = self._batch.step(np.asarray(action, dtype=np.float64).reshape(1, -1))
        self._steps += 1
        info: dict[str, Any] = {name: float(term[0]) for name, term in result.terms.items()}
        info["physics_unstable"] = bool(result.unstable[0])
        if result.success is not None:
            info["success"] = bool(result.success[0])
        terminated = bool(result.terminated[0])
        truncated = not terminated and self._steps >= self.family.horizon
        return result.obs[0], float(result.reward[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if not isinstance(self._batch, RenderableBatchEnv):
            raise NotImplementedError(f"{self.family.name} has no renderer")
        return self._batch.render(0)

    def close(self) -> None:
        self._batch.close()
