"""`mlflow models serve` on the registered forecaster: raw history in over HTTP, forecast out."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from tests.servers import model_server
from tests.serving.conftest import HORIZON


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(store, logged, tmp_path):
    """`mlflow models serve -m models:/sales@champion --env-manager local` on 127.0.0.1."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", logged.champion_uri,
               "--env-manager", "local", "--host", "127.0.0.1", "--workers", "1"]
    with model_server(command, tmp_path / "server.log", env=env) as running:
        yield running.base


def test_served_model_answers_with_the_forecast(server, history, trained):
    recent = history.raw.iloc[300:360].copy()
    recent["date"] = recent["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    body = {"dataframe_split": {"columns": list(recent.columns),
                                "data": recent.to_numpy().tolist()}}

    status, answer = _post(f"{server}/invocations", body)

    assert status == 200, answer
    frame = pd.DataFrame(answer["predictions"])
    expected = trained.forecaster.predict(trained.frame.iloc[300:360])
    assert list(frame.columns) == ["date", "y"] and len(frame) == HORIZON
    assert list(pd.to_datetime(frame["date"])) == list(expected.index)
    assert_allclose(frame["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-5)

    short = {"dataframe_split": {"columns": body["dataframe_split"]["columns"],
                                 "data": body["dataframe_split"]["data"][-5:]}}
    status, answer = _post(f"{server}/invocations", short)
    assert status == 400
    assert "at least 24 rows" in answer["message"] and "lookback" in answer["message"]
