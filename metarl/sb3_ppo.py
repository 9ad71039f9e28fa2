"""stable-baselines3 PPO, stage by stage: MAML's adaptation budget, pretraining and model files.

A *stage* is one PPO rollout of ``N × T`` env steps (``N`` rollouts of horizon ``T``: the
budget of one MAML adaptation step for one task) followed, except after the last, by one PPO
update on it. :func:`ppo_curve` measures a policy stage by stage on one task; :func:`pretrain`
trains one on a family's training distribution and writes it with SB3's ``save``, with a
:data:`MODEL_INFO` entry in the zip saying what it was trained on, so that a model of another
family, observation size or policy shape is refused in one line (:func:`check_model`).

The policy has MAML's hidden layers, tanh units and initial action noise (``policy`` config)
and PPO discounts with MAML's ``advantage`` settings; :class:`PPOSettings` holds the rest.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList

import metarl
from metarl.config import Config
from metarl.envs.base import Task
from metarl.envs.registry import make_family
from metarl.samplers import torch_threads
from metarl.sb3_envs import VEC_KINDS, EpisodeRecorder, Finished, VecKind, family_vec_env

MODEL_INFO = "metarl.json"  # what a pretrained model's zip holds beside SB3's own entries


class BaselineError(ValueError):
    """A baseline cannot run as asked (one-line message)."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """MAML's adaptation budget: ``steps`` updates, each on ``rollouts`` episodes of ``horizon`` steps per task.

    Raises:
        BaselineError: A count below 1 (a budget of zero).
    """

    steps: int
    rollouts: int
    horizon: int

    def __post_init__(self) -> None:
        for name in ("steps", "rollouts", "horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BaselineError(f"a budget needs {name} >= 1, got {name}={value!r}; allowed: 1 or more")

    @property
    def stage_steps(self) -> int:
        """``N × T``: the env steps of one task that one update learns from."""
        return self.rollouts * self.horizon

    def to_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "rollouts": self.rollouts, "horizon": self.horizon}


@dataclasses.dataclass(frozen=True)
class PPOSettings:
    """SB3 PPO and its environments, for both pretraining and fine-tuning.

    The policy's layers, tanh units and initial action noise are MAML's (``policy`` config) and
    ``gamma``, ``gae_lambda`` its ``advantage`` settings; these are the rest. ``n_steps`` is not
    one of them: it is the budget's ``N × T`` split over the environments.

    Attributes:
        learning_rate: Adam step size.
        n_epochs: Passes over each stage's samples.
        minibatches: Minibatches per pass (the largest divisor of ``N × T`` up to this many).
        clip_range: PPO's ratio clip.
        ent_coef: Entropy bonus.
        max_grad_norm: Gradient clipping.
        num_envs: Environments stepped together (None: one per rollout, ``N``); must divide ``N``.
        vec_env: ``dummy`` (SB3's DummyVecEnv, this process) or ``subproc`` (SubprocVecEnv).
        torch_threads: Torch threads of the PPO learner.
    """

    learning_rate: float = 3e-4
    n_epochs: int = 10
    minibatches: int = 4
    clip_range: float = 0.2
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    num_envs: int | None = None
    vec_env: VecKind = "dummy"
    torch_threads: int = 1

    def __post_init__(self) -> None:
        positive = ("learning_rate", "clip_range", "max_grad_norm")
        for name in ("n_epochs", "minibatches", "torch_threads", *positive):
            if not getattr(self, name) > 0:
                raise BaselineError(f"ppo {name}={getattr(self, name)!r} is out of range; allowed: above 0")
        if not self.ent_coef >= 0:
            raise BaselineError(f"ppo ent_coef={self.ent_coef!r} is out of range; allowed: 0 or more")
        if self.num_envs is not None and self.num_envs < 1:
            raise BaselineError(f"--envs={self.num_envs} is out of range; allowed: 1 or more")
        if self.vec_env not in VEC_KINDS:
            raise BaselineError(f"--vec-env={self.vec_env!r} is not allowed; allowed: {', '.join(VEC_KINDS)}")

    def envs_for(self, budget: Budget) -> int:
        """The environments of a run with ``budget``, checked to divide its rollouts."""
        envs = self.num_envs or budget.rollouts
        if budget.rollouts % envs:
            raise BaselineError(f"--envs={envs} must divide the {budget.rollouts} rollouts per step")
        return envs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_PPO_KEYS: dict[str, type[int] | type[float]] = {
    "learning_rate": float,
    "n_epochs": int,
    "minibatches": int,
    "clip_range": float,
    "ent_coef": float,
    "max_grad_norm": float,
}


def ppo_settings(overrides: Sequence[str], **fields: Any) -> PPOSettings:
    """:class:`PPOSettings` from ``key=value`` texts (``learning_rate=1e-3``) and keyword fields (None: default).

    Raises:
        BaselineError: An unknown key, a value of the wrong type or out of range (one line).
    """
    values = {k: v for k, v in fields.items() if v is not None}
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or key not in _PPO_KEYS:
            raise BaselineError(f"--ppo {text!r} is not KEY=VALUE with KEY one of {', '.join(_PPO_KEYS)}")
        kind = _PPO_KEYS[key]
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise BaselineError(f"--ppo {key}={raw!r} is not {'an integer' if kind is int else 'a number'}")
        values[key] = kind(value)
    return PPOSettings(**values)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a pretrained model was trained on, written into its zip beside SB3's entries.

    Attributes:
        family: Family name.
        family_options: The family's options.
        obs_dim: Observation size.
        act_dim: Action size.
        hidden_sizes: The policy's hidden layers.
        requested_steps: The pretraining budget asked for.
        env_steps: Pretraining env steps, counted (the budget rounded up to whole PPO iterations).
        seconds: Wall time of the pretraining.
        seed: PPO's seed (and the environments') of the pretraining.
        ppo: The PPO settings.
        metarl_version: Version that wrote it.
    """

    family: str
    family_options: dict[str, Any]
    obs_dim: int
    act_dim: int
    hidden_sizes: tuple[int, ...]
    requested_steps: int
    env_steps: int
    seconds: float
    seed: int
    ppo: dict[str, Any]
    metarl_version: str = metarl.__version__

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hidden_sizes": list(self.hidden_sizes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        return cls(**{**kept, "hidden_sizes": tuple(data["hidden_sizes"])})


def save_model(model: PPO, info: ModelInfo, path: Path) -> None:
    """Writes ``model`` with SB3's ``save``, adds :data:`MODEL_INFO` to the zip, and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.zip")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(MODEL_INFO, json.dumps(info.to_dict(), indent=2))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_model_info(path: Path) -> ModelInfo:
    """The :class:`ModelInfo` of a model written by :func:`save_model`.

    Raises:
        BaselineError: The file is missing or is not such a model (one line).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return ModelInfo.from_dict(json.loads(archive.read(MODEL_INFO)))
    except FileNotFoundError:
        raise BaselineError(f"pretrained model {str(path)!r} does not exist") from None
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, ValueError):
        raise BaselineError(
            f"{str(path)!r} is not a model written by `metarl baseline pretrained` (an SB3 zip with {MODEL_INFO})"
        ) from None


def check_model(info: ModelInfo, path: Path, config: Config) -> None:
    """Refuses a pretrained model of another family, observation or action size, or policy shape.

    Raises:
        BaselineError: One line naming what differs.
    """
    family = make_family(config.family.name, config.family.options)
    obs_dim, act_dim = int(family.observation_space.shape[0]), int(family.action_space.shape[0])
    where = f"pretrained model {str(path)!r}"
    if info.family != family.name:
        raise BaselineError(f"{where} is of family {info.family}, not {family.name}")
    if info.obs_dim != obs_dim or info.act_dim != act_dim:
        raise BaselineError(
            f"{where} takes {info.obs_dim} observations and {info.act_dim} actions; {family.name} now has "
            f"{obs_dim} and {act_dim}: pretrain it again"
        )
    if tuple(info.hidden_sizes) != tuple(config.policy.hidden_sizes):
        raise BaselineError(
            f"{where} has hidden layers {list(info.hidden_sizes)}, not the policy's {list(config.policy.hidden_sizes)}"
        )


@dataclasses.dataclass(frozen=True)
class TaskCurve:
    """One task's adaptation by PPO, stage by stage (``K + 1`` stages).

    Attributes:
        returns: Mean return of the episodes that ended in each stage.
        success: Their success rate (None where the family has no success).
        env_steps: Env steps of each stage, counted.
        episodes: Episodes that ended in each stage.
        seconds: Wall time of each stage (its collection and, but for the last, its PPO update).
    """

    returns: tuple[float, ...]
    success: tuple[float | None, ...]
    env_steps: tuple[int, ...]
    episodes: tuple[int, ...]
    seconds: tuple[float, ...]


def new_ppo(env: EpisodeRecorder, config: Config, budget: Budget, ppo: PPOSettings, seed: int) -> PPO:
    """PPO with MAML's policy shape whose every rollout is one stage, ``N × T`` env steps.

    SB3 seeds torch, numpy, ``random``, the action space and the environments (``seed + i`` at
    their next reset) from ``seed``.
    """
    n_steps = budget.stage_steps // env.num_envs
    chunk = n_steps * env.num_envs
    if chunk < 2:
        raise BaselineError(f"PPO needs at least 2 env steps per stage; this budget gives {chunk}")
    minibatches = max(m for m in range(1, ppo.minibatches + 1) if chunk % m == 0 and chunk // m > 1)
    hidden = list(config.policy.hidden_sizes)
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=ppo.learning_rate,
        n_steps=n_steps,
        batch_size=chunk // minibatches,
        n_epochs=ppo.n_epochs,
        gamma=config.advantage.gamma,
        gae_lambda=config.advantage.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs={
            "net_arch": {"pi": hidden, "vf": hidden},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": math.log(config.policy.init_std),
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )


def family_options(config: Config) -> dict[str, Any]:
    """The ``family:`` keys of ``config`` but ``name``: what ``gym.make("metarl/<Family>-v0", ...)`` takes."""
    return {k: v for k, v in config.family.to_dict().items() if k != "name"}


def _collect_only(model: PPO) -> None:
    """One more rollout of ``n_steps`` per environment with the current policy, without an update."""
    env = model.get_env()
    assert env is not None
    callback = CallbackList([])
    callback.init_callback(model)
    model.collect_rollouts(env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)


def pretrain(config: Config, budget: Budget, ppo: PPOSettings, env_steps: int, seed: int, path: Path) -> ModelInfo:
    """PPO on the family's training distribution (a new task per episode), saved to ``path``.

    Every PPO iteration collects ``N × T`` env steps, as fine-tuning does, so the steps taken are
    ``env_steps`` rounded up to whole iterations; the count in the result is what the
    environments reported.

    Args:
        config: MAML's configuration (family, policy shape, discounting).
        budget: The adaptation budget (sets the iteration's size).
        ppo: PPO settings.
        env_steps: Pretraining budget (at least 1).
        seed: PPO's seed (and the environments') of the pretraining.
        path: The ``.zip`` to write.
    """
    if env_steps < 1:
        raise BaselineError(f"--pretrain-steps={env_steps} is out of range; allowed: 1 or more")
    envs = ppo.envs_for(budget)
    options = family_options(config)
    venv = EpisodeRecorder(family_vec_env(config.family.name, options, None, envs, seed, ppo.vec_env))
    start = time.perf_counter()
    try:
        with torch_threads(ppo.torch_threads):
            model = new_ppo(venv, config, budget, ppo, seed)
            model.learn(total_timesteps=env_steps)
        family = make_family(config.family.name, config.family.options)
        info = ModelInfo(
            family=family.name,
            family_options=family_options(config),
            obs_dim=int(family.observation_space.shape[0]),
            act_dim=int(family.action_space.shape[0]),
            hidden_sizes=tuple(config.policy.hidden_sizes),
            requested_steps=env_steps,
            env_steps=venv.total_steps,
            seconds=time.perf_counter() - start,
            seed=seed,
            ppo=ppo.to_dict(),
        )
        save_model(model, info, path)
    finally:
        venv.close()
    return info


def ppo_curve(
    venv: EpisodeRecorder,
    config: Config,
    task: Task,
    budget: Budget,
    ppo: PPOSettings,
    seed: int,
    init: Path | None,
) -> TaskCurve:
    """PPO on one task for ``K`` updates, measured before each and after the last.

    Args:
        venv: The family's environments (any task); the next reset puts them on ``task``.
        config: MAML's configuration.
        task: The task.
        budget: ``K``, ``N``, ``T``.
        ppo: PPO settings.
        seed: Seed of PPO and of the environments' first reset on this task.
        init: A pretrained model to start from (its policy and optimiser state), or None (random).

    Raises:
        BaselineError: ``init`` does not fit; a stage took other than ``N × T`` env steps.
    """
    venv.set_options({"task": task})
    stages: list[Finished] = []
    seconds: list[float] = []
    with torch_threads(ppo.torch_threads):
        model = new_ppo(venv, config, budget, ppo, seed)
        if init is not None:
            try:
                model.set_parameters(str(init), exact_match=True, device="cpu")
            except (RuntimeError, ValueError, KeyError) as err:
                raise BaselineError(f"pretrained model {str(init)!r} does not fit this policy ({err})") from None
        venv.take()
        for k in range(budget.steps + 1):
            start = time.perf_counter()
            if k < budget.steps:  # one rollout of N x T env steps (the first after a reset), then one PPO update
                model.learn(total_timesteps=budget.stage_steps, reset_num_timesteps=k == 0)
            else:  # the last point is measured, not learnt from
                _collect_only(model)
            seconds.append(time.perf_counter() - start)
            stages.append(venv.take())
    for k, stage in enumerate(stages):
        if stage.env_steps != budget.stage_steps:
            raise BaselineError(f"stage {k} took {stage.env_steps} env steps, not the budget's {budget.stage_steps}")
    has_success = make_family(config.family.name, config.family.options).has_success
    return TaskCurve(
        returns=tuple(float(np.mean(s.returns)) for s in stages),
        success=tuple(float(np.mean(s.success)) if has_success else None for s in stages),
        env_steps=tuple(s.env_steps for s in stages),
        episodes=tuple(len(s.returns) for s in stages),
        seconds=tuple(seconds),
    )
