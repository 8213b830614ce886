"""One declaration per setting: the CLI, a pipeline YAML and ``Forecaster`` train the same model,
log the settings they actually used, and the fast paths never import TensorFlow."""

import json
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from forecast.cli import main
from forecast.errors import ConfigError
from forecast.options import (
    SETUPS,
    ForecasterConfig,
    ModelOptions,
    PromotionOptions,
    TrainOptions,
    parse_config,
)
from tests.conftest import synthetic_frame

ROOT = Path(__file__).resolve().parents[1]


def test_every_setup_word_has_a_setup_class():
    from forecast.models.setups import SETUPS as CLASSES

    assert tuple(CLASSES) == SETUPS


def test_defaults_are_the_ones_chosen_on_validation_data():
    config = ForecasterConfig(horizon=24)
    assert config.lookback is None and config.setup == "many_to_one"
    assert (config.model.cell, config.model.units) == ("lstm", 32)
    assert config.model.instance_norm == "last" and config.model.linear_skip is True
    assert (config.train.epochs, config.train.seed, config.batch_size) == (20, 42, 32)
    # every field documents itself: the CLI's --help reads it
    for model in (ModelOptions, TrainOptions, ForecasterConfig):
        assert all(field.description for field in model.model_fields.values())


def test_bad_settings_are_one_config_error_naming_each():
    with pytest.raises(ConfigError) as info:
        parse_config({"horizon": 0, "model": {"unitz": 4, "cell": "lstn"},
                      "train": {"epochs": 0}})
    message = str(info.value)
    assert "horizon" in message and "Did you mean 'units'?" in message
    assert "Did you mean 'lstm'?" in message and "train.epochs" in message


def _numeric_fields(model):
    """(name, kind) of every int or float field of a settings model, nested groups left out."""
    import typing

    for name, field in model.model_fields.items():
        args = set(typing.get_args(field.annotation)) or {field.annotation}
        if int in args or args and all(type(a) is int for a in args):  # Literal[0, 1, 2] too
            yield name, int
        elif float in args:
            yield name, float


@pytest.mark.parametrize("model", [ModelOptions, TrainOptions, ForecasterConfig, PromotionOptions])
def test_every_number_is_strict_and_finite(model):
    """No setting takes True for 1, and none takes infinity or NaN: the class, not examples."""
    required = {"horizon": 4} if model is ForecasterConfig else {}
    fields = dict(_numeric_fields(model))
    assert fields  # the walk finds them
    for name, kind in fields.items():
        bad = [True, False, "x"] + ([math.inf, -math.inf, math.nan] if kind is float else [1.5])
        for value in bad:
            with pytest.raises(ConfigError) as info:
                model(**{**required, name: value})
            assert name in str(info.value), (name, value, str(info.value))
            with pytest.raises(ConfigError):  # the same through parse (CLI, YAML)
                model.parse({**required, name: value})
    sizes = ("units", "layers", "segment_length", "epochs", "patience", "horizon", "lookback",
             "batch_size", "promotion_folds", "promotion_epochs")
    for name in set(sizes) & set(fields):
        for value in (0, -1):
            with pytest.raises(ConfigError, match=f"`{name}` must be a positive integer"):
                model(**{**required, name: value})


def _fresh(code: str) -> list[str]:
    """Runs ``code`` in a new interpreter; returns the heavy modules it imported."""
    probe = (f"{code}\nimport sys, json\n"
             "print(json.dumps([m for m in ('tensorflow', 'keras', 'mlflow', 'sklearn') "
             "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ["--help"], ["train", "--help"], ["backtest", "--help"], ["pipeline", "--help"],
    ["train", "x.csv", "--unitz", "3"],                      # a mistyped flag
    ["pipeline", "validate", "pipelines/quickstart.yaml"],
    ["pipeline", "validate", "pipelines/nightly.yaml"],
])
def test_fast_paths_never_import_tensorflow(argv):
    code = ("from forecast.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as exit:\n"
            "    assert exit.code in (0, 2), exit.code")
    assert _fresh(code) == []


def test_the_settings_modules_import_no_tensorflow():
    assert _fresh("import forecast.options, forecast.pipelines.spec, forecast.cli") == []


MINIMAL = """\
name: minimal
data: {path: series.csv, targets: [y]}
window: {horizon: 6}
"""


def test_cli_pipeline_and_forecaster_train_the_same_model(tmp_path, capsys):
    """Data, target and horizon only: the same resolved settings and the same weights."""
    from forecast.data import chronological_split, load_csv
    from forecast.data.dataset import describe
    from forecast.forecaster import Forecaster
    from forecast.pipelines import run_pipeline

    csv = tmp_path / "series.csv"
    synthetic_frame(300).to_csv(csv, index=False)
    # 1. the CLI
    with pytest.raises(SystemExit) as info:
        main(["train", str(csv), "--target", "y", "--horizon", "6", "--json",
              "--save", str(tmp_path / "cli-model"), "--experiment", "cli"])
    assert info.value.code == 0
    cli = json.loads(capsys.readouterr().out)
    # 2. a pipeline YAML
    (tmp_path / "minimal.yaml").write_text(MINIMAL)
    result = run_pipeline(tmp_path / "minimal.yaml", echo=lambda line: None)
    # 3. the Python API, same split as the other two (val 0.1, test 0.2)
    frame = load_csv(csv, targets=["y"])
    forecaster_config = ForecasterConfig(horizon=6, train={"verbose": 0})
    from forecast.forecaster import with_lookback

    config, reason = with_lookback(forecaster_config, describe(frame).freq, int(len(frame) * 0.7))
    parts = chronological_split(frame, val=0.1, test=0.2, lookback=config.lookback)
    python = Forecaster(config, lookback_reason=reason).fit(parts.train, parts.val)

    settings = python.resolved.flat()
    assert None not in (settings["lookback"], settings["train"]["seed"],
                        settings["model"]["seed"], settings["season"], settings["freq"])
    assert settings["lookback"] == 52 and "quarter of the 210 training rows" in settings[
        "lookback_reason"]
    ignore = {"train": {"verbose"}}

    def comparable(flat: dict) -> dict:
        return {k: ({kk: vv for kk, vv in v.items() if kk not in ignore.get(k, ())}
                    if isinstance(v, dict) else v) for k, v in flat.items()}

    assert comparable(cli["settings"]) == comparable(settings)
    client = mlflow.MlflowClient()
    params = {}
    for run_id in (cli["mlflow"]["run_id"], result.run_id):
        params[run_id] = {k: v for k, v in client.get_run(run_id).data.params.items()
                          if k.startswith("config.") and k != "config.train.verbose"}
    cli_params, pipeline_params = params.values()
    assert cli_params == pipeline_params
    assert pipeline_params["config.lookback"] == "52" and pipeline_params["config.season"] == "24"
    for chosen in ("lookback", "season", "freq", "train.seed", "model.seed", "n_series"):
        assert pipeline_params[f"config.{chosen}"] not in ("None", "")
    # same weights: the CLI's saved model and the in-process forecaster
    saved = Forecaster.load(tmp_path / "cli-model")
    for a, b in zip(saved.model.get_weights(), python.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # and the pipeline's model scores exactly what the CLI's scores on the same test part
    pipeline_mae = client.get_run(result.run_id).data.metrics["test.model.mae"]
    assert pipeline_mae == pytest.approx(cli["model"]["mae"], rel=1e-9)


def test_calendar_features_follow_the_setup_unless_given(synthetic_csv):
    from forecast.data import load_csv
    from forecast.forecaster import Forecaster

    frame = load_csv(synthetic_csv, targets=["y"])
    config = {"horizon": 24, "lookback": 48, "setup": "segment", "model": {"units": 4},
              "train": {"epochs": 1, "verbose": 0}}
    segment = Forecaster(config).fit(frame)
    assert segment.resolved.config.calendar is False and segment.spec.future_covariates == ()
    lstm = Forecaster({**config, "setup": "many_to_one"}).fit(frame)
    assert lstm.resolved.config.calendar is True and "hour_of_day_sin" in lstm.resolved.flat()[
        "future_covariates"]
    with pytest.raises(ConfigError, match="--no-calendar"):
        Forecaster({**config, "calendar": True}).fit(frame)
