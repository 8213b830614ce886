"""The MLflow model registry: register versions, aliases ``challenger``/``champion``, promotion.

A registered forecaster moves through two aliases:

* ``challenger``: set by ``register_version`` on each new version (MLflow aliases point at one
  version, so it moves to the newest); a version that loses its promotion backtest keeps it,
  one that becomes champion loses it.
* ``champion``: what ``models:/NAME@champion`` serves. The first version of a model becomes
  champion at once (there is nothing to compare it with); later versions become champion when
  ``promote_if_better`` finds them better, or when a person says so (``promote``).

The promotion rule. ``promote_if_better`` runs the SAME rolling-origin backtest
(``forecast.workflow.run_backtest``: same frame, folds, fold size and mode) for the challenger's
configuration and for the champion's, each read from the version's ``forecaster.json``, and
promotes the challenger only when its mean metric over the folds is strictly lower. Every fold
REFITS a fresh forecaster of each configuration on the fold's training rows (scalers included),
so the comparison is fair and leak-free — and costs ``folds x 2`` trainings. ``epochs`` caps
that cost by overriding both configurations' epochs (use it in tests and quick checks). A
version's backtest is kept in its tags and reused when the same frame (by content hash), fold
layout, epochs and configuration come again (``reuse=False`` refits regardless): comparing a
series of challengers against one champion on the same data trains the champion once.

What is recorded (all values are strings, as MLflow stores them):

Version tags (``TAG_*`` constants):
    ``promotion.decision``         ``promoted`` | ``kept_challenger`` | ``first_champion`` |
                                   ``manual`` | ``rejected`` (the challenger failed to train)
    ``promotion.reason``           one sentence saying why
    ``promotion.metric``           the metric compared (e.g. ``mase``)
    ``promotion.challenger_score`` the challenger's mean metric over the folds
    ``promotion.champion_score``   the champion's mean metric over the same folds
    ``promotion.champion_version`` the champion it was compared with
    ``promotion.folds``            JSON list of ``{fold, fit_start, fit_end, origin, test_end,
                                   challenger, champion}`` (ranges and per-fold scores)
    ``promotion.settings``         JSON of ``{folds, fold_size, mode, epochs, rows, metric,
                                   reused: {challenger, champion}}`` (backtests from the cache)
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
    >>> decision = promote_if_better("etth1", version.version, frame, folds=3)
    >>> decision.promoted, decision.challenger_score, decision.champion_score
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forecast.errors import ConfigError, ForecastError, ModelError

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

#: metrics promotion can compare; all are errors (lower is better).
LOWER_IS_BETTER = ("mae", "rmse", "mape", "smape", "mase", "mse")

STATE_FILE = "forecaster.json"


@dataclass
class PromotionDecision:
    """What ``promote_if_better`` (or ``promote``) decided.

    Attributes:
        promoted: the version is champion now.
        reason: one sentence saying why.
        metric: the metric compared (None for a manual promotion or a first champion).
        challenger_score, champion_score: mean metric over the folds (None when not computed).
        champion_version_before: the champion before the decision (None if there was none).
        folds: per fold ``{fold, fit_start, fit_end, origin, test_end, challenger, champion}``.
        version: the version decided on.
        decision: the ``promotion.decision`` tag written.
    """

    promoted: bool
    reason: str
    metric: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    champion_version_before: str | None = None
    folds: list[dict] = field(default_factory=list)
    version: str | None = None
    decision: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


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


def _crown_first(client, name: str, version: str) -> str:
    """Makes the first champion of a model (no backtest); returns the reason recorded."""
    _make_champion(client, name, version)
    reason = (f"version {version} is the first champion of {name!r}: there was no champion "
              "to compare it with, so no backtest ran.")
    _set_tags(client, name, version, {TAG_DECISION: "first_champion", TAG_REASON: reason})
    return reason


def _set_tags(client, name: str, version: str, tags: dict) -> None:
    for key, value in tags.items():
        if value is not None:
            client.set_model_version_tag(name, version, key, str(value))


# -- public API -------------------------------------------------------------------------------


def register_version(model_uri: str, name: str, *, run_id: str | None = None,
                     tags: dict | None = None, first_is_champion: bool = True):
    """Registers a logged model as a new version of ``name`` and sets the alias ``challenger``.

    When the model has no champion yet, the version is also made ``champion`` (decision
    ``first_champion``, and the ``challenger`` alias moves off it): there is nothing to compare
    it with. Later versions stay ``challenger`` until ``promote_if_better`` or ``promote`` moves
    them.

    Args:
        model_uri: the logged model (``ModelInfo.model_uri``: ``models:/m-...``, or
            ``runs:/RUN_ID/model``).
        name: the registered model's name (created when missing).
        run_id: the run that produced the model; by default MLflow reads it off the logged
            model.
        tags: version tags to set (values become strings).
        first_is_champion: make the version champion when the model has none (default); with
            False it stays ``challenger`` and ``promote_if_better`` makes it champion.

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
    client.set_registered_model_alias(name, CHALLENGER, version)
    if first_is_champion and _alias_version(client, name, CHAMPION) is None:
        _crown_first(client, name, version)
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


def _backtest_config(config: dict, epochs: int | None) -> dict:
    config = json.loads(json.dumps(config))
    train = dict(config.get("train") or {})
    train["verbose"] = 0
    train["checkpoint_dir"] = None  # a path of the training machine; folds keep no checkpoints
    if epochs is not None:
        train["epochs"] = int(epochs)
    config["train"] = train
    return config


def _backtest_key(frame, config: dict, settings: dict) -> str:
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(json.dumps([list(map(str, frame.columns)), str(frame.attrs.get("freq")),
                              config, settings], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def _cached_backtest(client, name: str, version: str, key: str) -> dict | None:
    raw = client.get_model_version(name, version).tags.get(TAG_BACKTEST_CACHE)
    try:
        cached = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not cached or cached.get("key") != key or not cached.get("folds"):
        return None
    return {"folds": cached["folds"], "cached": True}


def _backtest_version(client, name: str, version: str, frame, config: dict, settings: dict,
                      *, reuse: bool) -> dict:
    """``run_backtest`` of one version's config, or its cached folds for the same inputs."""
    from forecast.workflow import run_backtest

    key = _backtest_key(frame, config, settings)
    if reuse and (cached := _cached_backtest(client, name, version, key)) is not None:
        return cached
    report = run_backtest(frame, config, folds=settings["folds"],
                          fold_size=settings["fold_size"], mode=settings["mode"], baselines=())
    folds = [{k: fold[k] for k in ("fit_start", "fit_end", "origin", "test_end", "model")}
             for fold in report["folds"]]
    client.set_model_version_tag(name, version, TAG_BACKTEST_CACHE,
                                 json.dumps({"key": key, "folds": folds}))
    return {"folds": folds, "cached": False}


def _fold_scores(report: dict, metric: str) -> tuple[float, list[float]]:
    scores = []
    for fold in report["folds"]:
        values = fold["model"]
        scores.append(float(values["rmse"]) ** 2 if metric == "mse" else float(values[metric]))
    return float(sum(scores) / len(scores)), scores


def _check_metric(metric: str) -> str:
    metric = str(metric).lower()
    if metric not in LOWER_IS_BETTER:
        raise ConfigError(
            f"promotion cannot compare metric {metric!r}; valid metrics: "
            f"{', '.join(LOWER_IS_BETTER)} (lower is better)."
        )
    return metric


def _better(challenger: float, champion: float) -> bool:
    if math.isnan(challenger):
        return False
    if math.isnan(champion):
        return True
    return challenger < champion


def promote_if_better(name: str, version, frame, *, metric: str = "mase", folds: int = 3,
                      fold_size: int | None = None, mode: str = "expanding",
                      epochs: int | None = None, reuse: bool = True) -> PromotionDecision:
    """Backtests a challenger against the champion on the same folds; promotes it if better.

    Both versions' configurations (read from their ``forecaster.json``) are refitted on every
    fold's training rows and scored on the fold's test rows (``run_backtest``): the comparison
    is fair and leak-free and costs ``folds x 2`` trainings. The challenger becomes
    ``champion`` only when its mean ``metric`` is strictly lower; otherwise it keeps the alias
    ``challenger``. The decision, both scores and the folds are written to the challenger's tags
    (see the module docstring). With no champion yet, the version becomes champion without a
    backtest.

    Args:
        name: the registered model.
        version: the challenger's version number.
        frame: the series to backtest on (``load_csv`` output, original units).
        metric: ``mae``, ``rmse``, ``mape``, ``smape``, ``mase`` or ``mse`` (lower is better;
            ``mse`` is each fold's RMSE squared).
        folds, fold_size, mode: the backtest layout (``forecast.evaluation.backtest``);
            ``fold_size`` defaults to ``max(horizon, rows // 10)``, the same for both.
        epochs: override both configurations' epochs for the backtest (cost control).
        reuse: take a version's backtest from its ``backtest.cache`` tag when the frame
            (content hash), layout, epochs and configuration are the same as last time;
            False refits both.

    Returns:
        A ``PromotionDecision``.

    Raises:
        ConfigError: unknown model, version or metric; versions forecasting different horizons
            (promote by hand instead); invalid backtest settings.
        DataError: too few rows for the folds.
        ModelError: the champion fails to train, or a version holds no forecaster.
    """
    metric = _check_metric(metric)
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) < 1):
        raise ConfigError(f"`epochs` must be a positive integer. Received: epochs={epochs!r}.")
    client = _client()
    version = str(_model_version(client, name, version).version)
    champion = _alias_version(client, name, CHAMPION)
    if champion is None:
        reason = _crown_first(client, name, version)
        return PromotionDecision(True, reason, version=version, decision="first_champion")
    champion = str(champion)
    if champion == version:  # e.g. register_version made the first version champion
        tags = client.get_model_version(name, version).tags
        reason = tags.get(TAG_REASON) or (
            f"version {version} is already the champion of {name!r}; nothing to compare.")
        return PromotionDecision(True, reason, champion_version_before=tags.get(
            TAG_PREVIOUS_CHAMPION), version=version, decision=tags.get(TAG_DECISION))

    challenger_cfg = _backtest_config(forecaster_config(name, version), epochs)
    champion_cfg = _backtest_config(forecaster_config(name, champion), epochs)
    if challenger_cfg.get("horizon") != champion_cfg.get("horizon"):
        raise ConfigError(
            f"version {version} of {name!r} forecasts {challenger_cfg.get('horizon')} steps but "
            f"the champion (version {champion}) {champion_cfg.get('horizon')}: their backtest "
            "scores are not comparable. Promote by hand with "
            f"`forecast registry promote {name} {version}` if it should serve."
        )
    if fold_size is None:
        fold_size = max(int(challenger_cfg["horizon"]), len(frame) // 10)
    settings = {"folds": folds, "fold_size": fold_size, "mode": mode, "epochs": epochs,
                "rows": len(frame), "metric": metric}

    layout = {"folds": folds, "fold_size": fold_size, "mode": mode}
    try:
        challenger_report = _backtest_version(client, name, version, frame, challenger_cfg,
                                              layout, reuse=reuse)
    except ModelError as exc:
        reason = (f"version {version} failed to train in the backtest ({exc}); the champion "
                  f"(version {champion}) stays.")
        _set_tags(client, name, version, {
            TAG_DECISION: "rejected", TAG_REASON: reason, TAG_METRIC: metric,
            TAG_CHAMPION_VERSION: champion, TAG_SETTINGS: json.dumps(settings),
        })
        return PromotionDecision(False, reason, metric=metric, champion_version_before=champion,
                                 version=version, decision="rejected")
    try:
        champion_report = _backtest_version(client, name, champion, frame, champion_cfg,
                                            layout, reuse=reuse)
    except ForecastError as exc:
        raise type(exc)(
            f"the champion (version {champion} of {name!r}) could not be backtested: {exc}"
        ) from None

    settings["reused"] = {"challenger": challenger_report["cached"],
                          "champion": champion_report["cached"]}
    challenger_score, challenger_folds = _fold_scores(challenger_report, metric)
    champion_score, champion_folds = _fold_scores(champion_report, metric)
    fold_rows = []
    for k, (fold, other) in enumerate(zip(challenger_report["folds"],
                                          champion_report["folds"], strict=True)):
        if (fold["origin"], fold["test_end"]) != (other["origin"], other["test_end"]):
            raise ModelError(  # run_backtest lays folds out by fold_size only; guard anyway
                f"the backtests of versions {version} and {champion} used different folds "
                f"({fold['origin']}..{fold['test_end']} vs {other['origin']}..{other['test_end']})."
            )
        fold_rows.append({
            "fold": k, "fit_start": fold["fit_start"], "fit_end": fold["fit_end"],
            "origin": fold["origin"], "test_end": fold["test_end"],
            "challenger": challenger_folds[k], "champion": champion_folds[k],
        })

    promoted = _better(challenger_score, champion_score)
    summary = (f"{metric} {challenger_score:.6g} (version {version}) vs {champion_score:.6g} "
               f"(champion, version {champion}) over {folds} folds of {fold_size} rows")
    if promoted:
        _make_champion(client, name, version)
        decision, reason = "promoted", f"version {version} is better: {summary}."
    else:
        decision = "kept_challenger"
        reason = (f"version {version} is not better (lower {metric} wins): {summary}; "
                  f"version {champion} stays champion.")
    _set_tags(client, name, version, {
        TAG_DECISION: decision,
        TAG_REASON: reason,
        TAG_METRIC: metric,
        TAG_CHALLENGER_SCORE: repr(challenger_score),
        TAG_CHAMPION_SCORE: repr(champion_score),
        TAG_CHAMPION_VERSION: champion,
        TAG_FOLDS: json.dumps(fold_rows),
        TAG_SETTINGS: json.dumps(settings),
    })
    return PromotionDecision(
        promoted=promoted, reason=reason, metric=metric, challenger_score=challenger_score,
        champion_score=champion_score, champion_version_before=champion, folds=fold_rows,
        version=version, decision=decision,
    )


def promote(name: str, version) -> PromotionDecision:
    """Makes ``version`` the champion by hand (no backtest); the history keeps the old one.

    Raises:
        ConfigError: unknown model or version.
    """
    client = _client()
    version = str(_model_version(client, name, version).version)
    before = _alias_version(client, name, CHAMPION)
    before = None if before is None else str(before)
    if before == version:
        return PromotionDecision(False, f"version {version} is already the champion of "
                                 f"{name!r}.", champion_version_before=before, version=version)
    _make_champion(client, name, version)
    reason = (f"version {version} promoted by hand" +
              (f" over version {before}." if before else " (first champion)."))
    _set_tags(client, name, version, {TAG_DECISION: "manual", TAG_REASON: reason})
    return PromotionDecision(True, reason, champion_version_before=before, version=version,
                             decision="manual")


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
        ``status``, ``source`` and ``tags`` (the ``promotion.*``, ``previous_champion`` and
        ``rolled_back`` tags only).

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
    "LOWER_IS_BETTER",
    "PromotionDecision",
    "register_version",
    "promote_if_better",
    "promote",
    "rollback",
    "list_versions",
    "champion_history",
    "forecaster_config",
    "version_state",
]
