"""The MLflow model registry as records: versions, aliases ``challenger``/``champion``, history.

This module only records; it trains and backtests nothing. Deciding which version serves is
evaluation policy and lives in ``forecast.evaluation.promotion`` (``register_and_promote``,
``promote_if_better``: every version is backtested beside the baselines, the first one too).

A registered forecaster moves through two aliases:

* ``challenger``: set by ``register_version`` on each new model version (MLflow aliases point at
  one version, so it moves to the newest); a version that loses its promotion backtest keeps
  it, one that becomes champion loses it.
* ``champion``: what ``models:/NAME@champion`` serves, moved by ``make_champion`` (promotion),
  ``promote`` (by hand) and ``rollback``.

What is recorded (all values are strings, as MLflow stores them):

Version tags (``TAG_*`` constants):
    ``forecast.kind``              ``network`` or the baseline it holds (``linear``, ...)
    ``backtest.score``             the version's own mean backtest metric (``backtest.metric``)
    ``promotion.decision``         ``promoted`` | ``kept_challenger`` | ``baseline_champion`` |
                                   ``kept_champion`` | ``manual`` | ``rejected``
    ``promotion.reason``           one sentence saying why
    ``promotion.metric``           the metric compared (e.g. ``mase``)
    ``promotion.challenger_score`` the challenger's mean metric over the folds
    ``promotion.champion_score``   the champion's mean metric over the same folds
    ``promotion.champion_version`` the champion it was compared with
    ``promotion.baselines``        JSON ``{name: mean metric}`` of the baselines on the folds
    ``promotion.folds``            JSON list of per-fold ranges and scores
    ``promotion.settings``         JSON of the backtest layout, epochs and cache reuse
    ``previous_champion``          on a version that became champion: the version it replaced
    ``rolled_back``                ``true`` on a champion that ``rollback`` demoted
    ``backtest.cache``             JSON ``{key, folds}``: the version's last backtest, reused
                                   when the same data, layout, epochs and config come again

Registered-model tag:
    ``champion_history``           JSON list of the versions that were champion, oldest first;
                                   the last one is the current champion. ``rollback`` pops it.

Example:
    >>> info = log_forecaster(forecaster, time_col="date")          # inside a run
    >>> version = register_version(info.model_uri, "etth1")         # alias challenger
    >>> make_champion("etth1", version.version)                     # what promotion decides
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from forecast.errors import ConfigError, ModelError
from forecast.options import NETWORK

CHAMPION = "champion"
CHALLENGER = "challenger"

TAG_DECISION = "promotion.decision"
TAG_REASON = "promotion.reason"
TAG_METRIC = "promotion.metric"
TAG_CHALLENGER_SCORE = "promotion.challenger_score"
TAG_CHAMPION_SCORE = "promotion.champion_score"
TAG_CHAMPION_VERSION = "promotion.champion_version"
TAG_FOLDS = "promotion.folds"
TAG_SETTINGS = "promotion.settings"
TAG_PREVIOUS_CHAMPION = "previous_champion"
TAG_ROLLED_BACK = "rolled_back"
TAG_HISTORY = "champion_history"
TAG_BACKTEST_CACHE = "backtest.cache"

TAG_KIND = "forecast.kind"
#: ``forecast.kind`` of a version that holds the trained network (else a baseline's name)
KIND_NETWORK = NETWORK
TAG_SCORE = "backtest.score"
TAG_SCORE_METRIC = "backtest.metric"
TAG_BASELINES = "promotion.baselines"

STATE_FILE = "forecaster.json"


# -- client helpers ---------------------------------------------------------------------------


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _registered_model(client, name: str):
    """The registered model, or a ConfigError listing the ones that exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise ModelError(f"cannot read registered model {name!r}: {exc.message}") from None
    try:
        names = sorted(m.name for m in client.search_registered_models(max_results=100))
    except MlflowException:
        names = []
    known = ", ".join(names) if names else "none"
    raise ConfigError(
        f"no registered model {name!r}; registered models: {known}. Register one with "
        "`forecast train ... --register NAME` or forecast.tracking.registry.register_version."
    )


def _version_str(version) -> str:
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"a model version is a positive whole number. Received: version={version!r}."
        )
    return str(int(text))


def _model_version(client, name: str, version) -> object:
    """The ModelVersion, or a ConfigError naming the versions that exist."""
    from mlflow.exceptions import MlflowException

    _registered_model(client, name)
    version = _version_str(version)
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise ModelError(
                f"cannot read version {version} of model {name!r}: {exc.message}"
            ) from None
    versions = sorted(int(v.version) for v in _all_versions(client, name))
    raise ConfigError(
        f"model {name!r} has no version {version}; its versions: "
        f"{', '.join(map(str, versions)) or 'none'}. See `forecast registry list {name}`."
    )


def _all_versions(client, name: str) -> list:
    escaped = name.replace("'", "\\'")
    versions, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            return versions


def _alias_version(client, name: str, alias: str) -> str | None:
    version = _registered_model(client, name).aliases.get(alias)
    return None if version is None else str(version)


def _history(client, name: str) -> list[str]:
    """The champion history, oldest first, ending with the current champion (if any).

    A champion alias moved outside this module (MLflow UI) is appended, so the history stays
    usable for rollback.
    """
    model = _registered_model(client, name)
    try:
        history = [str(v) for v in json.loads(model.tags.get(TAG_HISTORY, "[]"))]
    except (ValueError, TypeError):
        history = []
    current = model.aliases.get(CHAMPION)  # versions may come back as int
    if current is not None and (not history or history[-1] != str(current)):
        history.append(str(current))
    return history


def _set_history(client, name: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, TAG_HISTORY, json.dumps([int(v) for v in history]))


def make_champion(name: str, version) -> str | None:
    """Moves ``champion`` to ``version`` (``challenger`` moves off it) and records the history.

    Returns:
        The previous champion's version, or None.

    Raises:
        ConfigError: unknown model or version.
    """
    client = _client()
    return _make_champion(client, name, str(_model_version(client, name, version).version))


def champion_version(name: str) -> str | None:
    """The version the ``champion`` alias points at, or None."""
    return _alias_version(_client(), name, CHAMPION)


def model_version(name: str, version):
    """The ``ModelVersion`` (with its tags), or a ConfigError naming the versions that exist."""
    return _model_version(_client(), name, version)


def set_version_tags(name: str, version, tags: dict) -> None:
    """Sets the version's tags (values become strings; None values are skipped)."""
    _set_tags(_client(), name, str(version), tags)


def _make_champion(client, name: str, version: str) -> str | None:
    """Moves ``champion`` to ``version`` and records the history; returns the previous one."""
    history = _history(client, name)
    previous = history[-1] if history else None
    if previous == version:
        return previous
    client.set_registered_model_alias(name, CHAMPION, version)
    if _alias_version(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    if previous is not None:
        client.set_model_version_tag(name, version, TAG_PREVIOUS_CHAMPION, previous)
    if TAG_ROLLED_BACK in client.get_model_version(name, version).tags:
        client.delete_model_version_tag(name, version, TAG_ROLLED_BACK)
    history.append(version)
    _set_history(client, name, history)
    return previous


def _set_tags(client, name: str, version: str, tags: dict) -> None:
    for key, value in tags.items():
        if value is not None:
            client.set_model_version_tag(name, version, key, str(value))


# -- public API -------------------------------------------------------------------------------


def register_version(model_uri: str, name: str, *, run_id: str | None = None,
                     tags: dict | None = None, alias: str | None = CHALLENGER):
    """Registers a logged model as a new version of ``name`` and sets the alias ``challenger``.

    No version becomes champion here, not even the first: promotion decides
    (``forecast.evaluation.promotion``), or a person (``promote``).

    Args:
        model_uri: the logged model (``ModelInfo.model_uri``: ``models:/m-...``, or
            ``runs:/RUN_ID/model``).
        name: the registered model's name (created when missing).
        run_id: the run that produced the model; by default MLflow reads it off the logged
            model.
        tags: version tags to set (values become strings).
        alias: the alias the new version takes (``challenger``; None for none, e.g. a
            baseline registered to become champion).

    Returns:
        The new ``mlflow.entities.model_registry.ModelVersion`` (aliases as set now).

    Raises:
        ConfigError: an empty name. ModelError: MLflow refused the registration.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if not name or not str(name).strip():
        raise ConfigError("a registered model needs a name. Received: name=''.")
    tags = {k: str(v) for k, v in (tags or {}).items()}
    client = _client()
    try:
        if run_id is None:
            created = mlflow.register_model(model_uri, name, tags=tags or None)
        else:
            try:
                client.create_registered_model(name)
            except MlflowException as exc:
                if "ALREADY_EXISTS" not in str(getattr(exc, "error_code", "")):
                    raise
            model_id = model_uri[len("models:/"):] if model_uri.startswith("models:/m-") else None
            created = client.create_model_version(
                name, model_uri, run_id=run_id, tags=tags or None, model_id=model_id
            )
    except MlflowException as exc:
        raise ModelError(
            f"cannot register {model_uri} as model {name!r}: {exc.message}. Check that the "
            "URI names a logged model (ModelInfo.model_uri) in this tracking store "
            f"({mlflow.get_tracking_uri()})."
        ) from None
    version = str(created.version)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return client.get_model_version(name, version)


def version_state(name: str, version) -> dict:
    """The ``forecaster.json`` of a registered version (config, window spec, freq, scaler, ...).

    Raises:
        ConfigError: unknown model or version. ModelError: the version holds no forecaster.
    """
    import mlflow

    client = _client()
    version = str(_model_version(client, name, version).version)
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="forecast-registry-") as tmp:
        state_path = None
        try:  # the layout of log_forecaster: fetch the one small file
            state_path = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri}/artifacts/forecaster/{STATE_FILE}", dst_path=tmp))
        except Exception:  # noqa: BLE001 - another layout: fetch the whole model and look
            try:
                local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            except Exception as exc:  # noqa: BLE001
                raise ModelError(
                    f"cannot download version {version} of model {name!r} ({uri}): {exc}"
                ) from None
            found = sorted(Path(local).rglob(STATE_FILE))
            state_path = found[0] if found else None
        if state_path is None or not state_path.is_file():
            raise ModelError(
                f"version {version} of model {name!r} holds no {STATE_FILE}: it was not logged "
                "with forecast.serving.log_forecaster, so it cannot be backtested. Promote it "
                f"by hand with `forecast registry promote {name} {version}`."
            )
        try:
            state = json.loads(state_path.read_text())
            dict(state["config"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"{STATE_FILE} of version {version} of model {name!r} is unreadable: {exc}"
            ) from None
    return state


def forecaster_config(name: str, version) -> dict:
    """The ``ForecasterConfig`` (as a dict) a registered version was trained with.

    Read from the version's ``forecaster.json``; ``lookback`` is filled from the saved window
    spec when the configuration left it to the default.

    Raises:
        ConfigError: unknown model or version. ModelError: the version holds no forecaster.
    """
    state = version_state(name, version)
    config = dict(state["config"])
    if config.get("lookback") is None and (state.get("spec") or {}).get("lookback"):
        config["lookback"] = int(state["spec"]["lookback"])
    return config


def cached_backtest(name: str, version, key: str) -> dict | None:
    """The folds of the version's last backtest when it was made under ``key``, else None."""
    raw = _client().get_model_version(name, str(version)).tags.get(TAG_BACKTEST_CACHE)
    try:
        cached = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not cached or cached.get("key") != key or not cached.get("folds"):
        return None
    return cached


def store_backtest(name: str, version, key: str, folds: list[dict]) -> None:
    """Keeps a version's backtest folds (``backtest.cache``) for reuse under ``key``."""
    _client().set_model_version_tag(name, str(version), TAG_BACKTEST_CACHE,
                                    json.dumps({"key": key, "folds": folds}))


def promote(name: str, version) -> str:
    """Makes ``version`` the champion by hand (no backtest); the history keeps the old one.

    Returns:
        The reason recorded (one sentence).

    Raises:
        ConfigError: unknown model or version.
    """
    client = _client()
    version = str(_model_version(client, name, version).version)
    before = _alias_version(client, name, CHAMPION)
    before = None if before is None else str(before)
    if before == version:
        return f"version {version} is already the champion of {name!r}."
    _make_champion(client, name, version)
    reason = (f"version {version} promoted by hand" +
              (f" over version {before}." if before else " (first champion)."))
    _set_tags(client, name, version, {TAG_DECISION: "manual", TAG_REASON: reason})
    return reason


def rollback(name: str):
    """Moves ``champion`` back to the previous champion in the history.

    The demoted version gets the tag ``rolled_back=true`` and leaves the history, so repeated
    rollbacks walk further back.

    Returns:
        The ``ModelVersion`` that is champion now.

    Raises:
        ConfigError: unknown model. ModelError: there is no previous champion to return to.
    """
    client = _client()
    history = _history(client, name)
    if not history:
        raise ModelError(
            f"model {name!r} has no champion, so there is nothing to roll back. Promote a "
            f"version with `forecast registry promote {name} VERSION`."
        )
    if len(history) < 2:
        raise ModelError(
            f"model {name!r} has no previous champion to roll back to: version {history[-1]} "
            "is the only one that has been champion. Promote another version with "
            f"`forecast registry promote {name} VERSION`."
        )
    demoted, restored = history[-1], history[-2]
    client.set_registered_model_alias(name, CHAMPION, restored)
    client.set_model_version_tag(name, demoted, TAG_ROLLED_BACK, "true")
    _set_history(client, name, history[:-1])
    return client.get_model_version(name, restored)


def list_versions(name: str) -> list[dict]:
    """Every version of a registered model, newest first.

    Returns:
        Dicts of ``version`` (int), ``aliases`` (list), ``run_id``, ``created`` (ISO time, UTC),
        ``status``, ``source``, ``kind`` (``network`` or a baseline), ``score`` and ``metric``
        (its mean backtest metric, None before promotion ran) and ``tags`` (the
        ``promotion.*``, ``previous_champion`` and ``rolled_back`` tags only).

    Raises:
        ConfigError: unknown model (the message lists the registered ones).
    """
    from datetime import UTC, datetime

    client = _client()
    model = _registered_model(client, name)
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in _all_versions(client, name):
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC)
        rows.append({
            "version": int(mv.version),
            "aliases": sorted(aliases.get(str(mv.version), [])),
            "run_id": mv.run_id,
            "created": created.isoformat(timespec="seconds"),
            "status": mv.status,
            "source": mv.source,
            "kind": mv.tags.get(TAG_KIND, KIND_NETWORK),
            "score": float(mv.tags[TAG_SCORE]) if TAG_SCORE in mv.tags else None,
            "metric": mv.tags.get(TAG_SCORE_METRIC),
            "tags": {k: v for k, v in mv.tags.items()
                     if k.startswith("promotion.") or k in (TAG_PREVIOUS_CHAMPION,
                                                            TAG_ROLLED_BACK)},
        })
    return sorted(rows, key=lambda row: row["version"], reverse=True)


def champion_history(name: str) -> list[int]:
    """The versions that were champion, oldest first; the last is the current champion."""
    return [int(v) for v in _history(_client(), name)]


__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "register_version",
    "make_champion",
    "champion_version",
    "model_version",
    "set_version_tags",
    "cached_backtest",
    "store_backtest",
    "promote",
    "rollback",
    "list_versions",
    "champion_history",
    "forecaster_config",
    "version_state",
]
