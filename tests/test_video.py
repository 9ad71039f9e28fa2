"""Videos: panels from one start state, the files they make, videos while training, and the grasp workflow
adapt -> save -> render through the command line with objects given as files."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import metarl.video
import metarl.video_log
from metarl.checkpoint import load_checkpoint
from metarl.cli import main
from metarl.envs.registry import family_names, family_spec, make_family
from metarl.policies import GaussianMLPPolicy
from metarl.video import HEADER, Panel, render_adaptation, render_panels
from metarl.video_log import TAG

ROOT = Path(__file__).resolve().parents[1]
NAVIGATION = ROOT / "experiments" / "navigation.yaml"
GRASP = ROOT / "experiments" / "grasp_object.yaml"

# 4 iterations of 4 tasks x 4 rollouts on 20-step navigation, a video after every one
SMALL = [
    "outer.meta_batch_size=4",
    "inner.rollouts=4",
    "run.iterations=4",
    "run.eval_every=2",
    "run.eval_rollouts=2",
    "run.checkpoint_every=0",
    "family.num_test_tasks=2",
    "family.horizon=20",
    "policy.hidden_sizes=[16,16]",
    "sampler.torch_threads=1",
    "log.tensorboard=false",
    "log.plots=false",
    "log.video_every=1",
]


def train(config: Path, run_dir: Path, overrides: list[str]) -> int:
    args = [arg for text in overrides for arg in ("--set", text)]
    return main(["train", str(config), *args, "--run-dir", str(run_dir), "--quiet"])


def frames_of(path: Path) -> list[np.ndarray]:
    return [np.asarray(f) for f in imageio.mimread(path, memtest=False)]


def image_steps(tb_dir: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"images": 0})
    acc.Reload()
    return [e.step for e in acc.Images(TAG)] if TAG in acc.Tags()["images"] else []


# ---------------------------------------------------------------------------------------------- panels


@pytest.mark.render
def test_panels_start_from_one_state_and_differ_by_their_policy(tmp_path: Path) -> None:
    family = make_family("GraspObject", {"horizon": 6})
    policy = GaussianMLPPolicy(family.observation_space.shape[0], family.action_space.shape[0], (8,), init_std=0.5)
    a, b = (policy.init_params(torch.Generator().manual_seed(s)) for s in (0, 1))
    b = {k: v * 20 for k, v in b.items()}  # a policy that moves the hand a long way
    panels = [Panel("a", a), Panel("a again", a), Panel("b", b)]
    out = tmp_path / "grasp.mp4"
    recording = render_panels(family, policy, family.test_tasks()[0], panels, out, seed=5, size=64, gif=False)
    frames = frames_of(out)
    assert len(frames) == recording.frames == 7  # the start state and one frame per step
    assert frames[0].shape == (HEADER + 64, 3 * 64, 3) and recording.frame_size == (192, HEADER + 64)
    assert recording.paths == (out,) and recording.success is not None and len(recording.success) == 3

    def panel(frame: np.ndarray, i: int) -> np.ndarray:  # without the 2-pixel line between panels
        return frame[HEADER:, i * 64 + 2 : (i + 1) * 64 - 2].astype(int)

    start = recording.preview[: HEADER + 64]  # the first frame, as drawn (the preview is not compressed)
    assert np.array_equal(panel(start, 0), panel(start, 2))  # one start state whatever the policy
    last = frames[-1]  # decoded: the encoder's loss is a few levels per pixel
    same, other = np.abs(panel(last, 0) - panel(last, 1)).mean(), np.abs(panel(last, 0) - panel(last, 2)).mean()
    assert other > 2 * same  # another policy does something else; the same policy the same
    assert recording.returns[0] == recording.returns[1] != recording.returns[2]
    assert recording.preview.shape[1] == 192


@pytest.mark.render
def test_an_exploring_video_draws_the_same_noise_in_every_panel_and_differs_from_the_mean(tmp_path: Path) -> None:
    family = make_family("GraspObject", {"horizon": 6})
    policy = GaussianMLPPolicy(family.observation_space.shape[0], family.action_space.shape[0], (8,), init_std=0.5)
    a = policy.init_params(torch.Generator().manual_seed(0))
    panels = [Panel("a", a), Panel("a again", a)]
    task = family.test_tasks()[0]

    def returns(explore: bool, seed: int) -> tuple[float, ...]:
        out = tmp_path / f"{explore}-{seed}.mp4"
        return render_panels(family, policy, task, panels, out, seed=seed, size=32, gif=False, explore=explore).returns

    noisy = returns(True, 5)
    assert noisy[0] == noisy[1]  # one set of draws for every panel
    assert noisy == returns(True, 5)  # from the seed
    assert noisy != returns(True, 6) and noisy != returns(False, 5)  # other draws; the mean action


@pytest.mark.render
@pytest.mark.parametrize("name", family_names())
def test_every_family_renders_a_video(name: str, tmp_path: Path) -> None:
    options = family_spec(name).options_type.__dataclass_fields__
    family = make_family(name, {"horizon": 6} if "horizon" in options else {})
    policy = GaussianMLPPolicy(family.observation_space.shape[0], family.action_space.shape[0], (4,))
    params = policy.init_params(torch.Generator().manual_seed(0))
    out = tmp_path / f"{name}.mp4"
    recording = render_adaptation(family, policy, family.test_tasks()[0], [params], [0], out, seed=0, size=32)
    frames = frames_of(out)
    assert len(frames) == recording.frames and 1 < len(frames) <= family.horizon + 1
    assert frames[-1].shape == (HEADER + 32, 32, 3) and frames[-1][HEADER:].std() > 0
    assert (recording.success is None) == (not family.has_success)


def test_render_adaptation_refuses_a_step_it_was_not_given(tmp_path: Path) -> None:
    family = make_family("Navigation2D", {"horizon": 5})
    policy = GaussianMLPPolicy(2, 2, (4,))
    params = policy.init_params(torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"step 2 is not available; allowed: 0\.\.1"):
        render_adaptation(family, policy, family.test_tasks()[0], [params, params], [0, 2], tmp_path / "v.mp4", seed=0)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- while training


def test_training_writes_a_video_at_every_scheduled_iteration(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(NAVIGATION, run, [*SMALL, "log.tensorboard=true"]) == 0
    names = sorted(p.name for p in (run / "videos").iterdir())
    assert names == [f"iter_{i:04d}.{ext}" for i in range(1, 5) for ext in ("mp4", "png")]
    frames = frames_of(run / "videos" / "iter_0004.mp4")
    assert 1 < len(frames) <= 21 and frames[0].shape == (HEADER + 320, 2 * 320, 3)  # before | after
    assert image_steps(run / "tb") == [1, 2, 3, 4]


def test_videos_leave_training_alone_and_a_resumed_run_writes_the_same(tmp_path: Path) -> None:
    with_videos, without, resumed = tmp_path / "with", tmp_path / "without", tmp_path / "resumed"
    assert train(NAVIGATION, with_videos, SMALL) == 0
    assert train(NAVIGATION, without, [*SMALL, "log.video_every=0"]) == 0
    assert not (without / "videos").exists()
    assert train(NAVIGATION, resumed, [*SMALL, "run.iterations=2", "log.tensorboard=true"]) == 0
    for name in ("iter_0002.mp4", "iter_0002.png"):  # as if killed while writing the video of iteration 2
        (resumed / "videos" / name).unlink()
    (resumed / "videos" / ".iter_0002.tmp-99.mp4").write_bytes(b"half a video")
    assert main(["train", "--resume", str(resumed), "--set", "run.iterations=4", "--quiet"]) == 0
    assert not list((resumed / "videos").glob(".*"))
    final = {run: load_checkpoint(run / "checkpoints" / "final.pt") for run in (with_videos, without, resumed)}
    for key, value in final[with_videos].params.items():  # rendering draws nothing from training's streams
        assert torch.equal(value, final[without].params[key]) and torch.equal(value, final[resumed].params[key])
    assert (with_videos / "progress.csv").read_text().count("\n") == (without / "progress.csv").read_text().count("\n")
    for i in range(1, 5):  # the same sequence of videos, after the resume as before it
        name = f"iter_{i:04d}.png"
        assert (with_videos / "videos" / name).read_bytes() == (resumed / "videos" / name).read_bytes(), name
    assert image_steps(resumed / "tb") == [1, 2, 3, 4]  # the strips before the resume are back in TensorBoard


def test_a_render_failure_is_reported_once_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = 0

    def no_gl(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot initialize EGL:\n no display")

    monkeypatch.setattr(metarl.video_log, "render_adaptation", no_gl)
    assert train(NAVIGATION, tmp_path / "run", SMALL) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "final.pt").iteration == 4
    err = capsys.readouterr().err
    assert err.count("no evaluation video") == 1 and "cannot initialize EGL: no display" in err
    assert calls == 1  # not tried again: a failure does not slow the run down on every iteration
    assert not (tmp_path / "run" / "videos").exists() or not list((tmp_path / "run" / "videos").iterdir())


def test_a_full_disk_while_encoding_leaves_no_file_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(self: object, frame: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(metarl.video._VideoFiles, "append", disk_full)
    assert train(NAVIGATION, tmp_path / "run", SMALL) == 0
    assert "No space left on device" in capsys.readouterr().err
    assert list((tmp_path / "run" / "videos").iterdir()) == []  # no half-written or temporary file


# ---------------------------------------------------------------------------------------------- grasping


@pytest.fixture(scope="module")
def grasp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny grasp iterations with a video after each."""
    run = tmp_path_factory.mktemp("grasp") / "run"
    overrides = [
        "run.iterations=2",
        "run.eval_every=1",
        "run.eval_steps=1",
        "run.eval_rollouts=2",
        "outer.meta_batch_size=2",
        "inner.rollouts=2",
        "family.horizon=8",
        "policy.hidden_sizes=[16]",
        "sampler.num_threads=1",
        "sampler.torch_threads=1",
        "log.tensorboard=false",
        "log.plots=false",
        "log.video_every=1",
    ]
    threads = torch.get_num_threads()
    assert train(GRASP, run, overrides) == 0
    torch.set_num_threads(threads)
    return run


@pytest.mark.render
def test_grasp_training_writes_videos(grasp_run: Path) -> None:
    names = sorted(p.name for p in (grasp_run / "videos").iterdir())
    assert names == ["iter_0001.mp4", "iter_0001.png", "iter_0002.mp4", "iter_0002.png"]
    frames = frames_of(grasp_run / "videos" / "iter_0002.mp4")
    assert len(frames) == 9 and frames[0].shape == (HEADER + 320, 640, 3)


def _write_bar_obj(path: Path) -> None:
    """A 16 x 4 x 3 cm bar in metres, with faces."""
    corners = [(x, y, z) for x in (-0.08, 0.08) for y in (-0.02, 0.02) for z in (0.0, 0.03)]
    faces = ["1 2 4 3", "5 7 8 6", "1 5 6 2", "3 4 8 7", "1 3 7 5", "2 6 8 4"]
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in corners) + "".join(f"f {f}\n" for f in faces))


def _write_bar_stl(path: Path) -> None:
    """A binary STL of a 14 x 4 x 4 cm bar in metres."""
    corners = np.array([[x, y, z] for x in (0, 0.14) for y in (0, 0.04) for z in (0, 0.04)])
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1)]
    faces += [(2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *corners[list(f)].ravel(), 0) for f in faces)
    path.write_bytes(b"\0" * 80 + struct.pack("<I", len(faces)) + body)


@pytest.mark.render
def test_objects_from_files_adapt_save_and_render_through_the_cli(
    grasp_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(grasp_run / "checkpoints" / "final.pt")
    obj = tmp_path / "bar.obj"
    _write_bar_obj(obj)
    saved = tmp_path / "adapted.pt"
    assert main(["adapt", ckpt, "--object", str(obj), "--steps", "1", "--rollouts", "2", "--save", str(saved)]) == 0
    assert "GraspObject: 1 tasks" in capsys.readouterr().out
    record = load_checkpoint(saved).adaptation
    assert record is not None and record.task["shape"] == "mesh" and record.task["path"] == str(obj)

    shapes = tmp_path / "shapes"
    shapes.mkdir()
    _write_bar_stl(shapes / "bar.stl")
    (shapes / "bar.yaml").write_text("shape: mesh\npath: bar.stl\nscale: 1.0\nmass: 0.2\n")
    monkeypatch.chdir(tmp_path)  # the mesh path is taken beside the YAML file, not in the working directory
    assert main(["adapt", ckpt, "--object", "shapes/bar.yaml", "--steps", "0", "--rollouts", "1", "--json"]) == 0
    capsys.readouterr()

    monkeypatch.setattr(metarl.video, "collect_adaptation", None)  # rendering an adapted checkpoint adapts no more
    out = tmp_path / "adapted.mp4"
    assert main(["render", str(saved), "--size", "64", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "before adaptation: return" in printed and "after 1 step: return" in printed and "success" in printed
    frames = frames_of(out)
    assert len(frames) == 9 and frames[0].shape == (HEADER + 64, 128, 3)
    assert out.with_suffix(".gif").is_file()

    assert main(["render", ckpt, "--object", "bar.stl", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "mesh file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
