"""Evaluation videos of a training run: ``RUN_DIR/videos/iter_NNNN.mp4`` and a frame strip in TensorBoard.

Every ``log.video_every`` iterations, and at the last, the current meta-policy adapts to one
fixed held-out task (the family's first test task) as the evaluation does (``run.eval_steps``
steps of ``run.eval_rollouts`` rollouts), and a video shows it before and after, side by side.
Its rollouts draw from streams seeded by the run's seed and the iteration, never from
training's: recording changes nothing in the run, and a resumed run writes the same videos.
A strip of a few small frames goes beside each mp4 (``iter_NNNN.png``) and into TensorBoard; on
resume TensorBoard is rebuilt from those files, as its scalars are from ``progress.csv``.

A video that cannot be made (no OpenGL, a full disk) is reported once and the run goes on
without videos: it never stops training.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from metarl.config import Config
from metarl.experiment import Experiment
from metarl.logger import RunLogger
from metarl.policies import Params
from metarl.rollouts import VIDEO_SALT, AdaptationSettings, Streams, collect_adaptation, derive_seed
from metarl.video import Recording, render_adaptation

PANEL_SIZE = 320  # pixels: two panels and their captions make a 640 x 368 video
TAG = "video/before_after"
_NAME = re.compile(r"iter_(\d+)\.png")


def video_path(run_dir: Path, iteration: int) -> Path:
    """``RUN_DIR/videos/iter_NNNN.mp4``."""
    return run_dir / "videos" / f"iter_{iteration:04d}.mp4"


class EvaluationVideos:
    """Decides when a training run records a video, records it, and survives failing to.

    Args:
        run_dir: The run directory.
        config: The run's configuration (``log.video_every``, the evaluation settings, the seed).
        warn: Prints one line for the user (the run's log).
    """

    def __init__(self, run_dir: Path, config: Config, warn: Callable[[str], None]):
        self.run_dir = run_dir
        self.config = config
        self.enabled = config.log.video_every > 0
        self._warn = warn

    def due(self, iteration: int, final: bool) -> bool:
        """Whether iteration ``iteration`` (the run's last if ``final``) gets a video."""
        every = self.config.log.video_every
        return self.enabled and (final or iteration % every == 0)

    def record(self, exp: Experiment, params: Params, iteration: int, logger: RunLogger) -> Recording | None:
        """Writes the video of ``params`` at ``iteration`` and shows its strip in TensorBoard.

        Returns:
            The recording, or None when it failed (reported once; no later video is tried).
        """
        recording = self._write(exp, params, iteration)
        if recording is not None:
            logger.image(TAG, recording.preview, iteration)
        return recording

    def _write(self, exp: Experiment, params: Params, iteration: int) -> Recording | None:
        """The mp4 and the strip of ``iteration``, or None when they cannot be made (reported once)."""
        try:
            recording = self._render(exp, params, iteration)
            _write_png(video_path(self.run_dir, iteration).with_suffix(".png"), recording.preview)
        except Exception as err:  # whatever rendering raises (no GL, disk full), training must go on
            self.enabled = False
            reason = " ".join(str(err).split()) or type(err).__name__
            self._warn(
                f"warning: no evaluation video at iteration {iteration} ({reason[:300]}); "
                "the run goes on without videos"
            )
            return None
        return recording

    def _render(self, exp: Experiment, params: Params, iteration: int) -> Recording:
        cfg = self.config
        task = exp.family.test_tasks()[0]
        seed = video_seed(cfg.run.seed, iteration)
        settings = AdaptationSettings.evaluation(cfg)
        adaptation = collect_adaptation(exp.sampler, params, [task], settings, Streams.from_seed(seed))
        return render_adaptation(
            exp.family,
            exp.policy,
            task,
            adaptation.task_params(0),
            sorted({0, settings.steps}),
            video_path(self.run_dir, iteration),
            seed=seed,
            size=PANEL_SIZE,
            gif=False,
        )

    def restore(self, exp: Experiment, params: Params, iteration: int, logger: RunLogger) -> None:
        """Picks up the videos of a resumed run, whose checkpoint is at ``iteration``.

        Removes the temporary files of a run killed while it wrote a video, writes the video of
        ``iteration`` again if it is due and missing (the run was killed during it; ``params``
        are that iteration's), and shows the strips of iterations ``1..iteration`` in TensorBoard
        again (the resume rebuilt it).
        """
        folder = self.run_dir / "videos"
        if not folder.is_dir():
            return
        for path in folder.glob(".iter_*.tmp-*"):
            path.unlink(missing_ok=True)
        if iteration and self.due(iteration, final=False) and not video_path(self.run_dir, iteration).is_file():
            self._write(exp, params, iteration)
        for path in sorted(folder.iterdir()):
            found = _NAME.fullmatch(path.name)
            if found is None or int(found.group(1)) > iteration:
                continue
            try:
                logger.image(TAG, np.asarray(imageio.imread(path)), int(found.group(1)))
            except Exception as err:  # an unreadable strip costs its picture, not the run
                self._warn(f"warning: cannot show {str(path)!r} in TensorBoard ({' '.join(str(err).split())[:200]})")


def video_seed(seed: int, iteration: int) -> int:
    """The seed of the video at ``iteration`` (independent of the training and evaluation streams)."""
    return derive_seed(seed, iteration, VIDEO_SALT)


def _write_png(path: Path, image: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    try:
        imageio.imwrite(tmp, image)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
