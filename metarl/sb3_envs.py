"""metarl's task families as stable-baselines3 vectorised environments, unchanged.

Each environment is ``gym.make("metarl/<Family>-v0", task=..., **family_options)`` (the
family's batched dynamics with a batch of one), built by SB3's ``make_vec_env`` into a
``DummyVecEnv`` (in this process) or a ``SubprocVecEnv`` (one process per environment). Two
pieces sit around them:

* :class:`NewTaskPerEpisode`, a gymnasium wrapper that gives every episode a fresh training task
  (pretraining on the family's training distribution);
* :class:`EpisodeRecorder`, a VecEnv wrapper that counts every environment step that comes back
  and records each finished episode's return and success, as the metarl sampler counts them.

Threads: a ``SubprocVecEnv`` worker steps one small environment, so its BLAS, OpenMP and torch
pools are held at one thread (the variables are set while the workers start, which are spawned
fresh, and restored in this process after); MuJoCo steps each environment on one thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from metarl.envs.base import FamilyEnv, Task, TaskFamily
from metarl.envs.registry import family_spec

VecKind = Literal["dummy", "subproc"]
VEC_KINDS: tuple[VecKind, ...] = ("dummy", "subproc")
_TASK_STREAM = 0x7A5C  # mixed into a reset seed to seed the task stream apart from the state noise
_ONE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class NewTaskPerEpisode(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Starts every episode on a new training task, drawn with the family's ``sample_tasks``.

    The tasks come from their own generator, seeded at ``reset(seed=s)`` from ``s`` (apart from
    the initial-state noise the environment draws from ``s``), so the same seed gives the same
    tasks and the same start states. Held-out test tasks are never drawn (``sample_tasks``
    never returns them). The task of the episode is in the reset ``info["task"]``.

    Args:
        env: A metarl environment (``gym.make("metarl/<Family>-v0")``, any wrappers around it).
    """

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray]):
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, FamilyEnv):
            raise TypeError(f"NewTaskPerEpisode wraps a metarl environment, not {type(base).__name__}")
        self.family: TaskFamily = base.family
        self._tasks: np.random.Generator | None = None
        self.tasks_drawn = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._tasks = np.random.default_rng(np.random.SeedSequence([seed, _TASK_STREAM]))
        elif self._tasks is None:
            self._tasks = np.random.default_rng()  # unseeded, as gymnasium's own first reset without a seed
        task = self.family.sample_tasks(1, self._tasks)[0]
        self.tasks_drawn += 1
        return self.env.reset(seed=seed, options={**(options or {}), "task": task})


class Finished(NamedTuple):
    """What an :class:`EpisodeRecorder` saw since it was last asked.

    Attributes:
        returns: Undiscounted return of each episode that ended, in the order they ended.
        success: Whether each reached success at any step (all False where the family has none).
        env_steps: Environment steps that came back, finished episodes or not.
    """

    returns: tuple[float, ...]
    success: tuple[bool, ...]
    env_steps: int


class EpisodeRecorder(VecEnvWrapper):
    """Counts every environment step and records every finished episode of a VecEnv.

    Rewards and observations are passed on as the metarl sampler keeps them: the reward of a step
    whose physics went unstable (``info["physics_unstable"]``, which ends the episode) counts 0, and
    non-finite observations become 0. Rewards are float32 whichever VecEnv runs underneath, so
    that ``DummyVecEnv`` and ``SubprocVecEnv`` give the same numbers. Episodes in progress when
    :meth:`reset` is called are dropped (their steps stay counted).

    Args:
        venv: The environments.
    """

    def __init__(self, venv: VecEnv):
        super().__init__(venv)
        self.total_steps = 0
        self._running = np.zeros(self.num_envs)
        self._success = np.zeros(self.num_envs, dtype=bool)
        self._returns: list[float] = []
        self._successes: list[bool] = []
        self._steps = 0

    def reset(self) -> np.ndarray:
        self._running[:] = 0.0
        self._success[:] = False
        return _finite(self.venv.reset())

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._steps += len(infos)
        self.total_steps += len(infos)
        unstable = np.array([bool(info.get("physics_unstable", False)) for info in infos])
        # float32 whichever VecEnv: DummyVecEnv's buffer and PPO's rollout buffer hold float32 (SubprocVecEnv float64)
        rewards = np.where(unstable, 0.0, rewards).astype(np.float32)
        self._running += rewards
        self._success |= np.array([bool(info.get("success", False)) for info in infos])
        for i in np.flatnonzero(dones):
            self._returns.append(float(self._running[i]))
            self._successes.append(bool(self._success[i]))
            self._running[i] = 0.0
            self._success[i] = False
            last = infos[i].get("terminal_observation")
            if last is not None:
                infos[i]["terminal_observation"] = _finite(last)
        return _finite(obs), rewards, dones, infos

    def take(self) -> Finished:
        """The episodes finished and the steps taken since the last call (or the start)."""
        out = Finished(tuple(self._returns), tuple(self._successes), self._steps)
        self._returns, self._successes, self._steps = [], [], 0
        return out


def _finite(obs: VecEnvObs) -> np.ndarray:
    """Observations with NaN/Inf (from physics that blew up, ending the episode) set to 0."""
    assert isinstance(obs, np.ndarray), "metarl observations are arrays"
    return np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)


def family_vec_env(
    family: str,
    options: Mapping[str, Any],
    task: Task | None,
    num_envs: int,
    seed: int,
    kind: VecKind = "dummy",
) -> VecEnv:
    """``num_envs`` environments of one family under SB3, seeded and monitored by ``make_vec_env``.

    Args:
        family: Registered family name.
        options: The family's options (the ``family:`` config keys, without ``name``).
        task: The task of every episode, or None for a new training task per episode
            (:class:`NewTaskPerEpisode`).
        num_envs: Environments.
        seed: Environment ``i`` is reset first with ``seed + i`` (SB3's convention).
        kind: ``dummy`` (this process) or ``subproc`` (one spawned process each).
    """
    gym_id = f"metarl.envs:{family_spec(family).gym_id}"  # a spawned worker imports metarl.envs first
    kwargs: dict[str, Any] = {**options, "task": task, "render_mode": None}
    wrapper = NewTaskPerEpisode if task is None else None
    if kind == "dummy":
        return make_vec_env(
            gym_id, num_envs, seed=seed, env_kwargs=kwargs, wrapper_class=wrapper, vec_env_cls=DummyVecEnv
        )
    if kind == "subproc":
        with _one_thread_children():
            return make_vec_env(
                gym_id,
                num_envs,
                seed=seed,
                env_kwargs=kwargs,
                wrapper_class=wrapper,
                vec_env_cls=SubprocVecEnv,
                vec_env_kwargs={"start_method": "spawn"},
            )
    raise ValueError(f"vec env {kind!r} is not allowed; allowed: {', '.join(VEC_KINDS)}")


@contextlib.contextmanager
def _one_thread_children() -> Iterator[None]:
    """Processes started inside the block run their BLAS / OpenMP / torch pools on one thread."""
    saved = {name: os.environ.get(name) for name in _ONE_THREAD}
    os.environ.update(dict.fromkeys(_ONE_THREAD, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
