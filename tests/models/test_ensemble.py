"""Tests of forecast/models/ensemble.py and ``train.ensemble`` (``--ensemble``)."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.data import chronological_split, load_csv
from forecast.errors import ConfigError
from forecast.forecaster import Forecaster
from forecast.models.ensemble import averaged_model

CONFIG = {"horizon": 6, "lookback": 24, "model": {"units": 4}, "batch_size": 32,
          "train": {"epochs": 2, "verbose": 0, "seed": 7, "blend_linear": False}}


def _inner(model):
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def test_averaged_model_forecasts_the_mean_of_its_members():
    def member(scale):
        x = keras.Input((5, 2), name="past")
        y = keras.layers.Reshape((3, 1))(keras.layers.Dense(3)(keras.layers.Flatten()(x)))
        model = keras.Model(x, y, name="net")
        model.set_weights([np.full((10, 3), scale, "float32"), np.zeros(3, "float32")])
        return model

    members = [member(1.0), member(3.0)]
    x = np.arange(20, dtype="float32").reshape(2, 5, 2)
    expected = (members[0].predict(x, verbose=0) + members[1].predict(x, verbose=0)) / 2
    model = averaged_model(members)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    assert [m.name for m in _inner(model)] == ["net_member1", "net_member2"]
    with pytest.raises(ValueError, match="two members"):
        averaged_model(members[:1])


def test_ensemble_trains_members_from_other_seeds_saves_and_loads(frame, tmp_path):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    one = Forecaster(CONFIG).fit(parts.train, parts.val)
    config = {**CONFIG, "train": {**CONFIG["train"], "ensemble": 3}}
    three = Forecaster(config).fit(parts.train, parts.val)
    assert len(three.member_results) == 3 and three.fit_result is three.member_results[0]
    members = _inner(three.model)
    assert len(members) == 3
    # member 1 is the single network of the same seed; the others start elsewhere
    y_one_pred = one.predict_windows(parts.test)[1]
    first = three.predict_windows(parts.test, model=members[0])[1]
    np.testing.assert_allclose(first, y_one_pred, rtol=1e-5, atol=1e-5)
    preds = [three.predict_windows(parts.test, model=m)[1] for m in members]
    assert not np.allclose(preds[0], preds[1], atol=1e-3)
    _, mean = three.predict_windows(parts.test)
    np.testing.assert_allclose(mean, np.mean(preds, axis=0), rtol=1e-4, atol=1e-4)
    again = Forecaster.load(three.save(tmp_path / "fc"))
    pd.testing.assert_frame_equal(again.predict(parts.test), three.predict(parts.test))


def test_ensemble_refuses_a_checkpoint_dir(frame, tmp_path):
    config = {**CONFIG, "train": {**CONFIG["train"], "ensemble": 2,
                                  "checkpoint_dir": str(tmp_path / "ck")}}
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        Forecaster(config)


def test_cli_ensemble(frame, capsys):
    path, _ = frame
    args = ["train", str(path), "--target", "y", "--horizon", "6", "--lookback", "24",
            "--units", "4", "--epochs", "2", "--seed", "7", "--no-track"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--ensemble", "2", "--blend-linear", "--json"])
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out)
    members = result["training"]["members"]
    assert len(members) == 2 and all(m["epochs_run"] == 2 for m in members)
    assert result["settings"]["train"]["ensemble"] == 2
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--ensemble", "0"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2, err
    assert "ensemble" in err and "Traceback" not in err


def test_ensemble_of_a_global_model_with_several_inputs(tmp_path):
    from forecast.data.io import add_static
    from tests.test_covariates import TINY, _stores_csv

    path, _ = _stores_csv(tmp_path)
    frame = add_static(load_csv(path, id_col="store", targets=["y"], covariates=["promo"]),
                       path, ["region"])
    config = {**TINY, "future_covariates": ["promo"], "static": ["region"],
              "model": {"units": 4, "id_embedding": 2},
              "train": {**TINY["train"], "epochs": 1, "ensemble": 2}}
    forecaster = Forecaster(config).fit(frame)
    assert len(forecaster.model.inputs) > 1 and len(_inner(forecaster.model)) == 2
    _, y_pred = forecaster.predict_windows(frame)
    members = [forecaster.predict_windows(frame, model=m)[1] for m in _inner(forecaster.model)]
    np.testing.assert_allclose(y_pred, np.mean(members, axis=0), rtol=1e-4, atol=1e-4)
    again = Forecaster.load(forecaster.save(tmp_path / "fc"))
    np.testing.assert_allclose(again.predict_windows(frame)[1], y_pred, rtol=1e-5)
