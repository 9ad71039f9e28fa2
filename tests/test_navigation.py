"""2-D navigation's action conventions: the displacement itself, or the MAML paper's code's [-1, 1] scaling."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from metarl.envs import make_family
from metarl.envs.base import TaskError
from metarl.envs.navigation import NavigationTask

ACTIONS = np.array([[0.5, -2.0], [0.05, 0.2]])


def _moves(options: dict[str, object]) -> np.ndarray:
    """The positions of two agents after one step with :data:`ACTIONS` (``[2, 2]``)."""
    family = make_family("Navigation2D", options)
    env = family.make_batch_env(2)
    env.set_tasks([NavigationTask(goal=(0.3, 0.3))] * 2)
    env.reset([np.random.default_rng(0), np.random.default_rng(1)])
    return env.step(ACTIONS).obs


def test_an_action_is_the_displacement_clipped_to_max_step() -> None:
    np.testing.assert_allclose(_moves({}), [[0.1, -0.1], [0.05, 0.1]])
    np.testing.assert_allclose(_moves({"max_step": 0.2}), [[0.2, -0.2], [0.05, 0.2]])


def test_normalized_actions_scale_the_unit_box_by_max_step() -> None:
    """rllab's ``normalize``: ``max_step · clip(a, -1, 1)``, so unit noise is not saturated at 0.1."""
    np.testing.assert_allclose(_moves({"normalized_actions": True}), [[0.05, -0.1], [0.005, 0.02]])
    np.testing.assert_allclose(_moves({"normalized_actions": True, "max_step": 0.2}), [[0.1, -0.2], [0.01, 0.04]])
    space = make_family("Navigation2D", {"normalized_actions": True}).action_space
    assert isinstance(space, gym.spaces.Box)
    np.testing.assert_array_equal(space.low, [-1.0, -1.0])
    np.testing.assert_array_equal(space.high, [1.0, 1.0])


def test_normalized_actions_keep_the_gymnasium_and_sb3_contracts() -> None:
    env = gym.make("metarl/Navigation2D-v0", normalized_actions=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checkers' advice on float64 spaces is not a failure
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_a_normalized_actions_value_that_is_not_a_flag_is_one_line() -> None:
    with pytest.raises(TaskError, match=r"^family.normalized_actions='yes' must be true or false$"):
        make_family("Navigation2D", {"normalized_actions": "yes"})
