"""Loading a logged forecaster back as an MLflow pyfunc model — only code forecast wrote runs.

A model from code runs its code file when it is loaded (``mlflow.pyfunc.load_model`` executes
``model_code.py``), so whoever can write a model folder or a registry can run code in the
process that loads it. ``load_model`` (``forecast.load``, ``forecast predict``,
``forecast serve``) therefore copies the model to a local folder first, checks that the folder
would run nothing but the ``model_code.py`` this version of forecast writes (byte for byte,
SHA-256), and only then lets MLflow load that same copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from forecast.errors import ModelError

#: The code file ``log_forecaster`` logs; a model's code must be byte-identical to it.
MODEL_CODE = Path(__file__).with_name("model_code.py")
#: MLflow's loader of models from code (the ``loader_module`` of the pyfunc flavour).
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
#: Keys of the pyfunc flavour that make MLflow import or run other code, or read the code file
#: from elsewhere: forecast never writes them.
_FORBIDDEN_KEYS = ("code", "data", "predict_fn", "predict_stream_fn")


@lru_cache(maxsize=1)
def model_code_sha256() -> str:
    """The SHA-256 of the ``model_code.py`` this version of forecast writes (hex)."""
    return hashlib.sha256(MODEL_CODE.read_bytes()).hexdigest()


def _refuse(uri: str, what: str) -> ModelError:
    return ModelError(
        f"{uri}: {what}; refusing to run it. Re-log the model with this version, or load it "
        "with mlflow directly if you trust it.")


def verify_model_folder(folder, uri: str | None = None) -> Path:
    """Checks that loading the MLflow model in ``folder`` runs only forecast's own model code.

    Reads the ``MLmodel`` file (as data, ``yaml.safe_load``): the ``python_function`` flavour
    must load a model from code (``loader_module: mlflow.pyfunc.loaders.code_model``) with no
    extra code paths (``code``), and the code file MLflow would execute — ``model_code_path``'s
    file name inside the folder — must be byte-identical to ``forecast/serving/model_code.py``.

    Args:
        folder: a local MLflow model folder (holding ``MLmodel``).
        uri: how messages name the model (default: the folder).

    Returns:
        The path of the verified code file.

    Raises:
        ModelError: no ``MLmodel`` file, not a forecast model from code, or a code file that
            differs from the one this version of forecast writes (the message gives both
            SHA-256 digests and says what to do).

    Example:
        >>> verify_model_folder("mlruns/1/models/m-123/artifacts")   # raises if tampered
    """
    import yaml

    folder = Path(folder)
    name = uri or str(folder)
    mlmodel = folder / "MLmodel"
    try:
        meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{name}: no MLflow model here (no MLmodel file in {folder}). Pass a "
                         "model URI such as models:/NAME@champion or runs:/RUN_ID/model, or "
                         "the folder that holds MLmodel.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"{name}: its MLmodel file cannot be read ({type(exc).__name__}); "
                         "re-log the model with this version of forecast.") from None
    flavor = ((meta or {}).get("flavors") or {}).get("python_function") \
        if isinstance(meta, dict) else None
    if not isinstance(flavor, dict):
        raise ModelError(f"{name}: not a pyfunc model (its MLmodel has no python_function "
                         "flavour); forecast loads only models logged by "
                         "forecast.serving.log_forecaster.")
    loader = flavor.get("loader_module")
    if loader != CODE_LOADER:
        raise _refuse(name, f"its MLmodel loads it with {str(loader)[:80]!r}, not as the model "
                            f"from code ({CODE_LOADER}) that forecast logs")
    extra = [key for key in _FORBIDDEN_KEYS if flavor.get(key)]
    if extra:
        raise _refuse(name, f"its MLmodel sets {', '.join(extra)} in the python_function "
                            "flavour (extra code or another code location), which forecast "
                            "never writes")
    code_path = flavor.get("model_code_path")
    if not isinstance(code_path, str) or not code_path.strip():
        raise _refuse(name, "its MLmodel names no model code file (model_code_path); it is not "
                            "a model from code as forecast logs it")
    # what MLflow executes: os.path.join(model_path, os.path.basename(model_code_path))
    code_file = folder / os.path.basename(code_path)
    shown = code_file if uri is None else f"{uri}/{code_file.name}"
    try:
        digest = hashlib.sha256(code_file.read_bytes()).hexdigest()
    except OSError as exc:
        raise _refuse(name, f"its model code ({shown}) cannot be read "
                            f"({type(exc).__name__})") from None
    expected = model_code_sha256()
    if digest != expected:
        raise _refuse(name, f"its model code ({shown}) differs from the code this version of "
                            f"forecast writes (sha256 {digest[:16]}…, expected "
                            f"{expected[:16]}…)")
    return code_file


def _tracking_store() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def _not_found(uri: str, exc: Exception) -> ModelError:
    from mlflow.exceptions import MlflowException

    message = exc.message if isinstance(exc, MlflowException) else str(exc)
    message = " ".join(message.split())
    return ModelError(
        f"no loadable MLflow model at {uri!r} (tracking store {_tracking_store()}): "
        f"{message}. Check the run id, model name, version or alias, and "
        "MLFLOW_TRACKING_URI.")


def _check_uri(uri) -> Path:
    """The local path ``uri`` names (it may not exist: then ``uri`` is a URI).

    Raises:
        ModelError: ``uri`` is not a non-empty string, names a local path that does not exist,
            or names a folder saved in forecast's older layout (no ``MLmodel``).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ModelError(f"the model URI must be a non-empty string such as "
                         f"'models:/NAME@champion' or 'runs:/RUN_ID/model'. Received: {uri!r}")
    local = Path(uri).expanduser()
    if "://" not in uri and ":/" not in uri and not local.exists():
        raise _not_found(uri, FileNotFoundError(f"no such folder: {local}"))
    if local.is_dir() and not (local / "MLmodel").is_file():
        from forecast.forecaster import STATE_FILE

        if (local / STATE_FILE).is_file():
            raise ModelError(
                f"{uri}: a forecaster saved by an older version of forecast (model.keras and "
                f"{STATE_FILE}, no MLmodel), which holds no serving settings (time column, "
                "reading settings). `forecast evaluate --model` still reads it; to forecast "
                "with it, train and save it again with `forecast train ... --save PATH`.")
    return local


def download_model(uri: str, dst_path) -> Path:
    """Copies the MLflow model at ``uri`` into the folder ``dst_path`` and verifies it.

    A local folder is copied too, so it cannot change between the check and its use. The copy
    is checked with ``verify_model_folder`` (its code file must be the ``model_code.py`` this
    version of forecast writes); nothing of it runs here.

    Args:
        uri: ``runs:/…``, ``models:/NAME@alias``, ``models:/NAME/3`` or a local model folder.
        dst_path: an existing (normally temporary) folder to copy into.

    Returns:
        The verified local model folder (holding ``MLmodel``).

    Raises:
        ModelError: nothing is stored at ``uri``, an older-layout folder (see
            ``load_model``), or code that is not forecast's.

    Example:
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder = download_model("models:/sales@champion", tmp)
        ...     forecaster = Forecaster.load(folder)
    """
    local = _check_uri(uri)
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        source = str(local) if local.exists() else uri
        folder = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst_path))
    except (MlflowException, OSError) as exc:
        raise _not_found(uri, exc) from None
    verify_model_folder(folder, uri=uri)
    return Path(folder)


def load_model(uri: str):
    """Loads the MLflow model at ``uri`` after checking that it runs only forecast's code.

    The model is first copied to a temporary folder (``download_model``:
    ``mlflow.artifacts.download_artifacts``; a local folder is copied too, so it cannot change
    between the check and the load), checked with ``verify_model_folder``, and loaded from that
    copy.

    Args:
        uri: any model URI MLflow accepts: ``runs:/…``, ``models:/NAME@alias``,
            ``models:/NAME/3``, or a local model folder (``forecast train --save PATH``).
            ``runs:/`` and ``models:/`` URIs are resolved against the tracking server of
            ``MLFLOW_TRACKING_URI`` (or ``mlflow.set_tracking_uri``).

    Returns:
        The ``mlflow.pyfunc.PyFuncModel``; ``.predict(history_frame)`` returns the forecast frame.

    Raises:
        ModelError: nothing is stored at ``uri`` or it cannot be loaded (the message names the
            URI and the tracking store it was looked up in), a folder of forecast's older
            ``--save`` layout (no MLmodel: the message says what to do), or its code is not the
            code this version of forecast writes (nothing of it has run then).

    Example:
        >>> model = load_model("models:/sales@champion")
        >>> model.predict(recent)          # columns: date, y (horizon rows)
    """
    _check_uri(uri)
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="forecast-load-") as tmp:
        folder = download_model(uri, tmp)
        try:
            return mlflow.pyfunc.load_model(str(folder))
        except ModelError as exc:
            raise ModelError(f"the model at {uri!r} cannot be loaded: {exc}") from None
        except (MlflowException, OSError) as exc:
            raise _not_found(uri, exc) from None
