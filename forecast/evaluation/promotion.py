"""Which version serves: a champion that is never worse than a baseline.

Promotion is evaluation policy; ``forecast.tracking.registry`` only records what it decides.
``register_and_promote`` (the CLI's ``train --register`` and the pipeline's ``register`` step
both call it) registers a logged model as a new version (alias ``challenger``) and runs
``promote_if_better``:

1. The SAME rolling-origin backtest (``forecast.workflow.run_backtest``: same frame, folds, fold
   size and mode) scores the challenger's configuration, refitted on every fold's training rows,
   and every baseline (naive, seasonal naive, linear) on the same folds — for the first version
   too: there is no champion without a backtest.
2. The current champion is scored on those folds: a network champion is refitted from its
   ``forecaster.json`` (its backtest is cached in its tags and reused for the same data, layout,
   epochs and configuration); a baseline champion is the baseline's score on the folds.
3. The challenger becomes champion only when it beats the champion AND the best baseline
   (strictly lower mean metric). When it loses to the best baseline and the champion (if any)
   does too, the best baseline itself becomes champion: it is logged beside the challenger as a
   servable model of the same pyfunc flavour (``Forecaster.as_baseline``: raw history in,
   forecast frame out, saved as JSON) and registered as its own version, tagged with its kind.
   ``allow_worse_than_baseline=True`` (``--allow-worse-than-baseline``) waives the baseline
   rule for users who insist.

A global model over many series (trained on a long-format frame, ``--id-col``) goes through
the same rule: ``run_backtest`` then trains one model per fold over every series, each cut at
the same number of rows from its own end (``forecast.workflow.run_global_backtest``), and
scores it beside the baselines fitted inside it on the same rows (naive and seasonal naive per
series, the global linear model), pooled over the series; ``fold_size`` defaults to a tenth of
the median series. A baseline champion of a global model is global too and serves long format.

Every decision is one line, e.g. ``linear beats the LSTM on the backtest (MASE 0.81 vs 0.86):
champion is the linear baseline (version 4); the LSTM is version 3, alias challenger``, and is
written to the challenger's version tags (see ``forecast.tracking.registry``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from forecast.data.dataset import describe
from forecast.errors import ConfigError, ForecastError, ModelError
from forecast.options import BACKTEST_MODES, BASELINES, PROMOTION_METRICS
from forecast.progress import current as current_progress
from forecast.tracking import registry
from forecast.tracking.registry import (
    CHALLENGER,
    TAG_BASELINES,
    TAG_CHALLENGER_SCORE,
    TAG_CHAMPION_SCORE,
    TAG_CHAMPION_VERSION,
    TAG_DECISION,
    TAG_FOLDS,
    TAG_KIND,
    TAG_METRIC,
    TAG_REASON,
    TAG_SCORE,
    TAG_SCORE_METRIC,
    TAG_SETTINGS,
)

NETWORK = registry.KIND_NETWORK
_CELL_WORDS = {"lstm": "LSTM", "gru": "GRU", "peephole": "peephole LSTM"}


@dataclass
class PromotionDecision:
    """What ``promote_if_better`` decided.

    Attributes:
        promoted: the challenger version is champion now.
        reason: one sentence saying why (what the CLI and the pipeline print).
        decision: ``promoted`` | ``kept_challenger`` | ``baseline_champion`` | ``rejected`` |
            ``already_champion``.
        version: the challenger version decided on.
        metric: the metric compared.
        challenger_score: its mean metric over the folds.
        champion_score: the champion's mean metric over the same folds (None without one).
        champion_version_before: the champion before the decision (None if there was none).
        champion_version: the champion after it (a new baseline version, maybe).
        champion_kind: ``network`` or the baseline that is champion now.
        baselines: mean metric of every baseline on the same folds.
        best_baseline: the baseline with the lowest mean metric.
        folds: per fold ``{fold, fit_start, fit_end, origin, test_end, challenger, champion,
            <baseline>...}``.
    """

    promoted: bool
    reason: str
    decision: str
    version: str | None = None
    metric: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    champion_version_before: str | None = None
    champion_version: str | None = None
    champion_kind: str | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    best_baseline: str | None = None
    folds: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# -- the backtests ----------------------------------------------------------------------------


def _check_metric(metric: str) -> str:
    metric = str(metric).lower()
    if metric not in PROMOTION_METRICS:
        raise ConfigError(
            f"promotion cannot compare metric {metric!r}; valid metrics: "
            f"{', '.join(PROMOTION_METRICS)} (lower is better). Set --promote-metric or the "
            "pipeline's register.promotion_metric."
        )
    return metric


def _backtest_config(config: dict, epochs: int | None) -> dict:
    config = json.loads(json.dumps(config))
    train = dict(config.get("train") or {})
    train["verbose"] = 0
    train["checkpoint_dir"] = None  # a path of the training machine; folds keep no checkpoints
    if epochs is not None:
        train["epochs"] = int(epochs)
    config["train"] = train
    return config


def _backtest_key(frame, config: dict, layout: dict) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(json.dumps([list(map(str, frame.columns)), str(describe(frame).freq),
                              config, layout, list(BASELINES)], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()[:32]


def _backtest_version(name: str, version: str, frame, config: dict, layout: dict, *,
                      reuse: bool) -> tuple[list[dict], bool]:
    """The folds of ``run_backtest`` for one version's config, with every baseline on the same
    folds; or the version's cached folds for the same inputs. Returns ``(folds, cached)``."""
    from forecast.workflow import run_backtest

    key = _backtest_key(frame, config, layout)
    if reuse and (cached := registry.cached_backtest(name, version, key)) is not None:
        return cached["folds"], True
    report = run_backtest(frame, config, folds=layout["folds"], fold_size=layout["fold_size"],
                          mode=layout["mode"], baselines=BASELINES)
    keep = ("fit_start", "fit_end", "origin", "test_end", "model", *BASELINES)
    folds = [{k: fold[k] for k in keep if k in fold} for fold in report["folds"]]
    registry.store_backtest(name, version, key, folds)
    return folds, False


def _score(fold: dict, who: str, metric: str) -> float:
    values = fold.get(who)
    if not values:
        return math.nan
    return float(values["rmse"]) ** 2 if metric == "mse" else float(values[metric])


def _mean(folds: list[dict], who: str, metric: str) -> float:
    scores = [_score(fold, who, metric) for fold in folds]
    return float(sum(scores) / len(scores)) if scores else math.nan


#: a score must be lower by more than this share to win: float32 rounding is not a win (a
#: network blended at share 0 is the linear baseline, computed in float32)
TIE = 1e-5


def _better(challenger: float, other: float) -> bool:
    """Lower by more than rounding (``TIE``, relative) wins; a tie keeps the incumbent; a NaN
    never wins and never blocks.

    Example:
        >>> _better(0.80, 0.81), _better(0.7494025, 0.7494030), _better(0.81, 0.80)
        (True, False, False)
    """
    if math.isnan(challenger):
        return False
    if math.isnan(other):
        return True
    return challenger < other - TIE * abs(other)


def _model_word(config: dict) -> str:
    model = config.get("model") or {}
    word = _CELL_WORDS.get(model.get("cell", "lstm"), str(model.get("cell")))
    return f"segment {word}" if config.get("setup") == "segment" else word


def _pct(score: float, other: float) -> str:
    if not other or math.isnan(score) or math.isnan(other):
        return "n/a"
    return f"{(score - other) / abs(other):+.1%}"


# -- registering a baseline as a champion ------------------------------------------------------


def _register_baseline(name: str, version: str, baseline: str, score: float,
                       metric: str) -> str:
    """Logs the challenger's fitted ``baseline`` as a servable model in the challenger's run and
    registers it as a new version (no ``challenger`` alias); returns its version."""
    import mlflow

    from forecast.forecaster import Forecaster
    from forecast.serving import log_forecaster
    from forecast.serving.pyfunc import ARTIFACT_KEY, ServingInfo

    run_id = registry.model_version(name, version).run_id
    with tempfile.TemporaryDirectory(prefix="forecast-promotion-") as tmp:
        try:
            folder = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}/artifacts/{ARTIFACT_KEY}", dst_path=tmp))
            network = Forecaster.load(folder)
            info = ServingInfo.read(folder)
        except ForecastError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's download errors vary by store
            raise ModelError(f"cannot read version {version} of model {name!r} to register its "
                             f"{baseline} baseline: {exc}") from None
    model = network.as_baseline(baseline)
    active = mlflow.active_run()
    same_run = active is not None and active.info.run_id == run_id
    context = contextlib.nullcontext() if same_run or run_id is None else mlflow.start_run(
        run_id=run_id, nested=active is not None)
    with context:
        if not same_run and run_id is not None:  # reopened: this process owns it while it writes
            from forecast.tracking.stale import owner_tags

            mlflow.set_tags(owner_tags())
        logged = log_forecaster(model, time_col=info.time_col, name=f"baseline_{baseline}",
                                fill=info.fill, max_gap=info.max_gap,
                                reading=info.read_options)
    created = registry.register_version(
        logged.model_uri, name, run_id=run_id, alias=None,
        tags={TAG_KIND: baseline, TAG_SCORE: repr(score), TAG_SCORE_METRIC: metric})
    return str(created.version)


# -- the decision ------------------------------------------------------------------------------


def promote_if_better(name: str, version, frame, *, metric: str = "mase", folds: int = 3,
                      fold_size: int | None = None, mode: str = "expanding",
                      epochs: int | None = None, reuse: bool = True,
                      allow_worse_than_baseline: bool = False) -> PromotionDecision:
    """Backtests a version against the champion and every baseline; the best one serves.

    Args:
        name: the registered model.
        version: the challenger's version number.
        frame: the series to backtest on (``load_csv`` output, original units).
        metric: ``mae``, ``rmse``, ``mape``, ``smape``, ``mase`` or ``mse`` (lower is better;
            ``mse`` is each fold's RMSE squared).
        folds, fold_size, mode: the backtest layout (``forecast.evaluation.backtest``);
            ``fold_size`` defaults to ``max(horizon, rows // 10)``.
        epochs: override the configurations' epochs for the backtest (cost control).
        reuse: take a version's backtest from its ``backtest.cache`` tag when the frame
            (content hash), layout, epochs and configuration are the same as last time.
        allow_worse_than_baseline: promote a challenger that beats the champion even when a
            baseline beats it.

    Returns:
        A ``PromotionDecision``.

    Raises:
        ConfigError: unknown model, version or metric; versions forecasting different horizons;
            invalid backtest settings.
        DataError: too few rows for the folds.
        ModelError: the champion fails to train, or a version holds no forecaster.
    """
    metric = _check_metric(metric)
    if mode not in BACKTEST_MODES:
        raise ConfigError(f"the backtest mode must be {' or '.join(BACKTEST_MODES)}. "
                          f"Received: mode={mode!r}.")
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) < 1):
        raise ConfigError(f"`epochs` must be a positive integer. Received: epochs={epochs!r}.")
    version = str(registry.model_version(name, version).version)
    champion = registry.champion_version(name)
    if champion == version:
        tags = registry.model_version(name, version).tags
        return PromotionDecision(True, tags.get(TAG_REASON) or (
            f"version {version} is already the champion of {name!r}."), "already_champion",
            version=version, champion_version=version, metric=metric)

    config = _backtest_config(registry.forecaster_config(name, version), epochs)
    if fold_size is None:  # a tenth of the series (of the median series in long format)
        from forecast.evaluation.backtest import default_fold_size

        fold_size = default_fold_size(frame, int(config["horizon"]))
    layout = {"folds": folds, "fold_size": fold_size, "mode": mode}
    settings = {**layout, "epochs": epochs, "rows": len(frame), "metric": metric}
    # progress (forecast.progress, silent unless the CLI or the caller set a display): which
    # candidate is backtested, and each fold of it
    display = current_progress()
    champion_kind = None if champion is None else registry.model_version(
        name, champion).tags.get(TAG_KIND, NETWORK)
    display.note(_announcement(name, version, champion, champion_kind,
                               {**layout, "many": isinstance(frame.index, pd.MultiIndex)}))
    with display.task("candidate", total=1 + (champion_kind == NETWORK)) as task:
        task.relabel(f"promotion of {name}, challenger version {version}")
        try:
            fold_rows, cached = _backtest_version(name, version, frame, config, layout,
                                                  reuse=reuse)
        except ModelError as exc:
            return _rejected(name, version, champion, metric, settings, exc)
        board = _Scoreboard.of(fold_rows, metric)
        task.advance(detail="reused its earlier backtest" if cached else "backtested",
                     **{metric: board.score})
        if champion_kind == NETWORK:
            task.relabel(f"promotion of {name}, champion version {champion}")
        board.score_champion(name, champion, version, frame, config, layout, epochs, reuse)
        if champion_kind == NETWORK:
            task.advance(detail="reused its earlier backtest" if board.champion_cached
                         else "backtested", **{metric: board.champion_score})
    settings["reused"] = {"challenger": cached, "champion": board.champion_cached}
    decision = _decide(name, version, champion, board, _model_word(config),
                       allow_worse_than_baseline)
    registry.set_version_tags(name, version, {
        TAG_KIND: NETWORK, TAG_SCORE: repr(board.score), TAG_SCORE_METRIC: metric,
        TAG_DECISION: decision.decision, TAG_REASON: decision.reason, TAG_METRIC: metric,
        TAG_CHALLENGER_SCORE: repr(board.score),
        TAG_CHAMPION_SCORE: None if champion is None else repr(board.champion_score),
        TAG_CHAMPION_VERSION: champion, TAG_BASELINES: json.dumps(board.baselines),
        TAG_FOLDS: json.dumps(decision.folds), TAG_SETTINGS: json.dumps(settings)})
    return decision


def _announcement(name: str, version: str, champion: str | None, champion_kind: str | None,
                  layout: dict) -> str:
    """The line said before the promotion backtest starts: who is backtested on which folds."""
    who = [f"version {version} (challenger)"]
    if champion_kind == NETWORK:
        who.append(f"the champion (version {champion})")
    elif champion is not None:
        who.append(f"the champion (version {champion}, the {champion_kind} baseline)")
    who.append("the baselines " + ", ".join(BASELINES))
    each = " of each series" if layout.get("many") else ""
    return (f"promotion of {name}: backtesting {', '.join(who[:-1])} and {who[-1]} on the same "
            f"{layout['folds']} folds of {layout['fold_size']} rows{each} ({layout['mode']})")


def _rejected(name: str, version: str, champion: str | None, metric: str, settings: dict,
              exc: Exception) -> PromotionDecision:
    """The challenger failed to train in its backtest: it does not serve."""
    reason = (f"version {version} failed to train in the backtest ({exc}); "
              + (f"the champion (version {champion}) stays." if champion else
                 "it does not become champion."))
    registry.set_version_tags(name, version, {
        TAG_DECISION: "rejected", TAG_REASON: reason, TAG_METRIC: metric,
        TAG_CHAMPION_VERSION: champion, TAG_SETTINGS: json.dumps(settings)})
    return PromotionDecision(False, reason, "rejected", version=version, metric=metric,
                             champion_version_before=champion, champion_version=champion)


@dataclass
class _Scoreboard:
    """The challenger's, the baselines' and the champion's scores on the same folds."""

    folds: list[dict]
    metric: str
    score: float
    baselines: dict[str, float]
    best: str | None
    best_score: float
    champion_kind: str | None = None
    champion_score: float = math.nan
    champion_folds: list[float] = field(default_factory=list)
    champion_cached: bool | None = None

    @classmethod
    def of(cls, folds: list[dict], metric: str) -> _Scoreboard:
        baselines = {b: _mean(folds, b, metric) for b in BASELINES
                     if any(b in fold for fold in folds)}
        finite = {b: s for b, s in baselines.items() if not math.isnan(s)}
        best = min(finite, key=finite.get) if finite else None
        return cls(folds, metric, _mean(folds, "model", metric), baselines, best,
                   finite[best] if best else math.nan)

    def score_champion(self, name, champion, version, frame, config, layout, epochs, reuse):
        """Scores the champion on the same folds: a network refitted from its config (or its
        cached backtest), a baseline champion from the baselines' folds."""
        if champion is None:
            return
        self.champion_kind = registry.model_version(name, champion).tags.get(TAG_KIND, NETWORK)
        if self.champion_kind != NETWORK:
            self.champion_folds = [_score(f, self.champion_kind, self.metric)
                                   for f in self.folds]
        else:
            other = _backtest_config(registry.forecaster_config(name, champion), epochs)
            if other.get("horizon") != config.get("horizon"):
                raise ConfigError(
                    f"version {version} of {name!r} forecasts {config.get('horizon')} steps but "
                    f"the champion (version {champion}) {other.get('horizon')}: their backtest "
                    "scores are not comparable. Promote by hand with "
                    f"`forecast registry promote {name} {version}` if it should serve.")
            try:
                folds, self.champion_cached = _backtest_version(name, champion, frame, other,
                                                                layout, reuse=reuse)
            except ForecastError as exc:
                raise type(exc)(f"the champion (version {champion} of {name!r}) could not be "
                                f"backtested: {exc}") from None
            _check_same_folds(self.folds, folds, version, champion)
            self.champion_folds = [_score(f, "model", self.metric) for f in folds]
        self.champion_score = float(sum(self.champion_folds) / len(self.champion_folds))

    def table(self) -> list[dict]:
        """Per fold: the ranges and every score."""
        rows = []
        for k, fold in enumerate(self.folds):
            row = {key: fold[key] for key in ("fit_start", "fit_end", "origin", "test_end")}
            row.update(fold=k, challenger=_score(fold, "model", self.metric),
                       champion=self.champion_folds[k] if self.champion_folds else None)
            row.update({b: _score(fold, b, self.metric) for b in self.baselines})
            rows.append(row)
        return rows


def _decide(name: str, version: str, champion: str | None, board: _Scoreboard, word: str,
            allow_worse: bool) -> PromotionDecision:
    """The rule: the challenger serves only when it beats the champion and the best baseline;
    the best baseline serves when it beats both."""
    label, score = board.metric.upper(), board.score
    best, best_score = board.best, board.best_score
    beats_baseline = best is None or _better(score, best_score)
    beats_champion = champion is None or _better(score, board.champion_score)
    decision = PromotionDecision(
        False, "", "kept_challenger", version=version, metric=board.metric,
        challenger_score=score, champion_score=None if champion is None else board.champion_score,
        champion_version_before=champion, champion_version=champion,
        champion_kind=board.champion_kind, baselines=board.baselines, best_baseline=best,
        folds=board.table())
    versus = "no champion yet"
    if champion is not None:
        who = f"version {champion}" + (
            "" if board.champion_kind == NETWORK else f", the {board.champion_kind} baseline")
        versus = f"the champion ({who}) {board.champion_score:.4g}"
    if beats_champion and (beats_baseline or allow_worse):
        registry.make_champion(name, version)
        decision.promoted, decision.decision = True, "promoted"
        decision.champion_version, decision.champion_kind = version, NETWORK
        decision.reason = (
            f"the {word} (version {version}) is champion: {label} {score:.4g} on the backtest "
            f"vs {versus}" + (f", best baseline {best} {best_score:.4g} ({_pct(score, best_score)})"
                              if best else "") + ".")
        if not beats_baseline:
            decision.reason += (f" It is worse than the {best} baseline, promoted because "
                                "--allow-worse-than-baseline was given.")
    elif beats_baseline or allow_worse:
        decision.reason = (f"the {word} (version {version}, {label} {score:.4g}) does not beat "
                           f"{versus} on the backtest; version {champion} stays champion, "
                           f"version {version} is challenger.")
    elif champion is not None and not _better(best_score, board.champion_score):
        decision.reason = (f"{best} beats the {word} on the backtest ({label} {best_score:.4g} "
                           f"vs {score:.4g}), but {versus} is at least as good: version "
                           f"{champion} stays champion; the {word} is version {version}, alias "
                           "challenger.")
    else:
        new = _register_baseline(name, version, best, best_score, board.metric)
        registry.make_champion(name, new)
        registry.set_version_tags(name, new, {
            TAG_DECISION: "baseline_champion", TAG_METRIC: board.metric,
            TAG_REASON: f"the {best} baseline beat version {version} ({word}) on the backtest "
                        f"({label} {best_score:.4g} vs {score:.4g})."})
        decision.decision = "baseline_champion"
        decision.champion_version, decision.champion_kind = new, best
        decision.reason = (f"{best} beats the {word} on the backtest ({label} {best_score:.4g} "
                           f"vs {score:.4g}, the {word} {_pct(score, best_score)}): champion is "
                           f"the {best} baseline (version {new}); the {word} is version "
                           f"{version}, alias {CHALLENGER}.")
    return decision


def _check_same_folds(ours: list[dict], theirs: list[dict], version: str, champion: str):
    for fold, other in zip(ours, theirs, strict=True):
        if (fold["origin"], fold["test_end"]) != (other["origin"], other["test_end"]):
            raise ModelError(  # run_backtest lays folds out by fold_size only; guard anyway
                f"the backtests of versions {version} and {champion} used different folds "
                f"({fold['origin']}..{fold['test_end']} vs {other['origin']}.."
                f"{other['test_end']}).")


def register_and_promote(model_uri: str, name: str, frame, *, run_id: str | None = None,
                         metric: str = "mase", folds: int = 3, fold_size: int | None = None,
                         epochs: int | None = None, allow_worse_than_baseline: bool = False,
                         tags: dict | None = None) -> PromotionDecision:
    """Registers a logged model (alias ``challenger``) and decides the champion.

    The one sequence the CLI (``forecast train --register``) and the pipeline's ``register``
    step run.

    Args:
        model_uri: the logged model (``ModelInfo.model_uri``).
        name: the registered model.
        frame: the series the model was trained on (the promotion backtest runs on it).
        run_id: the run that logged the model.
        metric, folds, fold_size, epochs, allow_worse_than_baseline: see
            ``promote_if_better``.
        tags: extra version tags.

    Returns:
        The ``PromotionDecision`` (``version`` is the new version).

    Raises:
        ForecastError: as ``register_version`` and ``promote_if_better``.
    """
    version = registry.register_version(model_uri, name, run_id=run_id,
                                        tags={TAG_KIND: NETWORK, **(tags or {})})
    return promote_if_better(name, version.version, frame, metric=metric, folds=folds,
                             fold_size=fold_size, epochs=epochs,
                             allow_worse_than_baseline=allow_worse_than_baseline)


__all__ = ["PromotionDecision", "promote_if_better", "register_and_promote"]
