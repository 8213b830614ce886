"""`forecast serve` against hostile and careless requests: 4xx with our message, server stays up.

One real server (a subprocess on a free port) for the module; every bad request goes to it, a
good request must still work afterwards, and SIGTERM must stop it cleanly. The guard's handling
of answers the model cannot give here (NaN in a 200, a crash, MLflow's input dump) is tested in
process with stand-in ASGI apps, and the model's non-finite check on the loaded pyfunc.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from forecast.serving.server import RequestGuard
from tests.servers import model_server
from tests.serving.conftest import HORIZON

LIMIT = 10 * 2**20  # the default --max-body-mb
SCRIPT = "<script>alert('x')</script>" + "A" * 100_000  # a 100 KB cell


def _post(base: str, body: bytes, content_type: str = "application/json"):
    request = urllib.request.Request(f"{base}/invocations", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _split(frame: pd.DataFrame, **extra) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(frame.columns),
                                           "data": frame.to_numpy().tolist()}, **extra}).encode()


def _message(raw: bytes) -> str:
    answer = json.loads(raw)
    assert set(answer) == {"error_code", "message"}, answer  # no stack_trace, no input dump
    assert "\n" not in answer["message"]
    return answer["message"]


def _assert_not_echoed(raw: bytes) -> None:
    assert len(raw) < 2000
    assert b"<script" not in raw and b"A" * 60 not in raw


@pytest.fixture(scope="module")
def recent(history) -> pd.DataFrame:
    """60 rows of history as a client sends them: every cell text, as in the CSV."""
    part = history.raw.iloc[300:360].copy()
    part["date"] = part["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return part.astype(str).reset_index(drop=True)


@pytest.fixture(scope="module")
def server(store, logged, tmp_path_factory):
    """`forecast serve models:/sales@champion` on 127.0.0.1 and a free port."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PATH"] = "/usr/bin:/bin"  # the server must not need the venv's bin on PATH
    command = [str(Path(sys.executable).parent / "forecast"), "serve", logged.champion_uri]
    with model_server(command, tmp_path_factory.mktemp("serve") / "server.log",
                      env=env) as running:
        yield running


def test_good_json_and_csv_bodies_get_the_same_forecast(server, recent, trained):
    status, raw = _post(server.base, _split(recent))
    assert status == 200, raw
    frame = pd.DataFrame(json.loads(raw)["predictions"])
    expected = trained.forecaster.predict(trained.frame.iloc[300:360])
    assert list(frame.columns) == ["date", "y"] and len(frame) == HORIZON
    assert_allclose(frame["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-5)

    status, raw = _post(server.base, recent.to_csv(index=False).encode(), "text/csv")
    assert status == 200, raw  # MLflow's own CSV reader fails on our `any` columns
    by_csv = pd.DataFrame(json.loads(raw)["predictions"])
    assert_allclose(by_csv["y"].to_numpy(), frame["y"].to_numpy(), rtol=0, atol=0)

    # a CSV in the training file's layout with a column the model does not read: the same
    # forecast, and no "Found extra inputs" from MLflow in the server's log
    wider = recent.assign(station="north").to_csv(index=False).encode()
    status, raw = _post(server.base, wider, "text/csv")
    assert status == 200, raw
    by_wider = pd.DataFrame(json.loads(raw)["predictions"])
    assert_allclose(by_wider["y"].to_numpy(), frame["y"].to_numpy(), rtol=0, atol=0)
    assert "Found extra inputs" not in server.log.read_text(errors="replace")


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_a_100kb_script_cell_is_not_echoed(server, recent, content_type):
    bad = recent.copy()
    bad.loc[30, "y"] = SCRIPT
    body = (_split(bad) if content_type == "application/json"
            else bad.to_csv(index=False).encode())

    status, raw = _post(server.base, body, content_type)

    assert status == 400
    _assert_not_echoed(raw)
    message = _message(raw)
    assert message.startswith("'model input': column 'y' must hold numbers, but row 31")
    assert "…" in message  # the cell, cut to 40 characters


@pytest.mark.parametrize("body, start", [
    (b"[" * 100_000 + b"]" * 100_000, "the request body nests JSON deeper than 32 levels"),
    (b'{"dataframe_split": {"data": ' + b"[" * 50 + b"]" * 50 + b"}}",
     "the request body nests JSON deeper than 32 levels"),
    (b'{"dataframe_split": <script>' + SCRIPT.encode(), "the request body is not valid JSON ("),
    (b"\xff\xfe{}", "the request body is not UTF-8 text"),
    (b"[1, 2]", "the request body is a JSON list, not an object"),
    (json.dumps({"<b>" + "x" * 5000: 1}).encode(),
     "the request body must have exactly one of the keys dataframe_split"),
    (json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1, 2, 3]]}}).encode(),
     "the request cannot be used (Invalid input."),
], ids=["deep-100k", "deep-50", "not-json", "not-utf8", "list", "long-key", "bad-split"])
def test_malformed_json_is_a_400_with_our_message(server, body, start):
    status, raw = _post(server.base, body)
    assert status == 400, raw
    _assert_not_echoed(raw)
    assert _message(raw).startswith(start)


def test_a_long_source_param_and_a_short_history_are_400s(server, recent):
    status, raw = _post(server.base, _split(recent, params={"source": "<b>" * 100}))
    assert status == 400
    _assert_not_echoed(raw)
    assert _message(raw).startswith("params.source (how error messages name the input)")

    status, raw = _post(server.base, _split(recent.iloc[:5]))
    assert status == 400
    assert _message(raw).startswith("'model input': has 5 row(s)")
    assert "at least 24 rows" in _message(raw)


def test_other_content_types_are_a_415(server):
    status, raw = _post(server.base, b"<a>" + SCRIPT.encode() + b"</a>", "application/xml")
    assert status == 415
    _assert_not_echoed(raw)
    assert _message(raw).startswith("unsupported Content-Type 'application/xml'; send the raw "
                                    'recent history as JSON {"dataframe_split"')


def test_a_body_over_the_limit_is_a_413_before_it_is_read(server):
    # Content-Length says 50 MB; nothing of the body is sent: the answer comes first.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(50 * 2**20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert _message(response.read()).startswith("the request body is larger than 10 MB")
    connection.close()

    # Chunked, no Content-Length: refused once more than the limit has arrived.
    body = b'{"dataframe_split": "' + b"A" * (LIMIT + 2**16) + b'"}'
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/invocations",
                       body=(body[i:i + 2**16] for i in range(0, len(body), 2**16)),
                       headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    assert _message(response.read()).startswith("the request body is larger than 10 MB")
    connection.close()


def test_the_server_still_answers_after_every_bad_request(server, recent):
    status, raw = _post(server.base, _split(recent))
    assert status == 200 and len(json.loads(raw)["predictions"]) == HORIZON
    with urllib.request.urlopen(f"{server.base}/ping", timeout=10) as response:
        assert response.status == 200
    assert server.process.poll() is None
    assert "Traceback" not in server.log.read_text(errors="replace")


def test_sigterm_stops_the_server_cleanly(server):
    """Last in the module: stops the shared server."""
    os.killpg(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # the whole process group is gone
    with pytest.raises(ConnectionRefusedError), socket.create_connection(
            ("127.0.0.1", server.port), timeout=5):
        pass  # nothing listens any more
    with socket.socket() as sock:  # and the port can be listened on again (TIME_WAIT aside)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))
        sock.listen()
    log = server.log.read_text(errors="replace")
    assert "stopped (signal 15)." in log and "Traceback" not in log


# -- the guard alone, in process, with stand-in apps ---------------------------------------------


def _call(app, body: bytes, content_type: str = "application/json"):
    """Drives an ASGI app with one POST /invocations; returns (status, body)."""
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(b"content-type", content_type.encode()),
                         (b"content-length", str(len(body)).encode())]}
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent
                                     if m["type"] == "http.response.body")


def _answering(status: int, payload: bytes):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
    return app


GOOD = b'{"dataframe_split": {"columns": ["y"], "data": [[1]]}}'


def test_guard_never_passes_nan_in_a_200():
    status, raw = _call(RequestGuard(_answering(200, b'{"predictions": [{"y": NaN}]}')), GOOD)
    assert status == 422
    assert _message(raw).startswith("the model produced non-finite values")
    ok = b'{"predictions": [{"y": 1.5}]}'
    assert _call(RequestGuard(_answering(200, ok)), GOOD) == (200, ok)


def test_guard_cuts_mlflows_dump_of_the_input():
    dump = json.dumps({"error_code": "BAD_REQUEST",
                       "message": f"Failed to predict data '{SCRIPT}'. \nError: bad column",
                       "stack_trace": "Traceback ..."}).encode()
    status, raw = _call(RequestGuard(_answering(400, dump)), GOOD)
    assert status == 400
    _assert_not_echoed(raw)
    assert _message(raw).startswith("the request cannot be used (bad column);")


def test_guard_answers_a_crashing_app_with_json():
    async def crashing(scope, receive, send):
        raise RecursionError("deep")

    status, raw = _call(RequestGuard(crashing), GOOD)
    assert status == 500
    assert _message(raw).startswith("the server failed on this request (RecursionError)")


def test_the_model_refuses_non_finite_forecasts(logged, history, monkeypatch):
    """Forecasts with NaN or inf raise NonFiniteForecastError (HTTP 422), never return."""
    import forecast
    from forecast.errors import ModelError
    from forecast.serving.pyfunc import NonFiniteForecastError

    model = forecast.load(logged.runs_uri)
    forecaster = model.unwrap_python_model().forecaster
    real = forecaster.predict

    def broken(frame):
        out = real(frame)
        out.iloc[2, 0] = np.inf
        out.iloc[3, 0] = np.nan
        return out

    monkeypatch.setattr(forecaster, "predict", broken)
    with pytest.raises(NonFiniteForecastError) as caught:
        model.predict(history.raw.iloc[100:160])
    assert isinstance(caught.value, ModelError)
    assert caught.value.get_http_status_code() == 422
    assert "non-finite values (NaN or infinity) in 2 of 6 forecast row(s) of 'y'" in str(
        caught.value)


def test_serve_checks_its_address_before_loading_anything():
    from forecast.errors import ConfigError
    from forecast.serving.server import check_address, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--port {port}: cannot listen on 127.0.0.1"):
            check_address("127.0.0.1", port)
    with pytest.raises(ConfigError, match="--port must be between 1 and 65535"):
        check_address("127.0.0.1", 70000)
    with pytest.raises(ConfigError, match="--host 'no-such-host.invalid'"):
        check_address("no-such-host.invalid", 5001)
