"""Adaptation videos: the meta-policy and the adapted policy side by side on the same task.

Both policies act in one batched environment of two copies of the task, started from the same
initial state, with their mean actions (no exploration noise), so the difference on screen is the
adaptation alone. Each frame carries the task and the running return of each side. The mp4 is
encoded by imageio's ffmpeg plugin; a small GIF (half size, at most 15 frames per second) goes
beside it. Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from metarl.envs.base import Task, TaskFamily, render_fps
from metarl.policies import GaussianMLPPolicy, Params

PANEL = (320, 256)  # width, height of each side: multiples of 16 for the video encoder
HEADER = 32
GIF_MAX_FPS = 15


@dataclasses.dataclass(frozen=True)
class SideBySide:
    """The frames and scores of one before/after rollout pair.

    Attributes:
        frames: ``[F, HEADER + H, 2 W, 3]`` uint8 frames.
        returns: Undiscounted return of the left (before) and right (after) episode.
        success: Whether each side succeeded, None where the family has no success.
        fps: Frames per second for real-time playback.
    """

    frames: np.ndarray
    returns: tuple[float, float]
    success: tuple[bool, bool] | None
    fps: int


def side_by_side(
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    before: Params,
    after: Params,
    task: Task,
    labels: tuple[str, str],
    seed: int,
) -> SideBySide:
    """Rolls out ``before`` (left) and ``after`` (right) on ``task`` and renders every step.

    Args:
        family: The task family (its batch env must have ``render(index, width, height)``).
        policy: Architecture.
        before: Unbatched parameters of the left policy.
        after: Unbatched parameters of the right policy.
        task: The task both act on.
        labels: Titles of the two panels.
        seed: Seed of the (shared) initial state.
    """
    env = family.make_batch_env(2)
    render: Callable[[int, int, int], np.ndarray] | None = getattr(env, "render", None)
    if render is None:
        env.close()
        raise ValueError(f"{family.name} has no renderer")
    try:
        env.set_tasks([task, task])
        obs = env.reset([np.random.default_rng(seed), np.random.default_rng(seed)])
        params = {k: torch.stack([before[k].detach(), after[k].detach()]) for k in before}
        dtype = params["log_std"].dtype
        totals, done = np.zeros(2), np.zeros(2, dtype=bool)
        success = np.zeros(2, dtype=bool)
        frames = [_compose(render, labels, totals, task)]
        for _ in range(family.horizon):
            with torch.no_grad():
                mean, _ = policy.task_distribution(params, torch.from_numpy(obs).to(dtype).view(2, 1, -1))
            result = env.step(mean.view(2, -1).numpy().astype(np.float64))
            totals += np.where(done | result.unstable, 0.0, result.reward)
            if result.success is not None:
                success |= ~done & result.success
            done |= result.terminated
            obs = np.where(np.isfinite(result.obs), result.obs, 0.0)
            frames.append(_compose(render, labels, totals, task))
            if done.all():
                break
    finally:
        env.close()
    return SideBySide(
        frames=np.stack(frames),
        returns=(float(totals[0]), float(totals[1])),
        success=(bool(success[0]), bool(success[1])) if family.has_success else None,
        fps=render_fps(family.control_dt),
    )


def _compose(
    render: Callable[[int, int, int], np.ndarray], labels: tuple[str, str], totals: np.ndarray, task: Task
) -> np.ndarray:
    width, height = PANEL
    panels = [np.asarray(render(i, width, height), dtype=np.uint8) for i in range(2)]
    canvas = Image.new("RGB", (2 * width, HEADER + height), (255, 255, 255))
    for i, panel in enumerate(panels):
        canvas.paste(Image.fromarray(panel), (i * width, HEADER))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    for i, label in enumerate(labels):
        draw.text((i * width + 6, 2), f"{label}   return {totals[i]:.1f}", fill=(0, 0, 0), font=font)
    draw.text((6, 17), _short(task.to_string(), 90), fill=(90, 90, 90), font=font)
    draw.line([(width, HEADER), (width, HEADER + height)], fill=(255, 255, 255), width=2)
    return np.asarray(canvas)


def _short(text: str, limit: int) -> str:
    """``text`` with long decimals rounded to 3 places, cut to ``limit`` characters."""
    text = re.sub(r"-?\d+\.\d{4,}", lambda m: f"{float(m.group()):.3f}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_video(video: SideBySide, path: Path, gif: bool = True) -> list[Path]:
    """Writes ``path`` (mp4) and, with ``gif``, ``path`` with suffix ``.gif``; returns the paths.

    Raises:
        OSError: If a file cannot be written; no partial file is left behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path]
    frames: list[Any] = list(video.frames)
    _atomic(path, lambda tmp: imageio.mimwrite(tmp, frames, fps=video.fps, macro_block_size=16))
    if gif:
        step = max(1, round(video.fps / GIF_MAX_FPS))
        small: list[Any] = [np.asarray(Image.fromarray(f).reduce(2)) for f in video.frames[::step]]
        gif_path = path.with_suffix(".gif")
        _atomic(gif_path, lambda tmp: imageio.mimwrite(tmp, small, duration=1000 * step / video.fps, loop=0))
        written.append(gif_path)
    return written


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
