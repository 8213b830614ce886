"""The search: an Optuna study whose trials are MLflow runs nested in one parent run.

``tune_tracked`` runs it:

1. The study (TPE sampler, seeded; median pruner) is created or, under the same name, loaded
   (``load_if_exists``) from its storage: ``optuna.db`` beside a SQLite MLflow store (the
   project's ``mlflow/``), else the ``storage`` URL given. A new study's first trial tries the
   settings it starts from (``forecast.tuning.space.base_values``): the best trial is never
   worse on validation than them. Trials left RUNNING by a killed search (their process is
   gone) are marked FAIL first, and the search goes on from the trials that finished.
2. One parent MLflow run holds the search (a study keeps its parent: a rerun reopens it); each
   trial is a nested child run with its settings (params), its per-epoch losses (step metrics),
   its validation metrics, ``score`` and the tag ``forecast.tune.state`` (``complete``,
   ``pruned`` or ``failed``).
3. A trial trains on the training part and is scored on the validation part (the metric of
   ``TuneOptions.metric``, original units); the test part is never read. ``PruneOnValLoss``
   reports each epoch's validation loss to the trial and stops training when the pruner says so.
4. The best trial's settings and score go on the parent (tags ``tune.best.<name>``, metric
   ``tune.best_score``, ``tune/best.yaml``); its settings are retrained on the parent, evaluated
   on the test part (as ``forecast train`` is), logged as the parent's model and, with
   ``register``, registered through ``register_and_promote`` (the baseline-gated promotion).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import mlflow
import pandas as pd
import yaml

from forecast.data import chronological_split
from forecast.data.dataset import describe
from forecast.errors import ConfigError, ForecastError, ModelError
from forecast.forecaster import Forecaster, with_lookback
from forecast.options import ForecasterConfig, parse_config
from forecast.tracking.mlflow import (
    DEFAULT_EXPERIMENT,
    EpochLogger,
    configure,
    flatten,
    log_dataset,
    log_metric_tables,
    sqlite_path,
    tracked_run,
)
from forecast.tracking.stale import (
    GONE,
    TAG_HOST,
    TAG_PID,
    TAG_PROCESS_START,
    host_name,
    owner_tags,
    process_state,
)
from forecast.tuning.space import Param, TuneOptions, apply_values, base_values, resolve_space
from forecast.workflow import (
    TrainReport,
    check_split_sizes,
    evaluate_forecaster,
    train_and_evaluate,
)

logger = logging.getLogger("forecast.tuning")

#: the Optuna storage file kept beside a SQLite MLflow store.
STUDY_FILE = "optuna.db"
#: the tag of a child run saying how its trial ended.
TAG_STATE = "forecast.tune.state"
TAG_TRIAL = "forecast.tune.trial"
TAG_STUDY = "forecast.tune.study"
#: the study's user attribute holding its parent MLflow run.
ATTR_PARENT = "mlflow_parent_run_id"
#: the trial's user attribute holding its MLflow run.
ATTR_RUN = "mlflow_run_id"
#: epochs a trial always trains before the pruner may stop it (early losses are noisy): the
#: earliest stop is at the end of this epoch.
PRUNE_WARMUP_EPOCHS = 2
#: finished trials before the pruner compares against their median.
PRUNE_STARTUP_TRIALS = 3


class PruneOnValLoss(keras.callbacks.Callback):
    """Reports each epoch's validation loss to an Optuna trial; stops training when pruned.

    Training stops cleanly (``model.stop_training``: the epoch's callbacks run, early stopping
    restores its best weights); the caller raises ``optuna.TrialPruned`` afterwards when
    ``pruned_at`` is set.

    Args:
        trial: the ``optuna.Trial``.
        monitor: the logged value reported (``val_loss``).
    """

    def __init__(self, trial, monitor: str = "val_loss"):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None
        self.value: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_at, self.value = epoch + 1, float(value)
            self.model.stop_training = True


@dataclass
class TuneResult:
    """What ``tune_tracked`` did.

    Attributes:
        study: the study's name; storage: its URL (password hidden).
        parent_run_id: the parent MLflow run.
        metric: the validation metric minimised.
        space: ``{name: phrase}`` of the space searched.
        trials: every trial of the study: ``{number, state, score, params, run_id}``.
        new_trials: how many this call ran.
        best: ``{number, score, params, run_id}`` of the best trial.
        start_score: the score of the study's first trial (the settings it started from),
            when that trial completed.
        report: the ``TrainReport`` of the best settings retrained on the parent run.
        model_uri, version, promotion: the logged model, and what registration decided.
        stale: lines about trials and runs of a killed search ended first.
    """

    study: str
    storage: str
    parent_run_id: str
    metric: str
    space: dict
    trials: list[dict]
    new_trials: int
    best: dict
    start_score: float | None
    report: object = None
    model_uri: str | None = None
    version: str | None = None
    promotion: dict | None = None
    stale: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = {
            "study": self.study, "storage": self.storage, "metric": self.metric,
            "space": self.space, "trials": self.trials, "new_trials": self.new_trials,
            "best": self.best, "start_score": self.start_score, "stale": list(self.stale),
            "mlflow": {"parent_run_id": self.parent_run_id, "model_uri": self.model_uri,
                       "version": self.version, "promotion": self.promotion},
        }
        if self.report is not None:
            data["retrained"] = {k: v for k, v in self.report.to_dict().items()
                                 if k in ("model", "baselines", "versus", "chosen", "training")}
        return data


# -- the study --------------------------------------------------------------------------------


def study_storage(storage: str | None = None, tracking_uri: str | None = None) -> str:
    """Where the study lives: ``storage``, or ``optuna.db`` beside a SQLite MLflow store.

    Raises:
        ConfigError: no ``storage`` and the MLflow store is not a SQLite file.
    """
    if storage:
        return storage
    tracking_uri = tracking_uri or mlflow.get_tracking_uri()
    path = sqlite_path(tracking_uri)
    if path is None:
        raise ConfigError(
            f"the MLflow store {tracking_uri} is not a SQLite file, so the study has no folder "
            "to live in: pass --storage URL (YAML `tune.storage`), e.g. "
            "sqlite:////srv/optuna/optuna.db or the server's database "
            "postgresql+psycopg2://USER@HOST/optuna.")
    return f"sqlite:///{path.parent / STUDY_FILE}"


def shown_storage(url: str) -> str:
    """The storage URL with any password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def default_study_name(source: str | None, config: ForecasterConfig, targets) -> str:
    """``tune-<file stem>-<targets>-h<horizon>-<setup>``: the same data and task, the same study.
    """
    stem = Path(source).stem if source else "frame"
    return f"tune-{stem}-{'+'.join(map(str, targets))}-h{config.horizon}-{config.setup}"


def open_study(name: str, storage: str, *, seed: int, prune: bool):
    """Creates or loads (``load_if_exists``) the study, minimising.

    The sampler's seed is offset by the trials the study already holds, so a continued study
    does not propose its first trials again.

    Raises:
        ConfigError: the storage cannot be opened.
    """
    import optuna

    path = sqlite_path(storage)
    lock = contextlib.nullcontext()
    if path is not None:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock", timeout=300)  # one process creates the tables
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS,
                                          n_warmup_steps=PRUNE_WARMUP_EPOCHS)
              if prune else optuna.pruners.NopPruner())
    try:
        with lock:
            study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                        load_if_exists=True,
                                        sampler=optuna.samplers.TPESampler(seed=seed))
    except (ImportError, ValueError, OSError) as exc:
        raise ConfigError(f"cannot open the Optuna storage {shown_storage(storage)}: {exc}. "
                          "Pass another --storage (YAML `tune.storage`).") from None
    except Exception as exc:  # SQLAlchemy's errors: a URL it cannot connect to
        if type(exc).__module__.startswith("sqlalchemy"):
            raise ConfigError(f"cannot open the Optuna storage {shown_storage(storage)}: "
                              f"{str(exc).splitlines()[0]}. Pass another --storage (YAML "
                              "`tune.storage`).") from None
        raise
    n_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + n_before, n_startup_trials=max(3, min(10, n_before + 3)))
    study.pruner = pruner
    return study


def end_stale_trials(study) -> list[str]:
    """Marks FAIL the RUNNING trials whose process on this host is gone (a killed search).

    Returns:
        One line per trial ended.
    """
    from optuna.trial import TrialState

    lines = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get(TAG_HOST) != host_name() or TAG_PID not in attrs:
            continue
        started = attrs.get(TAG_PROCESS_START)
        if process_state(int(attrs[TAG_PID]), float(started) if started else None) != GONE:
            continue
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        lines.append(f"trial {trial.number} of study {study.study_name} was left running by "
                     f"process {attrs[TAG_PID]}, which is gone: marked failed")
    return lines


def _parent_run(study, experiment_id: str) -> str | None:
    """The study's parent run when it is in this store and experiment."""
    run_id = study.user_attrs.get(ATTR_PARENT)
    if not run_id:
        return None
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except Exception:  # noqa: BLE001 - another store, or deleted: start a new parent
        return None
    if run.info.experiment_id != experiment_id or run.info.lifecycle_stage != "active":
        return None
    return run_id


# -- a trial ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _child_run(name: str, tags: dict):
    """A nested MLflow run: FINISHED (complete or pruned) or FAILED, with the state as a tag."""
    import optuna

    mlflow.start_run(run_name=name, nested=True, tags={**owner_tags(), **tags})
    try:
        yield mlflow.active_run()
    except optuna.TrialPruned:
        mlflow.set_tag(TAG_STATE, "pruned")
        mlflow.end_run(status="FINISHED")
        raise
    except BaseException as exc:
        with contextlib.suppress(Exception):
            mlflow.set_tags({TAG_STATE: "failed", "error": f"{type(exc).__name__}: {exc}"[:5000],
                             "error.type": type(exc).__name__})
        with contextlib.suppress(Exception):
            mlflow.end_run(status="KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    else:
        mlflow.set_tag(TAG_STATE, "complete")
        mlflow.end_run(status="FINISHED")


@dataclass
class _Search:
    """One search's fixed inputs; ``objective`` is what Optuna calls per trial."""

    frame: pd.DataFrame
    config: ForecasterConfig
    space: dict[str, Param]
    options: TuneOptions
    study_name: str
    val: float
    test: float
    borders: tuple[int, int, int] | None
    progress: Callable[[str], None] | None = None
    #: the best trial of this call, ``(score, number, forecaster, parts, seconds)``: its model
    #: is the parent's when it stays the study's best (the same training would be run again)
    kept: tuple | None = None

    def objective(self, trial) -> float:
        import optuna
        from optuna.trial import TrialState

        values = {name: param.suggest(trial, name) for name, param in self.space.items()}
        for key, value in owner_tags().items():
            trial.set_user_attr(key, value)
        same = next((t for t in trial.study.get_trials(deepcopy=False,
                                                       states=(TrialState.COMPLETE,))
                     if t.params == values and t.number != trial.number), None)
        if same is not None:  # the same settings and seed train the same model: reuse its score
            with _child_run(f"trial {trial.number}", {
                    TAG_TRIAL: str(trial.number), TAG_STUDY: self.study_name,
                    "forecast.tune.same_as_trial": str(same.number)}) as run:
                trial.set_user_attr(ATTR_RUN, run.info.run_id)
                mlflow.log_params({name: str(value) for name, value in values.items()})
                mlflow.log_metric("score", same.value)
            self._say(f"trial {trial.number}: the settings of trial {same.number} again, "
                      f"val {self.options.metric} {same.value:.4g} (not trained again)")
            return same.value
        keras.backend.clear_session()  # the previous trial's graphs and layer names
        with _child_run(f"trial {trial.number}", {TAG_TRIAL: str(trial.number),
                                                  TAG_STUDY: self.study_name}) as run:
            trial.set_user_attr(ATTR_RUN, run.info.run_id)
            mlflow.log_params({name: str(value) for name, value in values.items()})
            config = apply_values(self.config, values)
            n_train = (int(len(self.frame) * (1 - self.val - self.test)) if self.borders is None
                       else self.borders[0])
            config, reason = with_lookback(config, describe(self.frame).freq, n_train)
            mlflow.log_params(flatten({"config": config.model_dump(mode="json")}))
            parts = chronological_split(self.frame, val=self.val, test=self.test,
                                        borders=self.borders, lookback=config.lookback)
            pruning = PruneOnValLoss(trial)
            started = time.perf_counter()
            try:
                forecaster = Forecaster(config, lookback_reason=reason).fit(
                    parts.train, parts.val, callbacks=[EpochLogger(), pruning])
            except ModelError:
                if pruning.pruned_at is None:
                    raise
                forecaster = None  # stopped by the pruner: the divergence check is moot
            seconds = time.perf_counter() - started
            epochs = (forecaster.fit_result.epochs_run if forecaster and forecaster.fit_result
                      else pruning.pruned_at or 0)
            mlflow.log_metrics({"train.seconds": seconds, "train.epochs_run": epochs})
            if pruning.pruned_at is not None:
                self._say(f"trial {trial.number}: pruned at epoch {pruning.pruned_at} "
                          f"(val_loss {pruning.value:.4g}) {_phrase(values)}")
                raise optuna.TrialPruned(f"val_loss {pruning.value:.4g} at epoch "
                                         f"{pruning.pruned_at} is above the median of earlier "
                                         "trials")
            evaluation = evaluate_forecaster(forecaster, parts.val)  # validation, never test
            log_metric_tables("val.model", evaluation["model"])
            score = float(evaluation["model"][self.options.metric])
            if not math.isfinite(score):
                raise ModelError(f"the validation {self.options.metric} is {score}: it cannot "
                                 "rank the trials; choose another --metric (YAML `tune.metric`).")
            mlflow.log_metric("score", score)
            if self.kept is None or score < self.kept[0]:
                self.kept = (score, trial.number, forecaster, parts, seconds)
            self._say(f"trial {trial.number}: val {self.options.metric} {score:.4g} "
                      f"{_phrase(values)} ({epochs} epochs, {seconds:.1f} s)")
            return score

    def _say(self, line: str) -> None:
        logger.info("%s", line)
        if self.progress is not None:
            self.progress(line)


def _phrase(values: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items())


def _trial_rows(study) -> list[dict]:
    rows = []
    for trial in study.trials:
        rows.append({"number": trial.number, "state": trial.state.name.lower(),
                     "score": trial.value, "params": dict(trial.params),
                     "run_id": trial.user_attrs.get(ATTR_RUN)})
    return rows


# -- the whole search -------------------------------------------------------------------------


def tune_tracked(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    options: dict | TuneOptions | None = None,
    *,
    source: str | None = None,
    time_col: str | None = None,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
    register: str | None = None,
    promote_metric: str = "mase",
    promote_folds: int = 3,
    allow_worse_than_baseline: bool = False,
    experiment: str = DEFAULT_EXPERIMENT,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Searches the settings of ``config`` named by ``options.space``; tracks it all in MLflow.

    Args:
        frame: a ``load_csv`` frame (original units).
        config: the settings the search starts from (everything not searched stays as here).
        options: a ``TuneOptions`` or a mapping of its fields (trials, timeout, study, storage,
            metric, seed, prune, default_space, space).
        source: the data file (lineage, and the default study name).
        time_col: the time column's name in the raw data (the served model takes it).
        val, test, borders: the chronological split; trials are scored on ``val`` (> 0).
        register: a registered model name for the retrained best model (``challenger``;
            ``register_and_promote`` decides the champion).
        promote_metric, promote_folds, allow_worse_than_baseline: the promotion rule.
        experiment: the MLflow experiment.
        progress: called with one line per trial (the CLI prints it).

    Returns:
        A ``TuneResult``.

    Raises:
        ConfigError: a bad space or setting, no validation part, or a storage that cannot be
            opened (before anything trains).
        ModelError: no trial completed.
        ForecastError: as ``train_and_evaluate`` for the retrained model.
    """
    import optuna

    from forecast.serving import log_forecaster

    config = parse_config(config)
    options = TuneOptions.parse(options)
    if borders is None and not val > 0:
        raise ConfigError(f"--val must be above 0 for tune (YAML `split.val`): trials are "
                          f"scored on the validation part, never the test part. Received: "
                          f"--val {val}.")
    sizes = check_split_sizes(frame, config, val=val, test=test, borders=borders)
    if sizes["val"] < config.horizon:
        raise ConfigError("tune needs a validation part of at least one window: raise --val "
                          "(YAML `split.val`) or the borders' val_end.")
    space = resolve_space(config, options.space, use_defaults=options.default_space,
                          train_rows=sizes["train"])
    time_col = time_col or describe(frame).time_col or "time"
    experiment_id = configure(experiment)
    storage = study_storage(options.storage)
    name = options.study or default_study_name(source, config, describe(frame).targets)
    seed = options.seed if options.seed is not None else (config.train.seed or 0)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI prints a line per trial
    study = open_study(name, storage, seed=seed, prune=options.prune)
    stale = end_stale_trials(study)
    from forecast.tracking.stale import end_stale_runs

    ended = end_stale_runs([experiment_id], ended_by=f"the next forecast tune of study {name}")
    stale += [line for line, run in zip(ended.lines(), ended.runs, strict=True) if run.ended]
    n_before = len(study.trials)
    if not study.trials:  # the first trial tries the settings the search starts from
        n_train = int(len(frame) * (1 - val - test)) if borders is None else borders[0]
        start, _ = with_lookback(config, describe(frame).freq, n_train)
        study.enqueue_trial(base_values(config, space, start.lookback), skip_if_exists=True)
    search = _Search(frame, config, space, options, name, val, test, borders, progress)
    train_config = config.train.model_copy(update={"verbose": 0})
    search.config = config.model_copy(update={"train": train_config})
    parent_id = _parent_run(study, experiment_id)
    tags = {TAG_STUDY: name, "forecast.tune.storage": shown_storage(storage)}
    try:
        with tracked_run(f"tune {name}", experiment=experiment, tags=tags,
                         run_id=parent_id) as parent:
            study.set_user_attr(ATTR_PARENT, parent.info.run_id)
            if parent_id is None:
                log_dataset(frame, source=source)
                mlflow.log_params({"tune.study": name, "tune.metric": options.metric,
                                   "tune.storage": shown_storage(storage)})
            mlflow.log_text(yaml.safe_dump({
                "options": options.model_dump(mode="json", exclude={"space"}),
                "space": {k: p.model_dump(exclude_none=True) for k, p in space.items()},
                "config": config.model_dump(mode="json"),
            }, sort_keys=False), "tune/search.yaml")
            study.optimize(search.objective, n_trials=options.trials, timeout=options.timeout,
                           catch=(ForecastError,))
            result = _finish(study, options, space, parent.info.run_id, storage, n_before)
            result.stale = stale
            if search.kept is not None and search.kept[1] == result.best["number"]:
                _, _, forecaster, parts, seconds = search.kept  # trained in this call
                report = _report(forecaster, parts, seconds)
                for epoch, logs in enumerate(_epochs(forecaster.fit_result), start=1):
                    mlflow.log_metrics(logs, step=epoch)
            else:  # the best trial ran in an earlier call: train its settings again
                best_config = apply_values(search.config, result.best["params"])
                report = train_and_evaluate(frame, best_config, val=val, test=test,
                                            borders=borders, callbacks=[EpochLogger()])
            result.report = report
            # the retrained settings: a file rewritten on every call (MLflow params cannot
            # change, and a continued study may find a new best)
            mlflow.log_text(yaml.safe_dump({"config": report.forecaster.resolved.flat()},
                                           sort_keys=False), "config.yaml")
            from forecast.tracking.run import log_report

            log_report(report)
            info = log_forecaster(report.forecaster, time_col=time_col,
                                  input_example=report.test if report.test is not None
                                  else frame)
            result.model_uri = info.model_uri
            if register:
                from forecast.evaluation.promotion import register_and_promote

                decision = register_and_promote(
                    info.model_uri, register, frame, run_id=parent.info.run_id,
                    metric=promote_metric, folds=promote_folds,
                    allow_worse_than_baseline=allow_worse_than_baseline)
                result.version = decision.version
                result.promotion = decision.to_dict()
                mlflow.set_tags({"registry.name": register, "registry.version": decision.version,
                                 "registry.promoted": str(decision.promoted)})
    finally:
        optuna.logging.set_verbosity(verbosity)
    return result


def _epochs(fit_result) -> list[dict]:
    """The per-epoch values of a ``FitResult``, one dict per epoch (finite values only)."""
    history = fit_result.history if fit_result else {}
    n = max((len(v) for v in history.values()), default=0)
    return [{k: v[i] for k, v in history.items() if i < len(v) and math.isfinite(v[i])}
            for i in range(n)]


def _report(forecaster: Forecaster, parts, seconds: float) -> TrainReport:
    """The ``TrainReport`` of a trial's fitted forecaster: evaluated on the test part now."""
    evaluation = evaluate_forecaster(forecaster, parts.test)
    y_true, y_pred = evaluation.pop("arrays")
    lookback = forecaster.spec.lookback
    return TrainReport(
        forecaster=forecaster,
        metrics={"model": evaluation["model"], "baselines": evaluation["baselines"]},
        per_step=evaluation["per_step"], scaled=evaluation["scaled"],
        sizes={"train": len(parts.train), "val": len(parts.val) - lookback,
               "test": len(parts.test) - lookback,
               "test_windows": forecaster.spec.n_windows(parts.test)},
        seconds=seconds,
        test=parts.test, y_true=y_true, y_pred=y_pred)


def _finish(study, options: TuneOptions, space: dict[str, Param], parent_run_id: str,
            storage: str, n_before: int) -> TuneResult:
    """The study's outcome, put on the parent run: the best trial's settings and score."""
    from optuna.trial import TrialState

    rows = _trial_rows(study)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        failed = [t for t in study.trials if t.state == TrialState.FAIL]
        why = (f"; the last failure: {failed[-1].system_attrs.get('fail_reason', '')}"
               if failed else "")
        raise ModelError(f"no trial of study {study.study_name} completed ({len(rows)} "
                         f"trials: pruned or failed){why}. Run more trials (--trials) or widen "
                         "the search space.")
    best = study.best_trial
    best_row = {"number": best.number, "score": best.value, "params": dict(best.params),
                "run_id": best.user_attrs.get(ATTR_RUN)}
    first = study.trials[0]
    start_score = first.value if first.state == TrialState.COMPLETE else None
    counts = {state: sum(1 for r in rows if r["state"] == state)
              for state in ("complete", "pruned", "fail")}
    step = len(rows)
    mlflow.log_metrics({"tune.best_score": best.value, "tune.trials": len(rows),
                        "tune.trials_complete": counts["complete"],
                        "tune.trials_pruned": counts["pruned"],
                        "tune.trials_failed": counts["fail"]}, step=step)
    if start_score is not None:
        mlflow.log_metric("tune.start_score", start_score, step=step)
    mlflow.set_tags({"tune.best.trial": str(best.number),
                     "tune.best.run_id": str(best_row["run_id"]),
                     **{f"tune.best.{k}": str(v) for k, v in best.params.items()}})
    mlflow.log_text(yaml.safe_dump({"trial": best.number, "score": best.value,
                                    "metric": options.metric, "params": dict(best.params)},
                                   sort_keys=False), "tune/best.yaml")
    return TuneResult(
        study=study.study_name, storage=shown_storage(storage), parent_run_id=parent_run_id,
        metric=options.metric, space={k: p.describe() for k, p in space.items()},
        trials=rows, new_trials=len(rows) - n_before, best=best_row, start_score=start_score)


__all__ = ["PruneOnValLoss", "TuneResult", "open_study", "study_storage", "tune_tracked"]
