"""Checkpoints: atomic writes, pickle-free loads, and every RNG state for bit-identical resume.

A checkpoint is a ``torch.save`` file holding only tensors, strings, numbers and dicts of them.
It is written to a temporary file in the same folder, flushed to disk and renamed into place,
so a crash mid-write leaves the previous checkpoint intact. It is read with
``torch.load(weights_only=True)``: a file that carries any other pickled object is refused and
nothing in it is executed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

import metarl
from metarl.policies import Params

FORMAT = "metarl-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read (one-line message)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
        params: Meta-parameters of the policy.
        iteration: Meta-iterations completed.
        config_yaml: The run's resolved configuration.
        rng: ``{"task": …, "env": …}`` numpy bit-generator states and ``"torch"``, the torch
            generator state (``uint8`` tensor).
        best_eval: Best held-out post-adaptation return seen so far (``-inf`` if none).
        versions: Package versions that wrote the checkpoint.
    """

    params: Params
    iteration: int
    config_yaml: str
    rng: Mapping[str, Any]
    best_eval: float = float("-inf")
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)


def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour a checkpoint depends on."""
    return {
        "metarl": metarl.__version__,
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
    }


def generator_state(rng: np.random.Generator) -> str:
    """A numpy generator's state as JSON (its 128-bit integers survive exactly)."""
    return json.dumps(rng.bit_generator.state)


def restore_generator(state: str) -> np.random.Generator:
    """The inverse of :func:`generator_state`."""
    data = json.loads(state)
    bit_generator = getattr(np.random, data["bit_generator"])()
    bit_generator.state = data
    return np.random.Generator(bit_generator)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Writes ``ckpt`` atomically to ``path``.

    Raises:
        CheckpointError: If the file cannot be written (disk full, permissions); the previous
            file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "params": {k: v.detach().cpu().clone() for k, v in ckpt.params.items()},
        "iteration": int(ckpt.iteration),
        "config_yaml": ckpt.config_yaml,
        "rng": dict(ckpt.rng),
        "best_eval": float(ckpt.best_eval),
        "versions": dict(ckpt.versions or versions()),
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {err.strerror or err}") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Reads a checkpoint without unpickling anything but tensors and plain data.

    Raises:
        CheckpointError: Missing, truncated, foreign or unsafe file.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a folder; give a .pt file (e.g. checkpoints/final.pt)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain data; refused, nothing was run"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a metarl checkpoint (expected format {FORMAT})")
    try:
        params = payload["params"]
        if not isinstance(params, dict) or not all(isinstance(v, torch.Tensor) for v in params.values()):
            raise TypeError("params")
        return Checkpoint(
            params=params,
            iteration=int(payload["iteration"]),
            config_yaml=str(payload["config_yaml"]),
            rng=dict(payload["rng"]),
            best_eval=float(payload["best_eval"]),
            versions=dict(payload["versions"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is missing or has a malformed field ({err})") from None


def check_params(params: Params, expected: Params, *, what: str) -> None:
    """Refuses parameters whose names or shapes differ from ``expected``, listing every mismatch.

    Raises:
        CheckpointError: One line naming the missing, unexpected and mis-shaped keys.
    """
    problems = []
    for key in expected:
        if key not in params:
            problems.append(f"missing {key}")
        elif tuple(params[key].shape) != tuple(expected[key].shape):
            problems.append(f"{key} {tuple(params[key].shape)} != {tuple(expected[key].shape)}")
    problems += [f"unexpected {key}" for key in params if key not in expected]
    if problems:
        raise CheckpointError(f"{what} does not match the policy architecture: {'; '.join(problems)}")
