"""``forecast serve``: a logged forecaster over HTTP, with MLflow's scoring app behind a guard.

The app is MLflow's own (``mlflow.pyfunc.scoring_server.init``: ``POST /invocations``,
``GET /ping``, ``/health``, ``/version``), run by uvicorn inside this process — no ``uvicorn``
executable on ``PATH``, no activated venv — and wrapped in ``RequestGuard``, an ASGI middleware
that holds the promises MLflow's app does not make about hostile or careless requests:

- a body larger than ``max_body_bytes`` (default 10 MB) is answered 413 before it is parsed;
- a JSON body must parse and nest at most ``MAX_JSON_DEPTH`` levels (400 otherwise, never a 500
  from a ``RecursionError``), and be an object with one of MLflow's input keys;
- a ``text/csv`` body is read as raw text cells (as ``forecast predict`` reads a file) and handed
  on as ``dataframe_split`` JSON, so MLflow's CSV reader (which cannot type our ``any`` columns)
  never sees it; any other content type is answered 415;
- every error answer is JSON ``{"error_code": ..., "message": ...}`` whose message is one line
  of ours, at most ``MESSAGE_LIMIT`` characters, without MLflow's dump of the whole input frame
  or a stack trace, with ``<``, ``>`` and ``&`` written as JSON escapes (no markup in the body);
- a 200 answer never carries ``NaN`` or ``Infinity`` (not JSON): the model refuses non-finite
  forecasts itself (``NonFiniteForecastError``, 422) and the guard checks again.

Every request, good or bad, leaves the server up.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import json
import logging
import signal
import socket

from forecast.errors import ConfigError
from forecast.serving.pyfunc import ECHO_LIMIT, ERROR_REPORT, short_text

logger = logging.getLogger("forecast.serving.server")

DEFAULT_HOST = "127.0.0.1"
#: 5001, not MLflow's 5000: ``forecast ui`` (the MLflow UI) listens on 5000.
DEFAULT_PORT = 5001
DEFAULT_MAX_BODY_MB = 10.0
#: dataframe_split needs 4 levels ({"dataframe_split": {"data": [[...]]}}); MLflow's other input
#: formats a few more. Deeper is no forecast request.
MAX_JSON_DEPTH = 32
MESSAGE_LIMIT = 1000
#: MLflow's input keys (``mlflow.pyfunc.scoring_server.SUPPORTED_FORMATS``) and ``params``.
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUEST_FORMAT = ('send the raw recent history as JSON {"dataframe_split": {"columns": [...], '
                  '"data": [[...], ...]}} (Content-Type: application/json), or as CSV text with '
                  'a header row (Content-Type: text/csv)')
_JSON_TYPES = ("application/json",)
_CSV_TYPES = ("text/csv",)


class Refusal(Exception):
    """A request the guard answers itself: HTTP ``status`` with ``message``."""

    def __init__(self, status: int, message: str, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def error_body(message: str, error_code: str) -> bytes:
    """The JSON of an error answer: one line, cut to ``MESSAGE_LIMIT``, markup escaped."""
    message = short_text(message, limit=MESSAGE_LIMIT)
    text = json.dumps({"error_code": error_code, "message": message}, ensure_ascii=True)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .encode("ascii"))


def json_depth(value) -> int:
    """How deep lists and dicts nest in ``value`` (iterative: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, (list, dict)))
    return deepest


def _media_type(content_type: str) -> tuple[str, dict]:
    kind, *parameters = [part.strip() for part in content_type.split(";")]
    return kind.lower(), {key.strip().lower(): value.strip().strip('"').lower()
                          for key, _, value in (p.partition("=") for p in parameters)}


def check_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuses a JSON body that is not UTF-8 JSON, nests too deep or lacks an input key.

    Python's C JSON scanner stops at the interpreter's recursion limit with a ``RecursionError``
    (a clean exception, not a crash), which is caught here; the depth of what did parse is then
    measured without recursion. MLflow's own parser (which would answer 500 to the first and
    echo the whole body in the second's message) only sees bodies that passed.

    Raises:
        Refusal: 400 with the reason (never the body's text).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the request body is not UTF-8 text (byte {exc.start}); "
                           f"{REQUEST_FORMAT}.") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise Refusal(400, f"the request body nests JSON deeper than {max_depth} levels; "
                           f"{REQUEST_FORMAT}.") from None
    except ValueError as exc:  # JSONDecodeError: its msg names the position, not the text
        where = (f" ({exc.msg} at line {exc.lineno}, column {exc.colno})"
                 if isinstance(exc, json.JSONDecodeError) else "")
        raise Refusal(400, f"the request body is not valid JSON{where}; "
                           f"{REQUEST_FORMAT}.") from None
    if json_depth(data) > max_depth:
        raise Refusal(400, f"the request body nests JSON deeper than {max_depth} levels; "
                           f"{REQUEST_FORMAT}.")
    if not isinstance(data, dict):
        raise Refusal(400, f"the request body is a JSON {type(data).__name__}, not an object; "
                           f"{REQUEST_FORMAT}.")
    found = [key for key in INPUT_KEYS if key in data]
    if len(found) != 1:
        keys = ", ".join(repr(short_text(k)) for k in list(data)[:5])
        more = f" and {len(data) - 5} more" if len(data) > 5 else ""
        raise Refusal(400, f"the request body must have exactly one of the keys "
                           f"{', '.join(INPUT_KEYS)} (and optionally params); it has "
                           f"{keys or 'none'}{more}. {REQUEST_FORMAT[0].upper()}"
                           f"{REQUEST_FORMAT[1:]}.")
    source = (data.get("params") or {}).get("source") if isinstance(data.get("params"),
                                                                    dict) else None
    if isinstance(source, str) and len(source) > ECHO_LIMIT:
        raise Refusal(400, f"params.source (how error messages name the input) has "
                           f"{len(source)} characters; send at most {ECHO_LIMIT}, or leave it "
                           "out.")


def csv_to_json(body: bytes, model=None) -> bytes:
    """A CSV body (header row, comma-separated, UTF-8) as ``dataframe_split`` JSON of text cells.

    Cells stay text (``dtype=str``, empty cells empty) as ``forecast predict`` reads a file; the
    model parses and validates them like ``load_csv``. With ``model`` (the loaded pyfunc), only
    the columns its signature names are passed on, as ``forecast predict`` does
    (``forecast.serving.pyfunc.model_input``): a CSV in the training file's layout is taken
    without MLflow logging "Found extra inputs … will be ignored" for every request.

    Raises:
        Refusal: 400 when the body is not UTF-8 or not a CSV with a header row.
    """
    import pandas as pd

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the CSV body is not UTF-8 text (byte {exc.start}); send a "
                           "comma-separated UTF-8 CSV with a header row.") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = short_text(f"{type(exc).__name__}: {exc}", limit=160)
        raise Refusal(400, f"the CSV body cannot be read ({reason}); send a comma-separated "
                           "UTF-8 CSV with a header row.") from None
    if model is not None:
        from forecast.serving.pyfunc import model_input

        frame = model_input(model, frame)
    data = {"dataframe_split": {"columns": [str(c) for c in frame.columns],
                                "data": frame.to_numpy(dtype=object).tolist()}}
    return json.dumps(data).encode("utf-8")


def _reject_constant(name: str):
    raise ValueError(name)


def _has_non_finite(body: bytes) -> bool:
    try:
        json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        return str(exc) in ("NaN", "Infinity", "-Infinity")
    return False


def _mlflow_message(raw: bytes) -> tuple[str, str | None]:
    """The message of an error answer of MLflow's app, without its dump of the input frame."""
    try:
        data = json.loads(raw)
        message, code = str(data.get("message", "")), data.get("error_code")
    except (ValueError, AttributeError):
        message, code = raw.decode("utf-8", "replace"), None
    # scoring_server.invocations: f"Failed to predict data '{data}'. \nError: {e.message}"
    if message.startswith("Failed to predict data") and "\nError: " in message:
        message = message[message.rindex("\nError: ") + len("\nError: "):]
    return message, code


class RequestGuard:
    """ASGI middleware in front of MLflow's scoring app (see the module docstring).

    Args:
        app: the ASGI app (``mlflow.pyfunc.scoring_server.init(model)``).
        max_body_bytes: the largest request body taken (413 beyond).
        max_depth: the deepest JSON nesting taken (400 beyond).
        model: the loaded pyfunc model, whose signature's columns a CSV body is cut to.
    """

    def __init__(self, app, *, max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 2**20),
                 max_depth: int = MAX_JSON_DEPTH, model=None):
        self.app = app
        self.model = model
        self.max_body_bytes = int(max_body_bytes)
        self.max_depth = int(max_depth)

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope.get("path") != "/invocations"
                or scope.get("method") != "POST"):
            await self.app(scope, receive, send)
            return
        try:
            scope, body = await self._prepare(scope, receive)
        except Refusal as refusal:
            await _answer(send, refusal.status, error_body(refusal.message, refusal.error_code))
            return
        await self._forward(scope, body, receive, send)

    async def _prepare(self, scope, receive):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        limit = self.max_body_bytes
        too_large = Refusal(413, f"the request body is larger than {limit / 2**20:g} MB "
                                 f"({limit} bytes), the limit of this server (forecast serve "
                                 "--max-body-mb); send the most recent rows only: the model "
                                 "reads its lookback.", "REQUEST_LIMIT_EXCEEDED")
        length = headers.get("content-length", "")
        if length.strip().isdigit() and int(length) > limit:
            raise too_large
        kind, parameters = _media_type(headers.get("content-type", ""))
        if kind not in _JSON_TYPES + _CSV_TYPES:
            raise Refusal(415, f"unsupported Content-Type {short_text(kind or 'none')!r}; "
                               f"{REQUEST_FORMAT}.", "UNSUPPORTED_MEDIA_TYPE")
        if parameters.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise Refusal(415, f"unsupported charset {short_text(parameters['charset'])!r}; "
                               "send UTF-8.", "UNSUPPORTED_MEDIA_TYPE")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refusal(400, "the client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if kind in _CSV_TYPES:
            body = await asyncio.to_thread(csv_to_json, body, self.model)
        else:
            await asyncio.to_thread(check_json, body, self.max_depth)
        new_headers = [(k, v) for k, v in scope.get("headers", [])
                       if k.lower() not in (b"content-type", b"content-length",
                                            b"transfer-encoding")]
        new_headers += [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]
        return {**scope, "headers": new_headers}, body

    async def _forward(self, scope, body: bytes, receive, send):
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to go away

        start: dict = {}
        parts: list[bytes] = []
        answered = False

        async def capture(message):
            nonlocal answered
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered = True
                await self._finish(start, b"".join(parts), send, report)

        report: dict = {}
        token = ERROR_REPORT.set(report)
        try:
            await self.app(scope, replay, capture)
        except Exception as exc:  # noqa: BLE001 - answered below, logged with the traceback
            logger.exception("forecast serve: the scoring app failed on a request")
            if not answered and not start:
                await _answer(send, 500, error_body(
                    f"the server failed on this request ({type(exc).__name__}); it is still "
                    "up. The server log has the details.", "INTERNAL_ERROR"))
        finally:
            ERROR_REPORT.reset(token)

    async def _finish(self, start: dict, raw: bytes, send, report: dict) -> None:
        status = int(start.get("status", 500))
        if status >= 400:
            text, code = _mlflow_message(raw)
            if report.get("message"):  # the model's own ForecastError: exactly its message
                message = report["message"]
                status = int(report.get("status") or status)
            else:
                message = (f"the request cannot be used ({short_text(text, limit=300)}); "
                           f"{REQUEST_FORMAT}.")
            code = code or ("INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
            await _answer(send, status, error_body(message, code))
            return
        if status == 200 and _has_non_finite(raw):
            await _answer(send, 422, error_body(
                "the model produced non-finite values (NaN or infinity) in its forecast; the "
                "history's values are probably far outside what the model was trained on.",
                "INVALID_STATE"))
            return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


async def _answer(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def build_app(model, *, max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 2**20),
              max_depth: int = MAX_JSON_DEPTH):
    """MLflow's scoring app for a loaded pyfunc ``model``, behind ``RequestGuard``."""
    from mlflow.pyfunc import scoring_server

    return RequestGuard(scoring_server.init(model), max_body_bytes=max_body_bytes,
                        max_depth=max_depth, model=model)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> None:
    """Checks that ``host:port`` can be listened on now (before the slow model load).

    Raises:
        ConfigError: the port is out of range, the host unknown, or the address in use.
    """
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535. Received: --port {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host!r}: not an address of this machine "
                          f"({getattr(exc, 'strerror', None) or exc}). Use 127.0.0.1 (this "
                          "machine only) or an address of one of its interfaces.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} "
                              f"({exc.strerror or exc}); pick another --port or stop what "
                              "listens there.") from None


def run(model, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        max_body_mb: float = DEFAULT_MAX_BODY_MB, log_level: str = "info") -> int | None:
    """Serves the loaded pyfunc ``model`` until Ctrl-C or SIGTERM; returns the stopping signal.

    uvicorn runs in this process (one worker) and shuts down gracefully (open requests get up
    to 10 s) on SIGINT or SIGTERM; the function then returns instead of re-raising the signal,
    so the caller exits 0.

    Args:
        model: a loaded ``mlflow.pyfunc.PyFuncModel`` (``forecast.serving.load_model``).
        host: the address to listen on (``127.0.0.1``: this machine only).
        port: the TCP port.
        max_body_mb: the largest request body taken, in MB (413 beyond).
        log_level: uvicorn's log level.

    Returns:
        The signal number that stopped the server, or None.
    """
    import uvicorn

    app = build_app(model, max_body_bytes=int(max_body_mb * 2**20))

    class _Server(uvicorn.Server):
        stop_signal: int | None = None

        def handle_exit(self, sig, frame) -> None:  # uvicorn's, minus re-raising the signal
            self.stop_signal = sig
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1,
                            timeout_graceful_shutdown=10, server_header=False, lifespan="off")
    server = _Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return server.stop_signal
