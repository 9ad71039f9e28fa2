"""Locomotion families: paper compatibility with gymnasium v5, bad tasks, random parameters, physics.

The registry-wide contract (check_env, determinism, terms, batched == single, round trips) is in
test_contract.py; this module checks what is specific to the MuJoCo locomotion families.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import metarl.envs as envs
from metarl.envs import locomotion
from metarl.envs.base import FamilyEnv, Task, TaskError, TaskT
from metarl.envs.mujoco_batch import load_gymnasium_model, quiet_mujoco_log

STEPS = 200
LOCOMOTION = [spec.name for spec in locomotion.FAMILY_SPECS]
FamilyT = TypeVar("FamilyT")


def _gym_env(env_id: str, **kwargs: Any) -> Any:
    """A gymnasium v5 reference env, built without its deprecation warning or log file."""
    with warnings.catch_warnings(), quiet_mujoco_log():
        warnings.simplefilter("ignore")
        return gym.make(env_id, **kwargs).unwrapped


def _family(name: str, kind: type[FamilyT], options: dict[str, Any] | None = None) -> FamilyT:
    """``envs.make_family(name, options)``, checked to be a ``kind``."""
    family = envs.make_family(name, options)
    assert isinstance(family, kind)
    return family


def _of_type(tasks: list[Task], kind: type[TaskT]) -> list[TaskT]:
    """``tasks``, checked to be all of type ``kind``."""
    checked = [task for task in tasks if isinstance(task, kind)]
    assert len(checked) == len(tasks), f"not all tasks are {kind.__name__}: {tasks}"
    return checked


def _actions(n: int, dim: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n, dim))


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # lets each test see whether MUJOCO_LOG.TXT appeared


# ---- paper compatibility --------------------------------------------------------------------


def test_half_cheetah_vel_matches_gymnasium_half_cheetah_v5() -> None:
    goal = 1.3
    family = envs.make_family("HalfCheetahVel")
    batch = family.make_batch_env(1)
    batch.set_tasks([locomotion.HalfCheetahVelTask(goal_velocity=goal)])
    reference = _gym_env("HalfCheetah-v5")
    obs, _ = reference.reset(seed=5)
    np.testing.assert_array_equal(batch.reset([np.random.default_rng(5)])[0], obs)
    for action in _actions(STEPS, 6, seed=1):
        result = batch.step(action[None])
        obs, _, _, _, info = reference.step(action)
        np.testing.assert_allclose(result.obs[0], obs, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.terms["velocity"][0], -abs(info["x_velocity"] - goal), atol=1e-9)
        np.testing.assert_allclose(result.terms["control"][0], -0.05 * np.sum(action**2), atol=1e-12)
    assert not Path("MUJOCO_LOG.TXT").exists()


def test_ant_vel_matches_gymnasium_ant_v5() -> None:
    goal = 0.7
    options = {"terminate_when_unhealthy": False, "include_cfrc_ext_in_observation": False}
    family = envs.make_family("AntVel", options)
    batch = family.make_batch_env(1)
    batch.set_tasks([locomotion.AntVelTask(goal_velocity=goal)])
    reference = _gym_env("Ant-v5", **options)
    obs, _ = reference.reset(seed=3)
    np.testing.assert_array_equal(batch.reset([np.random.default_rng(3)])[0], obs)
    for action in _actions(STEPS, 8, seed=2, scale=0.5):
        result = batch.step(action[None])
        obs, _, _, _, info = reference.step(action)
        np.testing.assert_allclose(result.obs[0], obs, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.terms["velocity"][0], 1.0 - abs(info["x_velocity"] - goal), atol=1e-9)
        healthy = info["reward_survive"] > 0  # gymnasium's health check, as a 0/1 reward
        assert result.terms["survive"][0] == pytest.approx(0.05 * healthy)


@pytest.mark.parametrize(
    ("name", "weight", "clipped"),
    [
        ("HalfCheetahVel", 0.05, True),
        ("HalfCheetahDir", 0.05, True),
        ("AntVel", 0.005, True),
        ("AntDir", 0.005, True),
        ("AntGoal", 0.005, True),
        ("Walker2dParams", 1e-3, False),
        ("HopperParams", 1e-3, False),
    ],
)
def test_control_cost_is_charged_on_the_clipped_action_as_in_the_maml_code(
    name: str, weight: float, clipped: bool
) -> None:
    """rllab's normalize wrapper clips every action to [-1, 1] before the paper's envs charge it;
    the random-parameter families keep gymnasium v5's cost on the raw action."""
    for on_clipped in (clipped, not clipped):
        family = envs.make_family(name, {"ctrl_cost_on_clipped": on_clipped})
        dim = int(family.action_space.shape[0])
        batch = family.make_batch_env(2)
        batch.set_tasks(family.sample_tasks(2, np.random.default_rng(0)))
        batch.reset([np.random.default_rng(1), np.random.default_rng(2)])
        action = np.array([[2.5] * dim, [-0.5] * dim])  # outside and inside the bounds [-1, 1]
        control = batch.step(action).terms["control"]
        outside = -weight * dim * (1.0 if on_clipped else 6.25)
        np.testing.assert_allclose(control, [outside, -weight * dim * 0.25], rtol=1e-12)
        batch.close()


def test_ant_contact_forces_are_mujocos_from_mj_step() -> None:
    """The observed/charged contact forces are ``cfrc_ext`` as ``mj_step`` leaves it (see docstring)."""
    family = envs.make_family("AntDir")
    batch = family.make_batch_env(1)
    batch.set_tasks([locomotion.AntDirTask(direction=1)])
    batch.reset([np.random.default_rng(0)])
    model = locomotion.robot_model(locomotion.ANT)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)  # the same initial state, drawn as the family draws it
    data.qpos[:] = model.qpos0 + rng.uniform(-0.1, 0.1, size=model.nq)
    data.qvel[:] = 0.1 * rng.standard_normal(model.nv)
    mujoco.mj_forward(model, data)
    touched = 0.0
    for action in _actions(60, 8, seed=4):
        result = batch.step(action[None])
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=5)
        forces = np.clip(data.cfrc_ext, -1, 1)
        np.testing.assert_allclose(result.obs[0, 27:], forces[1:].ravel(), atol=1e-9)
        np.testing.assert_allclose(result.terms["contact"][0], -5e-4 * np.sum(forces**2), atol=1e-12)
        touched = max(touched, float(np.abs(forces).max()))
        if result.terminated[0]:
            break
    assert touched > 0, "the feet should touch the floor"


@pytest.mark.parametrize(("name", "env_id"), [("Walker2dParams", "Walker2d-v5"), ("HopperParams", "Hopper-v5")])
def test_nominal_parameters_match_gymnasium_v5(name: str, env_id: str) -> None:
    family = _family(name, locomotion.LocomotionFamily, {"terminate_when_unhealthy": False})
    task_type = {"Walker2dParams": locomotion.Walker2dParamsTask, "HopperParams": locomotion.HopperParamsTask}[name]
    assert family.task_type is task_type
    nominal = task_type(**{k: (1.0,) * n for k, n in task_type.sizes.items()})
    batch = family.make_batch_env(1)
    batch.set_tasks([nominal])
    reference = _gym_env(env_id, terminate_when_unhealthy=False)
    obs, _ = reference.reset(seed=9)
    np.testing.assert_array_equal(batch.reset([np.random.default_rng(9)])[0], obs)
    for action in _actions(STEPS, family.action_space.shape[0], seed=5):
        result = batch.step(action[None])
        obs, reward, _, _, info = reference.step(action)
        np.testing.assert_allclose(result.obs[0], obs, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.terms["forward"][0], info["x_velocity"], atol=1e-9)
        np.testing.assert_allclose(result.reward[0], reward, atol=1e-9)


# ---- tasks ----------------------------------------------------------------------------------

BAD_TASKS = [
    ("HalfCheetahVel", "goal_velocity=nan", "goal_velocity"),
    ("HalfCheetahVel", "goal_velocity=11", "goal_velocity"),
    ("HalfCheetahVel", "goal_velocity=fast", "goal_velocity"),
    ("HalfCheetahVel", "velocity=1", "unknown key"),
    ("HalfCheetahDir", "direction=0", "direction"),
    ("HalfCheetahDir", "direction=0.5", "direction"),
    ("AntVel", "goal_velocity=-20", "goal_velocity"),
    ("AntVel", "goal_velocity=inf", "goal_velocity"),
    ("AntDir", "direction=2", "direction"),
    ("AntDir", "", "missing key"),
    ("AntGoal", "goal=1", "goal"),
    ("AntGoal", "goal=1,nan", "goal.y"),
    ("AntGoal", "goal=20,0", "goal.x"),
    ("AntGoal", "goal=1,2,3", "goal"),
]


@pytest.mark.parametrize(("name", "text", "field"), BAD_TASKS)
def test_bad_tasks_are_refused_in_one_line(name: str, text: str, field: str) -> None:
    with pytest.raises(TaskError) as err:
        envs.make_family(name).parse_task(text)
    message = str(err.value)
    assert "\n" not in message and field in message and ("allowed" in message or "required" in message)


def _rand_params_dict(name: str, **changes: Any) -> dict[str, Any]:
    family = envs.make_family(name)
    data = family.test_tasks()[0].to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("name", ["Walker2dParams", "HopperParams"])
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("body_mass", "negative", "body_mass[0]"),
        ("dof_damping", "nan", "dof_damping[0]"),
        ("geom_friction", "huge", "geom_friction[0]"),
        ("body_inertia", "short", "body_inertia"),
    ],
)
def test_bad_random_parameters_are_refused_in_one_line(name: str, field: str, value: str, expected: str) -> None:
    data = _rand_params_dict(name)
    scales = list(data[field])
    replacement = {"negative": -1.0, "nan": float("nan"), "huge": 10.0}
    if value == "short":
        scales = scales[:-1]
    else:
        scales[0] = replacement[value]
    data[field] = scales
    with pytest.raises(TaskError) as err:
        envs.make_family(name).task_from_dict(data)
    message = str(err.value)
    assert "\n" not in message and expected in message and "allowed" in message


def test_wrong_key_and_wrong_task_type_are_refused() -> None:
    data = _rand_params_dict("HopperParams")
    data["mass"] = data.pop("body_mass")
    with pytest.raises(TaskError, match="unknown key 'mass'"):
        envs.make_family("HopperParams").task_from_dict(data)
    batch = envs.make_family("AntVel").make_batch_env(1)
    with pytest.raises(TaskError, match="not a AntVelTask"):
        batch.set_tasks([locomotion.AntDirTask(direction=1)])


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("HalfCheetahVel", {"horizon": 0}, "family.horizon"),
        ("HalfCheetahVel", {"velocity_low": 3.0}, "family.velocity_low"),
        ("AntGoal", {"goal_radius": -1.0}, "family.goal_radius"),
        ("AntVel", {"reset_noise_scale": float("nan")}, "family.reset_noise_scale"),
        ("Walker2dParams", {"log_scale_limit": 4.0}, "family.log_scale_limit"),
        ("HopperParams", {"frame_skip": 2.5}, "family.frame_skip"),
        ("AntDir", {"speed": 1.0}, "family.speed"),
    ],
)
def test_bad_options_are_refused_in_one_line(name: str, options: dict[str, Any], field: str) -> None:
    with pytest.raises(TaskError) as err:
        envs.make_family(name, options)
    assert "\n" not in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("name", ["HalfCheetahDir", "AntDir"])
def test_direction_families_draw_both_directions_equally(name: str) -> None:
    family = envs.make_family(name)
    tasks = _of_type(family.sample_tasks(10, np.random.default_rng(0)), locomotion.DirectionTask)
    assert sorted(t.direction for t in tasks) == [-1] * 5 + [1] * 5
    assert {t.direction for t in _of_type(family.test_tasks(), locomotion.DirectionTask)} == {-1, 1}


def test_ant_goals_lie_in_the_disc() -> None:
    family = envs.make_family("AntGoal")
    goals = np.array(
        [t.goal for t in _of_type(family.sample_tasks(2000, np.random.default_rng(0)), locomotion.AntGoalTask)]
    )
    radius = np.linalg.norm(goals, axis=1)
    assert radius.max() <= 3.0
    assert 0.45 < np.mean(radius < 3.0 / np.sqrt(2)) < 0.55  # uniform in area: half inside r/√2


# ---- random parameters ----------------------------------------------------------------------


def test_random_parameters_change_dynamics_and_keep_derived_constants_consistent() -> None:
    family = _family("Walker2dParams", locomotion.Walker2dParams)
    sizes = locomotion.Walker2dParamsTask.sizes
    nominal = locomotion.Walker2dParamsTask(**{k: (1.0,) * n for k, n in sizes.items()})
    scaled = _of_type(family.sample_tasks(1, np.random.default_rng(0)), locomotion.RandParamsTask)[0]
    batch = family.make_batch_env(2)
    batch.set_tasks([nominal, scaled])
    obs = batch.reset([np.random.default_rng(1), np.random.default_rng(1)])
    np.testing.assert_array_equal(obs[0], obs[1])  # same initial state ...
    for action in _actions(10, 6, seed=0):
        result = batch.step(np.stack([action, action]))
    assert np.abs(result.obs[0] - result.obs[1]).max() > 1e-3  # ... different dynamics

    base = locomotion.robot_model(locomotion.WALKER2D)
    run = batch.model_of(1)
    expected = copy.copy(base)
    for name, scale in scaled.scales().items():
        getattr(expected, name)[...] = getattr(base, name) * scale
    mujoco.mj_setConst(expected, mujoco.MjData(expected))
    for name in ("body_mass", "body_inertia", "dof_damping", "geom_friction"):
        np.testing.assert_allclose(getattr(run, name), getattr(expected, name), rtol=1e-12)
        assert not np.allclose(getattr(run, name), getattr(base, name))
    for name in ("body_subtreemass", "dof_invweight0", "body_invweight0", "actuator_acc0"):
        np.testing.assert_allclose(getattr(run, name), getattr(expected, name), rtol=1e-9)
    assert run.body_subtreemass[0] == pytest.approx(run.body_mass.sum())
    assert run.body_subtreemass[0] != pytest.approx(base.body_subtreemass[0])
    np.testing.assert_array_equal(batch.model_of(0).body_subtreemass, base.body_subtreemass)


# ---- physics --------------------------------------------------------------------------------


def test_unstable_physics_ends_the_episode_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    family = envs.make_family("HalfCheetahVel")
    batch = family.make_batch_env(2)
    batch.set_tasks(family.sample_tasks(2, np.random.default_rng(0)))
    batch.reset([np.random.default_rng(0), np.random.default_rng(1)])
    action = np.zeros((2, 6))
    action[1, 0] = np.nan  # MuJoCo flags a bad control (mjWARN_BADCTRL)
    result = batch.step(action)
    assert result.unstable.tolist() == [False, True]
    assert result.terminated.tolist() == [False, True]
    assert result.reward[1] == 0.0 and np.isfinite(result.obs).all()
    result = batch.step(np.zeros((2, 6)))
    assert result.unstable.tolist() == [False, False]
    assert result.terminated.tolist() == [False, True]  # stays terminated until reset
    assert result.reward[1] == 0.0
    batch.reset([np.random.default_rng(0), np.random.default_rng(1)])
    assert batch.step(np.zeros((2, 6))).terminated.tolist() == [False, False]
    assert not Path("MUJOCO_LOG.TXT").exists()
    assert "WARNING" not in capfd.readouterr().out


def test_unhealthy_ant_terminates_and_stays_terminated() -> None:
    # The torso starts at z = 0.75: a healthy band above it makes the very first step unhealthy.
    family = envs.make_family("AntVel", {"healthy_z_min": 0.9, "healthy_z_max": 2.0})
    batch = family.make_batch_env(1)
    batch.set_tasks(family.sample_tasks(1, np.random.default_rng(0)))
    batch.reset([np.random.default_rng(0)])
    result = batch.step(_actions(1, 8, seed=0))
    assert result.terminated[0] and not result.unstable[0]
    assert result.terms["survive"][0] == 0.0
    frozen = result.obs.copy()
    after = batch.step(_actions(1, 8, seed=1))
    assert after.terminated[0] and after.reward[0] == 0.0
    np.testing.assert_array_equal(after.obs, frozen)


def test_models_compile_without_deprecation_warning_or_log_file(capfd: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_gymnasium_model("half_cheetah.xml")
    assert model.body_mass[1:].sum() == pytest.approx(14.0)  # the XML's settotalmass, applied
    assert not Path("MUJOCO_LOG.TXT").exists()
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    ("name", "fps"), [("HalfCheetahVel", 20), ("AntGoal", 20), ("Walker2dParams", 125), ("HopperParams", 125)]
)
def test_videos_play_at_the_control_rate(name: str, fps: int) -> None:
    env = FamilyEnv(envs.make_family(name))
    assert env.metadata["render_fps"] == fps
    env.close()


@pytest.mark.render
def test_render_returns_an_image_of_the_asked_size() -> None:
    family = _family("HopperParams", locomotion.HopperParams)
    batch = family.make_batch_env(2)
    batch.set_tasks(family.sample_tasks(2, np.random.default_rng(0)))
    batch.reset([np.random.default_rng(0), np.random.default_rng(1)])
    frame = batch.render(1, width=64, height=48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    batch.close()
