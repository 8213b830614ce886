"""Promotion on real temporary MLflow stores: the champion is never worse than a baseline.

The tiny forecasters of tests/registry_helpers.py all lose to the baselines on the synthetic
series (backtest MASE about 3-7 against about 1 for the best baseline), which is what the
baseline rule is for; ``allow_worse_than_baseline=True`` compares the versions alone.
"""

import json

import numpy as np
import pytest
from mlflow import MlflowClient

import forecast
from forecast.errors import ConfigError
from forecast.evaluation.promotion import promote_if_better, register_and_promote
from forecast.tracking import registry
from tests.registry_helpers import (
    EPOCHS,
    FOLD_SIZE,
    FOLDS,
    aliases,
    cli,
    log_model,
)

LAYOUT = {"folds": FOLDS, "fold_size": FOLD_SIZE, "epochs": EPOCHS}


def _register(forecaster, frame, **kwargs):
    uri, run_id = log_model(forecaster)
    return register_and_promote(uri, "synthetic", frame, run_id=run_id, **LAYOUT, **kwargs)


def test_a_model_worse_than_a_baseline_never_becomes_champion(store, forecasters, frame):
    # the first version is backtested too: no champion without a backtest
    first = _register(forecasters["fair"], frame)
    best = first.best_baseline
    assert first.decision == "baseline_champion" and not first.promoted
    assert first.version == "1" and first.champion_version == "2"
    assert first.champion_kind == best and best in ("naive", "seasonal_naive", "linear")
    assert first.challenger_score > first.baselines[best] > 0
    assert first.baselines[best] == min(first.baselines.values())
    assert first.reason.startswith(f"{best} beats the LSTM on the backtest (MASE ")
    assert (f"champion is the {best} baseline (version 2); the LSTM is version 1, alias "
            "challenger") in first.reason
    assert aliases("synthetic") == {"challenger": 1, "champion": 2}
    rows = {r["version"]: r for r in registry.list_versions("synthetic")}
    assert (rows[2]["kind"], rows[1]["kind"]) == (best, "network")
    assert rows[2]["score"] == pytest.approx(first.baselines[best])
    assert rows[1]["score"] == pytest.approx(first.challenger_score)
    tags = MlflowClient().get_model_version("synthetic", "1").tags
    assert tags["promotion.decision"] == "baseline_champion"
    assert json.loads(tags["promotion.baselines"]) == pytest.approx(first.baselines)
    assert len(json.loads(tags["promotion.folds"])) == FOLDS

    # the baseline champion serves through the same pyfunc: raw history in, forecast out
    history = frame.iloc[-48:].reset_index()
    served = forecast.load("models:/synthetic@champion").predict(history)
    expected = forecasters["fair"].as_baseline(best).predict(frame.iloc[-48:])
    assert list(served.columns) == ["date", "y"] and len(served) == 6
    np.testing.assert_allclose(served["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-6)

    # a later model better than the first but still worse than the baseline is not promoted
    later = _register(forecasters["good"], frame)
    assert later.decision == "kept_challenger" and not later.promoted
    assert later.challenger_score < first.challenger_score  # it beats the first version ...
    assert later.champion_score == pytest.approx(later.baselines[best])  # ... not the champion
    assert "version 2 stays champion; the LSTM is version 3, alias challenger" in later.reason
    assert aliases("synthetic") == {"champion": 2, "challenger": 3}
    assert len(registry.list_versions("synthetic")) == 3  # no second baseline version


def test_the_registry_listing_shows_kind_and_score(store, forecasters, frame, capsys):
    _register(forecasters["fair"], frame)
    code, out, _ = cli(capsys, "registry", "list", "synthetic", "--json")
    rows = json.loads(out)
    assert code == 0 and [row["kind"] for row in rows][1] == "network"
    assert [row["metric"] for row in rows] == ["mase", "mase"]
    assert all(row["score"] > 0 for row in rows)
    code, out, _ = cli(capsys, "registry", "list", "synthetic")
    assert code == 0 and "champion history: v2" in out


def test_allow_worse_compares_the_versions_on_the_same_folds(store, forecasters, frame):
    worse = {"allow_worse_than_baseline": True}
    first = _register(forecasters["fair"], frame, **worse)
    assert first.promoted and first.decision == "promoted" and first.champion_version == "1"
    assert "promoted because --allow-worse-than-baseline was given" in first.reason
    assert aliases("synthetic") == {"champion": 1}

    # the poor challenger loses to the champion
    lost = _register(forecasters["poor"], frame, **worse)
    assert not lost.promoted and lost.decision == "kept_challenger"
    assert lost.metric == "mase" and lost.champion_version_before == "1"
    assert lost.challenger_score > lost.champion_score > 0
    # all on the same folds: the last 2 x 24 rows of the 480, origins at rows 431 and 455
    assert [(f["origin"], f["test_end"]) for f in lost.folds] == [
        ("2024-01-18 23:00:00", "2024-01-19 23:00:00"),
        ("2024-01-19 23:00:00", "2024-01-20 23:00:00")]
    assert lost.challenger_score == pytest.approx(
        sum(f["challenger"] for f in lost.folds) / FOLDS)
    assert lost.champion_score == pytest.approx(sum(f["champion"] for f in lost.folds) / FOLDS)
    assert lost.champion_score == pytest.approx(first.challenger_score)  # cached, same folds
    assert aliases("synthetic") == {"champion": 1, "challenger": 2}
    tags = MlflowClient().get_model_version("synthetic", "2").tags
    assert tags["promotion.decision"] == "kept_challenger"
    assert float(tags["promotion.challenger_score"]) == lost.challenger_score
    assert float(tags["promotion.champion_score"]) == lost.champion_score
    settings = json.loads(tags["promotion.settings"])
    assert settings["fold_size"] == FOLD_SIZE and settings["epochs"] == EPOCHS
    assert settings["reused"] == {"challenger": False, "champion": True}

    # the good challenger wins
    won = _register(forecasters["good"], frame, **worse)
    assert won.promoted and won.decision == "promoted"
    assert won.challenger_score < won.champion_score == pytest.approx(lost.champion_score)
    assert aliases("synthetic") == {"champion": 3}  # the challenger alias moved off it
    assert registry.champion_history("synthetic") == [1, 3]
    assert MlflowClient().get_model_version("synthetic", "3").tags["previous_champion"] == "1"
    restored = registry.rollback("synthetic")
    assert int(restored.version) == 1 and aliases("synthetic") == {"champion": 1}

    # asking again about the champion reports it without a backtest
    again = promote_if_better("synthetic", 1, frame)
    assert again.decision == "already_champion" and again.promoted
    with pytest.raises(ConfigError, match="valid metrics: mae, rmse, mape, smape, mase, mse"):
        promote_if_better("synthetic", 2, frame, metric="r2")


def test_a_tie_within_rounding_keeps_the_incumbent():
    """A network blended at share 0 is the linear baseline in float32: not a win over it."""
    from forecast.evaluation.promotion import TIE, _better

    assert _better(0.80, 0.81) and not _better(0.81, 0.80)
    assert not _better(0.7494025, 0.7494030)  # float32 rounding of the same forecast
    assert not _better(1.0 - TIE / 2, 1.0) and _better(1.0 - 2 * TIE, 1.0)
    assert _better(0.5, float("nan")) and not _better(float("nan"), 0.5)
