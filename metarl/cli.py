"""``metarl`` command line: train | evaluate | adapt | render | bench | families | gap | baseline.

Errors in what the user typed (config, task, checkpoint) print one line and exit with 2;
a run that cannot go on (disk full) exits with 1; a run stopped by SIGINT/SIGTERM exits with
130/143 after writing its checkpoint.

The module is past 500 lines because it holds every command's arguments and help text and the
checks that turn bad input into one line; each command then calls one library function
(``Trainer``, ``evaluate.compare_checkpoint``, ``evaluate.adapt_checkpoint``,
``video.render_checkpoint``, ``bench``, ``sb3_baselines.run_baseline``, ...) and prints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# Before anything imports mujoco: headless rendering on the CPU, unless the user chose.
os.environ.setdefault("MUJOCO_GL", "egl")

from metarl.checkpoint import CheckpointError
from metarl.config import ConfigError, apply_overrides, config_from_dict, describe, load_config
from metarl.envs.base import TaskError
from metarl.samplers import SamplerError

if TYPE_CHECKING:
    from metarl.evaluate import AdaptationReport

EXIT_USAGE = 2
EXIT_FAILURE = 1
MAX_STEPS = 50  # gradient steps an adapt, evaluate or render may ask for


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
        p.add_argument(
            "checkpoint",
            type=Path,
            help="checkpoint file, e.g. runs/demo/checkpoints/final.pt, or one written by adapt --save",
        )
        p.add_argument("--steps", type=int, default=3, help="gradient steps of adaptation (default 3)")
        p.add_argument("--rollouts", type=int, help="rollouts per task per step (default: the run's inner.rollouts)")
        p.add_argument("--seed", type=int, default=0, help="seed of the rollouts (default 0)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "evaluate":
            p.add_argument(
                "--tasks",
                help="test (held-out set), valid (the validation set that chose best.pt), train (a meta-batch "
                "of training tasks) or N (the first N held-out tasks); default test, or for an adapted "
                "checkpoint its own task",
            )
            p.add_argument(
                "--compare",
                nargs="+",
                type=Path,
                default=[],
                metavar="JSON",
                help="curves to draw beside this checkpoint's on one PNG: `metarl baseline --out` files (same "
                "family, tasks and rollouts) or other `evaluate --json` outputs",
            )
            p.add_argument(
                "--fast-lr",
                type=float,
                help="inner step size instead of the run's inner.fast_lr (e.g. to fine-tune a policy trained "
                "without inner steps with the step that suits it)",
            )
            p.add_argument(
                "--set",
                dest="overrides",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="change the checkpoint's config for this evaluation, e.g. --set inner.latent_lr=20 "
                "(repeatable; the policy's shape cannot change)",
            )
            p.add_argument(
                "--plot",
                type=Path,
                metavar="PNG",
                help="write the adaptation curve(s) to this PNG (default with --compare: adaptation_comparison.png)",
            )
        else:
            group = p.add_mutually_exclusive_group(required=True)
            group.add_argument("--task", help="the task: its one-line form (e.g. 'goal=0.3,-0.2') or a YAML file")
            group.add_argument(
                "--object",
                dest="task",
                help="for grasping: an object, e.g. 'cylinder radius=0.03 height=0.12 mass=0.2', "
                "a YAML file (a relative mesh path in it is taken beside it) or a bare mug.obj / mug.stl in metres",
            )
            p.add_argument(
                "--save",
                type=Path,
                metavar="PATH",
                help="write the adapted policy (and its task) as a checkpoint, e.g. adapted.pt, "
                "that render and evaluate accept",
            )

    render = sub.add_parser(
        "render",
        help="video of a checkpoint before and after adapting to a task",
        description="Writes an mp4 (and a small GIF) with one panel per number of gradient steps, side by side, "
        "from the same start state, each captioned with the task, its steps, its running return and success. "
        "A checkpoint from training is adapted first; one written by `metarl adapt --save` is shown as it was "
        "adapted, without adapting again.",
    )
    render.add_argument(
        "checkpoint", type=Path, help="checkpoint file (runs/demo/checkpoints/final.pt, or adapt --save's)"
    )
    group = render.add_mutually_exclusive_group()
    group.add_argument(
        "--task",
        help="the task's one-line form or a YAML file (default: an adapted checkpoint's own, else the first "
        "held-out task)",
    )
    group.add_argument(
        "--object",
        dest="task",
        help="for grasping: an object ('box length=0.2 width=0.04 height=0.03', a YAML or OBJ/STL file)",
    )
    render.add_argument(
        "--steps",
        help="gradient steps to show, one panel each, e.g. 0,1,3 (a single K means 0,K; default 0,1, "
        "for an adapted checkpoint 0 and its own steps)",
    )
    render.add_argument("--rollouts", type=int, help="rollouts per step (default: the run's inner.rollouts)")
    render.add_argument("--seed", type=int, default=0, help="seed of the rollouts and the start state (default 0)")
    render.add_argument(
        "--size", type=int, default=480, help="side of each panel in pixels, a multiple of 16 (default 480)"
    )
    render.add_argument("--out", type=Path, help="mp4 path (default: videos/<family>-<time>.mp4)")
    render.add_argument("--no-gif", action="store_true", help="do not write the small GIF beside the mp4")
    render.add_argument(
        "--explore",
        action="store_true",
        help="act with the policy's action noise, as in training and evaluation (the same draws in every "
        "panel), instead of its mean action",
    )

    bench = sub.add_parser("bench", help="sampler throughput vs physics limit, update vs sampling time")
    bench.add_argument("--config", help="experiment YAML (default: experiments/<family>.yaml if present)")
    bench.add_argument("--family", default="Navigation2D", help="task family (default Navigation2D)")
    bench.add_argument("--batch", help="tasks x rollouts, e.g. 40x20 (default: the config's)")
    bench.add_argument("--iterations", type=int, default=3, help="measured meta-iterations (default 3)")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub.add_parser("families", help="list the task families, their parameters and ranges")

    gap = sub.add_parser(
        "gap",
        help="the grasp family's adaptation gap: an oracle that knows each object against blind controllers",
        description="Runs the scripted oracle (reads each object's specification), every fixed blind pinch plan "
        "and the probing blind controller (both read only the observation) on a set of objects, and prints "
        "their success per object class.",
    )
    gap.add_argument(
        "--objects", default="test", help="test (the held-out set, default) or train:N (N training objects)"
    )
    gap.add_argument("--repeats", type=int, default=2, help="episodes per object, each with its own reset (default 2)")
    gap.add_argument("--seed", type=int, default=0, help="seed of the resets and of drawn training objects (default 0)")
    gap.add_argument("--set", dest="overrides", action="append", default=[], metavar="family.KEY=VALUE")

    baseline = sub.add_parser(
        "baseline",
        help="what adapting without meta-learning gives: SB3 PPO from scratch or pretrained, or a random init",
        description="The adaptation curve of a baseline on the held-out tasks with MAML's sample budget (--steps "
        "updates, each on --rollouts episodes of the family's horizon per task), in `metarl evaluate`'s format. "
        "scratch: stable-baselines3 PPO from a random initialisation; pretrained: SB3 PPO trained on the "
        "training tasks (a new one per episode) and fine-tuned; random-init: metarl's own inner loop "
        "(inner.fast_lr) from a random initialisation. A PPO step is one PPO iteration on the N x T env steps "
        "the policy just collected. `metarl evaluate CKPT --compare OUT.json` draws it beside MAML's.",
    )
    baseline.add_argument("kind", metavar="BASELINE", help="scratch, pretrained or random-init")
    baseline.add_argument(
        "source",
        type=Path,
        metavar="CHECKPOINT_OR_CONFIG",
        help="a MAML checkpoint (its family, policy shape, fast_lr, rollouts, horizon) or an experiment YAML",
    )
    baseline.add_argument("--steps", type=int, default=3, help="updates K, as evaluate's --steps (default 3)")
    baseline.add_argument("--rollouts", type=int, help="episodes per task per step N (default: inner.rollouts)")
    baseline.add_argument("--tasks", default="test", help="test (default), valid, train or N, as evaluate's")
    baseline.add_argument("--seed", type=int, default=0, help="seed of PPO, the environments, the rollouts (default 0)")
    baseline.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="with a YAML: override"
    )
    baseline.add_argument(
        "--pretrain-steps",
        type=int,
        help="pretrained: env steps of pretraining on the training tasks (default 200000), rounded up to whole "
        "PPO iterations",
    )
    baseline.add_argument(
        "--model",
        type=Path,
        metavar="ZIP",
        help="pretrained: the SB3 model to start from if it exists, else where to pretrain one (give "
        "--pretrain-steps then); default runs/baselines/<family>-pretrained-<steps>-seed<seed>.zip",
    )
    baseline.add_argument(
        "--ppo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a PPO setting (repeatable): learning_rate (3e-4), n_epochs (10), minibatches (4), clip_range (0.2), "
        "ent_coef (0), max_grad_norm (0.5)",
    )
    baseline.add_argument("--envs", type=int, help="environments stepped together; divides N (default N)")
    baseline.add_argument("--vec-env", default="dummy", help="dummy (SB3 DummyVecEnv, default) or subproc")
    baseline.add_argument("--threads", type=int, default=1, help="torch threads of the PPO learner (default 1)")
    baseline.add_argument("--out", type=Path, metavar="JSON", help="write the curve as JSON (for evaluate --compare)")
    baseline.add_argument("--json", action="store_true", help="print JSON instead of a table")
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
        "gap": _gap,
        "baseline": _baseline,
    }
    try:
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
        finished = summary.iteration >= trainer.config.run.iterations  # else stopped early: latest.pt
        print(f"checkpoint: {trainer.run_dir / 'checkpoints' / ('final.pt' if finished else 'latest.pt')}")
    return summary.exit_code


def _evaluate(args: argparse.Namespace) -> int:
    from metarl.evaluate import ReportError, compare_checkpoint

    _check_counts(args.steps, args.rollouts)
    if args.tasks is not None and args.tasks not in ("test", "valid", "train") and not args.tasks.isdigit():
        raise CliError(f"--tasks={args.tasks!r} is not allowed; allowed: test, valid, train or a number N")
    if args.plot is not None and args.plot.suffix != ".png":
        raise CliError(f"--plot={str(args.plot)!r} must end in .png")
    if args.fast_lr is not None and not (math.isfinite(args.fast_lr) and args.fast_lr > 0):
        raise CliError(f"--fast-lr={args.fast_lr} is out of range; allowed: a number above 0")
    try:
        curves = compare_checkpoint(
            args.checkpoint,
            args.compare,
            args.tasks,
            steps=args.steps,
            rollouts=args.rollouts,
            seed=args.seed,
            fast_lr=args.fast_lr,
            overrides=args.overrides,
        )
    except ReportError as err:
        raise CliError(str(err)) from None
    _print_report(curves[0].report, args.json)
    if args.compare or args.plot is not None:
        from metarl.plots import plot_curves

        plot = args.plot or Path("adaptation_comparison.png")
        plot_curves(curves, plot)
        print(f"wrote {plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from metarl.checkpoint import save_checkpoint
    from metarl.evaluate import adapt_checkpoint

    _check_counts(args.steps, args.rollouts)
    if args.save is not None and args.save.suffix != ".pt":
        raise CliError(f"--save={str(args.save)!r} must end in .pt")
    adapted = adapt_checkpoint(args.checkpoint, args.task, steps=args.steps, rollouts=args.rollouts, seed=args.seed)
    if args.save is not None:
        try:
            save_checkpoint(args.save, adapted.checkpoint)
        except CheckpointError as err:
            raise CliError(str(err), EXIT_FAILURE) from None
    _print_report(adapted.report, args.json)
    if args.save is not None:
        print(
            f"wrote {args.save} (the policy after {args.steps} step(s); metarl render {args.save} shows it)",
            file=sys.stderr if args.json else sys.stdout,
        )
    return 0


def _print_report(report: AdaptationReport, as_json: bool) -> None:
    from metarl.evaluate import format_report

    print(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))


def _check_counts(steps: int, rollouts: int | None) -> None:
    if steps < 0 or steps > MAX_STEPS:
        raise CliError(f"--steps={steps} is out of range; allowed: 0..{MAX_STEPS}")
    if rollouts is not None and rollouts < 1:
        raise CliError(f"--rollouts={rollouts} is out of range; allowed: 1 or more")


def _render(args: argparse.Namespace) -> int:
    from metarl.video import MAX_PANELS, RenderError, render_checkpoint

    steps = _parse_steps(args.steps, MAX_PANELS)
    if args.rollouts is not None and args.rollouts < 1:
        raise CliError(f"--rollouts={args.rollouts} is out of range; allowed: 1 or more")
    if not (16 <= args.size <= 1024 and args.size % 16 == 0):
        raise CliError(f"--size={args.size} is not allowed; allowed: a multiple of 16 in 16..1024")
    if args.out is not None and args.out.suffix != ".mp4":
        raise CliError(f"--out={str(args.out)!r} must end in .mp4")
    try:
        video = render_checkpoint(
            args.checkpoint,
            args.task,
            steps,
            args.out,
            rollouts=args.rollouts,
            seed=args.seed,
            size=args.size,
            gif=not args.no_gif,
            progress=sys.stderr.isatty(),
            explore=args.explore,
        )
    except RenderError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"cannot write the video: {err}", EXIT_FAILURE) from None
    recording = video.recording
    print(f"{video.family} {video.task.to_string()}")
    for i, label in enumerate(recording.labels):
        won = "" if recording.success is None else f", {'success' if recording.success[i] else 'no success'}"
        print(f"  {label}: return {recording.returns[i]:.2f}{won}")
    width, height = recording.frame_size
    panels_per_s = recording.frames * len(recording.labels) / recording.seconds
    print(f"{recording.frames} frames of {width}x{height} in {recording.seconds:.1f} s ({panels_per_s:.1f} panels/s)")
    for path in recording.paths:
        print(f"wrote {path}")
    return 0


def _parse_steps(text: str | None, max_panels: int) -> list[int] | None:
    """``"0,1,3"`` -> ``[0, 1, 3]``; ``"3"`` -> ``[0, 3]``; None stays None (the default)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise CliError(f"--steps={text!r} is not allowed; allowed: step counts such as 0,1,3 (each 0..{MAX_STEPS})")
    steps = [int(p) for p in parts]
    if len(steps) == 1 and steps[0] > 0:
        steps = [0, steps[0]]
    if any(k > MAX_STEPS for k in steps):
        raise CliError(f"--steps={text!r} is out of range; allowed: each 0..{MAX_STEPS}")
    if len(set(steps)) != len(steps) or len(steps) > max_panels:
        raise CliError(f"--steps={text!r} is not allowed; allowed: up to {max_panels} different step counts")
    return steps


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
        if family.test_tasks_held_out:
            print(f"    held-out test tasks: {count}")
        else:
            print(f"    test tasks: {count} (the whole task space; training sees them too)")
    return 0


def _gap(args: argparse.Namespace) -> int:
    from metarl.envs.grasping import GraspObject
    from metarl.envs.grasping.controllers import adaptation_gap

    for text in args.overrides:
        if not text.startswith("family."):
            raise CliError(f"--set {text!r}: gap takes only family options (family.KEY=VALUE)")
    config = load_config(None, ["family.name=GraspObject", *args.overrides])
    family = GraspObject(config.family.options)
    if args.repeats < 1 or args.repeats > 100:
        raise CliError(f"--repeats={args.repeats} is out of range; allowed: 1..100")
    kind, _, count = args.objects.partition(":")
    if args.objects == "test":
        tasks = family.test_tasks()
    elif kind == "train" and count.isdigit() and 1 <= int(count) <= 1000:
        tasks = family.sample_tasks(int(count), np.random.default_rng(args.seed))
    else:
        raise CliError(f"--objects={args.objects!r} is not allowed; allowed: test, train:N with N in 1..1000")
    report = adaptation_gap(family, tasks, repeats=args.repeats, seed=args.seed)
    print(f"GraspObject, {args.objects} objects x {args.repeats} episodes")
    print(report.format())
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from metarl.checkpoint import load_checkpoint
    from metarl.envs.registry import make_family
    from metarl.evaluate import task_set
    from metarl.experiment import saved_config
    from metarl.sb3_baselines import BASELINES, BaselineError, BaselineRequest, Budget, ppo_settings, run_baseline

    if args.kind not in BASELINES:
        raise CliError(f"unknown baseline {args.kind!r}; allowed: {', '.join(BASELINES)}")
    _check_counts(args.steps, args.rollouts)
    if args.out is not None and args.out.suffix != ".json":
        raise CliError(f"--out={str(args.out)!r} must end in .json")
    if args.source.suffix in (".yaml", ".yml"):
        config = load_config(args.source, args.overrides)
    elif args.overrides:
        raise CliError("--set changes an experiment YAML; a checkpoint's settings are MAML's and stay as they are")
    else:
        config = config_from_dict(saved_config(load_checkpoint(args.source), args.source))
    family = make_family(config.family.name, config.family.options)
    tasks = task_set(family, args.tasks, config)
    try:
        request = BaselineRequest(
            args.kind,
            config,
            tuple(tasks),
            Budget(args.steps, args.rollouts or config.inner.rollouts, family.horizon),
            seed=args.seed,
            ppo=ppo_settings(args.ppo, num_envs=args.envs, vec_env=args.vec_env, torch_threads=args.threads),
            model=args.model,
            pretrain_steps=args.pretrain_steps,
            source=str(args.source),
        )
        result = run_baseline(request, progress=None if args.json else lambda line: print(line, file=sys.stderr))
        if args.out is not None:
            result.save(args.out)
    except BaselineError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"cannot write {str(args.out)!r}: {err}", EXIT_FAILURE) from None
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.format())
    if args.out is not None:
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
