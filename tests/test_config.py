"""Experiment configs: YAML loading, --set overrides and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from metarl.cli import main
from metarl.config import Config, ConfigError, config_from_dict, load_config
from metarl.envs.navigation import NavigationOptions
from metarl.experiment import build_experiment

EXPERIMENTS = sorted(Path(__file__).resolve().parents[1].joinpath("experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_shipped_experiments_load(path: Path) -> None:
    config = load_config(path)
    assert config_from_dict(_round_trip(config)) == config


def _round_trip(config: Config) -> dict:
    import yaml

    return yaml.safe_load(config.to_yaml())


def test_defaults_are_the_maml_paper_settings() -> None:
    c = Config()
    assert (c.inner.fast_lr, c.inner.steps, c.inner.rollouts) == (0.1, 1, 20)
    assert (c.outer.meta_batch_size, c.outer.max_kl, c.outer.cg_iters, c.outer.cg_damping) == (40, 0.01, 10, 1e-5)
    assert (c.outer.ls_backtrack_ratio, c.outer.ls_max_steps) == (0.8, 15)
    assert (c.advantage.gamma, c.advantage.gae_lambda) == (0.99, 1.0)
    assert c.inner.algorithm == "maml_trpo"


def test_overrides_reach_every_section() -> None:
    config = load_config(
        None,
        [
            "inner.fast_lr=0.05",
            "inner.algorithm=fomaml",
            "outer.max_kl=0.02",
            "policy.hidden_sizes=[32, 16]",
            "family.goal_range=0.3",
            "run.seed=7",
            "log.tensorboard=false",
        ],
    )
    assert config.inner.fast_lr == 0.05 and config.inner.algorithm == "fomaml"
    assert config.outer.max_kl == 0.02 and config.policy.hidden_sizes == (32, 16)
    assert isinstance(config.family.options, NavigationOptions) and config.family.options.goal_range == 0.3
    assert config.run.seed == 7 and config.log.tensorboard is False


def test_ints_are_accepted_where_floats_are_expected() -> None:
    assert load_config(None, ["outer.max_kl=1"]).outer.max_kl == 1.0


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("inner.fast_lr=-0.1", "inner.fast_lr=-0.1 is out of range; allowed: [0, inf)"),
        ("inner.fast_lr=abc", "inner.fast_lr='abc' must be a number"),
        ("inner.steps=1.5", "inner.steps=1.5 must be an integer"),
        ("inner.algorithm=sgd", "inner.algorithm='sgd' is not allowed; allowed: maml_trpo, fomaml, reptile"),
        ("inner.nonsense=1", "inner.nonsense is not a key of inner"),
        ("outer.max_kl=0", "outer.max_kl=0 is out of range"),
        ("outer.ls_backtrack_ratio=1.5", "outer.ls_backtrack_ratio=1.5 is out of range; allowed: (0, 1]"),
        ("outer.meta_batch_size=true", "must be an integer"),
        ("policy.hidden_sizes=64", "policy.hidden_sizes=64 must be a list"),
        ("policy.hidden_sizes=[64, 0]", "policy.hidden_sizes=[64, 0] is out of range; allowed: [1, inf)"),
        ("family.name=Nope", "unknown family 'Nope'"),
        ("family.goal_range=-1", "family.goal_range=-1"),
        ("family.colour=red", "family.colour is not a family option"),
        ("training.seed=1", "unknown config section 'training'"),
        ("run.seed=nan", "must be an integer"),
        ("advantage.gamma=.nan", "must be a finite number"),
        ("inner=3", "--set 'inner=3' must look like section.key=value"),
    ],
)
def test_bad_values_get_one_line_errors(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    message = str(err.value)
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    "overrides",
    [["inner.fast_lr=0"], ["inner.fast_lr=0", "policy.latent_dim=1"]],  # no latent; a latent of step 0
)
def test_an_inner_loop_that_moves_nothing_is_refused(overrides: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        build_experiment(load_config(None, overrides))
    message = str(err.value)
    assert message.startswith("inner.fast_lr=0 adapts nothing here; allowed: a number above 0, or 0 with a latent")
    assert "\n" not in message


def test_reptile_needs_the_network_to_adapt() -> None:
    overrides = ["inner.fast_lr=0", "policy.latent_dim=1", "inner.latent_lr=2", "inner.algorithm=reptile"]
    with pytest.raises(ConfigError, match=r"^inner.fast_lr=0 with inner.algorithm=reptile never trains the network"):
        build_experiment(load_config(None, overrides))


def test_a_latent_may_adapt_alone() -> None:
    """``inner.fast_lr=0`` with a latent of its own step size builds (what it does: ``tests/test_maml.py``)."""
    exp = build_experiment(load_config(None, ["inner.fast_lr=0", "policy.latent_dim=1", "inner.latent_lr=2"]))
    exp.sampler.close()
    assert exp.config.inner.fast_lr == 0 and exp.config.inner.latent_step == 2


def test_bad_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner:\n  fast_lr: [0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listed)


def test_cli_config_errors_exit_2_and_leave_no_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    code = main(
        [
            "train",
            str(EXPERIMENTS[0].parent / "navigation.yaml"),
            "--set",
            "inner.fast_lr=-1",
            "--run-dir",
            str(run_dir),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "metarl train: error: inner.fast_lr=-1 is out of range; allowed: [0, inf)"
    assert not run_dir.exists()
