"""Samplers: every environment of a meta-batch advances together, one policy call per step.

At each time step the policy acts once for the whole batch (each task with its own adapted
parameters, one batched matmul per layer) and the family's
:class:`~metarl.envs.base.BatchEnv` advances all ``N × R`` environments in one call. No
per-environment Python objects exist in the loop.

Randomness is drawn up front, by the caller's generators, in a form that does not depend on
how the batch is split or how many threads step it:

* one integer seed per environment from the numpy generator (``[N, R]``); environment ``(i, k)``
  is reset with ``numpy.random.default_rng(seed)``, exactly what gymnasium's
  ``env.reset(seed=seed)`` does, so a single :class:`~metarl.envs.base.FamilyEnv` replays it;
* the standard-normal action noise of the whole collection, ``[T, N, R, act_dim]``, from the
  torch generator, then (for a policy with a per-episode latent) the latents' standard-normal
  noise ``[N, R, K]`` from the same generator.

:func:`rollout` is the loop itself; :class:`BatchSampler` runs it in this process and
:class:`metarl.ray_sampler.RaySampler` runs it on slices of the tasks inside Ray actors. Both
give the same episodes for the same seeds; :func:`metarl.experiment.make_sampler` picks one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from metarl.envs.base import BatchEnv, Task, TaskFamily
from metarl.episodes import Episodes
from metarl.policies import GaussianMLPPolicy, Params

_SEED_HIGH = 2**63 - 1  # environment seeds are drawn from [0, 2^63 - 1)
_LOG_2PI = math.log(2.0 * math.pi)


class SamplerError(RuntimeError):
    """Sampling failed (a worker died, hung or raised); the message is one line."""


class Sampler(Protocol):
    """What the learner needs from a sampler (local or distributed)."""

    family: TaskFamily
    policy: GaussianMLPPolicy

    def collect(
        self,
        params: Params,
        tasks: Sequence[Task],
        rollouts: int,
        rng: np.random.Generator,
        generator: torch.Generator,
    ) -> Episodes:
        """``rollouts`` episodes of every task; see :meth:`BatchSampler.collect`."""
        ...

    def close(self) -> None:
        """Frees environments, threads and worker processes."""
        ...


class RolloutNoise(NamedTuple):
    """The randomness of one collection, drawn before any environment steps.

    Attributes:
        seeds: ``[N, R]`` int64 reset seeds, one per environment.
        noise: ``[T, N, R, act_dim]`` standard-normal action noise.
        latent: ``[N, R, K]`` standard-normal noise of the episodes' latents (``K`` may be 0).
    """

    seeds: np.ndarray
    noise: Tensor
    latent: Tensor


def draw_noise(
    num_tasks: int,
    rollouts: int,
    horizon: int,
    act_dim: int,
    dtype: torch.dtype,
    rng: np.random.Generator,
    generator: torch.Generator,
    latent_dim: int = 0,
) -> RolloutNoise:
    """Draws the reset seeds (from ``rng``), the action noise and the latents' noise (from ``generator``).

    The amount drawn depends only on the shapes, never on when episodes end, so the streams
    stay aligned whatever the environments do (and without a latent nothing more is drawn).
    """
    seeds = rng.integers(0, _SEED_HIGH, size=(num_tasks, rollouts), dtype=np.int64)
    noise = torch.randn((horizon, num_tasks, rollouts, act_dim), generator=generator, dtype=dtype)
    if latent_dim == 0:
        latent = torch.zeros((num_tasks, rollouts, 0), dtype=dtype)
    else:
        latent = torch.randn((num_tasks, rollouts, latent_dim), generator=generator, dtype=dtype)
    return RolloutNoise(seeds, noise, latent)


class StepView(NamedTuple):
    """What :func:`rollout` shows an observer after the reset (``t = 0``) and after each step.

    Attributes:
        t: Steps taken.
        reward: ``[B]`` reward of step ``t`` as the episodes count it: 0 at the reset, for an
            unstable step and after the episode ended.
        success: ``[B]`` bool, the episode has succeeded so far (all False without success).
        alive: ``[B]`` bool, the episode is still running.
    """

    t: int
    reward: np.ndarray
    success: np.ndarray
    alive: np.ndarray


@contextlib.contextmanager
def torch_threads(num: int) -> Iterator[None]:
    """Runs the block with ``num`` torch intra-op threads, restoring the previous count after."""
    previous = torch.get_num_threads()
    if num == previous:
        yield
        return
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rollout(
    env: BatchEnv,
    policy: GaussianMLPPolicy,
    params: Params,
    tasks: Sequence[Task],
    horizon: int,
    draws: RolloutNoise,
    has_success: bool,
    observer: Callable[[StepView], None] | None = None,
) -> Episodes:
    """Runs one episode in each of the ``N × R`` environments of ``env``, all stepped together.

    Args:
        env: Batched environment with ``num_envs == N × R`` (environment ``i·R + k`` runs rollout
            ``k`` of task ``i``).
        policy: Architecture.
        params: Stacked parameters, each tensor ``[N, *shape]``; their dtype is the episodes'.
        tasks: ``N`` tasks.
        horizon: ``T``.
        draws: Reset seeds ``[N, R]``, action noise ``[T, N, R, act_dim]`` and latent noise ``[N, R, K]``.
        has_success: Whether the family reports success (else ``success`` is NaN).
        observer: Called after the reset and after every step, while ``env`` holds that state
            (a video draws its frames there); it must not step or reset ``env``.

    Returns:
        Episodes with ``[N, T, R, ...]`` tensors (advantages zero); their observations are the
        policy's inputs (the latent, if any, after the environment's observation).
    """
    n, r = draws.seeds.shape
    b = n * r
    dtype = next(iter(params.values())).dtype
    obs_dim, act_dim, input_dim = policy.obs_dim, policy.act_dim, policy.input_dim
    env.set_tasks([task for task in tasks for _ in range(r)])
    env_obs = _finite(env.reset([np.random.default_rng(int(s)) for s in draws.seeds.reshape(-1)]))
    # observations go straight into the episodes' [N, T, R] layout (no transposed copy at the end); the
    # policy reads each step's from a contiguous [N, R] buffer. numpy writes both: its float64 -> dtype cast
    # rounds as torch's does, at a fraction of the cost.
    obs_buf = torch.zeros(n, horizon, r, input_dim, dtype=dtype)
    obs_buf_np = obs_buf.numpy()[..., :obs_dim]
    obs = torch.empty(n, r, input_dim, dtype=dtype)
    obs_np = obs.numpy()[..., :obs_dim]
    latent_mean, latent_log_std = policy.task_latent({k: v.detach() for k, v in params.items()})
    shift = None  # with policy.latent_action the environment gets a + [z, 0]; the episodes keep a
    if policy.latent_dim > 0:  # each episode's latent, fixed for the episode: the inputs' last K columns
        z = torch.addcmul(latent_mean.unsqueeze(1), torch.exp(latent_log_std).unsqueeze(1), draws.latent)
        obs[..., obs_dim:] = z
        obs_buf[..., obs_dim:] = z.unsqueeze(1)
        if policy.latent_action:
            shift = z.reshape(b, -1).double().numpy()
    act_buf = torch.zeros(horizon, n, r, act_dim, dtype=dtype)
    rewards = np.zeros((horizon, b))
    masks = np.zeros((horizon, b))
    alive = np.ones(b, dtype=bool)
    success = np.zeros(b, dtype=bool)
    unstable = np.zeros(b, dtype=bool)
    action_np = np.empty((b, act_dim))  # float64 buffer handed to the environment
    log_std = params["log_std"].detach().clamp(min=policy.min_log_std)  # [N, act_dim], state-independent
    std = torch.exp(log_std).view(n, 1, act_dim)
    layers = policy.transposed_layers({k: v.detach() for k, v in params.items()})
    steps = horizon
    if observer is not None:
        observer(StepView(0, np.zeros(b), success.copy(), alive.copy()))
    with torch.no_grad():
        for t in range(horizon):
            obs_np[...] = env_obs.reshape(n, r, obs_dim)  # float64 -> dtype in one copy
            obs_buf_np[:, t] = obs_np
            mean = policy.task_means(layers, obs)
            action = act_buf[t]
            torch.addcmul(mean, std, draws.noise[t], out=action)
            action_np[...] = action.view(b, act_dim).numpy()
            if shift is not None:
                action_np[:, : shift.shape[1]] += shift
            masks[t] = alive
            result = env.step(action_np)
            rewards[t] = result.reward
            if result.unstable.any():
                rewards[t, result.unstable] = 0.0
            if has_success and result.success is not None:
                success |= alive & result.success
            unstable |= alive & result.unstable
            alive &= ~result.terminated
            env_obs = _finite(result.obs)
            if observer is not None:
                observer(StepView(t + 1, np.where(masks[t] > 0.0, rewards[t], 0.0), success.copy(), alive.copy()))
            if not alive.any():
                steps = t + 1
                break
    rewards = np.where(masks > 0.0, rewards, 0.0)  # NaN-safe: nothing counts after an episode ended
    # log-density of each sampled action: the action is mean + std * noise, so z = noise exactly
    logp = (-0.5 * draws.noise[:steps].square() - log_std.view(n, 1, act_dim) - 0.5 * _LOG_2PI).sum(-1)
    if policy.latent_dim > 0:  # q(z) joins the first step's action (metarl.policies.step_log_prob)
        logp[0] += (-0.5 * draws.latent.square() - latent_log_std.unsqueeze(1) - 0.5 * _LOG_2PI).sum(-1)
    log_probs = torch.zeros(n, horizon, r, dtype=dtype)
    log_probs[:, :steps] = logp.transpose(0, 1)

    def per_task(x: np.ndarray) -> Tensor:  # [T, B] -> [N, T, R]
        return torch.from_numpy(x).to(dtype).view(horizon, n, r).transpose(0, 1).contiguous()

    return Episodes(
        obs=obs_buf,
        actions=act_buf.transpose(0, 1).contiguous(),
        rewards=per_task(rewards),
        masks=per_task(masks),
        log_probs=log_probs,
        advantages=torch.zeros(n, horizon, r, dtype=dtype),
        success=torch.from_numpy(success).to(dtype).view(n, r)
        if has_success
        else torch.full((n, r), float("nan"), dtype=dtype),
        unstable=torch.from_numpy(unstable).to(dtype).view(n, r),
    )


class BatchSampler:
    """Collects ``R`` rollouts for each of ``N`` tasks in one batched environment, in this process.

    Args:
        family: The task family.
        policy: The policy architecture (parameters are passed to :meth:`collect`).
        num_threads: Physics threads of the batched environment.
        torch_threads: Torch intra-op threads while collecting (default: ``num_threads``). The
            policy forward runs between physics steps, while the physics threads wait, so it can
            use their cores. The previous count is restored after each collection.
    """

    def __init__(
        self, family: TaskFamily, policy: GaussianMLPPolicy, num_threads: int = 1, torch_threads: int | None = None
    ):
        self.family = family
        self.policy = policy
        self.num_threads = num_threads
        self.torch_threads = num_threads if torch_threads is None else torch_threads
        self.collect_seconds = 0.0  # wall time spent in collect, and the env-steps it produced
        self.collect_steps = 0
        self._envs: dict[int, BatchEnv] = {}

    def use_env(self, env: BatchEnv) -> None:
        """Collects batches of ``env.num_envs`` environments in ``env`` (e.g. a recording wrapper)."""
        old = self._envs.pop(env.num_envs, None)
        if old is not None and old is not env:
            old.close()
        self._envs[env.num_envs] = env

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
            rng: Source of the environments' reset seeds (``N × R`` integers per call).
            generator: Source of the action noise (``T × N × R × act_dim`` normals per call).

        Returns:
            Episodes with ``[N, T, R, ...]`` tensors, ``T`` the family's horizon.
        """
        dtype = next(iter(params.values())).dtype
        policy = self.policy
        draws = draw_noise(
            len(tasks), rollouts, self.family.horizon, policy.act_dim, dtype, rng, generator, policy.latent_dim
        )
        return self.collect_drawn(params, tasks, draws)

    def collect_drawn(self, params: Params, tasks: Sequence[Task], draws: RolloutNoise) -> Episodes:
        """Like :meth:`collect`, with the randomness already drawn (``R`` is ``draws.seeds.shape[1]``).

        A Ray worker runs this on its slice of the tasks with the matching slice of ``draws``.
        """
        n, r = draws.seeds.shape
        if len(tasks) != n:
            raise ValueError(f"got {len(tasks)} tasks for {n} rows of seeds")
        start = time.perf_counter()
        with torch_threads(self.torch_threads):
            episodes = rollout(
                self._env(n * r), self.policy, params, tasks, self.family.horizon, draws, self.family.has_success
            )
        self.collect_seconds += time.perf_counter() - start
        self.collect_steps += episodes.num_steps
        return episodes

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def _finite(obs: np.ndarray) -> np.ndarray:
    """Replaces NaN/Inf (from an environment whose physics blew up; it is masked) by zeros."""
    if np.isfinite(obs).all():
        return obs
    return np.where(np.isfinite(obs), obs, 0.0)
