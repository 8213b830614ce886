"""Package-level guarantees: the real MLflow is imported, the CLI reports errors cleanly."""

from pathlib import Path

import pytest

import forecast
from forecast.cli import main
from forecast.errors import ConfigError, DataError, ForecastError, ModelError

ROOT = Path(__file__).resolve().parents[1]


def test_import_mlflow_is_the_real_library():
    import mlflow

    assert not (ROOT / "mlflow" / "__init__.py").exists()
    assert Path(mlflow.__file__).resolve().parent != (ROOT / "mlflow").resolve()
    assert "site-packages" in mlflow.__file__
    assert hasattr(mlflow, "pyfunc") and hasattr(mlflow, "MlflowClient")


def test_error_hierarchy():
    for error in (DataError, ConfigError, ModelError):
        assert issubclass(error, ForecastError)
    assert forecast.DataError is DataError


def test_cli_prints_one_clear_message_and_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(tmp_path / "missing.csv")])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "error:" in captured.err and "missing.csv" in captured.err
    assert "Traceback" not in captured.err


def test_cli_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--debug", "inspect", str(tmp_path / "missing.csv")])
    assert exit_info.value.code == 2
    assert "Traceback" in capsys.readouterr().err


def test_cli_inspect_describes_the_bundled_data(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(ROOT / "datasets" / "ETTh1.csv"), "--target", "OT",
              "--lookback", "96", "--horizon", "24"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "17420" in out and "17301" in out  # rows and windows (17420 - 120 + 1)
