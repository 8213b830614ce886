"""Quiet by default: the `forecast` command shows its own output, not its libraries' chatter.

TensorFlow, absl, XLA, MLflow and alembic each log to stderr on their own terms: C++ lines such
as ``I0000 00:00:… cpu_feature_guard.cc …`` and, on a machine without an NVIDIA driver,
``E0000 … failed call to cuInit: … (303)``; ``WARNING:tensorflow:…`` paragraphs; MLflow's
``INFO mlflow.store.db.utils: Creating initial MLflow database tables...`` and its artifact
progress bars. ``configure`` turns them down before those libraries are imported (most of them
read their settings once, at import). It is called first thing by ``forecast.cli.main``;
``forecast --verbose …`` brings everything back.

What stays visible:

* our own warnings — records of the ``forecast.*`` loggers at WARNING and above, one line each
  (``warning: <message>``) on stderr;
* errors of the libraries' Python loggers (ERROR and above);
* on a machine that has an NVIDIA driver, TensorFlow's C++ errors (a CUDA error there is real);
  without a driver, cuInit's failure only says that there is no GPU, so C++ errors are hidden
  too. The GPU is never hidden: only log lines are (``CUDA_VISIBLE_DEVICES`` is not touched).

A setting the user made in the environment (``TF_CPP_MIN_LOG_LEVEL``, ``MLFLOW_LOGGING_LEVEL``,
``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``) is kept as it is.

Example:
    >>> from forecast import quiet
    >>> quiet.configure(verbose=False)   # before importing tensorflow or mlflow
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

#: The root flag that brings the libraries' logs back (anywhere on the command line).
VERBOSE_FLAG = "--verbose"

#: Python loggers of the libraries, shown from ERROR up when quiet.
LIBRARY_LOGGERS = ("tensorflow", "absl", "keras", "mlflow", "alembic", "sqlalchemy", "h5py",
                   "urllib3", "git", "py.warnings")

#: Modules whose Python warnings (``warnings.warn``) are hidden when quiet.
LIBRARY_WARNING_MODULES = r"(tensorflow|tf_keras|keras|absl|mlflow|alembic|sqlalchemy|google|h5py)"

#: Where our own ``logger.warning`` records go.
OWN_LOGGER = "forecast"

_HANDLER_NAME = "forecast-cli"


def has_nvidia_driver() -> bool:
    """Whether this machine has an NVIDIA driver (so a CUDA error would be real)."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def configure(verbose: bool = False) -> None:
    """Sets the libraries' logging for a command; call it before TensorFlow or MLflow import.

    Args:
        verbose: show the libraries' logs as they come (``--verbose``); our own loggers show
            INFO records too.

    Calling it again (another command in the same process) is harmless: settings are applied,
    never stacked.
    """
    _own_handler(level=logging.INFO if verbose else logging.WARNING)
    if verbose:
        return
    env = os.environ
    # TensorFlow's C++ logs (absl): 2 hides INFO and WARNING, 3 hides ERROR too
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_driver() else "3")
    # MLflow reads these when it is imported (and when it shows a progress bar)
    env.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "mlflow" in sys.modules:  # imported already: its handler levels were set at import
        logging.getLogger("mlflow").setLevel(_env_level("MLFLOW_LOGGING_LEVEL", logging.WARNING))
    # warnings.warn from inside the libraries (Keras' UserWarnings, deprecations); ours stay
    warnings.filterwarnings("ignore", module=LIBRARY_WARNING_MODULES)
    if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


#: C++ lines TensorFlow's libraries log while they load, before TensorFlow has applied
#: ``TF_CPP_MIN_LOG_LEVEL`` (absl writes everything to stderr until it is initialised):
#: absl's notice about that, and INFO lines (``I0000 00:00:… port.cc:153] oneDNN custom
#: operations are on…``, ``… cudart_stub.cc:31] Could not find cuda drivers…``).
PRELOAD_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] .*"  # I0000 00:00:1796030085.045442   13713 port.cc:153] …
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.)$")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` (once, whoever imports it first) with the C++ stderr filtered.

    The lines in ``PRELOAD_NOISE`` are written straight to file descriptor 2 by the shared
    libraries while they load, so no logging setting reaches them. During that import only, fd 2
    goes to a temporary file; afterwards every other line (a warning, an error, anything Python
    wrote) is written to the real stderr, in order.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; and so find_spec below does not come back here
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with _filtered_stderr(PRELOAD_NOISE):
            self.loader.exec_module(module)


@contextlib.contextmanager
def _filtered_stderr(noise: re.Pattern):
    """Sends file descriptor 2 to a temporary file, then writes back the lines not ``noise``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, closed)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(True)
                    if not noise.match(line.rstrip("\r\n"))]
            if kept:
                os.write(2, "".join(kept).encode())


def _env_level(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    level = logging.getLevelName(value.upper()) if value else default
    return level if isinstance(level, int) else default


class _OnlyWithoutOtherHandlers(logging.Filter):
    """Passes records only while the root logger has no handlers of its own.

    When an application (or pytest, or ``logging.basicConfig``) has configured logging, our
    records reach its handlers by propagation, and printing them here too would double them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not logging.getLogger().handlers


class _OneLine(logging.Formatter):
    """``warning: <message>``: one line, the level in lower case, no time or logger name."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _own_handler(level: int) -> None:
    """One stderr handler on the ``forecast`` logger (replaced, never stacked)."""
    logger = logging.getLogger(OWN_LOGGER)
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setLevel(level)
    handler.setFormatter(_OneLine())
    handler.addFilter(_OnlyWithoutOtherHandlers())
    logger.addHandler(handler)
    # only ever lowered (--verbose): a command that shows INFO itself (``forecast schedule``
    # configures the root logger at INFO) must still receive our INFO records
    if level < logging.WARNING and (logger.level == logging.NOTSET or logger.level > level):
        logger.setLevel(level)


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is at each record (test runners
    replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)
