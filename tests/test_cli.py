"""The command line, end to end on 2-D navigation (seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metarl.checkpoint import load_checkpoint
from metarl.cli import main
from metarl.video import HEADER

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "--set",
    "run.iterations=2",
    "--set",
    "run.eval_every=1",
    "--set",
    "run.eval_rollouts=2",
    "--set",
    "outer.meta_batch_size=3",
    "--set",
    "inner.rollouts=3",
    "--set",
    "family.horizon=20",
    "--set",
    "log.tensorboard=false",
    "--quiet",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", str(ROOT / "experiments" / "navigation.yaml"), "--run-dir", str(run_dir), *SMALL]) == 0
    return run_dir


@pytest.mark.parametrize("command", ["train", "evaluate", "adapt", "render", "bench", "families", "gap", "baseline"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: metarl" in capsys.readouterr().out


def test_python_dash_m_lists_the_families() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-m", "metarl", "families"], capture_output=True, text=True, check=True, env=env, cwd=ROOT
    ).stdout
    assert "Navigation2D  (metarl/Navigation2D-v0, horizon 100" in out
    assert "task goal: x, y each uniform in [-0.5, 0.5] m" in out


def test_train_writes_the_run_directory(trained: Path) -> None:
    for name in ("config.yaml", "progress.csv", "plots/learning_curve.png", "plots/adaptation.png"):
        assert (trained / name).is_file(), name
    for name in ("latest.pt", "final.pt", "best.pt"):
        assert (trained / "checkpoints" / name).is_file(), name
    rows = (trained / "progress.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("iteration,adapt/pre_return,adapt/post_return")


def test_existing_run_dir_is_not_clobbered(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (trained / "progress.csv").read_bytes()
    code = main(["train", str(ROOT / "experiments" / "navigation.yaml"), "--run-dir", str(trained), *SMALL])
    assert code == 2 and "already holds a run" in capsys.readouterr().err
    assert (trained / "progress.csv").read_bytes() == before


def test_evaluate_json(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = trained / "checkpoints" / "final.pt"
    assert main(["evaluate", str(ckpt), "--tasks", "2", "--steps", "2", "--rollouts", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "Navigation2D" and len(report["tasks"]) == 2
    assert [s["step"] for s in report["steps"]] == [0, 1, 2]
    assert set(report["steps"][0]) == {"step", "return_mean", "return_std", "success_rate", "seconds", "env_steps"}
    assert all(0 < s["env_steps"] <= 2 * 2 * 20 for s in report["steps"])  # counted; a reached goal ends early
    assert report["steps"][0]["success_rate"] is None
    assert len(report["per_task"]) == 2 and len(report["per_task"][0]["returns"]) == 3


def test_adapt_to_a_new_task(trained: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ckpt = str(trained / "checkpoints" / "final.pt")
    assert main(["adapt", ckpt, "--task", "goal=0.2,-0.3", "--steps", "1", "--rollouts", "2"]) == 0
    out = capsys.readouterr().out
    assert "Navigation2D: 1 tasks" in out and "adaptation gain after 1 step(s)" in out
    task_file = tmp_path / "task.yaml"
    task_file.write_text("goal: [0.1, 0.4]\n")
    assert main(["adapt", ckpt, "--task", str(task_file), "--steps", "0", "--rollouts", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == ["goal=0.1,0.4"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "goal=0.2"], "goal=0.2 must be two numbers"),
        (["--task", "goal=99,0"], "goal.x=99 is out of range; allowed: [-10, 10]"),
        (["--task", "speed=1"], "unknown key 'speed'"),
        (["--task", "goal=0,0", "--steps", "-1"], "--steps=-1 is out of range"),
    ],
)
def test_adapt_bad_input_is_one_line_exit_2(
    trained: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["adapt", str(trained / "checkpoints" / "final.pt"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


def test_evaluate_with_another_inner_step_size(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--fast-lr`` replaces the run's step: 0 steps are unchanged, the adapted ones move with it."""
    ckpt = str(trained / "checkpoints" / "final.pt")
    args = ["evaluate", ckpt, "--tasks", "2", "--steps", "1", "--rollouts", "2", "--json"]
    curves = []
    for extra in ([], ["--fast-lr", "0.1"], ["--fast-lr", "0.5"]):
        assert main([*args, *extra]) == 0
        curves.append([s["return_mean"] for s in json.loads(capsys.readouterr().out)["steps"]])
    run_lr = load_checkpoint(trained / "checkpoints" / "final.pt").config_yaml
    assert "fast_lr: 0.1" in run_lr and curves[0] == curves[1]  # the run's own step, given or not
    assert curves[2][0] == curves[0][0] and curves[2][1] != curves[0][1]
    for bad in ("0", "-1", "nan"):
        assert main([*args, "--fast-lr", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert f"--fast-lr={float(bad)} is out of range" in err and "\n" not in err


def test_evaluate_overrides_the_checkpoints_config(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--set`` changes the stored config for this evaluation alone: ``inner.fast_lr`` gives what
    ``--fast-lr`` gives; a bad key or value, or one that changes the policy's shape, is one line and exit 2."""
    ckpt = str(trained / "checkpoints" / "final.pt")
    args = ["evaluate", ckpt, "--tasks", "2", "--steps", "1", "--rollouts", "2", "--json"]
    curves = []
    for extra in (["--fast-lr", "0.5"], ["--set", "inner.fast_lr=0.5"], []):
        assert main([*args, *extra]) == 0
        curves.append([s["return_mean"] for s in json.loads(capsys.readouterr().out)["steps"]])
    assert curves[0] == curves[1] and curves[1][1] != curves[2][1]
    assert "fast_lr: 0.1" in load_checkpoint(trained / "checkpoints" / "final.pt").config_yaml  # the file is unchanged
    for bad, message in (
        ("inner.nope=1", "nope"),
        ("inner.fast_lr=-1", "inner.fast_lr=-1"),
        ("policy.hidden_sizes=[4]", "does not match the policy architecture"),
    ):
        assert main([*args, "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def test_evaluate_bad_tasks_choice(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(trained / "checkpoints" / "final.pt"), "--tasks", "everything"]) == 2
    assert "--tasks='everything' is not allowed" in capsys.readouterr().err


def test_render_writes_one_panel_per_step_count(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import imageio.v2 as imageio

    out = tmp_path / "videos" / "nav.mp4"
    ckpt = str(trained / "checkpoints" / "final.pt")
    args = ["render", ckpt, "--task", "goal=0.3,0.2", "--steps", "0,1,3", "--rollouts", "2", "--size", "128"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for label in ("before adaptation: return", "after 1 step: return", "after 3 steps: return"):
        assert label in printed
    frames = imageio.mimread(out, memtest=False)
    assert len(frames) == 21  # the initial state and one frame per step of the 20-step horizon
    assert frames[0].shape == (HEADER + 128, 3 * 128, 3)
    last = frames[-1][HEADER:].astype(int)
    panels = [last[:, i * 128 : (i + 1) * 128] for i in range(3)]
    # the rollouts differ: at least 50 pixels (of 128², ~100-170 measured) where a trail is drawn in one panel only
    changed = [(np.abs(panels[i] - panels[j]).max(-1) > 40).sum() for i, j in ((0, 1), (0, 2), (1, 2))]
    assert min(changed) >= 50, changed
    gif = imageio.mimread(out.with_suffix(".gif"))
    assert gif[0].shape[1] <= 480
    assert sorted(p.name for p in out.parent.iterdir()) == ["nav.gif", "nav.mp4"]  # no temporary files left


def test_adapt_save_then_render_and_evaluate_it(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio.v2 as imageio

    import metarl.video
    from metarl.checkpoint import load_checkpoint

    ckpt = str(trained / "checkpoints" / "final.pt")
    saved = tmp_path / "adapted.pt"
    assert (
        main(["adapt", ckpt, "--task", "goal=0.2,-0.3", "--steps", "2", "--rollouts", "2", "--save", str(saved)]) == 0
    )
    assert f"wrote {saved}" in capsys.readouterr().out
    adapted = load_checkpoint(saved)
    assert adapted.adaptation is not None and adapted.adaptation.task == {"goal": [0.2, -0.3]}
    assert adapted.adaptation.steps == 2 and adapted.adaptation.source == ckpt
    for key, value in adapted.params.items():  # its policy is the last step's; the first step is the source's
        assert torch.equal(value, adapted.adaptation.step_params[-1][key])
        assert torch.equal(adapted.adaptation.step_params[0][key], load_checkpoint(ckpt).params[key])

    def no_adapting(*args: object, **kwargs: object) -> None:
        raise AssertionError("render adapted again")

    monkeypatch.setattr(metarl.video, "collect_adaptation", no_adapting)
    out = tmp_path / "adapted.mp4"
    assert main(["render", str(saved), "--size", "64", "--no-gif", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "goal=0.2,-0.3" in printed and "before adaptation" in printed and "after 2 steps" in printed
    assert imageio.mimread(out, memtest=False)[0].shape == (HEADER + 64, 128, 3)
    assert main(["render", str(saved), "--steps", "0,1,2", "--size", "64", "--no-gif", "--out", str(out)]) == 0
    capsys.readouterr()

    assert main(["render", str(saved), "--steps", "3", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "holds the policy after 0..2 steps, not 3" in capsys.readouterr().err
    assert main(["render", str(saved), "--task", "goal=0.1,0.1", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "is adapted to 'goal=0.2,-0.3'" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()

    assert main(["evaluate", str(saved), "--steps", "0", "--rollouts", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == ["goal=0.2,-0.3"]  # its own task by default


def test_adapt_save_refuses_a_path_that_is_not_a_checkpoint(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(trained / "checkpoints" / "final.pt")
    assert main(["adapt", ckpt, "--task", "goal=0,0", "--save", str(tmp_path / "adapted.txt")]) == 2
    assert "--save=" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "goal=7"], "goal=7 must be two numbers"),
        (["--out", "video.avi"], "--out='video.avi' must end in .mp4"),
        (["--steps", "99"], "--steps='99' is out of range"),
        (["--steps", "0,1,1"], "up to 6 different step counts"),
        (["--steps", "one"], "--steps='one' is not allowed"),
        (["--size", "100"], "--size=100 is not allowed"),
        (["--task", "missing.yaml"], "task file 'missing.yaml' does not exist"),
    ],
)
def test_render_bad_input_writes_nothing(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["render", str(trained / "checkpoints" / "final.pt"), "--rollouts", "1", *args])
    assert code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_resuming_a_finished_run_says_so(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(trained), "--quiet"]) == 0
    assert "already complete (2 iterations)" in capsys.readouterr().err


def test_families_marks_finite_task_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["families"]) == 0
    out = capsys.readouterr().out
    assert "HalfCheetahDir" in out and "test tasks: 2 (the whole task space; training sees them too)" in out
    assert "GraspObject" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--objects", "all"], "--objects='all'"),
        (["--objects", "train:0"], "--objects='train:0'"),
        (["--repeats", "0"], "--repeats=0"),
        (["--set", "run.seed=3"], "only family options"),
        (["--set", "family.grip_force=-1"], "family.grip_force"),
    ],
)
def test_gap_refuses_bad_input_in_one_line(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gap", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_gap_prints_the_table_per_class(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gap", "--objects", "train:2", "--repeats", "1", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "oracle" in out and "\nall " in out and "best fixed blind plan: pinch" in out
