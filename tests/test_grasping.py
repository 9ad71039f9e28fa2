"""The grasping family: solvable by a scripted controller, friction-only holds, visible objects,
object specs from strings, mappings, YAML and mesh files, and one-line errors for bad specs."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import metarl.envs  # noqa: F401  (registers metarl/GraspObject-v0)
from metarl.envs.base import Task, TaskError
from metarl.envs.grasping import GraspObject, GraspTask, ObjectSpec
from metarl.envs.grasping.family import TRAIN_SHAPES, GraspBatchEnv
from metarl.envs.grasping.objects import load_object

_STEP = 0.025  # the family's largest pinch-point move per control step (m)
_YAW_STEP = 0.25


@pytest.fixture(scope="module")
def family() -> GraspObject:
    return GraspObject()


def _objects(tasks: list[Task]) -> list[ObjectSpec]:
    """The object of each grasp task."""
    specs = []
    for task in tasks:
        assert isinstance(task, GraspTask)
        specs.append(task.object)
    return specs


def _scripted_action(obs: np.ndarray, specs: list[ObjectSpec], t: int, release_at: int | None) -> np.ndarray:
    """Open above the object, turn the jaws across its narrower side, descend, close, lift.

    Reads only the observation, plus the object's proportions to choose which side to pinch.
    """
    act = np.zeros((len(specs), 5))
    hand, yaw, rel = obs[:, 0:3], obs[:, 3], obs[:, 12:15]
    cos, sin = np.cos(yaw), np.sin(yaw)
    obj = hand + np.stack([cos * rel[:, 0] - sin * rel[:, 1], sin * rel[:, 0] + cos * rel[:, 1], rel[:, 2]], 1)
    for i, spec in enumerate(specs):
        half = spec.half_extents()
        across = obs[i, 18:21] if half[1] <= half[0] else obs[i, 15:18]  # object axis to squeeze along
        turn = (math.atan2(across[1], across[0]) % math.pi) - math.pi / 2  # jaws close along hand y
        if spec.shape in ("cylinder", "sphere"):
            turn = 0.0
        pinch_z = max(obj[i, 2], 0.022)
        target, grip = hand[i].copy(), -1.0
        if t < 25:  # above the object
            target[:2], target[2] = obj[i, :2], obj[i, 2] + half[2] + 0.05
        elif t < 45:  # down around it
            target[:2], target[2] = obj[i, :2], pinch_z
        elif t < 60:  # squeeze
            target[2], grip = pinch_z, 1.0
        else:  # lift
            target[2], grip = pinch_z + 0.12, 1.0
        if release_at is not None and t >= release_at:
            grip = -1.0
        act[i, :3] = np.clip((target - hand[i]) / _STEP, -1, 1)
        act[i, 3] = np.clip(turn / _YAW_STEP, -1, 1) if t < 45 else 0.0
        act[i, 4] = grip
    return act


def _run_scripted(
    family: GraspObject, specs: list[ObjectSpec], seed: int, steps: int = 100, release_at: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``[B]`` ever-succeeded, ``[B]`` final lift height (m) and ``[B]`` ever-unstable."""
    env = family.make_batch_env(len(specs), num_threads=2)
    env.set_tasks([GraspTask(s) for s in specs])
    obs = env.reset([np.random.default_rng([seed, i]) for i in range(len(specs))])
    success = np.zeros(len(specs), dtype=bool)
    unstable = np.zeros(len(specs), dtype=bool)
    for t in range(steps):
        result = env.step(_scripted_action(obs, specs, t, release_at))
        obs = result.obs
        assert result.success is not None
        success |= result.success
        unstable |= result.unstable
    height = env.lift_height()
    env.close()
    return success, height, unstable


def test_scripted_controller_lifts_every_training_shape(family: GraspObject) -> None:
    specs = _objects(family.sample_tasks(80, np.random.default_rng(2024)))
    success, _, unstable = _run_scripted(family, specs, seed=1)
    assert not unstable.any()
    shapes = np.array([s.shape for s in specs])
    for shape in TRAIN_SHAPES:
        mask = shapes == shape
        assert mask.sum() >= 10, f"too few {shape} tasks drawn"
        assert success[mask].mean() >= 0.9, f"{shape}: scripted success {success[mask].mean():.2f}"


def test_held_out_shapes_are_solvable(family: GraspObject) -> None:
    specs = _objects(family.test_tasks())
    success, _, _ = _run_scripted(family, specs, seed=3)
    assert success.mean() >= 0.8, [s.to_string() for s, ok in zip(specs, success, strict=True) if not ok]


def test_object_falls_when_the_fingers_open(family: GraspObject) -> None:
    specs = _objects(family.sample_tasks(12, np.random.default_rng(7)))
    held, height, _ = _run_scripted(family, specs, seed=5, steps=120, release_at=75)
    assert held.mean() >= 0.9  # it was lifted by friction before the release ...
    np.testing.assert_array_less(height, 0.01)  # ... and lies on the table after it


def test_no_success_without_closing(family: GraspObject) -> None:
    specs = _objects(family.sample_tasks(6, np.random.default_rng(8)))
    success, height, _ = _run_scripted(family, specs, seed=0, release_at=0)
    assert not success.any()
    np.testing.assert_array_less(height, 0.01)


def test_rendered_frames_show_the_object(family: GraspObject) -> None:
    frames = []
    for text in ("sphere radius=0.03", "box length=0.03 width=0.03 height=0.14"):
        env = family.make_env(family.parse_task(text), render_mode="rgb_array")
        env.reset(seed=0)
        frame = env.render()
        assert frame is not None and frame.dtype == np.uint8 and frame.shape == (360, 480, 3)
        frames.append(frame.astype(int))
        env.close()
    changed = np.abs(frames[0] - frames[1]).sum(axis=-1) > 30
    assert changed.sum() > 500, "the two objects look the same"


def test_batch_render_size(family: GraspObject) -> None:
    env = family.make_batch_env(2)
    env.set_tasks(family.sample_tasks(2, np.random.default_rng(0)))
    env.reset([np.random.default_rng(0), np.random.default_rng(1)])
    assert env.render(1, width=160, height=120).shape == (120, 160, 3)
    with pytest.raises(IndexError):
        env.render(2)
    env.close()


@pytest.mark.render
def test_renders_headless_without_mujoco_gl() -> None:
    code = (
        "import numpy as np, metarl.envs as envs\n"
        "family = envs.make_family('GraspObject')\n"
        "env = family.make_env(family.parse_task('sphere radius=0.03'), render_mode='rgb_array')\n"
        "env.reset(seed=0)\n"
        "frame = env.render()\n"
        "assert frame is not None and frame.shape == (360, 480, 3) and frame.std() > 0\n"
    )
    hidden = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
    environ = {k: v for k, v in os.environ.items() if k not in hidden}
    run = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_gym_make_runs_at_50_hz() -> None:
    env = gym.make("metarl/GraspObject-v0")
    assert env.metadata["render_fps"] == 50  # through the wrappers of gym.make
    env.close()


def test_gym_make_with_a_task_string() -> None:
    env = gym.make("metarl/GraspObject-v0", task="cylinder radius=0.03 height=0.12 mass=0.2 friction=1.0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (29,) and info["task"].object.shape == "cylinder"
    _, _, _, _, info = env.step(env.action_space.sample())
    assert {"reach", "grasp", "lift", "action", "success", "physics_unstable"} <= set(info)
    env.close()


def test_instability_ends_the_episode_without_a_log_file(
    family: GraspObject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = family.make_batch_env(2)
    assert isinstance(env, GraspBatchEnv)
    env.set_tasks(family.sample_tasks(2, np.random.default_rng(0)))
    env.reset([np.random.default_rng(0), np.random.default_rng(1)])
    env.physics.batch.bind("qvel")[1, 0] = np.inf
    result = env.step(np.zeros((2, 5)))
    np.testing.assert_array_equal(result.unstable, [False, True])
    np.testing.assert_array_equal(result.terminated, [False, True])
    assert np.isfinite(result.obs).all() and np.isfinite(result.reward).all()
    env.close()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


# --- object specs ----------------------------------------------------------------------------


def test_one_line_dict_and_yaml_forms_agree(tmp_path: Path) -> None:
    spec = ObjectSpec.parse("cylinder radius=0.03 height=0.12 mass=0.2 friction=1.0")
    assert spec.dim("radius") == 0.03 and spec.mass == 0.2
    assert ObjectSpec.parse(spec.to_string()) == spec
    assert ObjectSpec.from_dict(spec.to_dict()) == spec
    assert load_object({"object": spec.to_dict()}) == spec
    file = tmp_path / "can.yaml"
    file.write_text("shape: cylinder\nradius: 0.03\nheight: 0.12\nmass: 0.2\n")
    assert load_object(file) == spec
    assert ObjectSpec.parse("sphere radius=0.03").to_string() == "sphere radius=0.03 mass=0.1 friction=1.0"


def _write_obj(path: Path) -> None:
    """A hexagonal prism in centimetres (radius 3, height 8), with faces."""
    angles = np.arange(6) * math.pi / 3
    lines = [f"v {3 * math.cos(a):.6f} {3 * math.sin(a):.6f} {z}" for z in (0.0, 8.0) for a in angles]
    lines += ["f 1 2 3 4 5 6", "f 12 11 10 9 8 7"]
    lines += [f"f {i + 1} {(i + 1) % 6 + 1} {(i + 1) % 6 + 7} {i + 7}" for i in range(6)]
    path.write_text("# test prism\n" + "\n".join(lines) + "\n")


def _write_binary_stl(path: Path) -> None:
    """A 4 x 5 x 6 cm box (metres), two triangles per face."""
    corners = np.array([[x, y, z] for x in (0, 0.04) for y in (0, 0.05) for z in (0, 0.06)])
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1)]
    faces += [(2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *corners[list(f)].ravel(), 0) for f in faces)
    path.write_bytes(b"\0" * 80 + struct.pack("<I", len(faces)) + body)


def test_obj_and_stl_files_load_as_mesh_objects(family: GraspObject, tmp_path: Path) -> None:
    obj, stl = tmp_path / "prism in cm.obj", tmp_path / "box.stl"
    _write_obj(obj)
    _write_binary_stl(stl)
    ascii_stl = tmp_path / "tetra.stl"
    tri = [(0, 0, 0), (0.04, 0, 0), (0, 0.04, 0), (0, 0, 0.04)]
    facets = "".join(
        "facet normal 0 0 0\nouter loop\n"
        + "".join(f"vertex {a} {b} {c}\n" for a, b, c in face)
        + "endloop\nendfacet\n"
        for face in (
            [tri[0], tri[1], tri[2]],
            [tri[0], tri[1], tri[3]],
            [tri[0], tri[2], tri[3]],
            [tri[1], tri[2], tri[3]],
        )
    )
    ascii_stl.write_text(f"solid tetra\n{facets}endsolid tetra\n")
    specs = [
        ObjectSpec.parse(f"mesh path='{obj}' scale=0.01 mass=0.2"),
        load_object(stl),
        ObjectSpec.parse(f"mesh path={ascii_stl} mass=0.05"),
    ]
    np.testing.assert_allclose(2 * specs[0].half_extents()[2], 0.08)
    np.testing.assert_allclose(2 * specs[1].half_extents(), [0.04, 0.05, 0.06], atol=1e-6)
    for spec in specs:
        assert ObjectSpec.parse(spec.to_string()) == spec
        assert family.task_from_dict(GraspTask(spec).to_dict()) == GraspTask(spec)
    mixed = [
        *specs[:2],
        ObjectSpec.parse("sphere radius=0.03"),
        ObjectSpec.parse("mesh path=builtin:prism6 scale=0.03"),
    ]
    success, _, unstable = _run_scripted(family, mixed, seed=0)  # files, primitive and built-in in one batch
    assert success.all() and not unstable.any()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pyramid radius=0.03", "shape='pyramid'"),
        ("sphere radius=-0.01", "radius=-0.01"),
        ("box length=0 width=0.03 height=0.05", "length=0.0"),
        ("cylinder radius=0.03 height=0.1 mass=0", "mass=0.0"),
        ("sphere radius=0.03 friction=-1", "friction=-1.0"),
        ("box length=0.12 width=0.1 height=0.05", "too large"),
        ("sphere radius=0.06", "too large"),
        ("capsule radius=0.03 length=0.05", "length=0.05"),
        ("sphere radius=0.03 height=0.1", "height is not a key of a sphere"),
        ("cylinder radius=0.03", "height"),
        ("sphere radius=abc", "radius='abc'"),
        ("mesh path=/no/such/mug.obj scale=0.01", "not found"),
        ("mesh path=builtin:teapot", "builtin:teapot"),
        ("mesh path=builtin:prism6 scale=0", "scale=0.0"),
        ("mesh path=builtin:prism6 scale=0.5", "too large"),
    ],
)
def test_invalid_specs_raise_one_line(text: str, needle: str) -> None:
    with pytest.raises(TaskError) as err:
        ObjectSpec.parse(text)
    message = str(err.value)
    assert "\n" not in message and needle in message
    assert "allowed" in message or "needs" in message or "not found" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("flat.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\n"),
        ("broken.obj", "v 0 0\nv 1 0 0\n"),
        ("empty.obj", "# nothing here\n"),
        ("garbage.stl", "this is not an stl file at all"),
        ("mug.ply", "ply\n"),
    ],
)
def test_meshes_that_do_not_parse_raise_one_line(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TaskError) as err:
        ObjectSpec.parse(f"mesh path={path} scale=0.01")
    assert "\n" not in str(err.value) and os.fspath(path) in str(err.value)


def test_bad_yaml_raises_one_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("shape: [sphere\nradius: 0.03\n")
    with pytest.raises(TaskError) as err:
        load_object(file)
    assert "\n" not in str(err.value) and "YAML" in str(err.value)
