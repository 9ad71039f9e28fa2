"""Baselines with stable-baselines3: each baseline end to end with MAML's sample budget (seconds).

The navigation checkpoint is trained with ``goal_tolerance=0`` so that no episode ends early:
then MAML's sampler also takes exactly ``N × T`` env steps per task and step, and the counts of
both sides can be asserted equal.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from metarl.cli import main
from metarl.config import load_config
from metarl.envs.registry import make_family
from metarl.evaluate import AdaptationReport, curve_report
from metarl.sb3_envs import EpisodeRecorder, NewTaskPerEpisode, family_vec_env
from metarl.sb3_ppo import MODEL_INFO, Budget, PPOSettings, family_options, ppo_curve

ROOT = Path(__file__).resolve().parents[1]
STEPS, ROLLOUTS = 2, 2
QUIET = ["--set", "log.tensorboard=false", "--set", "log.plots=false", "--set", "log.video_every=0", "--quiet"]
TINY = {
    "Navigation2D": (
        "navigation.yaml",
        20,
        ["--set", "family.horizon=20", "--set", "family.goal_tolerance=0.0", "--set", "run.iterations=2"],
    ),
    "GraspObject": (
        "grasp_object.yaml",
        10,
        ["--set", "family.horizon=10", "--set", "run.iterations=1", "--set", "sampler.num_threads=1"],
    ),
}
BUDGET = ["--tasks", "1", "--steps", str(STEPS), "--rollouts", str(ROLLOUTS)]


def _train(root: Path, family: str) -> Path:
    config, _, overrides = TINY[family]
    run_dir = root / family
    small = ["--set", "run.eval_every=0", "--set", "run.eval_rollouts=1", "--set", "run.eval_steps=0"]
    small += ["--set", "outer.meta_batch_size=2", "--set", "inner.rollouts=3"]
    args = ["train", str(ROOT / "experiments" / config), "--run-dir", str(run_dir), *small, *overrides, *QUIET]
    assert main(args) == 0
    return run_dir / "checkpoints" / "final.pt"


@pytest.fixture(scope="module", params=list(TINY))
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny MAML checkpoint of the family, MAML's curve and each baseline's, as JSON files."""
    root = tmp_path_factory.mktemp("baselines")
    ckpt = _train(root, request.param)
    out = {"checkpoint": ckpt}
    for kind in ("scratch", "pretrained", "random-init"):
        out[kind] = root / f"{kind}.json"
        extra = ["--model", str(root / "pretrained.zip"), "--pretrain-steps", "80"] if kind == "pretrained" else []
        assert main(["baseline", kind, str(ckpt), *BUDGET, "--out", str(out[kind]), "--json", *extra]) == 0
    return out


def _maml_curve(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), *BUDGET, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", ["scratch", "pretrained", "random-init"])
def test_each_baseline_takes_mamls_budget(runs: dict[str, Path], kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    maml = _maml_curve(runs["checkpoint"], capsys)
    data = json.loads(runs[kind].read_text())
    horizon = TINY[data["family"]][1]
    # the same JSON as `metarl evaluate --json`, with what the baseline is added
    assert set(maml) <= set(data) and set(data) - set(maml) == {"label", "budget", "baseline"}
    assert data["tasks"] == maml["tasks"] and data["family"] == maml["family"]
    assert [set(s) for s in data["steps"]] == [set(s) for s in maml["steps"]]
    assert [s["step"] for s in data["steps"]] == list(range(STEPS + 1))
    assert len(data["per_task"]) == 1 and len(data["per_task"][0]["returns"]) == STEPS + 1
    assert data["budget"] == {"steps": STEPS, "rollouts": ROLLOUTS, "horizon": horizon}
    # env steps as counted, point by point: MAML's, the baseline's and the budget N x T agree
    counted = [s["env_steps"] for s in data["steps"]]
    assert counted == [s["env_steps"] for s in maml["steps"]] == [ROLLOUTS * horizon] * (STEPS + 1)
    assert data["baseline"]["env_steps"]["learnt_from"] == STEPS * ROLLOUTS * horizon
    assert data["baseline"]["env_steps"]["measuring_the_last_step"] == ROLLOUTS * horizon
    if kind != "random-init":  # no early termination here: every PPO stage holds exactly N episodes
        assert data["baseline"]["episodes_per_step"] == [ROLLOUTS] * (STEPS + 1)
    if kind == "pretrained":
        assert data["baseline"]["env_steps"]["pretraining"] == 80
        assert data["baseline"]["pretraining"]["family"] == data["family"]
    success = [s["success_rate"] for s in data["steps"]]
    assert all(x is None for x in success) if data["family"] == "Navigation2D" else all(0 <= x <= 1 for x in success)


def test_pretrained_model_is_sb3s_own_and_reused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = runs["pretrained"].with_name("pretrained.zip")
    data = json.loads(runs["pretrained"].read_text())
    family = make_family(data["family"], {"horizon": TINY[data["family"]][1]})
    loaded = PPO.load(model, device="cpu")  # SB3 alone reads it
    assert loaded.observation_space.shape == family.observation_space.shape
    action, _ = loaded.predict(family.observation_space.sample(), deterministic=True)
    assert action.shape == family.action_space.shape
    # a second run starts from the same file without pretraining again, and gets the same curve
    out = tmp_path / "again.json"
    args = ["baseline", "pretrained", str(runs["checkpoint"]), *BUDGET, "--model", str(model), "--out", str(out)]
    assert main(args) == 0
    assert "pretrained earlier: 80 env steps" in capsys.readouterr().out
    again = json.loads(out.read_text())
    assert again["per_task"] == data["per_task"]


def test_a_pretrained_model_of_another_family_or_size_is_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = runs["pretrained"].with_name("pretrained.zip")
    family = json.loads(runs["pretrained"].read_text())["family"]
    other = "GraspObject" if family == "Navigation2D" else "Navigation2D"
    other_ckpt = _train(tmp_path, other)
    capsys.readouterr()
    assert main(["baseline", "pretrained", str(other_ckpt), *BUDGET, "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert f"is of family {family}, not {other}" in err and err.count("\n") == 1

    resized = tmp_path / "resized.zip"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(resized, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == MODEL_INFO:
                info = json.loads(data)
                info["obs_dim"] += 2
                data = json.dumps(info).encode()
            dst.writestr(item, data)
    assert main(["baseline", "pretrained", str(runs["checkpoint"]), *BUDGET, "--model", str(resized)]) == 2
    err = capsys.readouterr().err
    assert "pretrain it again" in err and "observations" in err and err.count("\n") == 1


def test_evaluate_compare_draws_every_curve(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "compare.png"
    others = [str(runs[k]) for k in ("scratch", "pretrained", "random-init")]
    assert main(["evaluate", str(runs["checkpoint"]), *BUDGET, "--compare", *others, "--plot", str(plot)]) == 0
    assert f"wrote {plot}" in capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--rollouts", "3"], "took 2 rollouts per step, not 3"),
        (["--tasks", "2"], "other tasks (1) than these (2)"),
    ],
)
def test_evaluate_compare_refuses_another_budget_or_tasks(
    runs: dict[str, Path], change: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["evaluate", str(runs["checkpoint"]), "--steps", "1", "--rollouts", "2", "--tasks", "1", *change]
    assert main([*args, "--compare", str(runs["scratch"]), "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x.png").exists()


def test_evaluate_compare_refuses_another_family(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    family = json.loads(runs["scratch"].read_text())["family"]
    other = tmp = runs["scratch"].with_name("other-family.json")
    data = json.loads(runs["scratch"].read_text())
    data["family"] = "HalfCheetahVel"
    tmp.write_text(json.dumps(data))
    assert main(["evaluate", str(runs["checkpoint"]), *BUDGET, "--compare", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"is of family HalfCheetahVel, not {family}" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["finetuned"], "unknown baseline 'finetuned'; allowed: scratch, pretrained, random-init"),
        (["scratch", "--steps", "0"], "steps=0"),
        (["random-init", "--rollouts", "0"], "--rollouts=0 is out of range"),
        (["pretrained", "--pretrain-steps", "0"], "--pretrain-steps=0 is out of range"),
        (["pretrained", "--model", "missing.zip"], "does not exist; give --pretrain-steps N"),
        (["pretrained", "--model", "model.pt"], "must end in .zip"),
        (["scratch", "--model", "m.zip"], "for the pretrained baseline only"),
        (["scratch", "--envs", "3", "--rollouts", "2"], "--envs=3 must divide the 2 rollouts"),
        (["scratch", "--vec-env", "ray"], "--vec-env='ray' is not allowed"),
        (["scratch", "--ppo", "n_epochs=0.5"], "n_epochs='0.5' is not an integer"),
        (["scratch", "--set", "family.horizon=5"], "--set changes an experiment YAML"),
    ],
)
def test_baseline_bad_input_is_one_line_exit_2(
    runs: dict[str, Path],
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    kind, *rest = args
    assert main(["baseline", kind, str(runs["checkpoint"]), *rest]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing pretrained, nothing written


def test_dummy_and_subproc_vec_envs_give_the_same_curve(tmp_path: Path) -> None:
    config = str(ROOT / "experiments" / "navigation.yaml")
    common = ["--set", "family.horizon=10", "--tasks", "1", "--steps", "1", "--rollouts", "2", "--envs", "2"]
    for kind in ("dummy", "subproc"):
        assert (
            main(["baseline", "scratch", config, *common, "--vec-env", kind, "--out", str(tmp_path / f"{kind}.json")])
            == 0
        )
    dummy, subproc = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("dummy", "subproc"))
    assert dummy["per_task"] == subproc["per_task"]
    assert [s["env_steps"] for s in subproc["steps"]] == [20, 20]


def test_subproc_workers_run_on_one_thread_and_match_dummy() -> None:
    options = {"horizon": 4}
    before = os.environ.get("OMP_NUM_THREADS")
    dummy = family_vec_env("GraspObject", options, None, 2, seed=5, kind="dummy")
    subproc = family_vec_env("GraspObject", options, None, 2, seed=5, kind="subproc")
    try:
        assert os.environ.get("OMP_NUM_THREADS") == before  # this process is left as it was
        for pid in (p.pid for p in subproc.processes):  # type: ignore[attr-defined]
            assert len(os.listdir(f"/proc/{pid}/task")) == 1
            assert "OMP_NUM_THREADS=1" in Path(f"/proc/{pid}/environ").read_text().split("\0")
        np.testing.assert_array_equal(dummy.reset(), subproc.reset())  # same seeds, same training objects
        actions = np.zeros((2, 4))
        np.testing.assert_allclose(np.asarray(dummy.step(actions)[0]), np.asarray(subproc.step(actions)[0]))
    finally:
        dummy.close()
        subproc.close()


def test_new_task_per_episode_is_seeded_and_never_a_test_task() -> None:
    family = make_family("Navigation2D", {"horizon": 3})
    test = {t.to_string() for t in family.test_tasks()}

    def tasks(seed: int) -> list[str]:
        env = NewTaskPerEpisode(gym.make("metarl/Navigation2D-v0", horizon=3))
        drawn = [env.reset(seed=seed)[1]["task"].to_string()]
        drawn += [env.reset()[1]["task"].to_string() for _ in range(4)]
        assert env.tasks_drawn == 5
        return drawn

    first = tasks(7)
    assert first == tasks(7) and first != tasks(8)
    assert len(set(first)) == 5 and not set(first) & test


def test_recorder_counts_every_step_and_episode_under_make_vec_env() -> None:
    venv = make_vec_env(
        "metarl/Navigation2D-v0",
        n_envs=2,
        seed=0,
        env_kwargs={"task": "goal=0.3,0.2", "horizon": 5, "goal_tolerance": 0.0, "render_mode": None},
        vec_env_cls=DummyVecEnv,
    )
    recorder = EpisodeRecorder(venv)
    recorder.reset()
    rewards = []
    for _ in range(12):
        _, reward, _, _ = recorder.step(np.full((2, 2), 0.05))
        rewards.append(reward)
    seen = recorder.take()
    assert seen.env_steps == 24 and recorder.total_steps == 24
    assert len(seen.returns) == 4  # each env ended an episode at steps 5 and 10; the third is running
    per_env = np.array(rewards)  # [12, 2]
    assert seen.returns == pytest.approx([per_env[:5, 0].sum(), per_env[:5, 1].sum(), *per_env[5:10].sum(0)])
    assert recorder.take().env_steps == 0
    recorder.close()


def test_ppo_curve_puts_the_environments_on_its_task() -> None:
    config = load_config(ROOT / "experiments" / "navigation.yaml", ["family.horizon=5", "policy.hidden_sizes=[8]"])
    family = make_family("Navigation2D", config.family.options)
    first, second = family.test_tasks()[:2]
    venv = EpisodeRecorder(family_vec_env("Navigation2D", family_options(config), first, 2, seed=0))
    curve = ppo_curve(venv, config, second, Budget(1, 2, 5), PPOSettings(n_epochs=1), seed=3, init=None)
    assert venv.get_attr("task") == [second, second]
    assert curve.env_steps == (10, 10) and curve.episodes == (2, 2)
    venv.close()


def test_curve_report_takes_means_over_tasks_and_round_trips() -> None:
    report = curve_report("F", ["a", "b"], [[1.0, 3.0], [3.0, 7.0]], [[0.5, 1.0], [0.0, 0.0]], [0.1, 0.2], [8, 8])
    assert [s.return_mean for s in report.steps] == [2.0, 5.0]
    assert [s.return_std for s in report.steps] == [1.0, 2.0]  # population std of the per-task means
    assert [s.success_rate for s in report.steps] == [0.25, 0.5]
    assert AdaptationReport.from_dict(report.to_dict()) == report
    none = curve_report("F", ["a"], [[1.0]], [[None]], [0.1], [4])
    assert none.steps[0].success_rate is None and none.steps[0].return_std == 0.0


@pytest.mark.slow
def test_ppo_learns_navigation_and_pretraining_gives_it_a_head_start(tmp_path: Path) -> None:
    """Scratch PPO improves over 10 updates of 20 x 100 env steps; PPO pretrained for 50k env steps on
    training goals starts better than scratch (about 30 s on 2 cores)."""
    config = str(ROOT / "experiments" / "navigation.yaml")
    curves = {}
    for kind, extra in (("scratch", []), ("pretrained", ["--pretrain-steps", "50000"])):
        out = tmp_path / f"{kind}.json"
        model = ["--model", str(tmp_path / "pretrained.zip")] if kind == "pretrained" else []
        assert main(["baseline", kind, config, "--tasks", "2", "--steps", "10", "--out", str(out), *model, *extra]) == 0
        curves[kind] = [s["return_mean"] for s in json.loads(out.read_text())["steps"]]
    assert curves["scratch"][-1] > curves["scratch"][0] + 20.0
    assert curves["pretrained"][0] > curves["scratch"][0] + 10.0
