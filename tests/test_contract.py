"""One contract over every registered task family (navigation, locomotion, grasping, ...)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import metarl.envs as envs
from metarl.envs.base import BatchEnv, FamilyEnv, Task, TaskError, TaskFamily

FAMILIES = envs.family_names()
STEPS = 200


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> TaskFamily:
    return envs.make_family(request.param)


def _tasks(family: TaskFamily, n: int = 3, seed: int = 0) -> list[Task]:
    return family.sample_tasks(n, np.random.default_rng(seed))


def _actions(family: TaskFamily, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low, high = family.action_space.low, family.action_space.high
    return rng.uniform(low, high, size=(n, *family.action_space.shape))


def _rollout(env: FamilyEnv, task: Task, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=seed, options={"task": task})
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


def test_registry_is_complete_and_gym_ids_resolve() -> None:
    assert "Navigation2D" in FAMILIES
    for name in FAMILIES:
        spec = envs.family_spec(name)
        env = gym.make(spec.gym_id)
        assert isinstance(env.unwrapped, FamilyEnv)
        env.close()


def test_family_keeps_the_protocol(family: TaskFamily) -> None:
    assert isinstance(family, TaskFamily)
    batch = family.make_batch_env(2)
    assert isinstance(batch, BatchEnv)
    batch.close()
    assert family.horizon >= 1
    assert family.task_space()


def test_videos_play_at_the_control_rate(family: TaskFamily) -> None:
    env = FamilyEnv(family)
    assert 0 < family.control_dt <= 1.0
    assert env.metadata["render_fps"] == round(1.0 / family.control_dt)
    assert FamilyEnv.metadata["render_fps"] == 20  # per instance: the class default is left alone
    env.close()


def test_physics_trouble_stays_out_of_the_console_and_working_dir(
    family: TaskFamily, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    batch = family.make_batch_env(2)
    batch.set_tasks(_tasks(family, 2))
    batch.reset([np.random.default_rng(0), np.random.default_rng(1)])
    action = _actions(family, 2, seed=0)
    action[1, 0] = np.nan  # MuJoCo warns about a bad control where it is passed through
    result = batch.step(action)
    assert not result.unstable[0]
    batch.close()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    out, err = capfd.readouterr()
    assert "WARNING" not in out + err


def test_gymnasium_and_sb3_checkers_pass(family: TaskFamily) -> None:
    for task in _tasks(family):
        env = FamilyEnv(family, task=task, render_mode="rgb_array")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. SB3's "use a [-1, 1] action space"
            gym_check_env(env, skip_render_check=False)
            sb3_check_env(env, warn=False)
        env.close()


def test_same_seed_same_trajectory(family: TaskFamily) -> None:
    task = _tasks(family, 1)[0]
    actions = _actions(family, STEPS, seed=1)
    env_a, env_b = FamilyEnv(family, task=task), FamilyEnv(family, task=task)
    obs_a, rew_a = _rollout(env_a, task, 7, actions)
    obs_b, rew_b = _rollout(env_b, task, 7, actions)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)


def test_different_tasks_differ(family: TaskFamily) -> None:
    task_a, task_b = _tasks(family, 2, seed=3)
    actions = _actions(family, 50, seed=2)
    env = FamilyEnv(family)
    obs_a, rew_a = _rollout(env, task_a, 0, actions)
    obs_b, rew_b = _rollout(env, task_b, 0, actions)
    n = min(len(rew_a), len(rew_b))
    assert not (np.allclose(rew_a[:n], rew_b[:n]) and np.allclose(obs_a[: n + 1], obs_b[: n + 1]))


def test_reward_is_sum_of_terms(family: TaskFamily) -> None:
    env = FamilyEnv(family, task=_tasks(family, 1)[0])
    env.reset(seed=0)
    for action in _actions(family, 50, seed=4):
        _, reward, terminated, truncated, info = env.step(action)
        term_names = [k for k in info if k not in ("success", "physics_unstable")]
        assert term_names, "a family must name its reward terms"
        assert reward == pytest.approx(sum(info[k] for k in term_names), abs=1e-12)
        if terminated or truncated:
            break


def test_batched_equals_single_envs(family: TaskFamily) -> None:
    tasks = _tasks(family, 3, seed=5)
    seeds = [11, 12, 13]
    actions = _actions(family, STEPS, seed=6)[:, None].repeat(3, axis=1)  # [T, 3, act]
    actions += np.random.default_rng(8).normal(0, 0.01, size=actions.shape)
    actions = np.clip(actions, family.action_space.low, family.action_space.high)
    batch = family.make_batch_env(3)
    batch.set_tasks(tasks)
    obs = batch.reset([np.random.default_rng(s) for s in seeds])
    batch_obs, batch_rew, done = [obs], [], np.zeros(3, dtype=bool)
    for t in range(STEPS):
        result = batch.step(actions[t])
        batch_obs.append(result.obs)
        batch_rew.append(np.where(done, np.nan, result.reward))
        done |= result.terminated
    batch.close()
    for i, (task, seed) in enumerate(zip(tasks, seeds, strict=True)):
        single_obs, single_rew = _rollout(FamilyEnv(family), task, seed, actions[:, i])
        n = len(single_rew)
        np.testing.assert_allclose(np.array(batch_obs)[: n + 1, i], single_obs, rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.array(batch_rew)[:n, i], single_rew, rtol=0, atol=1e-9)


def test_task_round_trips(family: TaskFamily) -> None:
    for task in _tasks(family) + family.test_tasks()[:2]:
        assert family.parse_task(task.to_string()) == task
        assert family.task_from_dict(task.to_dict()) == task


def test_load_task_reads_the_one_line_form_and_a_yaml_file(family: TaskFamily, tmp_path: Path) -> None:
    import yaml

    for i, task in enumerate(_tasks(family, 2) + family.test_tasks()[:1]):
        assert family.load_task(task.to_string()) == task
        file = tmp_path / f"task{i}.yaml"
        file.write_text(yaml.safe_dump(task.to_dict()))
        assert family.load_task(str(file)) == task
    with pytest.raises(TaskError, match=r"missing\.yaml") as err:  # one line that names the file
        family.load_task(str(tmp_path / "missing.yaml"))
    assert "\n" not in str(err.value)


def test_test_tasks_are_fixed_and_held_out(family: TaskFamily) -> None:
    test = family.test_tasks()
    assert test and test == envs.make_family(family.name).test_tasks()
    train = family.sample_tasks(500, np.random.default_rng(0))
    if family.test_tasks_held_out:
        assert not set(map(repr, train)) & set(map(repr, test))
    else:  # a finite task space (e.g. direction ±1): the test set is the whole space
        assert set(map(repr, test)) == set(map(repr, train))


def test_validation_tasks_are_fixed_training_tasks_apart_from_the_test_set(family: TaskFamily) -> None:
    valid = family.validation_tasks()
    assert valid and valid == family.validation_tasks() == envs.make_family(family.name).validation_tasks()
    for task in valid:
        assert family.parse_task(task.to_string()) == task
    test = set(map(repr, family.test_tasks()))
    train = set(map(repr, family.sample_tasks(500, np.random.default_rng(0))))
    if test <= train:  # a finite task space (direction ±1): the same tasks, other rollout seeds
        assert set(map(repr, valid)) == test
    else:
        assert not set(map(repr, valid)) & test
        assert len(set(map(repr, valid))) == len(valid) == len(test)


def test_sampling_is_seeded(family: TaskFamily) -> None:
    assert _tasks(family, 5, seed=9) == _tasks(family, 5, seed=9)
    assert _tasks(family, 5, seed=9) != _tasks(family, 5, seed=10)


def test_garbage_task_strings_are_refused(family: TaskFamily) -> None:
    for text in ("", "nonsense", "unknown_key=1"):
        with pytest.raises(TaskError) as err:
            family.parse_task(text)
        assert "\n" not in str(err.value)
