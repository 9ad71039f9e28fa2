"""The batched sampler against the single gymnasium env, and its determinism."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from metarl.config import ConfigError, load_config
from metarl.envs.base import StepResult
from metarl.envs.registry import family_names, make_family
from metarl.episodes import Episodes
from metarl.experiment import make_sampler
from metarl.policies import GaussianMLPPolicy, Params, gaussian_log_prob, stack_params, step_log_prob
from metarl.samplers import BatchSampler, StepView, draw_noise, rollout

HORIZON = 25
TASKS, ROLLOUTS = 2, 2


def _setup(name: str, seed: int = 0, latent_dim: int = 0) -> tuple[BatchSampler, Params, list]:
    family = make_family(name, {"horizon": HORIZON})
    policy = GaussianMLPPolicy(
        int(family.observation_space.shape[0]),
        int(family.action_space.shape[0]),
        (16,),
        init_std=0.5,
        latent_dim=latent_dim,
    )
    params = stack_params(policy.init_params(torch.Generator().manual_seed(seed), dtype=torch.float64), TASKS)
    tasks = family.sample_tasks(TASKS, np.random.default_rng(seed))
    return BatchSampler(family, policy), params, tasks


def _collect(sampler: BatchSampler, params: Params, tasks: list, seed: int = 7) -> Episodes:
    return sampler.collect(params, tasks, ROLLOUTS, np.random.default_rng(seed), torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", family_names())
def test_batched_sampler_matches_the_single_gymnasium_env(name: str) -> None:
    """Replaying the sampler's actions through FamilyEnv(reset(seed=...)) gives the same trajectory."""
    sampler, params, tasks = _setup(name)
    episodes = _collect(sampler, params, tasks)
    seeds = draw_noise(TASKS, ROLLOUTS, HORIZON, 1, torch.float64, np.random.default_rng(7), torch.Generator()).seeds
    compared = 0
    for i, task in enumerate(tasks):
        for k in range(ROLLOUTS):
            env = sampler.family.make_env(task=task)  # type: ignore[attr-defined]
            obs, _ = env.reset(seed=int(seeds[i, k]))
            for t in range(HORIZON):
                if episodes.masks[i, t, k] == 0.0:
                    break
                np.testing.assert_allclose(episodes.obs[i, t, k].numpy(), obs, rtol=0, atol=1e-9)
                obs, reward, terminated, truncated, info = env.step(episodes.actions[i, t, k].numpy())
                expected = 0.0 if info["physics_unstable"] else reward
                assert episodes.rewards[i, t, k].item() == pytest.approx(expected, abs=1e-9)
                compared += 1
                if terminated:
                    assert t + 1 == HORIZON or episodes.masks[i, t + 1, k] == 0.0
                    break
                assert t + 1 < HORIZON or truncated
            env.close()
    assert compared >= TASKS * ROLLOUTS  # at least one step of every environment was checked
    sampler.close()


@pytest.mark.parametrize("name", ["Navigation2D", "HalfCheetahVel", "AntVel", "GraspObject"])
def test_same_seed_same_episodes_whatever_the_thread_count(name: str) -> None:
    one, params, tasks = _setup(name)
    two = BatchSampler(one.family, one.policy, num_threads=2)
    a, b = _collect(one, params, tasks), _collect(two, params, tasks)
    for field_a, field_b in zip(a, b, strict=True):
        assert torch.equal(field_a.nan_to_num(), field_b.nan_to_num())
    c = _collect(one, params, tasks, seed=8)
    assert not torch.equal(a.obs, c.obs) or name == "Navigation2D"  # the seed matters (nav starts at 0)
    assert not torch.equal(a.actions, c.actions)
    one.close()
    two.close()


def test_episode_layout_masks_and_log_probs() -> None:
    sampler, params, tasks = _setup("AntVel")
    episodes = _collect(sampler, params, tasks)
    assert episodes.obs.shape == (TASKS, HORIZON, ROLLOUTS, sampler.policy.obs_dim)
    assert episodes.actions.shape == (TASKS, HORIZON, ROLLOUTS, sampler.policy.act_dim)
    for field in (episodes.rewards, episodes.masks, episodes.log_probs, episodes.advantages):
        assert field.shape == (TASKS, HORIZON, ROLLOUTS)
    masks = episodes.masks
    assert torch.all(masks[:, 1:] <= masks[:, :-1])  # once ended, an episode stays ended
    assert torch.all(episodes.rewards[masks == 0] == 0)
    mean, log_std = sampler.policy.task_distribution(params, episodes.obs)
    expected = gaussian_log_prob(mean, log_std, episodes.actions)
    torch.testing.assert_close(episodes.log_probs * masks, expected * masks, rtol=1e-9, atol=1e-9)
    sampler.close()


def test_a_latent_is_drawn_once_per_episode_and_counted_at_its_first_step() -> None:
    """With ``policy.latent_dim`` K the policy reads one latent per episode beside the observation;
    the episodes' log-probabilities are the policy's own (``log q(z)`` at t = 0), the environment's
    observations are the ones without a latent, and the same seeds give the same episodes."""
    sampler, params, tasks = _setup("GraspObject", latent_dim=2)
    policy = sampler.policy
    params = {**params, "latent_mean": params["latent_mean"] + torch.tensor([0.3, -0.2], dtype=torch.float64)}
    episodes = _collect(sampler, params, tasks)
    assert episodes.obs.shape == (TASKS, HORIZON, ROLLOUTS, policy.obs_dim + 2)
    latents = policy.latents(episodes.obs)  # [N, R, K]
    torch.testing.assert_close(episodes.obs[..., policy.obs_dim :], latents.unsqueeze(1).expand(-1, HORIZON, -1, -1))
    assert len({tuple(z.tolist()) for z in latents.reshape(-1, 2)}) == TASKS * ROLLOUTS  # one draw per episode
    expected = step_log_prob(policy, params, episodes.obs, episodes.actions)
    masks = episodes.masks
    torch.testing.assert_close(episodes.log_probs * masks, expected * masks, rtol=1e-9, atol=1e-9)
    plain, plain_params, _ = _setup("GraspObject")  # the same network without a latent
    replay = _collect(sampler, params, tasks)
    assert all(torch.equal(a.nan_to_num(), b.nan_to_num()) for a, b in zip(episodes, replay, strict=True))
    same_start = _collect(plain, plain_params, tasks)
    torch.testing.assert_close(episodes.obs[:, 0, :, : policy.obs_dim], same_start.obs[:, 0])  # same resets
    sampler.close()
    plain.close()


def test_collection_uses_one_torch_thread_and_restores_the_count() -> None:
    sampler, params, tasks = _setup("Navigation2D")
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what the learner may use
    seen: list[int] = []
    env_step = sampler._env(TASKS * ROLLOUTS).step

    def spy(action: np.ndarray) -> StepResult:
        seen.append(torch.get_num_threads())
        return env_step(action)

    sampler._env(TASKS * ROLLOUTS).step = spy  # type: ignore[method-assign]
    _collect(sampler, params, tasks)
    assert set(seen) == {1}
    assert torch.get_num_threads() == 2
    torch.set_num_threads(before)


def test_make_sampler_local_and_ray_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, ["sampler.num_threads=2"])
    family = make_family(config.family.name)
    policy = GaussianMLPPolicy(2, 2, (4,))
    sampler = make_sampler(config, family, policy)
    assert isinstance(sampler, BatchSampler) and sampler.num_threads == 2
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'") as err:
        make_sampler(load_config(None, ["sampler.backend=ray"]), family, policy)
    assert "\n" not in str(err.value)


def test_rollout_observer_sees_what_the_episodes_count() -> None:
    """The observer's rewards add up to the episodes' returns, step by step (a video's running return)."""
    sampler, params, tasks = _setup("Navigation2D")
    family, policy = sampler.family, sampler.policy
    draws = draw_noise(
        TASKS, ROLLOUTS, HORIZON, policy.act_dim, torch.float64, np.random.default_rng(3), torch.Generator()
    )
    views: list[StepView] = []
    env = family.make_batch_env(TASKS * ROLLOUTS)
    episodes = rollout(env, policy, params, tasks, HORIZON, draws, family.has_success, observer=views.append)
    assert [v.t for v in views] == list(range(len(views))) and 1 < len(views) <= HORIZON + 1
    running = np.cumsum([v.reward for v in views], axis=0)  # [steps + 1, N * R]
    returns = episodes.rewards.sum(1).reshape(-1)  # [N, T, R] -> [N * R], environment i * R + k
    np.testing.assert_allclose(running[-1], returns.numpy(), rtol=1e-12)
    assert views[0].alive.all() and not views[0].reward.any()
    for view, masks in zip(views[1:], episodes.masks.permute(1, 0, 2).reshape(HORIZON, -1), strict=False):
        assert not view.reward[masks.numpy() == 0].any()  # nothing counted after an episode ended
    env.close()


class _RecordingEnv:
    """Wraps a batch env and keeps every action handed to it."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.actions: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, action: np.ndarray) -> StepResult:
        self.actions.append(action.copy())
        return self.env.step(action)


def test_a_latent_action_shifts_what_the_environment_gets_for_the_whole_episode() -> None:
    """With ``latent_action`` the environment receives ``a + [z, 0]`` at every step, while the
    episodes keep ``a`` and its density: the log-probabilities are the policy's own."""
    family = make_family("GraspObject", {"horizon": HORIZON})
    obs_dim, act_dim = int(family.observation_space.shape[0]), int(family.action_space.shape[0])
    policy = GaussianMLPPolicy(obs_dim, act_dim, (16,), init_std=0.5, latent_dim=1, latent_std=0.3, latent_action=True)
    params = stack_params(policy.init_params(torch.Generator().manual_seed(0), dtype=torch.float64), TASKS)
    torch.testing.assert_close(params["latent_log_std"], torch.full((TASKS, 1), math.log(0.3), dtype=torch.float64))
    tasks = family.sample_tasks(TASKS, np.random.default_rng(0))
    draws = draw_noise(TASKS, ROLLOUTS, HORIZON, act_dim, torch.float64, np.random.default_rng(3), torch.Generator(), 1)
    env = _RecordingEnv(family.make_batch_env(TASKS * ROLLOUTS))
    episodes = rollout(env, policy, params, tasks, HORIZON, draws, family.has_success)
    z = policy.latents(episodes.obs).reshape(-1)  # [N * R], environment i * R + k
    assert z.abs().min() > 0
    for t, sent in enumerate(env.actions):
        own = episodes.actions[:, t].reshape(-1, act_dim).numpy()  # [N * R, act_dim]
        np.testing.assert_allclose(sent[:, 0], own[:, 0] + z.numpy(), rtol=1e-12)
        np.testing.assert_allclose(sent[:, 1:], own[:, 1:], rtol=0)
    expected = step_log_prob(policy, params, episodes.obs, episodes.actions)
    torch.testing.assert_close(episodes.log_probs * episodes.masks, expected * episodes.masks, rtol=1e-9, atol=1e-9)
    env.close()


def test_latent_options_without_a_latent_are_one_line_errors() -> None:
    for name in ("latent_action", "fixed_latent_std"):
        with pytest.raises(ValueError, match=rf"^policy.{name}=true needs a latent; allowed with it: .* \(got 0\)$"):
            GaussianMLPPolicy(3, 2, (4,), **{name: True})
    with pytest.raises(ValueError, match=r"^policy.latent_input=false needs policy.latent_action=true"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=1, latent_input=False)
    with pytest.raises(ValueError, match=r"^policy.latent_std_decay=1.5 is out of range; allowed: \(0, 1\]$"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=1, latent_std_decay=1.5)
    with pytest.raises(ValueError, match=r"policy.latent_dim=3 is larger than the action \(2\); allowed .*1..2"):
        GaussianMLPPolicy(3, 2, (4,), latent_dim=3, latent_action=True)
