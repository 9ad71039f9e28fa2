"""Adaptation videos: one panel per number of gradient steps, side by side, on the same task.

Every panel acts in one batched environment of copies of the task, all reset from the same
seed (the same start state), with its policy's mean actions (no exploration noise; with
``explore``, the same noise draws in every panel), so the difference on screen is the adaptation
alone. The episodes run through the sampler's own
:func:`~metarl.samplers.rollout`, whose observer draws a frame after the reset and after every
step. Each panel is captioned with its number of steps, its running return, a success marker
where the family has one, and the task.

Frames stream into the mp4 (imageio's ffmpeg plugin) as they are drawn, so a long video does not
sit in memory; a small GIF (at most :data:`GIF_WIDTH` pixels wide and :data:`GIF_MAX_FPS` frames
per second) goes beside it. Both are written under temporary names and renamed into place: a
render that fails leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from metarl.checkpoint import Checkpoint
from metarl.envs.base import RenderableBatchEnv, Task, TaskFamily, render_fps
from metarl.episodes import Episodes
from metarl.experiment import Experiment, load_experiment
from metarl.policies import GaussianMLPPolicy, Params
from metarl.rollouts import AdaptationSettings, Streams, collect_adaptation, derive_seed
from metarl.samplers import RolloutNoise, StepView, rollout, torch_threads

HEADER = 48  # caption rows above each panel (pixels); with a panel side of a multiple of 16, frames suit the encoder
GIF_WIDTH = 480
GIF_MAX_FPS = 10
PREVIEW_FRAMES = 5
MAX_PANELS = 6
_FONT_SIZE = 13
_EXPLORE_SALT = 0xE8F10  # key of the action noise of an exploring video
_SUCCESS = (20, 140, 50)
_MUTED = (110, 110, 110)


class RenderError(ValueError):
    """What was asked cannot be rendered (a step the checkpoint does not hold, …); one line."""


@dataclasses.dataclass(frozen=True)
class Panel:
    """One side of a video: a policy and its caption.

    Attributes:
        label: The caption's first line, e.g. ``"after 3 steps"``.
        params: Unbatched policy parameters.
    """

    label: str
    params: Params


@dataclasses.dataclass(frozen=True)
class Recording:
    """What a render wrote and how each panel scored.

    Attributes:
        paths: The files written (the mp4, then the GIF if asked).
        frames: Frames in the mp4 (the start state and one per step until every episode ended).
        frame_size: ``(width, height)`` of a frame (pixels).
        fps: Frames per second for real-time playback (the family's control rate).
        labels: Each panel's label, left to right.
        returns: Each panel's undiscounted return.
        success: Whether each panel's episode succeeded, None where the family has no success.
        preview: ``[H, W, 3]`` uint8: :data:`PREVIEW_FRAMES` small frames stacked top to bottom
            (what TensorBoard shows).
        seconds: Wall time of the rollout, drawing and encoding.
    """

    paths: tuple[Path, ...]
    frames: int
    frame_size: tuple[int, int]
    fps: int
    labels: tuple[str, ...]
    returns: tuple[float, ...]
    success: tuple[bool, ...] | None
    preview: np.ndarray
    seconds: float


def step_label(steps: int) -> str:
    """``"before adaptation"``, ``"after 1 step"``, ``"after 3 steps"``."""
    if steps == 0:
        return "before adaptation"
    return f"after {steps} step{'s' if steps != 1 else ''}"


class CheckpointVideo(NamedTuple):
    """What :func:`render_checkpoint` showed and wrote.

    Attributes:
        family: The family's name.
        task: The task every panel acts on.
        recording: The files and each panel's score.
    """

    family: str
    task: Task
    recording: Recording


def render_checkpoint(
    path: Path,
    task: str | Task | None = None,
    steps: Sequence[int] | None = None,
    out: Path | None = None,
    *,
    rollouts: int | None = None,
    seed: int = 0,
    size: int = 480,
    gif: bool = True,
    progress: bool = False,
    explore: bool = False,
) -> CheckpointVideo:
    """``metarl render``: the policy of a checkpoint before and after adapting to a task.

    A meta-trained checkpoint is adapted first (``max(steps)`` gradient steps of ``rollouts``
    rollouts, the run's ``inner.rollouts`` by default, from :meth:`Streams.from_seed(seed)
    <metarl.rollouts.Streams.from_seed>`); an adapted checkpoint (``metarl adapt --save``) is shown
    as it was adapted, without adapting again.

    Args:
        path: The checkpoint.
        task: The task, or what a user typed for it; None for the adapted checkpoint's own, or
            the family's first held-out task.
        steps: Step counts, one panel each; None for ``0, 1`` (an adapted checkpoint: ``0, K``).
        out: The mp4 path (default ``videos/<family>-<time>.mp4``); see :func:`render_adaptation`
            for the rest.

    Raises:
        CheckpointError, ConfigError, TaskError: A checkpoint, configuration or task that cannot
            be used (one line).
        RenderError: An adapted checkpoint asked for another task or for more steps than it holds.
        OSError: The video cannot be written (nothing is left behind).
    """
    exp, ckpt = load_experiment(path)
    try:
        chosen = exp.family.load_task(task) if isinstance(task, str) else task
        chosen, steps, step_params = _checkpoint_steps(exp, ckpt, chosen, steps, rollouts, seed)
    finally:
        exp.sampler.close()
    out = out or Path("videos") / f"{exp.family.name}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
    recording = render_adaptation(
        exp.family,
        exp.policy,
        chosen,
        step_params,
        steps,
        out,
        seed=seed,
        size=size,
        gif=gif,
        progress=progress,
        explore=explore,
    )
    return CheckpointVideo(exp.family.name, chosen, recording)


def _checkpoint_steps(
    exp: Experiment,
    ckpt: Checkpoint,
    task: Task | None,
    steps: Sequence[int] | None,
    rollouts: int | None,
    seed: int,
) -> tuple[Task, list[int], list[Params]]:
    """The task, the step counts and the parameters after 0..K steps that a checkpoint's video shows."""
    config, family = exp.config, exp.family
    record = ckpt.adaptation
    if record is None:
        task = task if task is not None else family.test_tasks()[0]
        steps = list(steps) if steps is not None else [0, 1]
        settings = AdaptationSettings.evaluation(config, max(steps), rollouts or config.inner.rollouts)
        adaptation = collect_adaptation(exp.sampler, ckpt.params, [task], settings, Streams.from_seed(seed))
        return task, steps, adaptation.task_params(0)
    own = family.task_from_dict(record.task)
    if task is not None and task != own:
        raise RenderError(
            f"the checkpoint is adapted to {own.to_string()!r}, not {task.to_string()!r}; "
            f"render the checkpoint it came from ({record.source}) to adapt to another task"
        )
    steps = list(steps) if steps is not None else sorted({0, record.steps})
    if max(steps) > record.steps:
        raise RenderError(
            f"the checkpoint holds the policy after 0..{record.steps} steps, not {max(steps)}; "
            f"render the checkpoint it came from ({record.source}) to adapt further"
        )
    return own, steps, list(record.step_params)


def render_adaptation(
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    task: Task,
    step_params: Sequence[Params],
    steps: Sequence[int],
    out: Path,
    *,
    seed: int,
    size: int = 480,
    gif: bool = True,
    progress: bool = False,
    explore: bool = False,
) -> Recording:
    """Renders the policy after each of ``steps`` gradient steps, one panel each, into ``out``.

    Args:
        family: The task family (its batch env must be a
            :class:`~metarl.envs.base.RenderableBatchEnv`).
        policy: Architecture.
        task: The task every panel acts on (the one adapted to).
        step_params: Unbatched parameters after 0, 1, …, K gradient steps, from
            :meth:`Adaptation.task_params <metarl.rollouts.Adaptation.task_params>` or an
            adapted checkpoint's :class:`~metarl.checkpoint.AdaptationRecord`.
        steps: The step counts to show, left to right, each at most K.
        out: The mp4 path.
        seed: Seed of the start state (shared by every panel).
        size: Side of each square panel (pixels, a multiple of 16).
        gif: Also write ``out`` with suffix ``.gif``.
        progress: Show a progress bar of the frames drawn.
        explore: Act as the policy acts in training and in evaluations, with its own action
            noise (the same standard-normal draws from ``seed`` in every panel, scaled by each
            panel's std), instead of its mean action.

    Raises:
        ValueError: A step count beyond K, or a family that cannot render.
        OSError: A file cannot be written (nothing is left behind).
    """
    for k in steps:
        if not 0 <= k < len(step_params):
            raise ValueError(f"step {k} is not available; allowed: 0..{len(step_params) - 1}")
    panels = [Panel(step_label(k), step_params[k]) for k in steps]
    return render_panels(
        family, policy, task, panels, out, seed=seed, size=size, gif=gif, progress=progress, explore=explore
    )


def render_panels(
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    task: Task,
    panels: Sequence[Panel],
    out: Path,
    *,
    seed: int,
    size: int = 480,
    gif: bool = True,
    progress: bool = False,
    explore: bool = False,
) -> Recording:
    """Rolls out every panel's policy on ``task`` from one start state and writes the video.

    See :func:`render_adaptation` for the arguments; ``panels`` says what each side shows.
    """
    if not 1 <= len(panels) <= MAX_PANELS:
        raise ValueError(f"{len(panels)} panels is out of range; allowed: 1..{MAX_PANELS}")
    if size < 16 or size % 16:
        raise ValueError(f"size={size} is not allowed; allowed: a multiple of 16, at least 16")
    start = time.perf_counter()
    env = family.make_batch_env(len(panels))
    try:
        if not isinstance(env, RenderableBatchEnv):
            raise ValueError(f"{family.name} has no renderer")
        writer = _VideoFiles(out, render_fps(family.control_dt), gif)
        try:
            episodes = _record(env, family, policy, task, panels, seed, size, writer, progress, explore)
            paths = writer.finish()
        except BaseException:
            writer.abort()
            raise
    finally:
        env.close()
    returns = episodes.returns()[:, 0]
    success = episodes.success[:, 0] > 0.5
    return Recording(
        paths=tuple(paths),
        frames=writer.frames,
        frame_size=(len(panels) * size, HEADER + size),
        fps=writer.fps,
        labels=tuple(p.label for p in panels),
        returns=tuple(float(r) for r in returns.tolist()),
        success=tuple(bool(s) for s in success.tolist()) if family.has_success else None,
        preview=writer.preview(),
        seconds=time.perf_counter() - start,
    )


def _record(
    env: RenderableBatchEnv,
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    task: Task,
    panels: Sequence[Panel],
    seed: int,
    size: int,
    writer: _VideoFiles,
    progress: bool,
    explore: bool,
) -> Episodes:
    """Runs the sampler's rollout (mean actions unless ``explore``), drawing every state into ``writer``;
    returns the episodes."""
    n, horizon = len(panels), family.horizon
    params = {k: torch.stack([p.params[k].detach() for p in panels]) for k in panels[0].params}
    dtype = params["log_std"].dtype
    noise = torch.zeros(horizon, 1, 1, policy.act_dim, dtype=dtype)  # zero noise: the mean action
    latent = torch.zeros(1, 1, policy.latent_dim, dtype=dtype)  # and the latent's mean
    if explore:  # the same draws in every panel, so panels differ only by their policies
        generator = torch.Generator().manual_seed(derive_seed(seed, _EXPLORE_SALT))
        noise.normal_(generator=generator)
        latent.normal_(generator=generator)
    draws = RolloutNoise(  # one seed for every panel: the same start state
        seeds=np.full((n, 1), seed, dtype=np.int64),
        noise=noise.expand(horizon, n, 1, policy.act_dim).contiguous(),
        latent=latent.expand(n, 1, policy.latent_dim).contiguous(),
    )
    captions = _Captions([p.label for p in panels], task.to_string(), size, family.has_success)
    totals = np.zeros(n)
    # one torch thread: a forward of a few rows is quicker alone than shared with the renderer's threads
    with torch_threads(1), tqdm(total=horizon + 1, unit="frame", desc="render", disable=not progress) as bar:

        def draw(view: StepView) -> None:
            totals[:] += view.reward
            images = [np.asarray(env.render(i, size, size), dtype=np.uint8) for i in range(n)]
            writer.append(captions.compose(images, totals, view.success if family.has_success else None))
            bar.update(1)

        return rollout(env, policy, params, [task] * n, horizon, draws, family.has_success, observer=draw)


class _Captions:
    """Lays panels side by side under their captions: label, running return, success, task."""

    def __init__(self, labels: Sequence[str], task: str, size: int, has_success: bool):
        self.labels = list(labels)
        self.size = size
        self.font = ImageFont.load_default(size=_FONT_SIZE)
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        self.task = _fit(probe, _short(task), self.font, size - 12)
        self.has_success = has_success

    def compose(self, images: Sequence[np.ndarray], totals: np.ndarray, success: np.ndarray | None) -> np.ndarray:
        size = self.size
        canvas = Image.new("RGB", (len(images) * size, HEADER + size), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for i, image in enumerate(images):
            x = i * size
            canvas.paste(Image.fromarray(image), (x, HEADER))
            draw.text((x + 6, 2), self.labels[i], fill=(0, 0, 0), font=self.font)
            score = f"return {totals[i]:.1f}"
            draw.text((x + size - 6 - draw.textlength(score, font=self.font), 2), score, fill=(0, 0, 0), font=self.font)
            if success is not None:
                won = bool(success[i])
                disc = (x + 7, 20, x + 17, 30)
                draw.ellipse(disc, fill=_SUCCESS if won else None, outline=_SUCCESS if won else _MUTED, width=2)
                text = "success" if won else "no success yet"
                draw.text((x + 22, 17), text, fill=_SUCCESS if won else _MUTED, font=self.font)
            draw.text((x + 6, 32), self.task, fill=_MUTED, font=self.font)
            if i:
                draw.line([(x, 0), (x, HEADER + size)], fill=(255, 255, 255), width=2)
        return np.asarray(canvas)


def _short(text: str) -> str:
    """``text`` with long decimals rounded to 3 places."""
    return re.sub(r"-?\d+\.\d{4,}", lambda m: f"{float(m.group()):.3f}", text)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> str:
    """``text``, cut short with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


class _VideoFiles:
    """Streams frames into a temporary mp4 (and collects small GIF frames); renamed into place at the end."""

    def __init__(self, path: Path, fps: int, gif: bool):
        if path.suffix != ".mp4":
            raise ValueError(f"{str(path)!r} must end in .mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.frames = path, fps, 0
        self.gif_path = path.with_suffix(".gif") if gif else None
        self._tmp = _temporary(path)
        self._writer: Any = imageio.get_writer(str(self._tmp), format="FFMPEG", fps=fps, macro_block_size=16)
        self._gif_step = max(1, math.ceil(fps / GIF_MAX_FPS))
        self._small: list[np.ndarray] = []

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        if self.frames % self._gif_step == 0:
            factor = max(1, math.ceil(frame.shape[1] / GIF_WIDTH))
            self._small.append(np.asarray(Image.fromarray(frame).reduce(factor)))
        self.frames += 1

    def preview(self) -> np.ndarray:
        """:data:`PREVIEW_FRAMES` of the small frames, evenly spaced, stacked top to bottom."""
        picks = np.unique(np.linspace(0, len(self._small) - 1, PREVIEW_FRAMES).round().astype(int))
        return np.concatenate([self._small[i] for i in picks], axis=0)

    def finish(self) -> list[Path]:
        self._writer.close()
        os.replace(self._tmp, self.path)
        written = [self.path]
        if self.gif_path is not None:
            tmp = _temporary(self.gif_path)
            try:
                frames: list[Any] = self._small
                imageio.mimwrite(tmp, frames, duration=1000 * self._gif_step / self.fps, loop=0)
                os.replace(tmp, self.gif_path)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(self.gif_path)
        return written

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the encoder may be broken already (disk full): the file is what matters
            self._writer.close()
        self._tmp.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
