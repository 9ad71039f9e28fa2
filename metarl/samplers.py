"""The in-process batched sampler: every environment of a meta-batch advances together.

At each time step the policy acts once for the whole batch (each task with its own adapted
parameters, through ``vmap``) and the family's :class:`~metarl.envs.base.BatchEnv` advances all
``N × R`` environments in one call. No per-environment Python objects exist in the loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from metarl.envs.base import BatchEnv, Task, TaskFamily
from metarl.episodes import Episodes
from metarl.policies import GaussianMLPPolicy, Params, gaussian_log_prob


class BatchSampler:
    """Collects ``R`` rollouts for each of ``N`` tasks in one batched environment.

    Args:
        family: The task family.
        policy: The policy architecture (parameters are passed to :meth:`collect`).
        num_threads: Physics threads of the batched environment.
    """

    def __init__(self, family: TaskFamily, policy: GaussianMLPPolicy, num_threads: int = 1):
        self.family = family
        self.policy = policy
        self.num_threads = num_threads
        self._envs: dict[int, BatchEnv] = {}

    def _env(self, num_envs: int) -> BatchEnv:
        if num_envs not in self._envs:
            self._envs[num_envs] = self.family.make_batch_env(num_envs, self.num_threads)
        return self._envs[num_envs]

    def collect(
        self,
        params: Params,
        tasks: Sequence[Task],
        rollouts: int,
        rng: np.random.Generator,
        generator: torch.Generator,
    ) -> Episodes:
        """Runs ``rollouts`` episodes of every task, task ``i`` acting with ``params[...][i]``.

        Args:
            params: Stacked parameters, each tensor ``[N, *shape]``.
            tasks: ``N`` tasks.
            rollouts: ``R``, episodes per task.
            rng: Source of the environments' initial-state noise (one child per environment).
            generator: Source of the action noise.

        Returns:
            Episodes with ``[N, T, R, ...]`` tensors, ``T`` the family's horizon.
        """
        n, r = len(tasks), rollouts
        b = n * r
        env = self._env(b)
        env.set_tasks([task for task in tasks for _ in range(r)])
        obs = _finite(env.reset(rng.spawn(b)))
        dtype = next(iter(params.values())).dtype
        horizon = self.family.horizon
        obs_dim, act_dim = self.policy.obs_dim, self.policy.act_dim
        obs_buf = torch.zeros(horizon, n, r, obs_dim, dtype=dtype)
        act_buf = torch.zeros(horizon, n, r, act_dim, dtype=dtype)
        logp_buf = torch.zeros(horizon, n, r, dtype=dtype)
        rewards = np.zeros((horizon, b))
        masks = np.zeros((horizon, b))
        alive = np.ones(b, dtype=bool)
        success = np.zeros(b, dtype=bool)
        unstable = np.zeros(b, dtype=bool)
        with torch.no_grad():
            for t in range(horizon):
                o = torch.from_numpy(obs).to(dtype).view(n, r, obs_dim)
                mean, log_std = self.policy.task_distribution(params, o)
                noise = torch.randn(mean.shape, generator=generator, dtype=dtype)
                action = mean + torch.exp(log_std) * noise
                obs_buf[t], act_buf[t] = o, action
                logp_buf[t] = gaussian_log_prob(mean, log_std, action)
                masks[t] = alive
                result = env.step(action.view(b, act_dim).numpy().astype(np.float64))
                rewards[t] = np.where(alive & ~result.unstable, result.reward, 0.0)
                if result.success is not None:
                    success |= alive & result.success
                unstable |= alive & result.unstable
                alive &= ~result.terminated
                obs = _finite(result.obs)
                if not alive.any():
                    break
        has_success = self.family.has_success

        def per_task(x: np.ndarray) -> torch.Tensor:  # [T, B] -> [N, T, R]
            return torch.from_numpy(x).to(dtype).view(horizon, n, r).transpose(0, 1).contiguous()

        return Episodes(
            obs=obs_buf.transpose(0, 1).contiguous(),
            actions=act_buf.transpose(0, 1).contiguous(),
            rewards=per_task(rewards),
            masks=per_task(masks),
            log_probs=logp_buf.transpose(0, 1).contiguous(),
            advantages=torch.zeros(n, horizon, r, dtype=dtype),
            success=torch.from_numpy(success).to(dtype).view(n, r)
            if has_success
            else torch.full((n, r), float("nan"), dtype=dtype),
            unstable=torch.from_numpy(unstable).to(dtype).view(n, r),
        )

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def _finite(obs: np.ndarray) -> np.ndarray:
    """Replaces NaN/Inf (from an environment whose physics blew up; it is masked) by zeros."""
    return np.where(np.isfinite(obs), obs, 0.0)
