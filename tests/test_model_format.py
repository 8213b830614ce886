"""One model format (issue 16): `forecast train --save DIR` writes the MLflow model that
`--track` logs, so predict, evaluate, serve and forecast.load take a folder and a model URI
alike; folders of the older layout still load; the data policies have CLI flags."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast.cli import main
from forecast.errors import ModelError
from forecast.forecaster import MLMODEL_FILE, MODEL_FILE, STATE_FILE, Forecaster, forecaster_files
from forecast.serving.pyfunc import SERVING_FILE

TINY = ["--target", "y", "--horizon", "6", "--lookback", "24", "--units", "4", "--epochs", "1",
        "--seed", "3"]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _forecast_rows(out: str) -> list[list[str]]:
    """The data rows of the forecast table `forecast predict` prints (timestamp, values)."""
    return [line.split("│")[1:-1] for line in out.splitlines()
            if line.startswith("│") and line[1:].strip()[:2].isdigit()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tracked training with --save: the folder, the run's model URI and the CSV."""
    import os

    from tests.conftest import synthetic_frame

    root = tmp_path_factory.mktemp("format")
    store = root / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    import mlflow

    mlflow.set_tracking_uri(uri)
    csv = root / "synthetic.csv"
    synthetic_frame().to_csv(csv, index=False)
    folder = root / "model"
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", str(csv), *TINY, "--json", "--save", str(folder),
                  "--experiment", "format"])
        assert exit_info.value.code == 0
    finally:
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
    runs = mlflow.search_runs(experiment_names=["format"], output_format="list")
    return {"folder": folder, "csv": csv, "uri": uri,
            "model_uri": f"runs:/{runs[0].info.run_id}/model"}


@pytest.fixture
def store(trained, monkeypatch):
    """The trained module's MLflow store for this test (runs:/ URIs resolve against it)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    mlflow.set_tracking_uri(trained["uri"])
    return trained


def test_save_writes_an_mlflow_model_folder(trained):
    folder = trained["folder"]
    assert (folder / MLMODEL_FILE).is_file()
    files = forecaster_files(folder)
    assert files != folder and files.is_relative_to(folder)
    for name in (MODEL_FILE, STATE_FILE, SERVING_FILE):
        assert (files / name).is_file()
    serving = json.loads((files / SERVING_FILE).read_text())
    assert serving["time_col"] == "date" and serving["reading"]["sep"] == ","


def test_predict_with_the_folder_equals_the_logged_run(store, capsys):
    csv = str(store["csv"])
    code, out_dir, err = _run(["predict", "--model", str(store["folder"]), "--csv", csv], capsys)
    assert code == 0, err
    code, out_run, err = _run(["predict", "--model", store["model_uri"], "--csv", csv], capsys)
    assert code == 0, err
    rows_dir, rows_run = _forecast_rows(out_dir), _forecast_rows(out_run)
    assert len(rows_dir) == 6 and rows_dir == rows_run
    # the same numbers through forecast.load, folder and URI alike
    history = pd.read_csv(csv).tail(48)
    by_folder = forecast.load(str(store["folder"])).predict(history)
    by_uri = forecast.load(store["model_uri"]).predict(history)
    pd.testing.assert_frame_equal(by_folder, by_uri)
    assert list(by_folder.columns) == ["date", "y"] and len(by_folder) == 6
    assert np.isfinite(by_folder["y"]).all()


def test_evaluate_takes_a_run_uri_and_the_folder(store, capsys):
    csv = str(store["csv"])
    code, out, err = _run(["evaluate", "--model", store["model_uri"], "--csv", csv, "--json"],
                          capsys)
    assert code == 0, err
    by_uri = json.loads(out)
    code, out, err = _run(["evaluate", "--model", str(store["folder"]), "--csv", csv, "--json"],
                          capsys)
    assert code == 0, err
    by_folder = json.loads(out)
    assert by_uri["model"]["mae"] == pytest.approx(by_folder["model"]["mae"], rel=1e-6)
    assert by_uri["model"]["mae"] > 0 and set(by_uri["baselines"]) >= {"naive", "linear"}


def test_evaluate_refuses_a_tampered_logged_model(store, tmp_path, capsys):
    """evaluate downloads a URI's model and checks its code, as forecast.load does."""
    import mlflow.artifacts

    copy = tmp_path / "copy"
    shutil.copytree(store["folder"], copy)
    code_file = copy / "model_code.py"
    code_file.write_text(code_file.read_text() + "\nprint('not forecast code')\n")
    with mlflow.start_run(experiment_id=mlflow.set_experiment("tampered").experiment_id) as run:
        mlflow.log_artifacts(str(copy), "model")
    assert mlflow.artifacts.list_artifacts(f"runs:/{run.info.run_id}/model")
    code, out, err = _run(["evaluate", "--model", f"runs:/{run.info.run_id}/model", "--csv",
                           str(store["csv"])], capsys)
    assert code == 2 and "differs from the code" in err


def test_forecaster_load_reads_the_folder_and_the_old_layout(trained, tmp_path):
    new = Forecaster.load(trained["folder"])
    assert new.time_col == "date" and new.serving["fill"] == "interpolate"
    # the layout of earlier versions: model.keras and forecaster.json at the top, nothing else
    old = tmp_path / "old"
    old.mkdir()
    for name in (MODEL_FILE, STATE_FILE):
        shutil.copy(forecaster_files(trained["folder"]) / name, old / name)
    again = Forecaster.load(old)
    assert again.serving is None and again.spec == new.spec
    history = pd.read_csv(trained["csv"], parse_dates=["date"], index_col="date").tail(24)
    pd.testing.assert_frame_equal(again.predict(history), new.predict(history))
    # forecast.load needs the serving settings only the new layout has, and says so
    with pytest.raises(ModelError, match="older version of forecast.*--save"):
        forecast.load(str(old))


def test_evaluate_reads_an_old_layout_folder(trained, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    for name in (MODEL_FILE, STATE_FILE):
        shutil.copy(forecaster_files(trained["folder"]) / name, old / name)
    code, out, err = _run(["evaluate", "--model", str(old), "--csv", str(trained["csv"]),
                           "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["model"]["mae"] > 0


def test_save_again_keeps_the_serving_settings(trained, tmp_path):
    forecaster = Forecaster.load(trained["folder"])
    folder = forecaster.save(tmp_path / "again")
    assert Forecaster.load(folder).serving == forecaster.serving
    with pytest.raises(ModelError, match="already holds a saved forecaster"):
        forecaster.save(folder)


# -- the data flags ------------------------------------------------------------------------


def _hourly(tmp_path, rows: list[tuple[str, float]], name="data.csv", extra=None):
    frame = pd.DataFrame(rows, columns=["date", "y"])
    if extra:
        for column, values in extra.items():
            frame[column] = values
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _series(n: int, skip=(), repeat=()):
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    rng = np.random.default_rng(1)
    rows = []
    for i, t in enumerate(times):
        if i in skip:
            continue
        value = float(10 + 3 * np.sin(i / 4) + rng.normal(0, 0.1))
        rows.append((str(t), value))
        if i in repeat:
            rows.append((str(t), value + 1))
    return rows


def test_duplicates_first_trains_and_inspects(tmp_path, capsys):
    path = _hourly(tmp_path, _series(200, repeat=(50,)))
    code, out, err = _run(["inspect", str(path)], capsys)
    assert code == 2 and "--duplicates first" in err and "`data.duplicates`" in err
    code, out, err = _run(["inspect", str(path), "--duplicates", "first"], capsys)
    assert code == 0, err
    assert "200" in out
    code, out, err = _run(["train", str(path), *TINY, "--duplicates", "first", "--no-track",
                           "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["model"]["mae"] > 0


def test_fill_error_on_a_gap_names_the_flag(tmp_path, capsys):
    path = _hourly(tmp_path, _series(200, skip=(40, 41)))
    for command in (["train", str(path), *TINY, "--no-track"], ["inspect", str(path)],
                    ["backtest", str(path), *TINY]):
        code, out, err = _run([*command, "--fill", "error"], capsys)
        assert code == 2, (command, err)
        assert "--fill error" in err and "`data.fill" in err and "fill=" not in err
    code, out, err = _run(["inspect", str(path), "--fill", "errr"], capsys)
    assert code == 2 and "--fill" in err and "Did you mean 'error'?" in err
    code, out, err = _run(["inspect", str(path), "--max-gap", "1"], capsys)
    assert code == 2 and "--max-gap 2" in err and "`data.max_gap`" in err
    code, out, err = _run(["inspect", str(path), "--max-gap", "2", "--fill", "zero"], capsys)
    assert code == 0, err


def test_inspect_id_col_counts_the_series(tmp_path, capsys):
    times = pd.date_range("2024-01-01", periods=5, freq="D")
    frame = pd.DataFrame({"store": ["a"] * 5 + ["b"] * 3,
                          "day": list(times) + list(times[:3]),
                          "sales": np.arange(8, dtype=float)})
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    code, out, err = _run(["inspect", str(path), "--id-col", "store"], capsys)
    assert code == 0, err
    assert "2 (id column store)" in out and "a: 5, b: 3" in out
    code, out, err = _run(["train", str(path), "--id-col", "store", "--no-track"], capsys)
    # one global model over both series: too short here, said with the flags to change
    assert code == 2 and "every series is too short" in err and "--lookback" in err


def test_a_dropped_text_column_is_reported(tmp_path, capsys, caplog):
    rows = _series(30)
    path = _hourly(tmp_path, rows, extra={"note": ["ok"] * len(rows)})
    code, out, err = _run(["inspect", str(path)], capsys)
    assert code == 0, err
    assert "left out" in out and "note" in out
    assert any("'note'" in r.getMessage() and "--target" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
