"""Loading a logged forecaster back as an MLflow pyfunc model, with errors users can act on."""

from __future__ import annotations

from forecast.errors import ModelError


def load_model(uri: str):
    """Loads the MLflow model at ``uri`` (``runs:/…``, ``models:/NAME@alias``, a local path).

    Args:
        uri: any model URI MLflow accepts. ``runs:/`` and ``models:/`` URIs are resolved against
            the tracking server of ``MLFLOW_TRACKING_URI`` (or ``mlflow.set_tracking_uri``).

    Returns:
        The ``mlflow.pyfunc.PyFuncModel``; ``.predict(history_frame)`` returns the forecast frame.

    Raises:
        ModelError: nothing is stored at ``uri`` or it cannot be loaded; the message names the
            URI and the tracking store it was looked up in.

    Example:
        >>> model = load_model("models:/sales@champion")
        >>> model.predict(recent)          # columns: date, y (horizon rows)
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ModelError(f"the model URI must be a non-empty string such as "
                         f"'models:/NAME@champion' or 'runs:/RUN_ID/model'. Received: {uri!r}")
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(uri)
    except ModelError as exc:
        raise ModelError(f"the model at {uri!r} cannot be loaded: {exc}") from None
    except (MlflowException, OSError) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        message = " ".join(message.split())
        raise ModelError(
            f"no loadable MLflow model at {uri!r} (tracking store "
            f"{mlflow.get_tracking_uri()}): {message}. Check the run id, model name, version or "
            "alias, and MLFLOW_TRACKING_URI."
        ) from None
