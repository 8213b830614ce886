"""Shared fixtures: small seeded synthetic series written as real CSV files."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

# the registry fixtures (tiny forecasters, a fresh MLflow store) for the registry and promotion
pytest_plugins = ["tests.registry_helpers"]


def synthetic_frame(n: int = 480, seed: int = 0, freq: str = "h") -> pd.DataFrame:
    """A daily sine + trend + noise series with a covariate, as a CSV would hold it."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.01 * t + rng.normal(0, 0.3, n)
    x = np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=n, freq=freq), "y": y, "x": x}
    )


@pytest.fixture
def synthetic_csv(tmp_path):
    path = tmp_path / "synthetic.csv"
    synthetic_frame().to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def _isolated_mlflow_store(tmp_path, monkeypatch):
    """Every test gets its own SQLite MLflow store: nothing reaches the project's mlflow/."""
    store = tmp_path / "mlflow-store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import sys

    if "mlflow" in sys.modules:  # an earlier test's set_tracking_uri outranks the variable
        sys.modules["mlflow"].set_tracking_uri(uri)
    yield

    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()
