"""The meta-training loop and its run directory.

One iteration: sample tasks → support rollouts → adapt → query rollouts → meta-update → log;
every ``run.eval_every`` iterations an adaptation curve on the family's validation tasks (they
choose ``best.pt``) and on its held-out test tasks (reported, never used to choose anything),
plots refreshed; a checkpoint when the run starts and after every iteration (``latest.pt``),
every ``run.checkpoint_every`` (``iter_000050.pt``), at each new best validation return
(``best.pt``) and at the end (``final.pt``).

Randomness: one ``SeedSequence(run.seed)`` spawns the task stream, the environment stream and
the torch generator; their states are in every checkpoint, so a resumed run continues the same
streams and ends bit-identical to an uninterrupted one. Evaluations use their own streams,
derived from the seed, the iteration and the task set, and never disturb training.

Stopping: SIGINT/SIGTERM let the current iteration finish, write its checkpoint and return exit
code 130/143; a second signal abandons the iteration at once (the last checkpoint stays the
previous iteration's, which is consistent with ``progress.csv`` after resume). A failed write
(disk full) keeps the previous checkpoint and raises :class:`TrainingError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

import numpy as np
import torch
from tqdm import tqdm

from metarl.checkpoint import (
    Checkpoint,
    CheckpointError,
    config_mismatches,
    generator_state,
    load_checkpoint,
    restore_generator,
    save_checkpoint,
    versions,
)
from metarl.config import Config, ConfigError, apply_overrides, config_from_dict, parse_override, read_yaml
from metarl.envs.base import Task
from metarl.evaluate import AdaptationReport, evaluate_adaptation
from metarl.experiment import build_experiment, check_architecture, saved_config
from metarl.logger import RunLogger, read_progress
from metarl.maml import MetaBatch, meta_update
from metarl.plots import plot_adaptation, plot_learning_curve
from metarl.policies import GaussianMLPPolicy, Params
from metarl.rollouts import EVAL_SALT, AdaptationSettings, Streams, collect_adaptation, derive_seed
from metarl.video_log import EvaluationVideos


class TrainingError(RuntimeError):
    """The run cannot go on (disk full, unwritable run directory); the message is one line."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """How a call to :meth:`Trainer.train` ended.

    Attributes:
        iteration: Iterations completed and saved in ``checkpoints/latest.pt``.
        exit_code: 0, or 128 + signal number when a signal stopped the run.
        last_eval: The last evaluation on the held-out test tasks, if any.
    """

    iteration: int
    exit_code: int
    last_eval: AdaptationReport | None


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Creates an empty run directory (refusing to clobber an existing run unless asked)."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"run directory {str(run_dir)!r} already holds a run; "
                "use `metarl train --resume DIR` to continue it or --overwrite to replace it"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def _warm_start(path: Path, policy: GaussianMLPPolicy) -> Params:
    """The parameters of the checkpoint at ``path`` (``policy.init_from``), checked against ``policy``;
    weights and biases this policy keeps at 0 (``policy.latent_input=false``, ``policy.latent_open_loop``,
    ``policy.latent_centred``; the latter also the latent's prior mean) are
    zeroed there, so the policy is what its options say even when the checkpoint's was not.

    Raises:
        CheckpointError: A missing, corrupt or foreign file, or parameters of another shape (one line).
    """
    checkpoint = load_checkpoint(path)
    check_architecture(checkpoint, policy, path)
    params = {k: v.detach().clone() for k, v in checkpoint.params.items()}
    for name, mask in policy.fixed.items():
        if name.startswith("layers."):
            params[name] = params[name] * mask.to(params[name].dtype)
    for name, mask in policy.meta_fixed.items():  # the latent's prior mean, held at 0
        params[name] = params[name] * mask.to(params[name].dtype)
    return params


class Trainer:
    """Owns a run directory and the state of one meta-training run.

    Use :meth:`create` for a new run and :meth:`resume` to continue one.
    """

    def __init__(
        self,
        run_dir: Path,
        config: Config,
        checkpoint: Checkpoint | None,
        quiet: bool = False,
        out: TextIO = sys.stdout,
    ):
        self.run_dir = run_dir
        self.config = config
        self.quiet = quiet
        self.out = out
        self.exp = build_experiment(config)
        self.resumed = checkpoint is not None
        if checkpoint is None:
            seq = np.random.SeedSequence(config.run.seed)
            task_seq, env_seq, torch_seq = seq.spawn(3)
            self.task_rng = np.random.default_rng(task_seq)
            self.env_rng = np.random.default_rng(env_seq)
            self.generator = torch.Generator().manual_seed(int(torch_seq.generate_state(1, np.uint64)[0]))
            self.params: Params = self.exp.policy.init_params(self.generator)  # drawn either way: same streams
            if config.policy.init_from:
                self.params = _warm_start(Path(config.policy.init_from), self.exp.policy)
            self.iteration = 0
            self.best_validation = -math.inf
        else:
            check_architecture(checkpoint, self.exp.policy, run_dir / "checkpoints" / "latest.pt")
            self.params = {k: v.clone() for k, v in checkpoint.params.items()}
            try:
                self.task_rng = restore_generator(checkpoint.rng["task"])
                self.env_rng = restore_generator(checkpoint.rng["env"])
                self.generator = torch.Generator()
                self.generator.set_state(checkpoint.rng["torch"])
            except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
                raise CheckpointError(f"the checkpoint has a malformed random state ({err!r})") from None
            self.iteration = checkpoint.iteration
            self.best_validation = checkpoint.best_validation
        self._signal: int | None = None
        self._protect_depth = 0  # > 0 while the CSV row and checkpoints are written: a second signal waits
        self._abandon = False
        self.saved_iteration = self.iteration  # the iteration of checkpoints/latest.pt

    @classmethod
    def create(cls, config: Config, run_dir: Path, *, overwrite: bool = False, quiet: bool = False) -> Trainer:
        """Starts a new run in ``run_dir`` and writes its resolved ``config.yaml``."""
        trainer = cls(run_dir, config, None, quiet=quiet)  # fails before touching the disk
        prepare_run_dir(run_dir, overwrite)
        try:
            (run_dir / "config.yaml").write_text(config.to_yaml())
        except OSError as err:
            raise TrainingError(f"cannot write to the run directory: {err}") from None
        trainer._save(["latest.pt"])  # a run killed during its first iteration can be resumed too
        return trainer

    @classmethod
    def resume(cls, run_dir: Path, *, overrides: Sequence[str] = (), quiet: bool = False) -> Trainer:
        """Continues the run in ``run_dir`` from ``checkpoints/latest.pt``.

        Only ``run.iterations`` may be overridden (to extend a run); everything else must stay
        as the checkpoint was trained.
        """
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.yaml)")
        for text in overrides:
            keys, _ = parse_override(text)
            if keys != ["run", "iterations"]:
                raise ConfigError(f"--set {text!r}: on --resume only run.iterations may change")
        config = config_from_dict(apply_overrides(read_yaml(run_dir / "config.yaml"), overrides))
        latest = run_dir / "checkpoints" / "latest.pt"
        checkpoint = load_checkpoint(latest)
        saved = saved_config(checkpoint, latest)
        mismatches = config_mismatches(saved, config.to_dict(), ignore=("run.iterations",))
        if mismatches:
            raise CheckpointError(
                f"checkpoint {str(latest)!r} was not trained with {str(run_dir / 'config.yaml')!r}: "
                + "; ".join(mismatches)
            )
        if checkpoint.iteration > config.run.iterations:
            raise ConfigError(
                f"run.iterations={config.run.iterations} is below the {checkpoint.iteration} iterations "
                "already done; allowed: that many or more"
            )
        trainer = cls(run_dir, config, checkpoint, quiet=quiet)
        changed = sorted(k for k, v in versions().items() if checkpoint.versions.get(k) != v)
        if changed and not quiet:
            was = ", ".join(f"{k} {checkpoint.versions.get(k)} -> {versions()[k]}" for k in changed)
            print(
                f"warning: the run was written with other package versions ({was}); "
                "it continues, but may not match an uninterrupted run bit for bit",
                file=sys.stderr,
            )
        if overrides:
            try:
                (run_dir / "config.yaml").write_text(config.to_yaml())
            except OSError as err:
                raise TrainingError(f"cannot write to the run directory: {err}") from None
        return trainer

    # ------------------------------------------------------------------ the loop

    def train(self) -> RunSummary:
        """Runs the remaining iterations; stops cleanly after the current one on SIGINT/SIGTERM."""
        cfg = self.config
        try:
            logger = RunLogger(self.run_dir, cfg.log.tensorboard, resume_after=self.iteration if self.resumed else None)
        except OSError as err:
            self.exp.sampler.close()
            raise TrainingError(f"cannot write to the run directory: {err}") from None
        videos = EvaluationVideos(self.run_dir, cfg, warn=lambda line: tqdm.write(line, file=sys.stderr))
        if self.resumed:
            videos.restore(self.exp, self.params, self.iteration, logger)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(
            total=cfg.run.iterations,
            initial=self.iteration,
            unit="it",
            dynamic_ncols=True,
            disable=self.quiet or not sys.stderr.isatty(),
            desc=cfg.family.name,
        )
        last_eval: AdaptationReport | None = None
        try:
            while self.iteration < cfg.run.iterations and self._signal is None:
                metrics = self._iteration()
                self.iteration += 1
                final = self.iteration == cfg.run.iterations
                every = cfg.run.eval_every
                if final or (every and self.iteration % every == 0):
                    for which, report in zip(("valid", "test"), self._evaluate(), strict=True):
                        metrics[f"{which}/pre_return"] = report.steps[0].return_mean
                        metrics[f"{which}/post_return"] = report.steps[-1].return_mean
                        metrics[f"{which}/post_success"] = report.steps[-1].success_rate
                        last_eval = report  # the test tasks' report, the one to show
                with self._protected():  # the CSV row and the checkpoint: both or (after resume) neither
                    logger.log(self.iteration, metrics)
                    self._checkpoint(final, metrics.get("valid/post_return"))
                if last_eval is not None and metrics.get("test/post_return") is not None:
                    self._plots(last_eval)
                    self._report(metrics, bar)
                if videos.due(self.iteration, final):  # after the checkpoint: a failed video loses nothing
                    videos.record(self.exp, self.params, self.iteration, logger)
                bar.set_postfix_str(
                    f"pre {metrics['adapt/pre_return']:.1f} post {metrics['adapt/post_return']:.1f} "
                    f"{metrics['time/iteration_s']:.2f}s/it"
                )
                bar.update(1)
        except KeyboardInterrupt:
            if self._signal is None:  # a KeyboardInterrupt that is not ours (no handler ran)
                raise
        except OSError as err:
            raise TrainingError(f"cannot write to the run directory: {err}; stopping") from None
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.exp.sampler.close()
            with contextlib.suppress(OSError):
                logger.close()
        exit_code = 128 + self._signal if self._signal is not None else 0
        if self._signal is not None and not self.quiet:
            print(
                f"stopped by signal {self._signal} after iteration {self.saved_iteration}; "
                f"resume with: metarl train --resume {self.run_dir}",
                file=self.out,
            )
        return RunSummary(self.saved_iteration, exit_code, last_eval)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signal is None:
            self._signal = signum  # finish the iteration, then stop
            return
        self._abandon = True  # a second signal: abandon the iteration at once
        if self._protect_depth == 0:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def _protected(self) -> Iterator[None]:
        """A section that a second signal does not interrupt (it takes effect at the end)."""
        self._protect_depth += 1
        try:
            yield
        finally:
            self._protect_depth -= 1
        if self._abandon and self._protect_depth == 0:
            raise KeyboardInterrupt

    def _iteration(self) -> dict[str, float | None]:
        cfg, exp = self.config, self.exp
        start = time.perf_counter()
        tasks = exp.family.sample_tasks(cfg.outer.meta_batch_size, self.task_rng)
        settings = AdaptationSettings.training(cfg)
        batches = collect_adaptation(
            exp.sampler, self.params, tasks, settings, Streams(self.env_rng, self.generator)
        ).episodes
        sampled = time.perf_counter()
        batch = MetaBatch(tuple(batches[:-1]), batches[-1])
        self.params, stats = meta_update(exp.policy, self.params, batch, cfg.inner, cfg.outer)
        done = time.perf_counter()
        steps = sum(b.num_steps for b in batches)
        return {
            "adapt/pre_return": batches[0].returns().mean().item(),
            "adapt/post_return": batches[-1].returns().mean().item(),
            "adapt/pre_success": batches[0].success_rate(),
            "adapt/success": batches[-1].success_rate(),
            "trpo/surrogate_before": stats.loss_before,
            "trpo/surrogate_improvement": stats.improvement,
            "trpo/kl": stats.kl,
            "trpo/line_search_steps": float(stats.line_search_steps),
            "trpo/rejected": float(not stats.accepted),
            "trpo/nonfinite": float(stats.nonfinite),
            "trpo/grad_norm": stats.grad_norm,
            "physics/unstable_episodes": float(sum(b.unstable.sum().item() for b in batches)),
            "sampler/steps_per_s": steps / max(sampled - start, 1e-9),
            "time/sampling_s": sampled - start,
            "time/update_s": done - sampled,
            "time/iteration_s": done - start,
        }

    def _evaluate(self) -> tuple[AdaptationReport, AdaptationReport]:
        """Adaptation curves on the validation tasks (they choose ``best.pt``) and on the test tasks."""
        family = self.exp.family
        return self._adaptation(family.validation_tasks(), "valid"), self._adaptation(family.test_tasks(), "test")

    def _adaptation(self, tasks: Sequence[Task], which: str) -> AdaptationReport:
        cfg = self.config
        # the test set's seed is the one runs used before validation sets
        seed = derive_seed(cfg.run.seed, self.iteration, EVAL_SALT[which])
        return evaluate_adaptation(self.exp.sampler, self.params, tasks, AdaptationSettings.evaluation(cfg), seed)

    # ------------------------------------------------------------------ side effects

    def _checkpoint(self, final: bool, validation_return: float | None) -> None:
        cfg = self.config
        is_best = validation_return is not None and validation_return > self.best_validation
        if validation_return is not None and is_best:
            self.best_validation = validation_return
        names = []
        if cfg.run.checkpoint_every and self.iteration % cfg.run.checkpoint_every == 0:
            names.append(f"iter_{self.iteration:06d}.pt")
        if is_best:
            names.append("best.pt")
        if final:
            names.append("final.pt")
        # latest.pt last: a crash before it repeats the iteration on resume, which rewrites the others
        self._save([*names, "latest.pt"])

    def _save(self, names: Sequence[str]) -> None:
        """Writes the current state under ``checkpoints/`` once per name, each atomically."""
        ckpt = Checkpoint(
            params=self.params,
            iteration=self.iteration,
            config_yaml=self.config.to_yaml(),
            rng={
                "task": generator_state(self.task_rng),
                "env": generator_state(self.env_rng),
                "torch": self.generator.get_state(),
            },
            best_validation=self.best_validation,
            versions=versions(),
        )
        folder = self.run_dir / "checkpoints"
        with self._protected():
            for name in names:
                try:
                    save_checkpoint(folder / name, ckpt)
                except CheckpointError as err:
                    raise TrainingError(f"{err}; the previous checkpoint is kept, stopping") from None
                if name == "latest.pt":
                    self.saved_iteration = self.iteration

    def _plots(self, report: AdaptationReport) -> None:
        if not self.config.log.plots:
            return
        name = self.config.family.name
        plot_learning_curve(
            read_progress(self.run_dir / "progress.csv"),
            self.run_dir / "plots" / "learning_curve.png",
            f"{name}: meta-training ({self.config.inner.algorithm})",
        )
        plot_adaptation(
            report,
            self.run_dir / "plots" / "adaptation.png",
            f"{name}: held-out test tasks, iteration {self.iteration}",
        )

    def _report(self, metrics: dict[str, float | None], bar: tqdm) -> None:
        if self.quiet:
            return
        line = (
            f"iteration {self.iteration:5d}: train return {metrics['adapt/pre_return']:.2f} -> "
            f"{metrics['adapt/post_return']:.2f} after adaptation; validation "
            f"{metrics['valid/pre_return']:.2f} -> {metrics['valid/post_return']:.2f}; held-out test "
            f"{metrics['test/pre_return']:.2f} -> {metrics['test/post_return']:.2f}"
        )
        if bar.disable:
            print(line, file=self.out, flush=True)
        else:
            bar.write(line, file=self.out)
