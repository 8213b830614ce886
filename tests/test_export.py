"""Tests of forecast/export.py and `forecast export`: SavedModel and TFLite equal Keras."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from forecast.errors import ConfigError, ModelError

SETUPS = {
    # the default setup: past window and calendar features of the horizon (two inputs)
    "many_to_one": {"model": {"units": 4}},
    "segment": {"setup": "segment", "model": {"units": 4, "segment_length": 6}},
    # blended with the linear baseline: a nested network, a frozen ridge layer and the blend
    "blend": {"model": {"units": 4},
              "train": {"epochs": 1, "verbose": 0, "seed": 3, "blend_linear": True}},
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three tiny trained forecasters (units 4, one epoch), saved as `forecast train --save`
    does."""
    from forecast.data import chronological_split, load_csv
    from forecast.forecaster import Forecaster
    from tests.conftest import synthetic_frame

    folder = tmp_path_factory.mktemp("export")
    path = folder / "s.csv"
    synthetic_frame(240).to_csv(path, index=False)
    out = {}
    for name, settings in SETUPS.items():
        frame = load_csv(path, targets=["y"], covariates=["x"] if name != "segment" else None)
        parts = chronological_split(frame, val=0.15, test=0.15, lookback=24)
        config = {"horizon": 6, "lookback": 24, "batch_size": 64,
                  "train": {"epochs": 1, "verbose": 0, "seed": 3}, **settings}
        forecaster = Forecaster(config).fit(parts.train, parts.val)
        if name == "blend":
            assert forecaster.blend.weight < 1  # the blend is in the exported graph
        out[name] = (forecaster, forecaster.save(folder / name))
    return out


def _windows(model, batch=5, seed=1):
    rng = np.random.default_rng(seed)
    return {t.name.split(":")[0]: rng.normal(size=(batch, *t.shape[1:])).astype("float32")
            for t in model.inputs}


def _keras(model, windows):
    values = list(windows.values())
    return np.asarray(model.predict(values if len(values) > 1 else values[0], verbose=0))


def test_savedmodel_equals_keras_and_runs_without_forecast(saved, tmp_path):
    from forecast.cli import main

    expected, exported = {}, {}
    for name, (forecaster, folder) in saved.items():
        target = tmp_path / name
        if name == "many_to_one":  # through the command line, from the saved folder
            with pytest.raises(SystemExit) as done:
                main(["export", str(folder), "--format", "savedmodel", str(target)])
            assert done.value.code == 0
        else:
            from forecast.export import export_model

            result = export_model(str(folder), target, fmt="savedmodel")
            assert result.kernel == "fused" and result.max_abs_diff <= 1e-5
        meta = json.loads((target / "metadata.json").read_text())
        spec = forecaster.spec
        assert meta["inputs"]["past"]["columns"] == list(spec.input_columns)
        assert meta["inputs"]["past"]["shape"] == [None, 24, spec.n_inputs]
        assert (meta["lookback"], meta["horizon"], meta["freq"]) == (24, 6, "h")
        assert meta["outputs"]["forecast"]["shape"] == [None, 6, 1]
        assert ("future" in meta["inputs"]) == (name != "segment")
        assert json.loads((target / "scaler.json").read_text()) == json.loads(
            forecaster.scaler.to_json())
        assert (target / "README.md").read_text().startswith("# Exported forecaster")
        windows = _windows(forecaster.model)
        expected[name] = _keras(forecaster.model, windows)
        exported[name] = (str(target), {k: v.tolist() for k, v in windows.items()})

    # a fresh interpreter, TensorFlow only: the SavedModel needs nothing of forecast
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tensorflow as tf
        out = {}
        for name, (folder, windows) in json.loads(sys.stdin.read()).items():
            model = tf.saved_model.load(folder)
            feed = {k: tf.constant(np.asarray(v, dtype="float32")) for k, v in windows.items()}
            out[name] = model.signatures["serving_default"](**feed)["forecast"].numpy().tolist()
        assert not any(m == "forecast" or m.startswith("forecast.") for m in sys.modules)
        print(json.dumps(out))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(exported), env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, values in results.items():
        diff = np.max(np.abs(np.asarray(values) - expected[name]))
        assert diff <= 1e-5, (name, diff)


def test_tflite_equals_keras(saved, tmp_path):
    from forecast.export import export_forecaster, run_tflite

    for name, (forecaster, _) in saved.items():
        result = export_forecaster(forecaster, tmp_path / name, fmt="tflite")
        assert result.kernel == "loop"
        content = (tmp_path / name / "model.tflite").read_bytes()
        windows = _windows(forecaster.model, batch=3)
        diff = np.max(np.abs(run_tflite(content, windows) - _keras(forecaster.model, windows)))
        assert diff <= 1e-4, (name, diff)
        assert result.max_abs_diff <= 1e-4
        meta = json.loads((tmp_path / name / "metadata.json").read_text())
        assert meta["inputs"]["past"]["shape"][0] == 1 and meta["kernel"] == "loop"
    # the layers trained with the fused kernel still report it after the export's tracing
    assert saved["segment"][0].kernel_used == "fused"


def test_onnx_and_bad_targets_are_clear_errors(saved, tmp_path, capsys):
    from forecast.cli import main
    from forecast.export import export_model

    with pytest.raises(ConfigError, match="tf2onnx.*TensorFlow 2.13-2.15"):
        export_model("anything", tmp_path / "x", fmt="onnx")
    with pytest.raises(SystemExit) as done:
        main(["export", "anything", "--format", "onnx", str(tmp_path / "x")])
    assert done.value.code == 2
    assert "--format onnx is not available" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--format must be one of"):
        export_model("anything", tmp_path / "x", fmt="pb")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "other.txt").write_text("keep")
    with pytest.raises(ModelError, match="is not empty"):
        export_model(str(saved["segment"][1]), taken)
    assert (taken / "other.txt").read_text() == "keep"
    with pytest.raises(ModelError):
        export_model(str(tmp_path / "missing"), tmp_path / "y")
