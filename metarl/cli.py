"""``metarl`` command line: train | evaluate | adapt | render | bench | families.

Errors in what the user typed (config, task, checkpoint) print one line and exit with 2;
a run that cannot go on (disk full) exits with 1; a run stopped by SIGINT/SIGTERM exits with
130/143 after writing its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# Before anything imports mujoco: headless rendering on the CPU, unless the user chose.
os.environ.setdefault("MUJOCO_GL", "egl")

from metarl.checkpoint import CheckpointError, load_checkpoint
from metarl.config import Config, ConfigError, apply_overrides, config_from_dict, describe, load_config
from metarl.envs.base import Task, TaskError, TaskFamily
from metarl.samplers import SamplerError

if TYPE_CHECKING:
    from metarl.experiment import Experiment
    from metarl.policies import Params

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """A one-line error for the user, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metarl",
        description="Meta-reinforcement learning for robotics: MAML-TRPO, FOMAML and Reptile on MuJoCo task families.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="meta-train a policy on a task family",
        description="Meta-train from an experiment YAML (experiments/*.yaml), or resume a run.",
        epilog="Config keys (override with --set section.key=value):\n  " + "\n  ".join(describe()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", nargs="?", help="experiment YAML file")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set inner.fast_lr=0.05 (repeatable)",
    )
    train.add_argument("--run-dir", type=Path, help="run directory (default: runs/<config name>-<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")

    for name, helptext in (
        ("evaluate", "adaptation curve of a checkpoint on held-out (or training) tasks"),
        ("adapt", "adapt a checkpoint to one new task (e.g. a new object)"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("checkpoint", type=Path, help="checkpoint file, e.g. runs/demo/checkpoints/final.pt")
        p.add_argument("--steps", type=int, default=3, help="gradient steps of adaptation (default 3)")
        p.add_argument("--rollouts", type=int, help="rollouts per task per step (default: the run's inner.rollouts)")
        p.add_argument("--seed", type=int, default=0, help="seed of the rollouts (default 0)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "evaluate":
            p.add_argument(
                "--tasks",
                default="test",
                help="test (held-out set), valid (the validation set that chose best.pt), train (a meta-batch "
                "of training tasks) or N (the first N held-out tasks); default test",
            )
        else:
            group = p.add_mutually_exclusive_group(required=True)
            group.add_argument("--task", help="the task: its one-line form (e.g. 'goal=0.3,-0.2') or a YAML file")
            group.add_argument(
                "--object",
                dest="task",
                help="for grasping: an object, e.g. 'cylinder radius=0.03 height=0.12 mass=0.2'",
            )

    render = sub.add_parser(
        "render",
        help="video of a checkpoint before and after adapting to a task",
        description="Adapts a checkpoint to one task, then writes an mp4 (and a small GIF) of the meta-policy "
        "and the adapted policy side by side, with the task and each side's return on the frame.",
    )
    render.add_argument("checkpoint", type=Path, help="checkpoint file, e.g. runs/demo/checkpoints/final.pt")
    group = render.add_mutually_exclusive_group()
    group.add_argument("--task", help="the task's one-line form or a YAML file (default: the first held-out task)")
    group.add_argument("--object", dest="task", help="for grasping: an object, e.g. 'box size=0.04,0.03,0.05'")
    render.add_argument("--steps", type=int, default=1, help="gradient steps of adaptation (default 1)")
    render.add_argument("--rollouts", type=int, help="rollouts per step (default: the run's inner.rollouts)")
    render.add_argument("--seed", type=int, default=0, help="seed of the rollouts and the initial state (default 0)")
    render.add_argument("--out", type=Path, help="mp4 path (default: videos/<family>-<time>.mp4)")
    render.add_argument("--no-gif", action="store_true", help="do not write the small GIF beside the mp4")

    bench = sub.add_parser("bench", help="sampler throughput vs physics limit, update vs sampling time")
    bench.add_argument("--config", help="experiment YAML (default: experiments/<family>.yaml if present)")
    bench.add_argument("--family", default="Navigation2D", help="task family (default Navigation2D)")
    bench.add_argument("--batch", help="tasks x rollouts, e.g. 40x20 (default: the config's)")
    bench.add_argument("--iterations", type=int, default=3, help="measured meta-iterations (default 3)")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub.add_parser("families", help="list the task families, their parameters and ranges")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metarl`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    commands = {
        "train": _train,
        "evaluate": _evaluate,
        "adapt": _adapt,
        "render": _render,
        "bench": _bench,
        "families": _families,
    }
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*settotalmass.*")
            return commands[args.command](args)
    except (ConfigError, TaskError, CheckpointError) as err:
        print(f"metarl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as err:
        print(f"metarl {args.command}: error: {err}", file=sys.stderr)
        return err.code
    except SamplerError as err:
        print(f"metarl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"metarl {args.command}: interrupted", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    from metarl.trainer import Trainer, TrainingError

    if args.resume is not None:
        if args.config is not None:
            raise CliError("give either CONFIG or --resume RUN_DIR, not both")
        trainer = Trainer.resume(args.resume, overrides=args.overrides, quiet=args.quiet)
    else:
        if args.config is None:
            raise CliError("missing CONFIG (an experiment YAML such as experiments/navigation.yaml) or --resume")
        config = load_config(args.config, args.overrides)
        run_dir = args.run_dir or Path("runs") / f"{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        trainer = Trainer.create(config, run_dir, overwrite=args.overwrite, quiet=args.quiet)
    if not args.quiet:
        cfg = trainer.config
        print(
            f"run directory: {trainer.run_dir}  ({cfg.family.name}, {cfg.inner.algorithm}, "
            f"{cfg.outer.meta_batch_size} tasks x {cfg.inner.rollouts} rollouts, "
            f"{cfg.run.iterations} iterations)",
            flush=True,
        )
    if trainer.iteration >= trainer.config.run.iterations:
        print(
            f"the run in {trainer.run_dir} is already complete ({trainer.iteration} iterations); "
            "extend it with --set run.iterations=N",
            file=sys.stderr,
        )
        return 0
    try:
        summary = trainer.train()
    except TrainingError as err:
        raise CliError(str(err), EXIT_FAILURE) from None
    if summary.last_eval is not None and not args.quiet:
        steps = summary.last_eval.steps
        print(
            f"held-out test tasks after {summary.iteration} iterations: return {steps[0].return_mean:.2f} before "
            f"adaptation, {steps[-1].return_mean:.2f} after {steps[-1].step} gradient step(s)"
        )
        print(f"checkpoint: {trainer.run_dir / 'checkpoints' / 'final.pt'}")
    return summary.exit_code


def _load_experiment(checkpoint: Path) -> tuple[Config, Experiment, Params]:
    """The configuration, experiment and parameters of a checkpoint, architecture checked."""
    import torch
    import yaml

    from metarl.checkpoint import check_params
    from metarl.experiment import build_experiment

    ckpt = load_checkpoint(checkpoint)
    try:
        config = config_from_dict(yaml.safe_load(ckpt.config_yaml))
    except yaml.YAMLError:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} has a malformed config") from None
    exp = build_experiment(config)
    expected = exp.policy.init_params(torch.Generator().manual_seed(0))
    check_params(ckpt.params, expected, what=f"checkpoint {str(checkpoint)!r}")
    return config, exp, ckpt.params


def _adaptation(args: argparse.Namespace, pick_tasks: str | None, task_text: str | None) -> int:
    from metarl.evaluate import evaluate_adaptation, format_report

    _check_counts(args)
    config, exp, params = _load_experiment(args.checkpoint)
    if task_text is not None:
        tasks = [_parse_task(exp.family, task_text)]
    else:
        tasks = _pick_tasks(exp.family, pick_tasks or "test", config)
    rollouts = args.rollouts or config.inner.rollouts
    try:
        report = evaluate_adaptation(
            exp.sampler, params, tasks, args.steps, rollouts, config.inner.fast_lr, config.advantage, seed=args.seed
        )
    finally:
        exp.sampler.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    if args.steps < 0 or args.steps > 50:
        raise CliError(f"--steps={args.steps} is out of range; allowed: 0..50")
    if args.rollouts is not None and args.rollouts < 1:
        raise CliError(f"--rollouts={args.rollouts} is out of range; allowed: 1 or more")


def _pick_tasks(family: TaskFamily, which: str, config: Config) -> list[Task]:
    import numpy as np

    test = family.test_tasks()
    if which == "test":
        return test
    if which == "valid":
        return family.validation_tasks()
    if which == "train":
        return family.sample_tasks(config.outer.meta_batch_size, np.random.default_rng(config.run.seed))
    if which.isdigit() and 1 <= int(which) <= len(test):
        return test[: int(which)]
    raise CliError(f"--tasks={which!r} is not allowed; allowed: test, valid, train or N in 1..{len(test)}")


def _parse_task(family: TaskFamily, text: str) -> Task:
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from metarl.config import read_yaml

        return family.task_from_dict(read_yaml(path))
    return family.parse_task(text)


def _evaluate(args: argparse.Namespace) -> int:
    return _adaptation(args, args.tasks, None)


def _adapt(args: argparse.Namespace) -> int:
    return _adaptation(args, None, args.task)


def _render(args: argparse.Namespace) -> int:
    import torch

    from metarl.adaptation import adapt, collect_adaptation
    from metarl.video import side_by_side, write_video

    _check_counts(args)
    config, exp, params = _load_experiment(args.checkpoint)
    task = _parse_task(exp.family, args.task) if args.task else exp.family.test_tasks()[0]
    out = args.out or Path("videos") / f"{exp.family.name}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
    if out.suffix != ".mp4":
        raise CliError(f"--out={str(out)!r} must end in .mp4")
    rollouts = args.rollouts or config.inner.rollouts
    try:
        seq = np.random.SeedSequence(args.seed)
        rng = np.random.default_rng(seq.spawn(1)[0])
        generator = torch.Generator().manual_seed(int(seq.generate_state(1)[0]))
        batches = collect_adaptation(
            exp.sampler, params, [task], args.steps, rollouts, config.inner.fast_lr, config.advantage, rng, generator
        )
    finally:
        exp.sampler.close()
    after = params
    if args.steps > 0:
        adapted = adapt(exp.policy, params, batches[:-1], config.inner.fast_lr)
        after = {k: v[0] for k, v in adapted.items()}
    labels = ("before adaptation", f"after {args.steps} gradient step{'s' if args.steps != 1 else ''}")
    try:
        video = side_by_side(exp.family, exp.policy, params, after, task, labels, seed=args.seed)
    except ValueError as err:
        raise CliError(str(err), EXIT_FAILURE) from None
    try:
        paths = write_video(video, out, gif=not args.no_gif)
    except OSError as err:
        raise CliError(f"cannot write {str(out)!r}: {err}", EXIT_FAILURE) from None
    succ = "" if video.success is None else f", success {video.success[0]} -> {video.success[1]}"
    print(
        f"{exp.family.name} {task.to_string()}: return {video.returns[0]:.2f} before, "
        f"{video.returns[1]:.2f} after {args.steps} step(s){succ}"
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from metarl.bench import run_bench

    overrides = list(args.overrides)
    if args.batch:
        tasks, sep, rollouts = args.batch.partition("x")
        if not (sep and tasks.isdigit() and rollouts.isdigit() and int(tasks) > 0 and int(rollouts) > 0):
            raise CliError(f"--batch={args.batch!r} must look like TASKSxROLLOUTS, e.g. 40x20")
        overrides += [f"outer.meta_batch_size={tasks}", f"inner.rollouts={rollouts}"]
    if args.iterations < 1:
        raise CliError(f"--iterations={args.iterations} is out of range; allowed: 1 or more")
    path = args.config
    if path is None:
        guess = Path("experiments") / f"{_snake(args.family)}.yaml"
        path = str(guess) if guess.is_file() else None
    if path is None:
        config = config_from_dict(apply_overrides({"family": {"name": args.family}}, overrides))
    else:
        config = load_config(path, overrides)
    result = run_bench(config, iterations=args.iterations)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    return 0


def _snake(name: str) -> str:
    """``HalfCheetahVel`` -> ``half_cheetah_vel``; ``Navigation2D`` -> ``navigation``."""
    if name == "Navigation2D":
        return "navigation"
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out


def _families(args: argparse.Namespace) -> int:
    from metarl.envs.registry import family_names, family_spec, make_family

    for name in family_names():
        spec = family_spec(name)
        family = make_family(name)
        success = "success defined" if family.has_success else "no success criterion"
        print(
            f"{name}  ({spec.gym_id}, horizon {family.horizon}, obs {family.observation_space.shape[0]}, "
            f"act {family.action_space.shape[0]}, {success})"
        )
        print(f"    {spec.summary}")
        for key, allowed in family.task_space().items():
            print(f"    task {key}: {allowed}")
        count = len(family.test_tasks())
        if getattr(family, "test_tasks_held_out", True):
            print(f"    held-out test tasks: {count}")
        else:
            print(f"    test tasks: {count} (the whole task space; training sees them too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
