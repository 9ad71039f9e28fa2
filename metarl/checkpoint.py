"""Checkpoints: atomic writes, pickle-free loads, and every RNG state for bit-identical resume.

A checkpoint is a ``torch.save`` file holding only tensors, strings, numbers and dicts of them.
It is serialized in memory, written to a temporary file in the same folder, flushed to disk and
renamed into place, so a crash or a full disk mid-write leaves the previous checkpoint intact.
It is read with ``torch.load(weights_only=True)``: a file that carries any other pickled object
is refused and nothing in it is executed.

An *adapted* checkpoint (``metarl adapt --save``) holds the policy adapted to one task as its
parameters, with an :class:`AdaptationRecord`: the task, and the parameters after each gradient
step, so that ``metarl render`` shows the adaptation without adapting again.

What a checkpoint holds: the meta-parameters, the iteration, the resolved config, every random
stream of the run (the numpy task and environment generators *including* their seed sequences,
which ``Generator.spawn`` advances, and the torch generator), the best validation return and the
versions of the packages that wrote it. What it does not need to hold: the value baseline is a
linear feature baseline refit from scratch on every batch of episodes (no state carries from one
batch to the next), and neither the TRPO step nor the Reptile step keeps optimizer state.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
import warnings
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
class AdaptationRecord:
    """How the parameters of an adapted checkpoint came about.

    Attributes:
        task: The task's mapping (``task.to_dict()``; the family reads it back with
            ``task_from_dict``).
        step_params: The parameters after 0, 1, …, K gradient steps; the first are those of the
            checkpoint adapted from, the last the checkpoint's own.
        source: The checkpoint adapted from.
        seed: Seed of the adaptation's rollouts.
        rollouts: Rollouts per gradient step.
    """

    task: Mapping[str, Any]
    step_params: tuple[Params, ...]
    source: str
    seed: int
    rollouts: int

    @property
    def steps(self) -> int:
        """K, the gradient steps taken."""
        return len(self.step_params) - 1


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
        params: Meta-parameters of the policy.
        iteration: Meta-iterations completed.
        config_yaml: The run's resolved configuration.
        rng: ``{"task": …, "env": …}`` numpy generator states (see :func:`generator_state`) and
            ``"torch"``, the torch generator state (``uint8`` tensor).
        best_validation: Best post-adaptation return on the validation tasks so far (``-inf`` if
            none). Checkpoints written before validation sets existed stored the best *test*
            return instead (``best_eval``); it is not carried over, so a resumed old run chooses
            its next ``best.pt`` on the validation tasks.
        versions: Package versions that wrote the checkpoint.
        adaptation: For an adapted checkpoint, its task and the parameters of every step.
    """

    params: Params
    iteration: int
    config_yaml: str
    rng: Mapping[str, Any]
    best_validation: float = float("-inf")
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    adaptation: AdaptationRecord | None = None


def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour a checkpoint depends on."""
    # str(): torch.__version__ is a str subclass that weights-only loading refuses
    return {
        "metarl": str(metarl.__version__),
        "torch": str(torch.__version__),
        "mujoco": str(mujoco.__version__),
        "numpy": str(np.__version__),
    }


def generator_state(rng: np.random.Generator) -> str:
    """A numpy generator's whole state as JSON (its 128-bit integers survive exactly).

    Both parts are kept: the bit generator's state (what ``random``/``normal`` draw from) and its
    seed sequence, whose count of spawned children decides what ``rng.spawn(n)`` returns next.
    """
    seq = rng.bit_generator.seed_seq
    if not isinstance(seq, np.random.SeedSequence):
        raise TypeError("the generator must be seeded from a numpy SeedSequence")
    return json.dumps(
        {
            "bit_generator": rng.bit_generator.state,
            "seed_seq": {
                "entropy": seq.entropy,
                "spawn_key": list(seq.spawn_key),
                "pool_size": seq.pool_size,
                "n_children_spawned": seq.n_children_spawned,
            },
        }
    )


def restore_generator(state: str) -> np.random.Generator:
    """The inverse of :func:`generator_state`: a generator that continues the same streams."""
    data = json.loads(state)
    seq_data = data["seed_seq"]
    seq = np.random.SeedSequence(
        seq_data["entropy"],
        spawn_key=tuple(seq_data["spawn_key"]),
        pool_size=seq_data["pool_size"],
        n_children_spawned=seq_data["n_children_spawned"],
    )
    bits = data["bit_generator"]
    bit_generator = getattr(np.random, bits["bit_generator"])(seq)
    bit_generator.state = bits
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
        "config_yaml": str(ckpt.config_yaml),
        "rng": dict(ckpt.rng),
        "best_validation": float(ckpt.best_validation),
        "versions": {str(k): str(v) for k, v in (ckpt.versions or versions()).items()},
    }
    if ckpt.adaptation is not None:
        record = ckpt.adaptation
        payload["adaptation"] = {
            "task_json": json.dumps(dict(record.task)),
            "step_params": [{k: v.detach().cpu().clone() for k, v in p.items()} for p in record.step_params],
            "source": str(record.source),
            "seed": int(record.seed),
            "rollouts": int(record.rollouts),
        }
    buffer = io.BytesIO()  # serialize first: torch's zip writer would turn an OSError into a RuntimeError
    torch.save(payload, buffer)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            _write(fh, buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {err.strerror or err}") from None


def _sync_folder(folder: Path) -> None:
    """Makes the rename itself durable (POSIX: fsync the directory entry)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(fh: io.BufferedWriter, data: memoryview) -> None:
    """Writes the serialized checkpoint (one place for tests to simulate a full disk)."""
    fh.write(data)


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
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found is None:  # an opcode the restricted unpickler does not know: noise or a raw pickle
            raise CheckpointError(
                f"checkpoint {str(path)!r} is corrupt or not a torch checkpoint; refused, nothing in it was run"
            ) from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain data ({found.group(1)}); "
            "refused, nothing in it was run"
        ) from None
    except Exception as err:  # arbitrary bytes make the restricted unpickler fail in many ways
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({reason[:200]})") from None
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
            best_validation=float(payload.get("best_validation", float("-inf"))),
            versions=dict(payload["versions"]),
            adaptation=_adaptation_record(payload.get("adaptation")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is missing or has a malformed field ({err})") from None


def adapted_checkpoint(source: Checkpoint, record: AdaptationRecord) -> Checkpoint:
    """The checkpoint of the policy ``record`` ends with: ``metarl evaluate`` and ``render`` read it as a policy.

    It keeps the source's configuration and iteration; it holds no random state, since it is
    not a run to resume.
    """
    return dataclasses.replace(source, params=record.step_params[-1], rng={}, versions=versions(), adaptation=record)


def _adaptation_record(data: Any) -> AdaptationRecord | None:
    """The :class:`AdaptationRecord` of a loaded payload (None for a training checkpoint).

    Raises:
        TypeError, ValueError, KeyError: A malformed record (the caller names the file).
    """
    if data is None:
        return None
    task = json.loads(data["task_json"])
    steps = data["step_params"]
    if not isinstance(task, dict) or not isinstance(steps, list) or not steps:
        raise TypeError("adaptation")
    for params in steps:
        if not isinstance(params, dict) or not all(isinstance(v, torch.Tensor) for v in params.values()):
            raise TypeError("adaptation.step_params")
    return AdaptationRecord(
        task=task,
        step_params=tuple(steps),
        source=str(data["source"]),
        seed=int(data["seed"]),
        rollouts=int(data["rollouts"]),
    )


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


def config_mismatches(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: tuple[str, ...] = ()
) -> list[str]:
    """The dotted keys whose values differ between two nested config mappings.

    A key that ``saved`` lacks is an option added to the package after the checkpoint was
    written; it is not a difference (the option's default keeps the old behaviour).

    Args:
        saved: The configuration stored in a checkpoint.
        current: The configuration it is compared with.
        ignore: Dotted keys allowed to differ (e.g. ``"run.iterations"``).

    Returns:
        One ``"key: A in the checkpoint, B here"`` entry per difference, in key order.
    """
    out: list[str] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if prefix in ignore:
            return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(a, key=str):
                walk(a[key], b.get(key), f"{prefix}.{key}" if prefix else str(key))
        elif a != b:
            out.append(f"{prefix}: {a!r} in the checkpoint, {b!r} here")

    walk(saved, current, "")
    return out
