"""Experiment configuration: frozen dataclasses, loaded from YAML with strict checking.

Every field is documented where it is declared (``help`` in its metadata) together with its
allowed range, so the YAML files under ``experiments/``, ``--set`` overrides and error messages
all speak the same names: ``section.key`` (``inner.fast_lr``, ``outer.max_kl`` ...).

Bad input never gets past :func:`load_config`: an unknown key, a wrong type or an out-of-range
value raises :class:`ConfigError` with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from metarl.envs.base import TaskError, describe_range, plain
from metarl.envs.registry import family_spec


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range (one-line message)."""


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> Any:
    """Declares a config field with its documentation and allowed range."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open}
    if isinstance(default, (list, dict)):
        raise TypeError("mutable config defaults are not allowed")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What to run and how often to look at it."""

    seed: int = param(0, "seed of every random stream of the run", low=0)
    iterations: int = param(500, "number of meta-iterations (meta-updates)", low=1)
    eval_every: int = param(25, "evaluate on the held-out tasks every N iterations (0: only at the end)", low=0)
    eval_steps: int = param(1, "gradient steps of adaptation in the periodic evaluation", low=0, high=20)
    eval_rollouts: int = param(20, "rollouts per held-out task in the periodic evaluation", low=1)
    checkpoint_every: int = param(50, "keep a numbered checkpoint every N iterations (0: never)", low=0)


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    """The task family and its options (every other key of the ``family:`` section)."""

    name: str = param("Navigation2D", "registered family name (see `metarl families`)")
    options: Any = None

    def to_dict(self) -> dict[str, Any]:
        opts = dataclasses.asdict(self.options) if self.options is not None else {}
        return {"name": self.name, **{k: plain(v) for k, v in opts.items()}}


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Gaussian MLP policy."""

    hidden_sizes: tuple[int, ...] = param((100, 100), "widths of the tanh hidden layers", low=1)
    init_std: float = param(1.0, "initial standard deviation of the action noise", low=0, low_open=True)
    min_std: float = param(1e-6, "lower bound on the standard deviation", low=0, low_open=True)
    init_from: str = param(
        "", "checkpoint whose parameters a new run starts from (a warm start, e.g. with more inner steps); '': random"
    )
    latent_dim: int = param(
        0,
        "size K of a latent drawn once per episode from the policy's own Gaussian and read beside the observation "
        "(MAESN-style exploration that stays the same through an episode); 0: none",
        low=0,
        high=64,
    )
    latent_std: float = param(
        0.0, "initial standard deviation of the latent (policy.latent_dim > 0); 0: policy.init_std", low=0
    )
    latent_action: bool = param(
        False,
        "the latent also shifts the first K action dimensions sent to the environment for the whole episode "
        "(consistent exploration in what those actions command, e.g. the grasp family's pinch point)",
    )
    fixed_latent_std: bool = param(
        False, "the meta-update does not train the latent's standard deviation (it stays at policy.latent_std)"
    )
    latent_input: bool = param(
        True,
        "the network reads the latent beside the observation; false (with latent_action): it does not, so it "
        "cannot undo the latent's shift of the action",
    )
    latent_std_decay: float = param(
        1.0,
        "each inner step multiplies the latent's standard deviation by this (exploration that narrows as the "
        "policy adapts); 1: unchanged",
        low=0,
        high=1,
        low_open=True,
    )
    latent_natural: bool = param(
        False,
        "precondition the inner step of the latent's mean by its variance (the natural gradient of a Gaussian "
        "whose std is fixed): it moves by inner.latent_lr * sigma_z * mean(A * eps), an evolution strategy's "
        "step, which narrows with latent_std_decay instead of growing; needs policy.fixed_latent_std",
    )
    latent_open_loop: bool = param(
        False,
        "the first K actions do not read the observation: a trained constant plus the latent, chosen once per "
        "episode (the network's last-layer weights for them stay 0); needs policy.latent_action",
    )
    latent_centred: bool = param(
        False,
        "the open-loop actions' constant stays 0 (their last-layer biases, and the latent's prior mean in the "
        "meta-update; inner steps still move the mean): before adapting they explore around 0; needs "
        "policy.latent_open_loop",
    )


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """How episodes are collected."""

    backend: Literal["local", "ray"] = param(
        "local", "where environments run: local (this process) or ray (Ray actors, each a slice of the tasks)"
    )
    num_threads: int = param(
        1, "threads for batched physics stepping (per Ray actor with backend ray)", low=1, high=256
    )
    torch_threads: int = param(
        0, "torch intra-op threads of the learner (0: one per core); sampling acts on num_threads", low=0
    )
    ray_address: str = param("", "ray: cluster to join ('auto', 'ray://head:10001'); empty starts Ray locally")
    num_workers: int = param(2, "ray: number of sampler actors, each owning a contiguous slice of the tasks", low=1)
    worker_timeout_s: float = param(
        600.0, "ray: seconds one collection may take before a worker is declared hung", low=0, low_open=True
    )


@dataclasses.dataclass(frozen=True)
class AdvantageConfig:
    """Returns, baseline and advantages (shared by the inner and the outer loop)."""

    gamma: float = param(0.99, "discount factor", low=0, high=1)
    gae_lambda: float = param(1.0, "GAE(lambda); 1.0 is Monte-Carlo return minus baseline", low=0, high=1)
    normalize: bool = param(True, "normalize advantages per task to zero mean, unit variance")
    baseline_reg: float = param(1e-5, "ridge coefficient of the linear feature baseline", low=0, low_open=True)


@dataclasses.dataclass(frozen=True)
class InnerConfig:
    """Adaptation: the inner loop."""

    algorithm: Literal["maml_trpo", "fomaml", "reptile"] = param(
        "maml_trpo", "meta-learner: maml_trpo (second order), fomaml (first order), reptile"
    )
    fast_lr: float = param(
        0.1,
        "step size of each inner policy-gradient step; 0: the network does not adapt, only the latent "
        "(policy.latent_dim > 0 with inner.latent_lr > 0), context adaptation as in CAVIA",
        low=0,
    )
    steps: int = param(
        1, "inner gradient steps (new rollouts between steps); 0 trains one policy for all tasks", low=0, high=20
    )
    rollouts: int = param(20, "rollouts per task per inner step (and for the query set)", low=1)
    latent_lr: float = param(
        0.0, "inner step size of the latent's mean and log-std (policy.latent_dim > 0); 0: inner.fast_lr", low=0
    )
    loss: Literal["reinforce", "lvc"] = param(
        "reinforce",
        "inner loss: reinforce (-log pi * A, the MAML paper's) or lvc (ProMP's low-variance curvature, "
        "-pi/stop(pi) * A: the same gradient, but its Hessian adds sum A grad log pi grad log pi^T, so that "
        "maml_trpo's meta-gradient sees how the meta-policy's own support rollouts shape the inner step)",
    )

    @property
    def latent_step(self) -> float:
        """The latent's inner step size: ``latent_lr``, or ``fast_lr`` where it is 0."""
        return self.latent_lr or self.fast_lr


@dataclasses.dataclass(frozen=True)
class OuterConfig:
    """Meta-update: the outer loop (trust region for maml_trpo / fomaml)."""

    meta_batch_size: int = param(40, "tasks per meta-iteration", low=1)
    max_kl: float = param(0.01, "trust-region radius delta on the mean KL", low=0, low_open=True)
    cg_iters: int = param(10, "conjugate-gradient iterations", low=1, high=1000)
    cg_damping: float = param(1e-5, "damping added to the Hessian-vector products", low=0)
    ls_backtrack_ratio: float = param(0.8, "line-search step shrink factor", low=0, high=1, low_open=True)
    ls_max_steps: int = param(15, "line-search steps before the update is rejected", low=1, high=1000)
    hvp_subsample: float = param(
        1.0,
        "fraction of each rollout's query steps (evenly spaced) where the KL's Fisher is taken in the curvature "
        "products; 1: exact. The adapted parameters, the support Hessians, the gradient and the line search "
        "always use every step",
        low=0,
        high=1,
        low_open=True,
    )
    pre_kl_weight: float = param(
        0.0,
        "weight w of the meta-policy's own KL on the first support batch's steps in the trust region "
        "(KL_post + w KL_pre <= max_kl); 0: the paper's, the adapted policies' KL alone",
        low=0,
    )
    step_size: float = param(1.0, "reptile only: fraction of (adapted - initial) applied", low=0, low_open=True)


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """What the run writes besides checkpoints."""

    tensorboard: bool = param(True, "write TensorBoard event files")
    plots: bool = param(True, "refresh PNG learning curves at every evaluation")
    video_every: int = param(
        0,
        "every N iterations and at the end, write videos/iter_NNNN.mp4: the first held-out task before and "
        "after run.eval_steps steps (0: never; the MuJoCo experiments set it to run.eval_every)",
        low=0,
    )


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole experiment; one section per YAML top-level key."""

    run: RunConfig = RunConfig()
    family: FamilyConfig = FamilyConfig()
    policy: PolicyConfig = PolicyConfig()
    sampler: SamplerConfig = SamplerConfig()
    advantage: AdvantageConfig = AdvantageConfig()
    inner: InnerConfig = InnerConfig()
    outer: OuterConfig = OuterConfig()
    log: LogConfig = LogConfig()

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain YAML-able data."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if isinstance(section, FamilyConfig):
                out[f.name] = section.to_dict()
            else:
                out[f.name] = {k: plain(v) for k, v in dataclasses.asdict(section).items()}
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Builds a :class:`Config` from nested mappings, checking every key, type and range."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    hints = typing.get_type_hints(Config)
    sections = [f.name for f in dataclasses.fields(Config)]
    for key in data:
        if key not in sections:
            raise ConfigError(f"unknown config section {key!r}; allowed: {', '.join(sections)}")
    values: dict[str, Any] = {}
    for name in sections:
        raw = data.get(name) or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"section {name!r} must be a mapping of keys, got {raw!r}")
        if name == "family":
            values[name] = _family_from_dict(raw)
        else:
            values[name] = _section_from_dict(hints[name], raw, name)
    return Config(**values)


def _family_from_dict(raw: Mapping[str, Any]) -> FamilyConfig:
    name = raw.get("name", FamilyConfig.name)
    if not isinstance(name, str):
        raise ConfigError(f"family.name={name!r} must be a string")
    try:
        spec = family_spec(name)
    except TaskError as err:
        raise ConfigError(f"family.name: {err}") from None
    option_values = {k: v for k, v in raw.items() if k != "name"}
    options = _section_from_dict(spec.options_type, option_values, "family", strict_unknown=False)
    return FamilyConfig(name=name, options=options)


def _section_from_dict(cls: type[Any], raw: Mapping[str, Any], section: str, strict_unknown: bool = True) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            allowed = ", ".join(fields)
            where = f"family option of {cls.__name__}" if not strict_unknown else f"key of {section}"
            raise ConfigError(f"{section}.{key} is not a {where}; allowed: {allowed}")
    hints = typing.get_type_hints(cls)
    kwargs = {key: _coerce(f"{section}.{key}", value, hints[key]) for key, value in raw.items()}
    for key, value in kwargs.items():
        _check_range(f"{section}.{key}", value, raw[key], fields[key].metadata)
    try:
        return cls(**kwargs)
    except TaskError as err:
        raise ConfigError(str(err)) from None


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Checks ``value`` against the annotation ``hint``; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
        return value
    if origin in (tuple, Sequence) or hint is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list such as [64, 64]")
        item = args[0] if args else Any
        return tuple(_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, members[0])
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        if not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} must be a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    return value


def _check_range(key: str, value: Any, typed: Any, meta: Mapping[str, Any]) -> None:
    """Checks the coerced ``value`` against the field's range; errors quote what the user ``typed``."""
    low, high, low_open = meta.get("low"), meta.get("high"), meta.get("low_open", False)
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and v > high
        if too_low or too_high:
            raise ConfigError(
                f"{key}={typed!r} is out of range; allowed: {describe_range(low, high, low_open=low_open)}"
            )


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parses ``"section.key=value"``; the value is read as YAML (``0.1``, ``[64,64]``, ``true``)."""
    path, sep, raw = text.partition("=")
    keys = path.strip().split(".")
    if not sep or len(keys) < 2 or not all(keys):
        raise ConfigError(f"--set {text!r} must look like section.key=value (e.g. inner.fast_lr=0.05)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: value {raw!r} is not valid YAML") from None
    return keys, value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns a copy of the raw config mapping with every ``--set`` override applied."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping, turning every failure into one :class:`ConfigError` line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections")
    return data


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Loads a YAML experiment file (or the defaults when ``path`` is None) plus overrides."""
    data = read_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(data, overrides))


def describe() -> list[str]:
    """One line per field, ``section.key = default  # help``, for ``--help`` style listings."""
    lines = []
    for section in dataclasses.fields(Config):
        sub = typing.get_type_hints(Config)[section.name]
        for f in dataclasses.fields(sub):
            if f.name == "options":
                continue
            lines.append(f"{section.name}.{f.name} = {plain(f.default)!r}  # {f.metadata.get('help', '')}")
    return lines
