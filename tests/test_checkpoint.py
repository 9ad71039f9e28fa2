"""Checkpoints: round trip of every field and RNG stream, atomic writes, and refusal of bad files."""

from __future__ import annotations

import errno
import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import metarl.checkpoint
from metarl.checkpoint import (
    FORMAT,
    AdaptationRecord,
    Checkpoint,
    CheckpointError,
    adapted_checkpoint,
    check_params,
    config_mismatches,
    generator_state,
    load_checkpoint,
    restore_generator,
    save_checkpoint,
    versions,
)
from metarl.cli import main
from metarl.config import Config, load_config
from metarl.envs.registry import make_family
from metarl.trainer import Trainer

NAVIGATION = Path(__file__).resolve().parents[1] / "experiments" / "navigation.yaml"
TINY = [
    "outer.meta_batch_size=2",
    "inner.rollouts=2",
    "run.iterations=1",
    "family.horizon=10",
    "family.num_test_tasks=2",
    "run.eval_rollouts=1",
    "policy.hidden_sizes=[8]",
    "sampler.torch_threads=1",
    "log.tensorboard=false",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A navigation run of one iteration (``checkpoints/final.pt``)."""
    threads = torch.get_num_threads()
    path = tmp_path_factory.mktemp("ckpt") / "run"
    Trainer.create(load_config(NAVIGATION, TINY), path, quiet=True).train()
    torch.set_num_threads(threads)
    return path


def sample_checkpoint(iteration: int = 3) -> Checkpoint:
    seq = np.random.SeedSequence(7)
    task_rng, env_rng = (np.random.default_rng(s) for s in seq.spawn(2))
    env_rng.spawn(5)  # advances the seed sequence, not the bit generator
    task_rng.normal(size=3)
    gen = torch.Generator().manual_seed(11)
    torch.randn(4, generator=gen)
    return Checkpoint(
        params={"w": torch.arange(6.0).view(2, 3), "b": torch.tensor([0.5, -1.0])},
        iteration=iteration,
        config_yaml=Config().to_yaml(),
        rng={"task": generator_state(task_rng), "env": generator_state(env_rng), "torch": gen.get_state()},
        best_validation=-12.5,
        versions=versions(),
    )


def evaluate_error(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Runs ``metarl evaluate PATH``; asserts exit 2 and one stderr line; returns that line."""
    capsys.readouterr()
    code = main(["evaluate", str(path), "--steps", "0", "--rollouts", "1", "--tasks", "1"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("metarl evaluate: error: ")
    assert captured.out == ""
    return lines[0]


# ---------------------------------------------------------------------------------------------- round trip


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    ckpt = sample_checkpoint()
    save_checkpoint(tmp_path / "a.pt", ckpt)
    back = load_checkpoint(tmp_path / "a.pt")
    assert back.params.keys() == ckpt.params.keys()
    assert all(torch.equal(back.params[k], ckpt.params[k]) for k in ckpt.params)
    assert (back.iteration, back.config_yaml, back.best_validation) == (3, ckpt.config_yaml, -12.5)
    assert back.versions == versions()
    assert set(back.versions) == {"metarl", "torch", "mujoco", "numpy"}
    assert all(type(v) is str for v in back.versions.values())  # torch's TorchVersion would not load
    assert back.rng["task"] == ckpt.rng["task"] and back.rng["env"] == ckpt.rng["env"]
    assert torch.equal(back.rng["torch"], ckpt.rng["torch"])
    # only tensors and plain data: the file loads with the weights-only unpickler as is
    assert torch.load(tmp_path / "a.pt", weights_only=True)["format"] == FORMAT


def test_a_checkpoint_from_before_validation_sets_loads(tmp_path: Path) -> None:
    """Older files hold ``best_eval`` (the best test return) and no ``best_validation``: they load,
    and the test-chosen value is not taken for a validation return."""
    save_checkpoint(tmp_path / "a.pt", sample_checkpoint())
    payload = torch.load(tmp_path / "a.pt", weights_only=True)
    payload["best_eval"] = payload.pop("best_validation")
    torch.save(payload, tmp_path / "old.pt")
    back = load_checkpoint(tmp_path / "old.pt")
    assert back.iteration == 3 and back.best_validation == float("-inf")
    assert all(torch.equal(back.params[k], v) for k, v in sample_checkpoint().params.items())


def test_restored_generators_continue_every_stream() -> None:
    rng = np.random.default_rng(np.random.SeedSequence(3).spawn(2)[1])
    rng.spawn(4)
    rng.uniform(size=5)
    copy = restore_generator(generator_state(rng))
    assert np.array_equal(copy.normal(size=8), rng.normal(size=8))
    for a, b in zip(copy.spawn(3), rng.spawn(3), strict=True):  # spawn continues the child count
        assert np.array_equal(a.integers(0, 2**62, size=4), b.integers(0, 2**62, size=4))

    gen = torch.Generator().manual_seed(5)
    torch.rand(3, generator=gen)
    back = torch.Generator()
    back.set_state(gen.get_state().clone())
    assert torch.equal(torch.rand(4, generator=back), torch.rand(4, generator=gen))


def test_the_run_checkpoint_holds_the_run(run_dir: Path) -> None:
    ckpt = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    assert ckpt.iteration == 1
    assert load_config(run_dir / "config.yaml") == load_config(NAVIGATION, TINY)
    assert yaml.safe_load(ckpt.config_yaml) == yaml.safe_load((run_dir / "config.yaml").read_text())
    assert set(ckpt.rng) == {"task", "env", "torch"}
    assert ckpt.rng["torch"].dtype == torch.uint8
    assert np.isfinite(ckpt.best_validation)


# ---------------------------------------------------------------------------------------------- atomic writes


def test_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint(path, sample_checkpoint(1))
    before = path.read_bytes()

    def half_then_full(fh: io.BufferedWriter, data: memoryview) -> None:
        fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(metarl.checkpoint, "_write", half_then_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint(path, sample_checkpoint(2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]
    assert load_checkpoint(path).iteration == 1


# ---------------------------------------------------------------------------------------------- bad files


def test_missing_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "does not exist" in evaluate_error(tmp_path / "nope.pt", capsys)
    assert "is a folder" in evaluate_error(tmp_path, capsys)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.95])
def test_truncated_file(keep: float, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (run_dir / "checkpoints" / "final.pt").read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: int(len(data) * keep)])
    assert "truncated or corrupt" in evaluate_error(bad, capsys)


def test_file_of_another_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "state_dict.pt"
    torch.save({"weight": torch.zeros(2)}, bad)
    assert "not a metarl checkpoint" in evaluate_error(bad, capsys)
    (tmp_path / "notes.pt").write_text("hello")
    assert "corrupt" in evaluate_error(tmp_path / "notes.pt", capsys)
    noise = np.random.default_rng(0)
    for i in range(5):
        (tmp_path / f"noise{i}.pt").write_bytes(noise.bytes(int(noise.integers(1, 5000))))
        assert "corrupt" in evaluate_error(tmp_path / f"noise{i}.pt", capsys)


def test_checkpoint_of_another_family_lists_the_mismatched_shapes(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Navigation parameters (obs 2, act 2) under a HalfCheetahVel config (obs 20, act 6)."""
    payload = torch.load(run_dir / "checkpoints" / "final.pt", weights_only=True)
    config = yaml.safe_load(payload["config_yaml"])
    config["family"] = {"name": "HalfCheetahVel"}
    payload["config_yaml"] = yaml.safe_dump(config)
    bad = tmp_path / "other.pt"
    torch.save(payload, bad)
    line = evaluate_error(bad, capsys)
    assert "does not match the policy architecture" in line
    shapes = {k: tuple(v.shape) for k, v in payload["params"].items()}
    first = next(k for k in shapes if len(shapes[k]) == 2)
    assert f"{first} {shapes[first]} != " in line  # names the key and both shapes
    obs_dim = make_family("HalfCheetahVel").observation_space.shape[0]
    assert f"!= (8, {obs_dim})" in line  # the first layer HalfCheetahVel needs


def test_check_params_lists_every_problem() -> None:
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(3), "c": torch.zeros(1)}
    got = {"a": torch.zeros(3, 2), "b": torch.zeros(3), "d": torch.zeros(1)}
    with pytest.raises(CheckpointError) as info:
        check_params(got, expected, what="the checkpoint")
    message = str(info.value)
    assert "\n" not in message
    assert "a (3, 2) != (2, 3)" in message and "missing c" in message and "unexpected d" in message


class _Plant:
    """Unpickling this would create a marker file: the payload a malicious checkpoint carries."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_inside_a_torch_file_is_never_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    payload = torch.load(run_dir / "checkpoints" / "final.pt", weights_only=True)
    payload["versions"] = {"metarl": _Plant(marker)}
    bad = tmp_path / "evil.pt"
    torch.save(payload, bad)
    line = evaluate_error(bad, capsys)
    assert "holds objects other than tensors and plain data (posix.system); refused, nothing in it was run" in line
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    assert not marker.exists()


def test_raw_pickle_file_is_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"format": FORMAT, "params": _Plant(marker)}))
    line = evaluate_error(bad, capsys)
    assert "nothing in it was run" in line
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- resume checks


def test_resume_refuses_a_checkpoint_of_another_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    payload = torch.load(other / "checkpoints" / "latest.pt", weights_only=True)
    config = yaml.safe_load(payload["config_yaml"])
    config["family"]["goal_range"] = 0.25
    config["policy"]["hidden_sizes"] = [16]
    payload["config_yaml"] = yaml.safe_dump(config)
    torch.save(payload, other / "checkpoints" / "latest.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(other), "--set", "run.iterations=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "family.goal_range: 0.25 in the checkpoint, 0.5 here" in err
    assert "policy.hidden_sizes: [16] in the checkpoint, [8] here" in err


def test_resume_of_a_folder_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_config_mismatches_ignores_what_may_change() -> None:
    a = {"run": {"iterations": 5, "seed": 1}, "family": {"name": "A", "old": 2}}
    b = {"run": {"iterations": 9, "seed": 1}, "family": {"name": "B", "new": 1}}  # "new": added since
    assert config_mismatches(a, b, ignore=("run.iterations",)) == [
        "family.name: 'A' in the checkpoint, 'B' here",
        "family.old: 2 in the checkpoint, None here",
    ]
    assert config_mismatches(a, a) == []


def test_resume_below_the_iterations_done(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--set", "run.iterations=0"]) == 2
    assert "run.iterations=0 is out of range" in capsys.readouterr().err
    done = load_checkpoint(run_dir / "checkpoints" / "latest.pt").iteration
    assert done == 1
    other = run_dir.parent / "short"
    shutil.copytree(run_dir, other)
    payload = torch.load(other / "checkpoints" / "latest.pt", weights_only=True)
    payload["iteration"] = 5
    torch.save(payload, other / "checkpoints" / "latest.pt")
    assert main(["train", "--resume", str(other), "--set", "run.iterations=3"]) == 2
    assert "run.iterations=3 is below the 5 iterations already done" in capsys.readouterr().err


def test_resume_warns_when_package_versions_changed(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "old"
    shutil.copytree(run_dir, other)
    payload = torch.load(other / "checkpoints" / "latest.pt", weights_only=True)
    payload["versions"]["mujoco"] = "0.0.1"
    torch.save(payload, other / "checkpoints" / "latest.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(other), "--quiet"]) == 0  # already complete: nothing to run
    Trainer.resume(other)
    err = capsys.readouterr().err
    assert f"mujoco 0.0.1 -> {versions()['mujoco']}" in err


# ---------------------------------------------------------------------------------------------- adapted checkpoints


def test_an_adapted_checkpoint_keeps_its_task_and_every_step(tmp_path: Path) -> None:
    source = sample_checkpoint()
    steps = tuple({k: v + i for k, v in source.params.items()} for i in range(3))
    record = AdaptationRecord({"goal": [0.1, -0.2]}, steps, "runs/x/final.pt", seed=4, rollouts=5)
    save_checkpoint(tmp_path / "adapted.pt", adapted_checkpoint(source, record))
    back = load_checkpoint(tmp_path / "adapted.pt")
    assert back.adaptation is not None and back.adaptation.steps == 2
    assert (back.adaptation.task, back.adaptation.source, back.adaptation.seed, back.adaptation.rollouts) == (
        {"goal": [0.1, -0.2]},
        "runs/x/final.pt",
        4,
        5,
    )
    for key in source.params:
        assert torch.equal(back.params[key], steps[-1][key])  # read as a policy: the adapted one
        assert all(torch.equal(a[key], b[key]) for a, b in zip(back.adaptation.step_params, steps, strict=True))
    assert back.config_yaml == source.config_yaml and back.iteration == source.iteration and back.rng == {}
    assert load_checkpoint(tmp_path / "adapted.pt").adaptation is not None
    save_checkpoint(tmp_path / "plain.pt", source)
    assert load_checkpoint(tmp_path / "plain.pt").adaptation is None


def test_a_malformed_adaptation_record_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = sample_checkpoint()
    record = AdaptationRecord({"goal": [0.1, -0.2]}, (source.params,), "src.pt", seed=0, rollouts=1)
    save_checkpoint(tmp_path / "adapted.pt", adapted_checkpoint(source, record))
    payload = torch.load(tmp_path / "adapted.pt", weights_only=True)
    payload["adaptation"]["task_json"] = "{not json"
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="missing or has a malformed field"):
        load_checkpoint(tmp_path / "bad.pt")
