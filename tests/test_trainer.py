"""The meta-training loop end to end: run directory, determinism, kill -9 and resume, signals, full disk.

Runs are tiny (2-D navigation, 4 tasks × 4 rollouts, one torch thread) so the whole file takes
seconds; the subprocess tests start ``python -m metarl`` exactly as a user would.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
import torch

import metarl.checkpoint
from metarl.checkpoint import load_checkpoint
from metarl.cli import main
from metarl.config import ConfigError, load_config
from metarl.envs.registry import family_names, family_spec, make_family
from metarl.logger import columns_without_timing
from metarl.trainer import Trainer, TrainingError

NAVIGATION = Path(__file__).resolve().parents[1] / "experiments" / "navigation.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# 4 tasks x 4 rollouts, 8 iterations, evaluations on 4 held-out goals; one torch thread keeps
# the runs fast on a loaded machine and the numbers independent of the core count.
SMALL = [
    "outer.meta_batch_size=4",
    "inner.rollouts=4",
    "run.iterations=8",
    "run.eval_every=4",
    "run.eval_steps=1",
    "run.eval_rollouts=2",
    "run.checkpoint_every=4",
    "family.num_test_tasks=4",
    "family.horizon=40",
    "policy.hidden_sizes=[32,32]",
    "sampler.torch_threads=1",
    "log.tensorboard=false",
]


def sets(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for text in overrides for arg in ("--set", text)]


def train(run_dir: Path, overrides: list[str], *extra: str) -> int:
    """``metarl train experiments/navigation.yaml`` in this process."""
    return main(["train", str(NAVIGATION), *sets(overrides), "--run-dir", str(run_dir), "--quiet", *extra])


def progress_cells(run_dir: Path) -> list[dict[str, str]]:
    """The non-timing cells of ``progress.csv``, as written."""
    with open(run_dir / "progress.csv", newline="") as fh:
        return [{k: row[k] for k in columns_without_timing()} for row in csv.DictReader(fh)]


def assert_same_params(a: Path, b: Path) -> None:
    pa, pb = load_checkpoint(a).params, load_checkpoint(b).params
    assert pa.keys() == pb.keys()
    for key in pa:
        assert torch.equal(pa[key], pb[key]), f"{key} differs"


def rows_written(run_dir: Path) -> int:
    try:
        return max(0, len((run_dir / "progress.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def metarl_subprocess(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m metarl ARGS`` in a new session (so its whole process group can be checked)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "metarl", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_rows(proc: subprocess.Popen[str], run_dir: Path, rows: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while rows_written(run_dir) < rows:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {rows} rows: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {rows} rows in progress.csv after {timeout} s")
        time.sleep(0.02)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted :data:`SMALL` run, with TensorBoard events."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    threads = torch.get_num_threads()
    assert train(run_dir, [*SMALL, "log.tensorboard=true"]) == 0
    torch.set_num_threads(threads)
    return run_dir


# ---------------------------------------------------------------------------------------------- run directory


def test_run_directory_holds_config_progress_events_plots_and_checkpoints(reference_run: Path) -> None:
    run = reference_run
    config = load_config(run / "config.yaml")
    assert config == load_config(NAVIGATION, [*SMALL, "log.tensorboard=true"])  # the resolved config, reloadable as is

    with open(run / "progress.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 9))
    evaluated = [int(r["iteration"]) for r in rows if r["test/post_return"] != ""]
    assert evaluated == [4, 8]
    assert [int(r["iteration"]) for r in rows if r["valid/post_return"] != ""] == [4, 8]
    for row in rows:
        for key in ("adapt/pre_return", "adapt/post_return", "trpo/kl", "time/iteration_s"):
            assert np.isfinite(float(row[key])), (key, row)
        assert row["adapt/success"] == ""  # navigation has no success criterion

    for name in ("learning_curve.png", "adaptation.png"):
        data = (run / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert not list((run / "plots").glob(".*"))  # no temporary files left

    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "best.pt",
        "final.pt",
        "iter_000004.pt",
        "iter_000008.pt",
        "latest.pt",
    ]
    assert load_checkpoint(ckpts / "latest.pt").iteration == 8
    assert load_checkpoint(ckpts / "iter_000004.pt").iteration == 4
    best = load_checkpoint(ckpts / "best.pt")  # chosen on the validation tasks, never on the test tasks
    valid = {int(r["iteration"]): float(r["valid/post_return"]) for r in rows if r["valid/post_return"] != ""}
    test = {int(r["iteration"]): float(r["test/post_return"]) for r in rows if r["test/post_return"] != ""}
    assert best.iteration == max(valid, key=lambda it: valid[it])
    assert best.best_validation == max(valid.values())
    assert valid != test  # two task sets, two evaluations
    assert_same_params(ckpts / "final.pt", ckpts / "latest.pt")


def scalar_tags(tb_dir: Path) -> dict[str, list[int]]:
    """The scalar tags of a TensorBoard log and the steps logged under each."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_use_namespaced_keys(reference_run: Path) -> None:
    steps = scalar_tags(reference_run / "tb")
    tags = set(steps)
    expected = {
        "adapt/pre_return",
        "adapt/post_return",
        "trpo/kl",
        "trpo/surrogate_improvement",
        "trpo/line_search_steps",
        "trpo/rejected",
        "sampler/steps_per_s",
        "time/iteration_s",
        "physics/unstable_episodes",
        "valid/post_return",
        "test/post_return",
    }
    assert expected <= tags
    assert "adapt/success" not in tags  # navigation defines no success
    assert steps["adapt/post_return"] == list(range(1, 9))
    assert steps["test/post_return"] == steps["valid/post_return"] == [4, 8]


def test_same_seed_gives_the_same_numbers(reference_run: Path, tmp_path: Path) -> None:
    assert train(tmp_path / "again", SMALL) == 0
    assert progress_cells(tmp_path / "again") == progress_cells(reference_run)
    assert_same_params(tmp_path / "again" / "checkpoints" / "final.pt", reference_run / "checkpoints" / "final.pt")


def test_evaluate_json_has_the_documented_shape(
    reference_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ckpt = str(reference_run / "checkpoints" / "final.pt")
    capsys.readouterr()
    assert main(["evaluate", ckpt, "--tasks", "3", "--steps", "2", "--rollouts", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"family", "tasks", "steps", "per_task"}
    assert report["family"] == "Navigation2D"
    assert len(report["tasks"]) == 3 and all(isinstance(t, str) for t in report["tasks"])
    assert [s["step"] for s in report["steps"]] == [0, 1, 2]
    for step in report["steps"]:
        assert set(step) == {"step", "return_mean", "return_std", "success_rate", "seconds", "env_steps"}
        assert np.isfinite(step["return_mean"]) and step["return_std"] >= 0 and step["seconds"] >= 0
        assert 0 < step["env_steps"] <= 3 * 2 * 40  # counted: an episode that reaches its goal ends early
        assert step["success_rate"] is None  # no success criterion in navigation
    assert len(report["per_task"]) == 3
    for entry, task in zip(report["per_task"], report["tasks"], strict=True):
        assert entry["task"] == task
        assert len(entry["returns"]) == 3 and len(entry["success_rates"]) == 3
    means = [np.mean([e["returns"][k] for e in report["per_task"]]) for k in range(3)]
    assert means == pytest.approx([s["return_mean"] for s in report["steps"]], rel=1e-5)

    assert main(["evaluate", ckpt, "--tasks", "train", "--steps", "0", "--rollouts", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["tasks"]) == 4 and [s["step"] for s in report["steps"]] == [0]  # one meta-batch


# ---------------------------------------------------------------------------------------------- crash and resume


def test_kill_9_then_resume_ends_bit_identical(reference_run: Path, tmp_path: Path) -> None:
    seq = np.random.SeedSequence()
    kill_after = int(np.random.default_rng(seq).integers(1, 7))  # rows seen before SIGKILL: 1..6 of 8
    run_dir = tmp_path / "run"
    overrides = [*SMALL, "log.tensorboard=true"]
    proc = metarl_subprocess(
        ["train", str(NAVIGATION), *sets(overrides), "--run-dir", str(run_dir), "--quiet"], tmp_path
    )
    wait_for_rows(proc, run_dir, kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = load_checkpoint(run_dir / "checkpoints" / "latest.pt").iteration
    assert done < 8, f"the run finished before it was killed (entropy {seq.entropy})"

    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    final = run_dir / "checkpoints" / "final.pt"
    assert load_checkpoint(final).iteration == 8
    assert_same_params(final, reference_run / "checkpoints" / "final.pt")
    assert progress_cells(run_dir) == progress_cells(reference_run), f"killed after {done} (entropy {seq.entropy})"
    ref_rng = load_checkpoint(reference_run / "checkpoints" / "final.pt").rng
    rng = load_checkpoint(final).rng
    assert rng["task"] == ref_rng["task"] and rng["env"] == ref_rng["env"]
    assert torch.equal(rng["torch"], ref_rng["torch"])
    steps = scalar_tags(run_dir / "tb")  # the iterations logged twice appear once
    assert steps["adapt/post_return"] == list(range(1, 9))
    assert steps["test/post_return"] == steps["valid/post_return"] == [4, 8]


def test_resume_extends_a_finished_run(reference_run: Path, tmp_path: Path) -> None:
    """A 4-iteration run extended to 8 on resume equals the 8-iteration run."""
    run_dir = tmp_path / "run"
    assert train(run_dir, [*SMALL, "run.iterations=4"]) == 0
    assert main(["train", "--resume", str(run_dir), "--set", "run.iterations=8", "--quiet"]) == 0
    assert_same_params(run_dir / "checkpoints" / "final.pt", reference_run / "checkpoints" / "final.pt")
    assert progress_cells(run_dir) == progress_cells(reference_run)
    assert load_config(run_dir / "config.yaml").run.iterations == 8


def test_a_warm_start_begins_at_the_checkpoint_and_a_foreign_one_is_refused(
    reference_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``policy.init_from``: a new run (here with two inner steps) starts from a trained checkpoint."""
    source = reference_run / "checkpoints" / "iter_000004.pt"
    run_dir = tmp_path / "warm"
    assert train(run_dir, [*SMALL, "run.iterations=2", "inner.steps=2", f"policy.init_from={source}"]) == 0
    config = load_config(run_dir / "config.yaml")
    assert config.policy.init_from == str(source)  # recorded with the run
    start = Trainer(tmp_path / "unused", config, None, quiet=True)  # the parameters before iteration 1
    start.exp.sampler.close()
    origin = load_checkpoint(source).params
    assert all(torch.equal(start.params[k], origin[k]) for k in origin)
    trained = load_checkpoint(run_dir / "checkpoints" / "final.pt").params
    assert any(not torch.equal(trained[k], origin[k]) for k in origin)  # it trained on from there
    # The same run from a random start differs from the first iteration on.
    cold = tmp_path / "cold"
    assert train(cold, [*SMALL, "run.iterations=2", "inner.steps=2"]) == 0
    assert progress_cells(cold)[0]["adapt/pre_return"] != progress_cells(run_dir)[0]["adapt/pre_return"]
    capsys.readouterr()
    # Another architecture: one line, exit 2, no run directory.
    bad = tmp_path / "bad"
    assert train(bad, [*SMALL, "policy.hidden_sizes=[16]", f"policy.init_from={source}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(source) in err
    assert not bad.exists()
    assert train(bad, [*SMALL, f"policy.init_from={tmp_path / 'nothing.pt'}"]) == 2
    assert "does not exist" in capsys.readouterr().err and not bad.exists()


def test_a_run_from_before_validation_sets_resumes(reference_run: Path, tmp_path: Path) -> None:
    """Old checkpoints (best.pt chosen on the test tasks, ``best_eval``) and ``eval/*`` columns still resume:
    the old test numbers move to ``test/*`` and the next evaluation chooses best.pt on the validation tasks."""
    run_dir = tmp_path / "old"
    assert train(run_dir, [*SMALL, "run.iterations=4"]) == 0
    latest = run_dir / "checkpoints" / "latest.pt"
    payload = torch.load(latest, weights_only=True)
    payload["best_eval"] = payload.pop("best_validation") + 1e6  # a test return no validation return beats
    torch.save(payload, latest)
    text = (run_dir / "progress.csv").read_text()
    old_header = text.splitlines()[0].replace("test/", "eval/")
    old_header = ",".join(c for c in old_header.split(",") if not c.startswith("valid/"))
    with open(run_dir / "progress.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(run_dir / "progress.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old_header.split(","))
        writer.writeheader()
        writer.writerows(
            [{k.replace("test/", "eval/"): v for k, v in r.items() if not k.startswith("valid/")} for r in rows]
        )
    assert load_checkpoint(latest).best_validation == -math.inf
    assert main(["train", "--resume", str(run_dir), "--set", "run.iterations=8", "--quiet"]) == 0
    resumed = progress_cells(run_dir)
    reference = progress_cells(reference_run)
    assert [r["test/post_return"] for r in resumed] == [r["test/post_return"] for r in reference]
    assert resumed[3]["valid/post_return"] == "" and resumed[7]["valid/post_return"] != ""
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt").iteration == 8


def test_resume_refuses_other_changes(reference_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(reference_run), "--set", "inner.fast_lr=0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "only run.iterations may change" in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_checkpoints_and_exits_cleanly(signum: int, code: int, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = [*SMALL, "run.iterations=1000"]
    proc = metarl_subprocess(["train", str(NAVIGATION), *sets(overrides), "--run-dir", str(run_dir)], tmp_path)
    wait_for_rows(proc, run_dir, 5)  # past the evaluation at iteration 4, whose figures the CLI prints
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert f"resume with: metarl train --resume {run_dir}" in out
    assert "final.pt" not in out  # a stopped run has no final checkpoint to point at
    assert group_is_gone(proc.pid), "a worker of the run outlived it"
    latest = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert latest.iteration == rows_written(run_dir) >= 1  # the iteration in flight was finished and saved
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("where", ["_iteration", "_evaluate"])
def test_second_signal_abandons_the_iteration(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two SIGINTs during iteration 4 (in the update or in the evaluation): back to iteration 3's state."""
    config = load_config(NAVIGATION, [*SMALL, "run.eval_every=2", "run.checkpoint_every=0"])
    trainer = Trainer.create(config, tmp_path / "run", quiet=True)
    real = getattr(trainer, where)

    def interrupted_twice() -> object:
        if trainer.iteration == (3 if where == "_iteration" else 4):  # the iteration counter moves before eval
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real()

    monkeypatch.setattr(trainer, where, interrupted_twice)
    before = signal.getsignal(signal.SIGINT)
    summary = trainer.train()
    assert (summary.exit_code, summary.iteration) == (130, 3)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt").iteration == 3
    assert rows_written(tmp_path / "run") == 3
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


# ---------------------------------------------------------------------------------------------- full disk


def test_disk_full_during_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    writes = 0
    real_write = metarl.checkpoint._write

    def fill_up(fh: object, data: memoryview) -> None:
        nonlocal writes
        writes += 1
        if writes >= 3:  # the start, iteration 1, then the disk is full in iteration 2
            real_write(fh, data[: len(data) // 2])  # type: ignore[arg-type]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fh, data)  # type: ignore[arg-type]

    monkeypatch.setattr(metarl.checkpoint, "_write", fill_up)
    code = train(run_dir, [*SMALL, "run.iterations=3", "run.eval_every=0", "run.checkpoint_every=0"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "No space left on device" in err and "previous checkpoint is kept" in err
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").iteration == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["latest.pt"]  # no temporary file left


def test_disk_full_during_plot_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_space(self: matplotlib.figure.Figure, fname: object, **kwargs: object) -> None:
        Path(str(fname)).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", no_space)
    run_dir = tmp_path / "run"
    code = train(run_dir, [*SMALL, "run.iterations=3", "run.eval_every=2", "run.checkpoint_every=0"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "No space left on device" in err
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").iteration == 2  # saved before the plot
    assert not list((run_dir / "plots").iterdir())  # no partial PNG
    assert rows_written(run_dir) == 2


def test_disk_full_surfaces_as_training_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer.create(load_config(NAVIGATION, [*SMALL, "run.eval_every=0"]), tmp_path / "run", quiet=True)

    def no_space(fh: object, data: memoryview) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(metarl.checkpoint, "_write", no_space)
    with pytest.raises(TrainingError, match="No space left on device"):
        trainer.train()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt").iteration == 0


# ---------------------------------------------------------------------------------------------- every family


def family_overrides(name: str) -> list[str]:
    """Two iterations of 2 tasks × 2 rollouts, short episodes, a small held-out set."""
    options = {f for f in family_spec(name).options_type.__dataclass_fields__}
    out = [
        "outer.meta_batch_size=2",
        "inner.rollouts=2",
        "run.iterations=2",
        "run.eval_every=1",
        "run.eval_steps=1",
        "run.eval_rollouts=1",
        "run.checkpoint_every=2",
        "policy.hidden_sizes=[16]",
        "sampler.torch_threads=1",
    ]
    if "horizon" in options:
        out.append("family.horizon=10")
    if "num_test_tasks" in options:
        out.append("family.num_test_tasks=2")
    return out


@pytest.mark.parametrize("name", family_names())
def test_two_iteration_smoke_run_of_every_family(name: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tmp_path / "family.yaml"  # the navigation YAML's family keys would not fit another family
    config.write_text(f"family:\n  name: {name}\n")
    code = main(["train", str(config), *sets(family_overrides(name)), "--run-dir", str(run_dir), "--quiet"])
    assert code == 0
    assert load_config(run_dir / "config.yaml").family.name == name
    assert rows_written(run_dir) == 2
    with open(run_dir / "progress.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["test/post_return"] != "" and r["valid/post_return"] != "" for r in rows)
    has_success = make_family(name).has_success
    assert all((r["adapt/success"] != "") == has_success for r in rows)
    assert all((r["test/post_success"] != "") == has_success for r in rows)
    assert all((r["valid/post_success"] != "") == has_success for r in rows)
    tags = set(scalar_tags(run_dir / "tb"))
    assert {"adapt/post_return", "trpo/kl", "time/iteration_s", "physics/unstable_episodes"} <= tags
    assert ("adapt/success" in tags) == has_success
    for plot in ("learning_curve.png", "adaptation.png"):
        assert (run_dir / "plots" / plot).read_bytes().startswith(PNG_MAGIC)
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert {"latest.pt", "final.pt", "best.pt", "iter_000002.pt"} == set(names)
    assert load_checkpoint(run_dir / "checkpoints" / "final.pt").iteration == 2


def test_an_existing_run_is_not_clobbered(tmp_path: Path) -> None:
    """An existing run directory is not overwritten without --overwrite."""
    run_dir = tmp_path / "run"
    (run_dir).mkdir()
    (run_dir / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer.create(load_config(NAVIGATION, SMALL), run_dir)
    assert (run_dir / "keep.txt").read_text() == "mine"


def test_resume_continues_the_environment_streams(tmp_path: Path) -> None:
    """Locomotion resets draw from ``rng.spawn``, whose counter lives in the seed sequence."""
    config = tmp_path / "family.yaml"
    config.write_text("family:\n  name: HalfCheetahVel\n")
    base = [*family_overrides("HalfCheetahVel"), "run.iterations=3", "run.eval_every=0", "run.checkpoint_every=0"]
    args = [str(config), *sets(base), "--quiet"]
    assert main(["train", *args, "--run-dir", str(tmp_path / "whole")]) == 0
    assert main(["train", *args, "--set", "run.iterations=1", "--run-dir", str(tmp_path / "parts")]) == 0
    assert main(["train", "--resume", str(tmp_path / "parts"), "--set", "run.iterations=3", "--quiet"]) == 0
    assert_same_params(tmp_path / "whole" / "checkpoints" / "final.pt", tmp_path / "parts" / "checkpoints" / "final.pt")
    # the 1-iteration run evaluated at its end, the whole run did not: compare the training columns
    evaluation = ("valid/", "test/")
    strip = [
        {k: v for k, v in row.items() if not k.startswith(evaluation)} for row in progress_cells(tmp_path / "whole")
    ]
    assert strip == [
        {k: v for k, v in row.items() if not k.startswith(evaluation)} for row in progress_cells(tmp_path / "parts")
    ]


def test_a_warm_start_zeroes_the_weights_its_policy_keeps_at_zero(tmp_path: Path) -> None:
    """A checkpoint whose network reads its latent, warm-starting a policy that must not read it and
    whose first action is open-loop and centred: those weights, that action's bias and the latent's
    prior mean start (and stay) 0, the others are the checkpoint's."""
    latent = ["policy.latent_dim=1", "policy.latent_action=true", "policy.fixed_latent_std=true"]
    source_run = tmp_path / "source"
    assert train(source_run, [*SMALL, "run.iterations=1", *latent]) == 0
    source = source_run / "checkpoints" / "final.pt"
    origin = load_checkpoint(source).params
    assert (origin["layers.0.weight"][:, -1] != 0).all() and (origin["layers.2.weight"][0] != 0).all()
    assert origin["layers.2.bias"][0] != 0 and origin["latent_mean"][0] != 0
    masked = [*latent, "policy.latent_input=false", "policy.latent_open_loop=true", "policy.latent_centred=true"]
    masked.append(f"policy.init_from={source}")
    run_dir = tmp_path / "warm"
    assert train(run_dir, [*SMALL, "run.iterations=1", *masked]) == 0
    start = Trainer(tmp_path / "unused", load_config(run_dir / "config.yaml"), None, quiet=True)
    start.exp.sampler.close()
    assert (start.params["layers.0.weight"][:, -1] == 0).all() and (start.params["layers.2.weight"][0] == 0).all()
    assert torch.equal(start.params["layers.0.weight"][:, :-1], origin["layers.0.weight"][:, :-1])
    assert torch.equal(start.params["layers.2.weight"][1], origin["layers.2.weight"][1])
    assert start.params["layers.2.bias"][0] == 0 and start.params["latent_mean"][0] == 0
    assert start.params["layers.2.bias"][1] == origin["layers.2.bias"][1]
    final = load_checkpoint(run_dir / "checkpoints" / "final.pt").params
    assert (final["layers.0.weight"][:, -1] == 0).all() and (final["layers.2.weight"][0] == 0).all()
    assert final["layers.2.bias"][0] == 0 and final["latent_mean"][0] == 0
