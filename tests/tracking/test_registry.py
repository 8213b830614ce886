"""Tests of forecast/tracking/registry.py and `forecast registry` on real temporary MLflow stores.

Three tiny forecasters (units 8, lookback 24, horizon 6) are trained once per module and
logged with ``log_forecaster`` into each test's own SQLite store. The promotion test runs
two promotions on 2-fold backtests of 2 epochs: 6 small trainings (the champion's backtest
is reused from its cache tag the second time).
"""

import json
import shutil

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils

from forecast.cli import main
from forecast.data import load_csv
from forecast.errors import ConfigError, ModelError
from forecast.forecaster import Forecaster
from forecast.serving import log_forecaster
from forecast.tracking import registry

BASE = {"horizon": 6, "lookback": 24, "batch_size": 32}
# Stored with 1 epoch (cheap to fit here); the promotion backtests override the epochs to
# EPOCHS for both versions, so the learning rate and the size decide: poor (2 units, a rate
# that barely moves the weights) < fair < good (measured: MASE about 6.9, 5.3, 3.3).
CONFIGS = {
    "fair": {**BASE, "model": {"units": 8},
             "train": {"epochs": 1, "learning_rate": 3e-3, "verbose": 0, "seed": 0}},
    "poor": {**BASE, "model": {"units": 2},
             "train": {"epochs": 1, "learning_rate": 1e-5, "verbose": 0, "seed": 0}},
    "good": {**BASE, "model": {"units": 8},
             "train": {"epochs": 1, "learning_rate": 1e-2, "verbose": 0, "seed": 0}},
}
EPOCHS = 2
FOLDS, FOLD_SIZE = 2, 24


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    from tests.conftest import synthetic_frame

    path = tmp_path_factory.mktemp("registry-data") / "synthetic.csv"
    synthetic_frame().to_csv(path, index=False)
    return load_csv(path, targets=["y"])


@pytest.fixture(scope="module")
def forecasters(frame):
    """The three forecasters, fitted once (on all but the last day)."""
    train = frame.iloc[:-24]
    return {name: Forecaster(config).fit(train) for name, config in CONFIGS.items()}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow SQLite database with its tables made once (the migrations take seconds)."""
    path = tmp_path_factory.mktemp("registry-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store):
    """This test's own SQLite store, artifacts under tmp_path."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    before = tracking_utils._tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "registry", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield uri
    mlflow.set_tracking_uri(before)


def _log(forecaster) -> tuple[str, str]:
    with mlflow.start_run() as run:
        info = log_forecaster(forecaster, time_col="date")
    return info.model_uri, run.info.run_id


def _aliases(name) -> dict:
    return {alias: int(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def _cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_the_first_version_is_champion_without_a_backtest(store, forecasters):
    uri, run_id = _log(forecasters["fair"])
    first = registry.register_version(uri, "synthetic", run_id=run_id, tags={"data": "s.csv"})
    assert int(first.version) == 1 and first.run_id == run_id
    assert first.tags["promotion.decision"] == "first_champion"
    assert "no backtest" in first.tags["promotion.reason"]
    assert first.tags["data"] == "s.csv"
    assert _aliases("synthetic") == {"champion": 1}
    assert registry.champion_history("synthetic") == [1]

    # promote_if_better on the champion itself reports it, without a backtest
    decision = registry.promote_if_better("synthetic", 1, frame=None)
    assert decision.promoted and decision.decision == "first_champion"

    uri, run_id = _log(forecasters["poor"])
    second = registry.register_version(uri, "synthetic")
    assert int(second.version) == 2 and second.run_id == run_id  # read off the logged model
    assert _aliases("synthetic") == {"champion": 1, "challenger": 2}

    config = registry.forecaster_config("synthetic", 2)
    assert config["model"] == {"units": 2} and config["train"]["learning_rate"] == 1e-5

    rows = registry.list_versions("synthetic")
    assert [(r["version"], r["aliases"], r["run_id"]) for r in rows] == [
        (2, ["challenger"], run_id), (1, ["champion"], first.run_id)]
    assert rows[1]["tags"] == {"promotion.decision": "first_champion",
                               "promotion.reason": first.tags["promotion.reason"]}
    assert rows[0]["created"] >= rows[1]["created"]

    with pytest.raises(ModelError, match="no previous champion.*version 1"):
        registry.rollback("synthetic")
    with pytest.raises(ConfigError, match="valid metrics: mae, rmse, mape, smape, mase, mse"):
        registry.promote_if_better("synthetic", 2, frame=None, metric="r2")
    with pytest.raises(ConfigError, match="no registered model 'other'; registered models: "
                                          "synthetic"):
        registry.list_versions("other")
    with pytest.raises(ConfigError, match="'synthetic' has no version 7; its versions: 1, 2"):
        registry.promote("synthetic", 7)


def test_promotion_backtests_both_versions_on_the_same_folds(store, forecasters, frame):
    for name in ("fair", "poor"):
        registry.register_version(_log(forecasters[name])[0], "synthetic")

    # the poor challenger loses
    lost = registry.promote_if_better("synthetic", 2, frame, folds=FOLDS, fold_size=FOLD_SIZE,
                                      epochs=EPOCHS)
    assert not lost.promoted and lost.decision == "kept_challenger"
    assert lost.metric == "mase" and lost.champion_version_before == "1"
    assert lost.challenger_score > lost.champion_score > 0
    # both on the same folds: the last 2 x 24 rows of the 480, origins at rows 431 and 455
    assert [(f["origin"], f["test_end"]) for f in lost.folds] == [
        ("2024-01-18 23:00:00", "2024-01-19 23:00:00"),
        ("2024-01-19 23:00:00", "2024-01-20 23:00:00")]
    assert lost.challenger_score == pytest.approx(
        sum(f["challenger"] for f in lost.folds) / FOLDS)
    assert lost.champion_score == pytest.approx(sum(f["champion"] for f in lost.folds) / FOLDS)
    assert _aliases("synthetic") == {"champion": 1, "challenger": 2}
    tags = MlflowClient().get_model_version("synthetic", "2").tags
    assert tags["promotion.decision"] == "kept_challenger"
    assert tags["promotion.metric"] == "mase"
    assert float(tags["promotion.challenger_score"]) == lost.challenger_score
    assert float(tags["promotion.champion_score"]) == lost.champion_score
    assert tags["promotion.champion_version"] == "1"
    assert json.loads(tags["promotion.folds"]) == lost.folds
    settings = json.loads(tags["promotion.settings"])
    assert settings["fold_size"] == FOLD_SIZE and settings["epochs"] == EPOCHS
    assert settings["reused"] == {"challenger": False, "champion": False}

    # the good challenger wins
    registry.register_version(_log(forecasters["good"])[0], "synthetic")
    assert _aliases("synthetic") == {"champion": 1, "challenger": 3}  # the newest challenges
    won = registry.promote_if_better("synthetic", 3, frame, folds=FOLDS, fold_size=FOLD_SIZE,
                                     epochs=EPOCHS)
    assert won.promoted and won.decision == "promoted"
    assert won.challenger_score < won.champion_score
    assert [f["origin"] for f in won.folds] == [f["origin"] for f in lost.folds]
    # the champion's backtest (same data, layout, epochs, config) came from its cache tag
    assert won.champion_score == lost.champion_score
    tags = MlflowClient().get_model_version("synthetic", "3").tags
    assert json.loads(tags["promotion.settings"])["reused"] == {"challenger": False,
                                                                 "champion": True}
    assert _aliases("synthetic") == {"champion": 3}  # the challenger alias moved off it
    assert tags["promotion.decision"] == "promoted" and tags["previous_champion"] == "1"
    assert registry.champion_history("synthetic") == [1, 3]

    restored = registry.rollback("synthetic")
    assert int(restored.version) == 1
    assert _aliases("synthetic") == {"champion": 1}
    assert registry.champion_history("synthetic") == [1]
    assert MlflowClient().get_model_version("synthetic", "3").tags["rolled_back"] == "true"
    with pytest.raises(ModelError, match="no previous champion"):
        registry.rollback("synthetic")


def test_cli_list_promote_rollback(store, forecasters, capsys):
    for name in ("fair", "poor"):
        registry.register_version(_log(forecasters[name])[0], "synthetic")

    code, out, _ = _cli(capsys, "registry", "list", "synthetic")
    assert code == 0
    assert "champion" in out and "challenger" in out and "first_champion" in out
    assert "champion history: v1" in out

    code, out, _ = _cli(capsys, "registry", "promote", "synthetic", "2")
    assert code == 0 and "version 2 promoted by hand over version 1" in out
    assert _aliases("synthetic") == {"champion": 2}

    code, out, _ = _cli(capsys, "registry", "list", "synthetic", "--json")
    rows = json.loads(out)
    assert [(r["version"], r["aliases"]) for r in rows] == [(2, ["champion"]), (1, [])]
    assert rows[0]["tags"]["promotion.decision"] == "manual"
    assert rows[0]["tags"]["previous_champion"] == "1"

    code, out, _ = _cli(capsys, "registry", "rollback", "synthetic")
    assert code == 0 and "champion is version 1 again" in out
    assert _aliases("synthetic") == {"champion": 1}

    code, out, err = _cli(capsys, "registry", "rollback", "synthetic")
    assert code == 2 and "no previous champion" in err and "Traceback" not in err

    code, out, err = _cli(capsys, "registry", "list", "nope")
    assert code == 2
    assert err.count("error:") == 1 and "no registered model 'nope'" in err
    assert "registered models: synthetic" in err and "Traceback" not in err

    code, out, err = _cli(capsys, "registry", "promote", "synthetic", "9")
    assert code == 2 and "has no version 9; its versions: 1, 2" in err
