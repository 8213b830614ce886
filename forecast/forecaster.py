"""The user-facing estimator: a frame in original units in, forecasts in original units out.

``Forecaster`` owns everything that turns a series into a trained network and back: the scaler
(fitted on the training frame only), the calendar features, the window spec, the Keras model
built by ``forecast.models.build_model`` and trained by ``forecast.training.fit``, and the
baselines it is judged against. The network is another object (``forecaster.model``); layer
sizes are read off the training frame, never configured twice.

It implements the backtest estimator protocol (``fit(train, val)``, ``predict_windows(frame)``)
and saves as an MLflow pyfunc model folder (``save``; the same model ``log_forecaster`` logs,
so ``forecast predict --model PATH`` and ``forecast.load(PATH)`` read it) whose ``forecaster``
artifact holds ``model.keras`` and ``forecaster.json`` (no pickle). ``load`` reads such a
folder, a downloaded MLflow model, the bare artifact, and folders of the older layout
(``model.keras`` and ``forecaster.json`` at the top).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import pandas as pd

from forecast.data import (
    Scaler,
    WindowSpec,
    add_calendar_features,
    calendar_feature_names,
    make_dataset,
)
from forecast.data.dataset import attach, describe
from forecast.data.frequency import lookback_choice, season_for_freq
from forecast.data.windows import window_targets
from forecast.errors import ConfigError, DataError, ForecastError, ModelError
from forecast.models import build_model
from forecast.models.baselines import BASELINES, baseline_from_json, make_baseline
from forecast.models.blend import BlendChoice, blended_model, choose_weight
from forecast.models.builder import check_model_size
from forecast.models.ensemble import averaged_model
from forecast.models.setups import get_setup
from forecast.models.static import StaticCovariates, static_frame
from forecast.options import NETWORK, ForecasterConfig, ResolvedSettings, parse_config
from forecast.training import FitResult, fit, make_strategy, resolve_loss, set_seed
from forecast.training.fit import reference_losses

if TYPE_CHECKING:  # imported where used: forecast.evaluation brings matplotlib along
    from forecast.evaluation.intervals import ConformalIntervals

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
STATE_FILE = "forecaster.json"
#: the file that makes a folder an MLflow model
MLMODEL_FILE = "MLmodel"
#: the name of the artifact that holds the forecaster's files in an MLflow model folder
ARTIFACT_NAME = "forecaster"


def with_lookback(config: dict | ForecasterConfig, freq: str | None,
                  train_rows: int) -> tuple[ForecasterConfig, str]:
    """The config with its lookback filled in from the frequency when it is ``None``.

    Args:
        config: the forecaster's settings.
        freq: the series' frequency (pandas alias) or None.
        train_rows: rows the model trains on (the lookback is at most a quarter of them).

    Returns:
        ``(config, reason)``: the reason in words, e.g. ``"two weeks of hourly data"``.

    Raises:
        ConfigError: invalid settings.
    """
    config = parse_config(config)
    if config.lookback is not None:
        return config, "given"
    lookback, reason = lookback_choice(freq, config.horizon, train_rows)
    return config.model_copy(update={"lookback": lookback}), reason


def forecaster_files(folder) -> Path:
    """The folder that holds ``model.keras`` and ``forecaster.json`` inside ``folder``.

    ``folder`` itself for the older layout and for the bare ``forecaster`` artifact; for an
    MLflow model folder (``Forecaster.save``, ``log_forecaster``, a downloaded ``runs:/`` or
    ``models:/`` model) the path its ``MLmodel`` gives the ``forecaster`` artifact (read as
    data, and only when it stays inside ``folder``), else ``artifacts/forecaster``.

    Example:
        >>> forecaster_files("model")           # a `forecast train --save model` folder
        PosixPath('model/artifacts/forecaster')
    """
    folder = Path(folder)
    if (folder / STATE_FILE).is_file() or not (folder / MLMODEL_FILE).is_file():
        return folder
    found = folder / "artifacts" / ARTIFACT_NAME
    import yaml

    try:  # an unreadable MLmodel falls back to the usual place
        meta = yaml.safe_load((folder / MLMODEL_FILE).read_text(encoding="utf-8")) or {}
        entry = meta["flavors"]["python_function"]["artifacts"][ARTIFACT_NAME]
        relative = entry["path"] if isinstance(entry, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        relative = None
    if isinstance(relative, str) and relative.strip():
        candidate = (folder / relative).resolve()
        if candidate.is_relative_to(folder.resolve()) and candidate.is_dir():
            found = folder / relative
    return found


def holds_forecaster(folder: Path) -> bool:
    """Whether ``folder`` holds a forecaster saved by ``Forecaster.save`` (either layout)."""
    return (forecaster_files(folder) / STATE_FILE).is_file()


def check_save_target(path, *, overwrite: bool = False, flag: str | None = None) -> None:
    """Checks, before anything is trained, that a forecaster can be saved at ``path``.

    Accepted: a new folder whose nearest existing parent is a folder this process can write
    to, an empty folder, and (with ``overwrite``) a folder holding an earlier save.

    Args:
        path: the folder ``Forecaster.save`` will write.
        overwrite: whether an earlier save there may be replaced.
        flag: the command-line flag that gave ``path`` (e.g. ``"--save"``), named in errors.

    Raises:
        ModelError: ``path`` is a file, a folder holding other files, an earlier save (without
            ``overwrite``), or under a file or a folder that cannot be written.
    """
    folder = Path(path)
    where = f"{flag} {folder}" if flag else str(folder)
    hint = f"; pass another folder to {flag}" if flag else "; save into another folder"
    if folder.exists() and not folder.is_dir():
        raise ModelError(f"{where}: is a file, not a folder; a forecaster is saved as a folder "
                         f"(an MLflow model: {MLMODEL_FILE}, {ARTIFACT_NAME}/{MODEL_FILE}, ...)"
                         f"{hint}.")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        if entries and holds_forecaster(folder):
            if not overwrite:
                again = "--overwrite" if flag else "overwrite=True"
                raise ModelError(f"{where}: already holds a saved forecaster, which would be "
                                 f"lost{hint}, or pass {again} to replace it.")
        elif entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            target = f"to {flag}" if flag else "to save into"
            raise ModelError(f"{where}: is a folder holding other files ({shown}), not a saved "
                             f"forecaster, and they would be mixed with it; pass a new or empty "
                             f"folder {target}.")
    parent = folder.parent if folder.exists() else folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ModelError(f"{where}: cannot be created: {parent} is a file, not a folder{hint}.")
    try:  # a real write: os.access says yes to root even on a read-only file system
        probe = tempfile.mkdtemp(prefix=".forecast-write-check-", dir=parent)
    except OSError as exc:
        raise ModelError(f"{where}: cannot be written: {parent} does not accept new files "
                         f"({exc.strerror or exc}){hint}.") from None
    os.rmdir(probe)


def network_predictor(model: keras.Model):
    """``model``'s forward pass as one ``tf.function`` that is traced once.

    ``keras.Model.predict`` makes a new predict function per model and traces it again for
    every new batch shape (256 windows, the short last batch, the single window of
    ``Forecaster.predict``), which in backtests and promotion (a model per fold) adds up to
    "triggered tf.function retracing" warnings and time spent tracing. Here the input signature
    is fixed from ``model.inputs`` with only the batch left open, so every batch of every size
    runs the same graph; XLA is used as the model was compiled (``model.jit_compile``).

    Args:
        model: a built Keras model whose inputs are ``past`` [B, L, F] and, where used,
            ``future`` [B, H, Fu].

    Returns:
        ``predict(data) -> np.ndarray`` (float64): ``data`` is a dataset of ``(inputs,
        targets)`` batches (``make_dataset``) or one batch of inputs (an array, or a list of
        arrays in the order of ``model.inputs``); the result is the model's output for every
        window, in order.

    Example:
        >>> predict = network_predictor(model)
        >>> predict(make_dataset(frame, spec, batch_size=256)).shape   # (windows, H, T)
    """
    import tensorflow as tf

    specs = [tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype or "float32")
             for tensor in model.inputs]
    single = len(specs) == 1

    def forward(*inputs):  # [B, L, F] (, [B, H, Fu]) -> [B, H, T(, Q)]
        return model(inputs[0] if single else list(inputs), training=False)

    graph = tf.function(forward, input_signature=specs, jit_compile=model.jit_compile is True)

    def run(inputs) -> np.ndarray:
        args = (inputs,) if single else tuple(inputs)
        return np.asarray(graph(*args), dtype=np.float64)

    def predict(data) -> np.ndarray:
        if isinstance(data, tf.data.Dataset):
            parts = [run(inputs) for inputs, _ in data]
            if not parts:
                return np.zeros((0, *model.outputs[0].shape[1:]), dtype=np.float64)
            return np.concatenate(parts)
        return run(data)

    predict.tracing_count = graph.experimental_get_tracing_count  # traces so far (tests)
    return predict


class Forecaster:
    """A trainable, savable forecaster over a time-indexed frame.

    Args:
        config: a ``forecast.options.ForecasterConfig`` or a dict of its fields.
        lookback_reason: why ``config.lookback`` has its value, when a caller chose it (see
            ``with_lookback``); reported in ``resolved``.

    Raises:
        ConfigError: invalid settings.

    Example:
        >>> forecaster = Forecaster({"horizon": 24, "train": {"epochs": 5}}).fit(train, val)
        >>> forecaster.predict(history)          # a frame of the next 24 timestamps
    """

    def __init__(self, config: dict | ForecasterConfig, *, lookback_reason: str | None = None):
        self.config = parse_config(config)
        self.lookback_reason = lookback_reason or ("given" if self.config.lookback else None)
        self.model: keras.Model | None = None
        self.scaler: Scaler | None = None
        self.spec: WindowSpec | None = None
        self.freq: str | None = None
        self.insample: np.ndarray | None = None
        self.baselines: dict[str, dict] = {}
        self.fit_result: FitResult | None = None
        #: what ``fit`` did for each network of the ensemble (``train.ensemble``; one without)
        self.member_results: list[FitResult] = []
        #: the blend with the linear baseline chosen by the last fit (``train.blend_linear``)
        self.blend: BlendChoice | None = None
        #: ``"network"`` (the Keras model) or a baseline's name when ``as_baseline`` made it
        self.kind = NETWORK
        #: the raw data's time column and reading settings (``describe(train)`` at ``fit``, or
        #: ``serving.json`` at ``load``): the defaults of ``save``
        self.time_col: str | None = None
        self.reading = None
        #: a global model: the series id column of its training frame (``describe(train)``,
        #: or ``serving.json`` at ``load``), the default id column of ``save``
        self.id_col: str | None = None
        #: the saved ``ServingInfo`` as a dict (time column, fill, max_gap, reading) when the
        #: folder loaded had one
        self.serving: dict | None = None
        #: conformal prediction intervals (``calibrate``): ``predict`` adds
        #: ``<target>_lo_<pct>``/``<target>_hi_<pct>`` columns when set
        self.intervals: ConformalIntervals | None = None
        #: the baselines' own conformal intervals, from the same calibration windows
        self.baseline_intervals: dict[str, ConformalIntervals] = {}
        #: a global model (trained on a frame indexed by (id, time)): the ids of the series it
        #: knows (its scaler has statistics for each); None for a model of one series
        self.ids: list[str] | None = None
        #: a global model: the series left out of training for having too few rows, ``{id:
        #: training rows}``
        self.skipped: dict[str, int] = {}
        #: a global model's static covariates and id embedding (``--static``,
        #: ``--id-embedding``): their encoding, saved as JSON; None without them
        self.statics: StaticCovariates | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def options(self):
        """The network's settings (``forecast.options.ModelOptions``)."""
        return self.config.model

    @property
    def resolved(self) -> ResolvedSettings:
        """The settings this forecaster actually used: nothing left as ``None``.

        Raises:
            ModelError: the forecaster is not fitted.
        """
        self._require_fitted()
        spec = self.spec
        return ResolvedSettings(
            config=self.config, freq=self.freq, season=self.season,
            n_series=len(self.ids) if self.ids else 1,
            targets=list(spec.targets), past_covariates=list(spec.past_covariates),
            future_covariates=list(spec.future_covariates),
            lookback_reason=self.lookback_reason or "given",
        )

    @property
    def is_global(self) -> bool:
        """Whether this is one global model over many series (trained in long format)."""
        return self.ids is not None

    @property
    def quantiles(self) -> tuple[float, ...] | None:
        return self.options.quantiles

    @property
    def season(self) -> int:
        return season_for_freq(self.freq, default=1) if self.freq else 1

    @property
    def kernel_used(self) -> str:
        """Which recurrent kernel the model ran (``cudnn``/``fused``/...), for tracking."""
        if self.model is None:
            return "unknown"
        if self.kind != NETWORK:
            return "none (baseline)"
        kernels = {
            str(layer.kernel_used)
            for layer in _all_layers(self.model)
            if getattr(layer, "kernel_used", None)
        }
        return ",".join(sorted(kernels)) or "unknown"

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None, *,
            callbacks: list | None = None) -> Forecaster:
        """Fits the scaler on ``train`` only, builds the network and trains it.

        Args:
            train: training rows in original units (``load_csv`` output, ``attrs`` kept). In
                long format (indexed by (id, time), ``load_csv(..., id_col=...)``) one global
                model is trained over the windows of every series (never across two), each
                series scaled with the statistics of its own training rows; a series with
                fewer than ``lookback + horizon`` training rows gives no window and is skipped
                with a logged warning naming it (``skipped``).
            val: validation rows carrying ``lookback`` rows of context (or None); in long
                format, series too short for a window there add none.
            callbacks: extra Keras callbacks (e.g. logging each epoch to MLflow).

        Returns:
            self.

        Raises:
            DataError: too few rows (in long format: in every series) or columns the data
                lacks.
            ConfigError: ``train.strategy`` cannot be set up (e.g. ``multi_worker`` without a
                valid ``TF_CONFIG``).
            ModelError: the network would be too large (``check_model_size``), or training
                diverged: a NaN/inf loss, or a loss ending above ``DIVERGENCE_FACTOR`` times
                that of forecasts that learn nothing (``reference_losses``).

        With ``train.ensemble`` N > 1, N networks train one after another (seeds ``seed``,
        ``seed + 1``, ...; ``member_results``) and the model is their mean
        (`forecast.models.ensemble`); ``fit_result`` is the first one's.

        Unless ``train.blend_linear`` is false, the trained network is then blended with the
        linear baseline, its share chosen on the validation windows (``blend``; see
        `forecast.models.blend`).

        With ``train.strategy`` other than ``"default"`` the network is built and trained under
        that ``tf.distribute`` strategy, then copied out of it (same weights) so that
        ``predict`` and ``save`` run in this process alone; ``fit_result`` records the strategy,
        the replicas and the workers.
        """
        # first: a multi-worker strategy must exist before TensorFlow runs anything
        strategy = make_strategy(self.config.train.strategy)
        self._resolve_seed()
        self._describe(train)
        check_model_size(self.config.setup, self.spec, self.config.model)  # before building
        train_x = self._with_features(train)
        # per series in long format: the scaler keeps the statistics of each series' own rows
        self.scaler = Scaler(self.config.scaler, columns=self._scaled_columns()).fit(train_x)
        if self.is_global:
            train_x = self._trainable(train_x)
            self.insample = {
                str(key): group[list(self.spec.targets)].to_numpy(dtype=np.float64)
                for key, group in train.groupby(level=0, sort=False)}
        else:
            self.insample = train[list(self.spec.targets)].to_numpy(dtype=np.float64)
        seed = self.config.train.seed
        # first: the shuffle's op seeds derive from the global seed at the time it is made, so
        # the same seed gives the same run whatever ran before in this process
        set_seed(seed)
        train_ds = make_dataset(
            self.scaler.transform(train_x), self.spec, batch_size=self.config.batch_size,
            shuffle=True, seed=seed,
            windows_per_series=self.config.train.windows_per_series,  # balanced sampling
        )
        val_ds = None
        if val is not None and self.is_global:
            val = self.spec.split_short(val)[0]
        if val is not None and len(val) >= self.spec.min_rows:
            val_ds = make_dataset(
                self.scaler.transform(self._with_features(val)), self.spec,
                batch_size=self.config.batch_size,
            )
        if self.config.train.blend_linear is True and val_ds is None:  # before any training
            raise ConfigError(
                "train.blend_linear chooses the blend's weight on the validation windows, and "
                f"there are none (a window needs {self.spec.min_rows} rows): give a validation "
                "part (--val, YAML `split.val`) or drop --blend-linear (`train.blend_linear`).")
        if self.quantiles is not None and self.config.train.blend_metric != "loss":
            raise ConfigError(
                f"train.blend_metric {self.config.train.blend_metric!r} scores point forecasts, "
                "and this model forecasts quantiles (trained with the pinball loss): set "
                "--blend-metric loss (YAML `train.blend_metric: loss`).")
        train_config = self.config.train
        if self.quantiles is not None and train_config.loss != "pinball":
            train_config = train_config.model_copy(
                update={"loss": "pinball", "quantiles": self.quantiles}
            )
        # forecasts that learn nothing, on the monitored windows: a run ending far above them
        # diverged even when its loss stayed finite
        references = reference_losses(
            val_ds if val_ds is not None else train_ds, resolve_loss(train_config),
            self.spec.n_targets, train_config.quantiles if train_config.loss == "pinball" else None)
        members, self.member_results = [], []
        for member in range(train_config.ensemble):  # train.ensemble: seeds seed, seed + 1, ...
            set_seed(seed + member)
            options = self.config.model.model_copy(  # its own initial weights and dropout
                update={"seed": self.config.model.seed + member})
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                network = build_model(self.config.setup, self.spec, options)
            if train_config.ensemble > 1:
                logger.info("training member %d of %d of the ensemble (seed %d)", member + 1,
                            train_config.ensemble, seed + member)
            self.member_results.append(fit(
                network, train_ds, val_ds, train_config, callbacks=callbacks, strategy=strategy,
                reference_losses=references))
            members.append(_detached(network) if strategy is not None else network)
        self.fit_result = self.member_results[0]
        self.model = members[0] if len(members) == 1 else averaged_model(members)
        self._fit_baselines(train_x)
        self.blend = None
        if self.config.train.blend_linear is not False:
            if val_ds is not None and "linear" in self.baselines:
                self._blend_linear(val_ds, train_config)
            else:  # the default (None) blends only where it can choose the share honestly
                logger.info("not blended with the linear baseline: no validation windows to "
                            "choose the share on (train.blend_linear)")
        return self

    def _blend_linear(self, val_ds, train_config) -> None:
        """Blends the trained network with the linear baseline fitted on the same windows,
        the network's share chosen on ``val_ds`` by ``train.blend_metric`` (the training loss
        by default; `forecast.models.blend`); a share of 1 leaves the network as it is. Sets
        ``model`` and ``blend``."""
        linear = baseline_from_json(json.dumps(self.baselines["linear"]))
        y_true = np.concatenate([np.asarray(y) for _, y in val_ds])
        network = self.model.predict(val_ds, verbose=0)
        metric = train_config.blend_metric
        if metric != "loss":  # a point metric: the loss of that name, whatever trained the net
            train_config = train_config.model_copy(update={"loss": metric})
        choice = choose_weight(y_true, network, linear.predict(val_ds), resolve_loss(train_config),
                               train_config.loss)
        if choice.weight < 1:
            self.model = blended_model(self.model, linear.coef, linear.intercept, choice.weight)
        self.blend = choice
        logger.info(choice.describe())

    def _trainable(self, train_x: pd.DataFrame) -> pd.DataFrame:
        """The series of a long-format training frame that hold a window; the others are
        skipped with a warning naming them (``skipped``).

        Raises:
            DataError: no series holds a window.
        """
        kept, self.skipped = self.spec.split_short(train_x)
        if self.skipped:
            if len(self.skipped) == len(self.ids):
                rows = max(self.skipped.values())
                raise DataError(
                    f"{describe(train_x).source}: every series is too short to train on: the "
                    f"longest training part has {rows} rows, and one window needs lookback "
                    f"{self.spec.lookback} + horizon {self.spec.horizon} = {self.spec.min_rows}. "
                    "Lower --lookback (YAML `window.lookback`) or --horizon "
                    "(`window.horizon`), or use longer series.")
            logger.warning(
                "skipped %d of %d series with training parts too short for one window "
                "(lookback %d + horizon %d = %d rows): %s", len(self.skipped), len(self.ids),
                self.spec.lookback, self.spec.horizon, self.spec.min_rows,
                ", ".join(f"{key!r} ({rows} rows)" for key, rows in self.skipped.items()))
        return kept

    def _resolve_seed(self) -> None:
        """Fills in the seeds: a fresh training seed when none is given (recorded, so the run
        can be repeated), and the network's seed from the training seed."""
        train, model = self.config.train, self.config.model
        if train.seed is None:
            train = train.model_copy(update={"seed": random.SystemRandom().randrange(2**31)})
        if model.seed is None:
            model = model.model_copy(update={"seed": train.seed})
        self.config = self.config.model_copy(update={"train": train, "model": model})

    def _describe(self, train: pd.DataFrame) -> None:
        """Reads the columns, frequency and lookback off the training frame."""
        self.ids = None
        rows = len(train)
        if isinstance(train.index, pd.MultiIndex):  # long format: one global model
            sizes = train.groupby(level=0, sort=False).size()
            self.ids = [str(key) for key in sizes.index]
            rows = int(sizes.median())  # the lookback suits a typical series
        info = describe(train)
        targets, covariates, future = self._roles(train, info)
        self.freq = info.freq
        self.time_col, self.reading = info.time_col, info.reading
        self.id_col = (info.id_col or train.index.names[0] or "id") if self.ids is not None \
            else None
        if self.ids is not None:  # a global model: forecast.models.global_defaults
            self._resolve_global(rows, targets_only=not (
                covariates or future or getattr(self.config, "static", None)
                or getattr(self.config.model, "id_embedding", 0)))
        use_calendar = self._resolve_calendar()
        calendar = calendar_feature_names(self.freq) if use_calendar and self.freq else []
        if self.config.lookback is None:
            lookback, self.lookback_reason = lookback_choice(
                self.freq, self.config.horizon, rows)
            self.config = self.config.model_copy(update={"lookback": lookback})
        lookback = self.config.lookback
        self.statics = self._fit_statics(train, info)
        statics = self.statics
        self.spec = WindowSpec(
            lookback, self.config.horizon, targets=tuple(targets),
            past_covariates=tuple(covariates), future_covariates=tuple(future + calendar),
            static_covariates=tuple(statics.columns) if statics else (),
            static_sizes=tuple(statics.sizes) if statics else (),
            static_dims=tuple(statics.dims) if statics else (),
        )

    def _fit_statics(self, train: pd.DataFrame, info) -> StaticCovariates | None:
        """The encoding of the static covariates and the id embedding (None without them).

        Raises:
            ConfigError: static covariates or an id embedding for a model of one series.
            DataError: a static column the frame does not carry (``add_static``).
        """
        static, id_embedding = list(self.config.static), self.config.model.id_embedding
        if not static and not id_embedding:
            return None
        if not self.is_global:
            what = (f"static covariates {static} (--static, YAML `data.static`)" if static
                    else "an id embedding (--id-embedding, YAML `model.id_embedding`)")
            raise ConfigError(f"{what} describe the series of a global model; this data holds "
                              "one series: pass --id-col (YAML `data.id_col`) or drop them.")
        values = info.extra.get("static") or {}
        missing = [c for c in static if c not in values]
        if missing:
            raise DataError(
                f"{info.source}: the static column(s) {missing} were not read with the data; "
                "load them with --static COLUMN (Python: forecast.data.io.add_static).")
        return StaticCovariates.fit({c: values[c] for c in static}, self.ids,
                                    id_embedding=id_embedding, source=info.source)

    def _roles(self, train: pd.DataFrame, info) -> tuple[list[str], list[str], list[str]]:
        """The targets, past covariates and user future covariates of the training frame: the
        columns named by ``future_covariates`` (``--future-covariate``) are known-future
        inputs, whatever role the frame's ``SeriesInfo`` gives them.

        Raises:
            DataError: a future covariate column is not in the frame, or every column is one.
        """
        future = list(self.config.future_covariates)
        missing = [c for c in future if c not in train.columns]
        if missing:
            raise DataError(
                f"{info.source}: future covariate column(s) {missing} are not in the data; it "
                f"has {list(train.columns)}. Check --future-covariate (YAML "
                "`data.future_covariates`).")
        targets = [c for c in info.targets if c not in future]
        if not targets:
            raise DataError(
                f"{info.source}: every column is a future covariate ({future}); name the "
                "target with --target (YAML `data.targets`).")
        covariates = [c for c in info.covariates if c not in future]
        return targets, covariates, future

    @property
    def _user_future(self) -> list[str]:
        """The known-future covariates the user supplies (not the calendar features)."""
        return list(self.config.future_covariates)

    def _resolve_global(self, rows: int, *, targets_only: bool) -> None:
        """A global model's settings: the lookback from the frequency (when not given) and
        ``forecast.models.global_defaults.global_defaults`` (setup, segment length, training),
        kept in ``config`` (and logged).

        Args:
            rows: training rows of the median series.
            targets_only: whether the network reads the targets alone.
        """
        from forecast.models.global_defaults import global_defaults

        if self.config.lookback is None:
            lookback, self.lookback_reason = lookback_choice(
                self.freq, self.config.horizon, rows)
            self.config = self.config.model_copy(update={"lookback": lookback})
        season = season_for_freq(self.freq, default=1) if self.freq else 1
        self.config, self.lookback_reason = global_defaults(
            self.config, season=season, targets_only=targets_only,
            lookback_reason=self.lookback_reason)

    def _resolve_calendar(self) -> bool:
        """Calendar features on or off: as given, or on exactly when the setup reads
        known-future inputs; the resolved value is kept in ``config`` (and logged).

        Raises:
            ConfigError: calendar features asked for a setup that cannot read them.
        """
        setup = get_setup(self.config.setup)
        reads_calendar = setup.SUPPORTS_FUTURE_COVARIATES and getattr(setup, "READS_CALENDAR",
                                                                       True)
        if self.config.calendar is None:
            self.config = self.config.model_copy(update={"calendar": reads_calendar})
        elif self.config.calendar and not reads_calendar:
            raise ConfigError(
                f"setup {self.config.setup!r} does not take calendar features (it reads the "
                "targets and only the future covariates named with --future-covariate): set "
                "calendar to false (YAML `model.calendar: false`, CLI --no-calendar) or leave "
                "it unset.")
        return self.config.calendar

    def _scaled_columns(self) -> list[str]:
        """The columns read from the data and scaled: targets, past and user future
        covariates (the calendar features are made, not read)."""
        return list(self.spec.targets + self.spec.past_covariates) + self._user_future

    def _with_features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the columns the model makes: calendar features and the encoded
        static covariates (per series: the values sent with the frame, else the saved ones)."""
        if len(self.spec.future_covariates) != len(self._user_future):  # calendar features
            frame = add_calendar_features(frame, self.freq)
        if self.statics is not None:
            info = describe(frame)
            frame = static_frame(frame, self.statics, info.extra.get("static"),
                                 source=info.source)
        return frame

    def _fit_baselines(self, train_x: pd.DataFrame) -> None:
        """Naive and seasonal naive read each window's own history (per series by nature);
        in long format the linear baseline is fitted once over the windows of every series,
        in per-series scaled units (a global linear model, as the network is global)."""
        dataset = make_dataset(self.scaler.transform(train_x), self.spec, batch_size=256)
        self.baselines = {}
        for name in BASELINES:
            kwargs = {"freq": self.freq} if name == "seasonal_naive" else {}
            try:
                baseline = make_baseline(name).fit(dataset, self.spec, **kwargs)
            except ConfigError:  # e.g. a season longer than the lookback
                continue
            self.baselines[name] = json.loads(baseline.to_json())

    # -- predicting ---------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if self.model is None:
            raise ModelError("the forecaster is not fitted: call fit(train, val) or load(path).")

    def predict_windows(self, frame: pd.DataFrame, *, model=None):
        """Actuals and forecasts over every window of ``frame``, in original units.

        Args:
            frame: rows in original units starting with ``lookback`` rows of context.
            model: another predictor with the same inputs (a baseline); default the network.

        Returns:
            ``(y_true, y_pred)``: (windows, horizon, targets) and the forecasts of the same
            shape, or (windows, horizon, targets, quantiles) for a quantile model.
        """
        y_true, forecasts = self.predict_windows_of(frame, {"model": model or self.model})
        return y_true, forecasts["model"]

    def predict_windows_of(self, frame: pd.DataFrame, predictors: dict):
        """Like ``predict_windows`` for several predictors, windowing ``frame`` once.

        Args:
            frame: rows in original units starting with ``lookback`` rows of context.
            predictors: ``{name: predictor}`` (the network, baselines).

        Returns:
            ``(y_true, {name: y_pred})`` in original units. In long format the windows of each
            series follow one another (``window_series`` gives their ids); series too short
            for a window add none.
        """
        self._require_fitted()
        frame = self._windowed(frame)
        series = self.spec.window_series(frame)
        dataset = make_dataset(
            self.scaler.transform(self._with_features(frame)), self.spec, batch_size=256
        )
        forecasts = {
            name: self._inverse(self._predict_scaled(predictor, dataset), series)
            for name, predictor in predictors.items()
        }
        return window_targets(frame, self.spec), forecasts

    def window_series(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The series id of each window ``predict_windows`` forecasts for ``frame`` (None
        for one series)."""
        self._require_fitted()
        return self.spec.window_series(self._windowed(frame))

    def _windowed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` without the series too short for a window (long format only).

        Raises:
            DataError: a long-format frame with no series long enough, or a frame of one
                series given to a global model (or the reverse).
        """
        long = isinstance(frame.index, pd.MultiIndex)
        if long != self.is_global:
            raise DataError(
                f"{describe(frame).source}: " + (
                    "this forecaster is a global model over many series: give it long-format "
                    "rows indexed by (id, time) (load_csv(..., id_col=...), --id-col)."
                    if self.is_global else
                    "this forecaster was trained on one series and the frame holds many "
                    "(indexed by (id, time)); select one series (frame.xs(id, level=0))."))
        if not long:
            return frame
        kept, skipped = self.spec.split_short(frame)
        if len(kept) == 0:
            raise DataError(
                f"{describe(frame).source}: no series has the lookback {self.spec.lookback} + "
                f"horizon {self.spec.horizon} = {self.spec.min_rows} rows one window needs.")
        return kept

    def _predict_scaled(self, predictor, data) -> np.ndarray:
        """Forecasts in scaled units: a network through its one traced graph
        (``network_predictor``, built once per network), a baseline through its ``predict``.

        Args:
            predictor: a ``keras.Model`` or a baseline.
            data: a dataset of ``(inputs, targets)`` batches, or one batch of inputs.
        """
        if isinstance(predictor, keras.Model):
            cached = getattr(self, "_graph", None)
            if cached is None or cached[0] is not predictor:
                cached = self._graph = (predictor, network_predictor(predictor))
            return cached[1](data)
        return np.asarray(predictor.predict(data, verbose=0), dtype=np.float64)

    def baseline_predictors(self) -> dict:
        """The fitted baselines (naive, seasonal naive, linear) by name."""
        return {
            name: baseline_from_json(json.dumps(state)) for name, state in self.baselines.items()
        }

    def as_baseline(self, name: str) -> Forecaster:
        """This forecaster with one of its fitted baselines in place of the network.

        The copy shares the scaler, window spec, frequency and baselines, so it takes the same
        raw history, predicts through the same ``predict`` and serves through the same pyfunc;
        it saves as JSON only (no ``model.keras``). Registration makes one champion when the
        baseline beats the network on the backtest. Of a global model it is global too: naive
        and seasonal naive read each series' own history, ``linear`` is the one linear model
        fitted over the windows of every series; it takes and returns long format.

        Args:
            name: ``naive``, ``seasonal_naive`` or ``linear`` (one that was fitted).

        Returns:
            A new ``Forecaster`` whose ``kind`` is ``name``.

        Raises:
            ModelError: not fitted, or no such fitted baseline.
        """
        self._require_fitted()
        if name not in self.baselines:
            raise ModelError(f"no fitted baseline {name!r}; this forecaster has "
                             f"{sorted(self.baselines)}.")
        copy = Forecaster(self.config, lookback_reason=self.lookback_reason)
        copy.spec, copy.freq, copy.scaler = self.spec, self.freq, self.scaler
        copy.insample, copy.baselines = self.insample, self.baselines
        copy.ids, copy.skipped = self.ids, self.skipped
        copy.statics = self.statics
        copy.time_col, copy.reading, copy.serving = self.time_col, self.reading, self.serving
        copy.id_col = self.id_col
        copy.model = baseline_from_json(json.dumps(self.baselines[name]))
        copy.kind = name
        copy.intervals = self.baseline_intervals.get(name)
        copy.baseline_intervals = self.baseline_intervals
        return copy

    # -- prediction intervals -----------------------------------------------------------------

    def calibrate(self, frame: pd.DataFrame, levels, *,
                  calibration: str = "validation") -> Forecaster:
        """Conformal prediction intervals from windows the forecaster did not train on.

        The forecaster (and each fitted baseline, for its own intervals) forecasts every
        window of ``frame``; the per-step absolute errors (for a quantile model, the
        conformalized quantile regression scores of its outermost band) give the half-widths
        (``forecast.evaluation.intervals``). ``train_and_evaluate`` passes the validation part.
        A global model pools the windows of every series, each score divided by its series'
        scale (``_interval_scale``: the in-sample error of the seasonal naive forecast): the
        intervals are in scaled units and each series' band is its half-width times its own
        scale, kept with the intervals.

        Args:
            frame: rows in original units starting with ``lookback`` rows of context, none of
                them trained on.
            levels: coverage levels in (0, 1), e.g. ``(0.8, 0.95)``.
            calibration: where ``frame`` came from, recorded with the intervals.

        Returns:
            self, with ``intervals`` and ``baseline_intervals`` set.

        Raises:
            ConfigError: a bad level; DataError: ``frame`` holds no window.
        """
        from forecast.evaluation.intervals import calibrate

        self._require_fitted()
        if self.spec.n_windows(frame) < 1:
            raise DataError(
                f"conformal intervals need calibration windows: the {calibration} part holds "
                f"none (at least lookback {self.spec.lookback} + horizon {self.spec.horizon} "
                "rows). Raise --val (YAML `split.val`) or drop --interval.")
        predictors = {"model": self.model}
        if self.kind == NETWORK:
            predictors.update(self.baseline_predictors())
        y_true, forecasts = self.predict_windows_of(frame, predictors)
        targets = list(self.spec.targets)
        quantiles = self.quantiles if forecasts["model"].ndim == 4 else None
        # a global model pools series of different units and difficulty: each score in its
        # series' own scale (the seasonal naive's in-sample error), kept with the intervals
        scales = scale = None
        if self.is_global:
            scales = {key: self._interval_scale(rows, key)
                      for key, rows in self.insample.items()}
            scale = self.interval_scales(self.window_series(frame), scales)
        self.intervals = calibrate(y_true, forecasts["model"], levels, targets,
                                   quantiles=quantiles, calibration=calibration, scale=scale,
                                   series_scales=scales)
        self.baseline_intervals = {
            name: calibrate(y_true, forecast, levels, targets, calibration=calibration,
                            scale=scale, series_scales=scales)
            for name, forecast in forecasts.items() if name != "model"}
        return self

    def _interval_scale(self, rows: np.ndarray, key) -> list[float]:
        """A series' scale per target for a global model's intervals: the in-sample MAE of the
        seasonal naive forecast over ``rows`` (its targets), or the scaler's scale of that
        series where the series is too short for it or does not move from season to season.

        Args:
            rows: the series' target values, (rows, targets).
            key: the series id.

        Returns:
            One positive scale per target.
        """
        from forecast.evaluation.metrics import seasonal_naive_scale

        fallback = self.scaler.scales(list(self.spec.targets), series=key)
        try:
            scale = seasonal_naive_scale(rows, self.season)
        except DataError:
            return fallback.tolist()
        return np.where(np.isfinite(scale) & (scale > 1e-12), scale, fallback).tolist()

    def interval_scales(self, series, scales: dict | None = None) -> np.ndarray:
        """Each window's (or forecast's) series scale per target for a global model's
        intervals (``_interval_scale``).

        Args:
            series: the series id of each window (``window_series``), or of each forecast.
            scales: ``{id: [scale per target]}``; default the calibrated intervals' own.

        Returns:
            An array (len(series), targets).

        Raises:
            DataError: a series without a scale (one the intervals were not calibrated for).
        """
        scales = self.intervals.series_scales if scales is None else scales
        series = np.asarray(series, dtype=object)
        out = np.empty((len(series), len(self.spec.targets)), dtype=np.float64)
        for key in dict.fromkeys(series.tolist()):
            if str(key) not in scales:
                raise DataError(f"the prediction intervals have no scale for series {key!r}; "
                                "they were calibrated on the series the model was trained on.")
            out[series == key] = scales[str(key)]
        return out

    def _inverse(self, scaled: np.ndarray, series=None) -> np.ndarray:
        """Scaled forecasts [N, H, T(, Q)] back to original units; ``series`` (N,): the id of
        each window, whose own statistics apply (long format)."""
        targets = list(self.spec.targets)
        quantile_axis = scaled.ndim == 4
        array = np.moveaxis(scaled, -1, -2) if quantile_axis else scaled  # [N, H, Q, T]
        if series is None:
            out = self.scaler.inverse_transform(array, columns=targets)
        else:
            out = np.empty_like(array, dtype=np.float64)
            series = np.asarray(series, dtype=object)
            for key in dict.fromkeys(series.tolist()):
                rows = series == key
                out[rows] = self.scaler.inverse_transform(array[rows], columns=targets,
                                                          series=key)
        return np.moveaxis(out, -1, -2) if quantile_axis else out

    def predict(self, history: pd.DataFrame) -> pd.DataFrame:
        """Forecasts the ``horizon`` steps after the last row of ``history``.

        Args:
            history: a time-indexed frame with the input columns in original units (at least
                ``lookback`` rows; the last ones are used). A model with known-future
                covariates (``future_covariates``) reads their horizon values from the rows
                after the history whose target cells are all empty (``load_csv(...,
                future_rows=True)`` keeps them): exactly ``horizon`` rows at the model's
                frequency after the last history timestamp (per series for a global model). A
                model without them leaves such rows out (with a warning).

        Returns:
            A frame indexed by the future timestamps, one column per target (original units)
            and, for quantile models, ``<target>_q<level>`` columns; with conformal intervals
            (``calibrate``), ``<target>_lo_<pct>`` and ``<target>_hi_<pct>`` per level
            (0.9 -> ``_lo_90``, 0.975 -> ``_lo_97.5``).

            For a global model, ``history`` is long format (indexed by (id, time), as
            ``load_csv(..., id_col=...)`` returns it) holding any of the series it knows, and
            the result is long format too: columns ``id, time, <targets>...`` (named as the
            history's index levels), ``horizon`` rows per series, in the order of the history.

        Raises:
            DataError: missing columns or too few rows; for a global model, series it does not
                know (named) or one history of a single series; future rows that are missing,
                too few, too many, off the horizon's timestamps or lack a value (naming the
                series, timestamps and columns); an unknown static category.
        """
        self._require_fitted()
        if self.is_global or isinstance(history.index, pd.MultiIndex):
            return self._predict_long(history)
        spec = self.spec
        source = describe(history).source
        missing = [c for c in self._scaled_columns() if c not in history.columns]
        if missing:
            raise DataError(
                f"{source}: columns {missing} are missing; the model reads "
                f"{self._scaled_columns()}."
            )
        history, ahead = self._split_future(history)
        if len(history) < spec.lookback:
            raise DataError(
                f"{source}: has {len(history)} rows; the model needs at least {spec.lookback} "
                f"(its lookback) to forecast."
            )
        past = history.iloc[-spec.lookback :][self._scaled_columns()]
        future_index = pd.date_range(
            past.index[-1], periods=spec.horizon + 1, freq=self.freq
        )[1:]
        future_index.name = past.index.name
        padding = pd.DataFrame(0.0, index=future_index, columns=past.columns)
        self._fill_future(padding, ahead, source)
        window = pd.concat([past, padding])
        attach(window, describe(history).with_(freq=self.freq))
        window = self.scaler.transform(self._with_features(window))
        values = window[list(spec.input_columns)].to_numpy(dtype=np.float32)[None]
        inputs = values[:, : spec.lookback]
        if spec.n_future:
            inputs = [inputs, values[:, spec.lookback :, spec.n_inputs - spec.n_future :]]
        scaled = self._predict_scaled(self.model, inputs)
        forecast = self._inverse(scaled)[0]  # [H, T(, Q)]
        frame = self._forecast_frame(forecast, future_index)
        if self.intervals is not None:
            self._add_intervals(frame, forecast)
        return frame

    def _add_intervals(self, frame: pd.DataFrame, forecast: np.ndarray, scale=None) -> None:
        """Adds ``<target>_lo_<pct>``/``<target>_hi_<pct>`` columns to a forecast frame (in
        place).

        Args:
            frame: the ``_forecast_frame`` of ``forecast``, its rows the steps of each series
                one after another.
            forecast: ([S,] H, T(, Q)) in original units.
            scale: for a global model's scaled intervals, each series' scale per target
                ([S, 1, T]).
        """
        from forecast.evaluation.intervals import level_label

        n_targets = len(self.spec.targets)
        quantiles = self.quantiles if self.quantiles and forecast.shape[-1] == len(
            self.quantiles) and forecast.shape[-2] == n_targets else None
        for level in self.intervals.levels:
            lo, hi = self.intervals.bounds(forecast, level, quantiles, scale)  # [S, H, T]
            lo, hi = lo.reshape(-1, n_targets), hi.reshape(-1, n_targets)
            label = level_label(level)
            for j, target in enumerate(self.spec.targets):
                frame[f"{target}_lo_{label}"] = lo[:, j]
                frame[f"{target}_hi_{label}"] = hi[:, j]

    def _split_future(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One series' rows split into the history and the future rows after it.

        The future rows are the rows after the last one with a target value whose target cells
        are all empty: where the user gives the known-future covariates (``load_csv(...,
        future_rows=True)`` keeps them). This is the one place that tells them apart.

        Args:
            frame: one series indexed by time (a long-format group with the id dropped).

        Returns:
            ``(history, future)``: the rows up to the last with a target, and the rest (possibly
            none), both with ``frame``'s attrs.
        """
        kept = np.flatnonzero(~self._targets_empty(frame))
        end = int(kept[-1]) + 1 if len(kept) else 0
        history, future = frame.iloc[:end], frame.iloc[end:]
        history.attrs = future.attrs = dict(frame.attrs)
        return history, future

    def _targets_empty(self, frame: pd.DataFrame) -> np.ndarray:
        """Whether each row's target cells are all empty (a future row, after the history)."""
        return frame[list(self.spec.targets)].isna().all(axis=1).to_numpy()

    def _fill_future(self, padding: pd.DataFrame, ahead: pd.DataFrame, source: str,
                     key=None) -> None:
        """Puts the user's future covariate values for the horizon into ``padding`` (in
        place): exactly the ``horizon`` rows after the history, every value given.

        Args:
            padding: the horizon rows of the window, indexed by the future timestamps.
            ahead: the future rows the user gave (``_split_future``).
            source: how messages name the input.
            key: the series id (global models), named in messages.

        Raises:
            DataError: the model reads future covariates and the future rows are missing, too
                few or too many, off the horizon's timestamps, or lack values; the message names
                the series, the timestamps and the columns.
        """
        user = self._user_future
        label = "" if key is None else f"series {str(key)!r}: "
        if not user:
            if len(ahead):
                logger.warning("%s: %sleft out %d row(s) after the history whose target cells "
                               "are empty: this model reads no future covariates.", source,
                               label, len(ahead))
            return
        expected, horizon = padding.index, self.spec.horizon
        span = f"{horizon} steps from {expected[0]} to {expected[-1]}"
        fix = (f"give exactly {horizon} rows after the history, one per {self.freq!r} step, with "
               f"the target cells empty and {user} filled (--future-covariate, YAML "
               "`data.future_covariates`)")
        got = pd.DatetimeIndex(ahead.index)
        if not len(got):
            raise DataError(
                f"{source}: {label}no future values of {user} after the last history row "
                f"({expected[0] - pd.tseries.frequencies.to_offset(self.freq)}): the model "
                f"reads them over the {span}; {fix}.")
        if got.duplicated().any():
            raise DataError(f"{source}: {label}the future rows repeat the timestamp(s) "
                            f"{_stamps(got[got.duplicated()])}; {fix}.")
        extra = got.difference(expected)
        if len(extra):
            raise DataError(
                f"{source}: {label}{len(got)} future row(s) follow the history but the model "
                f"forecasts the {span}: the row(s) at {_stamps(extra)} are not among them; "
                f"{fix}.")
        absent = expected.difference(got)
        if len(absent):
            raise DataError(
                f"{source}: {label}the future rows lack {len(absent)} of the {horizon} horizon "
                f"timestamps ({_stamps(absent)}), so {user} are unknown there; {fix}.")
        values = ahead.reindex(expected)[user].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            columns = [user[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise DataError(
                f"{source}: {label}future covariate(s) {columns} have no value at "
                f"{_stamps(expected[bad.any(axis=1)])}; {fix}.")
        padding[user] = values

    def _predict_long(self, history: pd.DataFrame) -> pd.DataFrame:
        """``predict`` of a global model: one batch with the last window of every series."""
        spec = self.spec
        source = describe(history).source
        if isinstance(history.index, pd.MultiIndex) != self.is_global:
            self._windowed(history)  # raises: says which layout this forecaster takes
        if not len(history):
            raise DataError(f"{source}: the history is empty; give at least {spec.lookback} "
                            "rows (the lookback) of each series to forecast.")
        missing = [c for c in self._scaled_columns() if c not in history.columns]
        if missing:
            raise DataError(f"{source}: columns {missing} are missing; the model reads "
                            f"{self._scaled_columns()}.")
        info = describe(history)
        # one pass over the rows' arrays, not a pandas frame per series: over many series the
        # per-frame work (not the network) was most of a request's time
        codes, uniques = pd.factorize(history.index.get_level_values(0))  # in input order
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        ends = _history_ends(self._targets_empty(history), codes, order, bounds)
        groups = [(key, order[bounds[k]:ends[k]], order[ends[k]:bounds[k + 1]])
                  for k, key in enumerate(uniques)]  # (id, history rows, future rows)
        unknown = [str(key) for key, _, _ in groups if str(key) not in self.ids]
        if unknown:
            shown = ", ".join(repr(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise DataError(
                f"{source}: series {shown} are not known to this global model (it was trained "
                f"on {len(self.ids)} series and keeps scaling statistics for those only); "
                "forecast known series, or retrain with these series in the training file.")
        short = [f"{key!r} ({len(rows)} rows)" for key, rows, _ in groups
                 if len(rows) < spec.lookback]
        if short:
            raise DataError(f"{source}: series {', '.join(short[:5])} have fewer rows than the "
                            f"lookback {spec.lookback} the model needs to forecast.")
        id_name, time_name = history.index.names[0] or "id", history.index.names[-1] or "time"
        columns = self._scaled_columns()
        raw = history[columns].to_numpy(dtype=np.float64)
        times = history.index.get_level_values(-1)
        windows, indexes, keys = [], [], []
        for key, rows, ahead in groups:
            past = rows[-spec.lookback:]
            past_index = times[past]
            future_index = pd.date_range(past_index[-1], periods=spec.horizon + 1,
                                         freq=self.freq)[1:]
            padding = np.zeros((spec.horizon, len(columns)))
            if self._user_future or len(ahead):  # the user's future rows: checked, read
                future = pd.DataFrame(padding, index=future_index, columns=columns)
                given = history.iloc[ahead].droplevel(0)
                given.attrs = {}
                self._fill_future(future, given, source, key)
                padding = future.to_numpy(dtype=np.float64)
            windows.append(np.concatenate([raw[past], padding]))
            indexes.append(past_index.append(future_index))
            keys.append(str(key))
        # one frame of every series' window, its (id, time) index built once
        index = pd.MultiIndex.from_arrays(
            [np.repeat(np.array(keys, dtype=object), spec.min_rows), _joined(indexes)],
            names=[id_name, time_name])
        frame = pd.DataFrame(np.concatenate(windows), index=index, columns=columns)
        attach(frame, info.with_(freq=self.freq))
        frame = self.scaler.transform(self._with_features(frame))
        values = frame[list(spec.input_columns)].to_numpy(dtype=np.float32)
        values = values.reshape(len(keys), spec.min_rows, spec.n_inputs)  # [S, L + H, F]
        inputs = values[:, : spec.lookback]
        if spec.n_future:
            inputs = [inputs, values[:, spec.lookback:, spec.n_inputs - spec.n_future:]]
        if spec.n_static:  # [S, K]: each series' first row
            static = frame[list(spec.static_covariates)].to_numpy(dtype=np.float32)
            static = static.reshape(len(keys), spec.min_rows, spec.n_static)[:, 0]
            inputs = [*(inputs if isinstance(inputs, list) else [inputs]), static]
        forecast = self._inverse(self._predict_scaled(self.model, inputs),
                                 np.array(keys, dtype=object))  # [S, H, T(, Q)]
        horizon = spec.horizon
        flat = forecast.reshape(len(keys) * horizon, *forecast.shape[2:])  # [S * H, T(, Q)]
        out = self._forecast_frame(flat, _joined([i[spec.lookback:] for i in indexes]))
        if self.intervals is not None:  # a series it was not calibrated on: from its history
            targets = [columns.index(t) for t in spec.targets]
            known = self.intervals.series_scales
            scales = {**known, **{str(key): self._interval_scale(raw[rows][:, targets], key)
                                  for key, rows, _ in groups if str(key) not in known}}
            self._add_intervals(out, forecast, self.interval_scales(keys, scales)[:, None, :])
        out = out.rename_axis(time_name).reset_index()
        out.insert(0, id_name, np.repeat(np.array(keys, dtype=object), horizon))
        return out

    def _forecast_frame(self, forecast: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
        columns = {}
        for j, target in enumerate(self.spec.targets):
            if forecast.ndim == 3:
                levels = list(self.quantiles)
                middle = int(np.argmin([abs(q - 0.5) for q in levels]))
                columns[target] = forecast[:, j, middle]
                for k, level in enumerate(levels):
                    columns[f"{target}_q{level:g}"] = forecast[:, j, k]
            else:
                columns[target] = forecast[:, j]
        return pd.DataFrame(columns, index=index)

    # -- saving -------------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything but the network, as JSON-ready data."""
        self._require_fitted()
        intervals = {}
        if self.intervals is not None or self.baseline_intervals:
            intervals = {"intervals": {
                "model": self.intervals.to_dict() if self.intervals is not None else None,
                "baselines": {name: value.to_dict()
                              for name, value in self.baseline_intervals.items()}}}
        return {
            "config": self.config.model_dump(mode="json"),
            "kind": self.kind,
            "lookback_reason": self.lookback_reason,
            "spec": self.spec.to_dict(),
            "freq": self.freq,
            "scaler": json.loads(self.scaler.to_json()),
            "insample_tail": self._insample_tail(),
            "baselines": self.baselines,
            # a global model: the series it knows (its scaler has statistics per id) and
            # those training skipped; absent for one series, as in forecasters saved before
            **({"ids": list(self.ids), "skipped": dict(self.skipped)} if self.is_global else {}),
            # static covariates and the id embedding: their encoding (absent without them)
            **({"static": self.statics.to_dict()} if self.statics is not None else {}),
            **intervals,  # only when calibrated: forecasters saved before it have none
        }

    def _insample_tail(self):
        """The last training rows kept for MASE and examples: a list, or ``{id: list}``."""
        keep = max(self.season * 4, self.spec.lookback)
        if isinstance(self.insample, dict):
            return {key: values[-keep:].tolist() for key, values in self.insample.items()}
        return self.insample[-keep:].tolist()

    def write_files(self, folder) -> Path:
        """Writes ``model.keras`` (not for a baseline) and ``forecaster.json`` into ``folder``.

        The bare files, with none of ``save``'s checks: ``log_forecaster`` and
        ``save_forecaster_model`` write them into a temporary folder as the model's
        ``forecaster`` artifact.

        Returns:
            The folder (created with its parents when missing).
        """
        self._require_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.kind == NETWORK:
            self.model.save(folder / MODEL_FILE)
        (folder / STATE_FILE).write_text(json.dumps(self.state(), indent=1))
        return folder

    def save(self, path, *, overwrite: bool = False, time_col: str | None = None,
             input_example: pd.DataFrame | None = None, fill: str | None = None,
             max_gap: int | None = None, reading=None, id_col: str | None = None) -> Path:
        """Writes the forecaster as an MLflow pyfunc model folder at ``path``.

        The folder is what ``log_forecaster`` logs to a run (``save_forecaster_model``: the
        model from code, the ``forecaster`` artifact with ``model.keras``, ``forecaster.json``
        and ``serving.json``, signature, input example, requirements), so it loads with
        ``Forecaster.load(path)``, ``forecast.load(path)``, ``forecast predict --model path``
        and ``mlflow models serve -m path``. It is written into a new folder beside ``path``
        first and moved into place only when complete, so a failed save leaves an earlier save
        at ``path`` as it was.

        Args:
            path: the folder (created, with its parents, when missing).
            overwrite: replace a forecaster saved there before (otherwise refused).
            time_col: the time column of the raw history the served model reads; default the
                one of the training data (or of the folder it was loaded from), else ``"time"``.
            input_example: recent history for the model's input example (see
                ``log_forecaster``); default a made-up one.
            fill, max_gap: how the served model fills gaps in history (default: as saved
                before, else ``"interpolate"`` and the default longest gap).
            reading: how history text is read (``ReadOptions``); default from
                ``input_example``, else the training data's.
            id_col: a global model's series id column: the served model takes and returns
                long format (``id_col``, ``time_col``, inputs); default as saved before, else
                ``input_example``'s, else the training data's (``id_col``).

        Returns:
            The folder.

        Raises:
            ModelError: ``path`` cannot take the forecaster (see ``check_save_target``), or
                writing failed (nothing at ``path`` changed).
            ConfigError, DataError: a bad ``time_col``/``fill`` or ``input_example``.
        """
        from forecast.serving.log import save_forecaster_model

        self._require_fitted()
        folder = Path(path)
        check_save_target(folder, overwrite=overwrite)
        saved = self.serving or {}
        time_col = time_col or saved.get("time_col") or self.time_col or "time"
        fill = fill or saved.get("fill") or "interpolate"
        max_gap = max_gap if max_gap is not None else saved.get("max_gap")
        if reading is None and not isinstance(input_example, pd.DataFrame):
            reading = self.reading if self.reading is not None else saved.get("reading")
        id_col = (id_col or saved.get("id_col")) if self.is_global else id_col
        return _replace_folder(folder, lambda staging: save_forecaster_model(
            self, staging / "model", time_col=time_col, input_example=input_example,
            fill=fill, max_gap=max_gap, reading=reading, id_col=id_col))

    @classmethod
    def load(cls, path) -> Forecaster:
        """Loads a forecaster saved by ``save`` (Keras ``safe_mode=True``, no pickle).

        Reads an MLflow model folder (``save``, or a ``log_forecaster`` model downloaded from
        a run or the registry: the ``forecaster`` artifact inside it), the bare artifact
        folder, or a folder of the older layout (``model.keras`` and ``forecaster.json`` at
        the top). Nothing in the folder is executed.

        Raises:
            ModelError: the folder does not hold a saved forecaster.
        """
        folder = Path(path)
        if not folder.exists():
            raise ModelError(
                f"{folder} does not hold a saved forecaster: there is no such folder. Check the "
                "path (a folder written by `forecast train --save PATH`).")
        if not folder.is_dir():
            raise ModelError(
                f"{folder} does not hold a saved forecaster: it is a file, not a folder. Pass "
                "the folder written by `forecast train --save PATH`.")
        files = forecaster_files(folder)
        if (files / STATE_FILE).is_file() and not (files / MODEL_FILE).is_file():
            return cls._with_serving(cls._load_baseline(files), files)
        if not (files / MODEL_FILE).is_file() or not (files / STATE_FILE).is_file():
            inside = "" if files == folder else f" (looked in {files})"
            raise ModelError(
                f"{folder} does not hold a saved forecaster ({MODEL_FILE} and {STATE_FILE})"
                f"{inside}; save one with Forecaster.save(path) or `forecast train --save PATH`."
            )
        forecaster = cls._from_state(files)
        try:
            forecaster.model = keras.saving.load_model(files / MODEL_FILE, safe_mode=True)
        except (ValueError, OSError, TypeError) as exc:
            raise ModelError(f"{files / MODEL_FILE} cannot be loaded: {exc}") from None
        return cls._with_serving(forecaster, files)

    @staticmethod
    def _with_serving(forecaster: Forecaster, files: Path) -> Forecaster:
        """Takes the time column and reading settings from ``serving.json`` when there is one
        (the old layout has none: they stay None)."""
        from forecast.serving.pyfunc import SERVING_FILE, ServingInfo

        if (files / SERVING_FILE).is_file():
            info = ServingInfo.read(files)
            forecaster.serving = info.to_dict()
            forecaster.time_col = info.time_col
            forecaster.id_col = info.id_col
            forecaster.reading = info.read_options if info.reading else None
        return forecaster

    @classmethod
    def _load_baseline(cls, folder: Path) -> Forecaster:
        """A saved baseline forecaster (``as_baseline``): JSON only."""
        forecaster = cls._from_state(folder)
        kind = forecaster.kind
        if kind == NETWORK or kind not in forecaster.baselines:
            raise ModelError(
                f"{folder} does not hold a saved forecaster ({MODEL_FILE} is missing and "
                f"{STATE_FILE} names no saved baseline); save one with Forecaster.save(path).")
        forecaster.model = baseline_from_json(json.dumps(forecaster.baselines[kind]))
        return forecaster

    @classmethod
    def _from_state(cls, folder: Path) -> Forecaster:
        try:
            state = json.loads((folder / STATE_FILE).read_text())
            forecaster = cls(state["config"])
            forecaster.kind = state.get("kind", NETWORK)
            forecaster.lookback_reason = state.get("lookback_reason") or "given"
            forecaster.spec = WindowSpec.from_dict(state["spec"])
            forecaster.freq = state["freq"]
            forecaster.scaler = Scaler.from_json(json.dumps(state["scaler"]))
            tail = state["insample_tail"]
            if isinstance(tail, dict):
                forecaster.insample = {str(k): np.asarray(v, dtype=np.float64)
                                       for k, v in tail.items()}
            else:
                forecaster.insample = np.asarray(tail, dtype=np.float64)
            if state.get("static"):
                forecaster.statics = StaticCovariates.from_dict(state["static"])
            if state.get("ids") is not None:
                forecaster.ids = [str(k) for k in state["ids"]]
                forecaster.skipped = {str(k): int(v)
                                      for k, v in (state.get("skipped") or {}).items()}
            forecaster.baselines = state["baselines"]
            saved = state.get("intervals") or {}  # absent in forecasters saved before it
            if saved:
                from forecast.evaluation.intervals import ConformalIntervals

                if saved.get("model"):
                    forecaster.intervals = ConformalIntervals.from_dict(saved["model"])
                forecaster.baseline_intervals = {
                    name: ConformalIntervals.from_dict(value)
                    for name, value in (saved.get("baselines") or {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ForecastError) as exc:
            problem = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ModelError(
                f"{folder / STATE_FILE} is not a readable forecaster state ({problem}); save "
                "the forecaster again with `forecast train --save PATH`.") from None
        return forecaster



def _replace_folder(folder: Path, write) -> Path:
    """Writes a saved forecaster into ``folder`` so that a failure changes nothing there: the
    new folder is written beside it (``write(staging)`` returns the written folder), an earlier
    save is moved aside, the new one renamed into place, and the earlier one put back if that
    fails.

    Raises:
        ModelError: the folder cannot be created or written (``OSError``), naming it.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    except OSError as exc:
        raise ModelError(f"{folder}: cannot create its folder ({exc.strerror or exc}). "
                         "Save into a folder you can write to.") from None
    old = None
    try:
        written = write(staging)
        if folder.exists():  # an empty folder, or (overwrite) an earlier save
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.replaced-", dir=folder.parent))
            old.rmdir()
            folder.rename(old)
        written.rename(folder)
    except BaseException as exc:
        if old is not None and old.exists() and not folder.exists():
            old.rename(folder)  # put the earlier save back
        if not isinstance(exc, OSError):
            raise
        raise ModelError(f"{folder}: the forecaster could not be saved "
                         f"({exc.strerror or exc}); nothing there was changed.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder

def _history_ends(empty: np.ndarray, codes: np.ndarray, order: np.ndarray,
                  bounds: np.ndarray) -> np.ndarray:
    """Where each series' history ends in ``order``: after its last row with a target value
    (the rows after it, targets all empty, are its future rows; ``_split_future``).

    Args:
        empty: whether each row's targets are all empty (rows in input order).
        codes: each row's series number.
        order: the rows sorted by series, each series in input order.
        bounds: where each series starts in ``order`` (and the end), (series + 1,).

    Returns:
        Positions in ``order``, (series,): ``bounds[k]`` for a series without any target.
    """
    filled = np.flatnonzero(~empty[order])  # positions in order of rows with a target
    series = codes[order][filled]
    ends = bounds[:-1].copy()
    # the last filled position of each series, plus one (filled is increasing)
    np.maximum.at(ends, series, filled + 1)
    return ends


def _joined(indexes: list[pd.Index]) -> pd.Index:
    """The indexes one after another, as one index."""
    return indexes[0].append(indexes[1:]) if len(indexes) > 1 else indexes[0]


def _stamps(times, limit: int = 3) -> str:
    """Up to ``limit`` timestamps as text, with how many more."""
    shown = ", ".join(str(t) for t in times[:limit])
    return shown + (f" and {len(times) - limit} more" if len(times) > limit else "")


def _all_layers(model):
    yield from model._flatten_layers(include_self=False, recursive=True)


def _detached(model: keras.Model) -> keras.Model:
    """A copy of ``model`` outside any ``tf.distribute`` strategy: same weights, plain variables.

    Under ``MultiWorkerMirroredStrategy`` every ``predict`` of the trained model would be a
    collective that all workers must join; the copy predicts and saves in this process alone.
    It goes through the ``.keras`` format, as ``Forecaster.save``/``load`` do.
    """
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as folder:
        path = Path(folder) / MODEL_FILE
        model.save(path)
        copy = keras.saving.load_model(path, safe_mode=True)
    for trained, copied in zip(_all_layers(model), _all_layers(copy), strict=True):
        if getattr(trained, "kernel_used", None):  # the kernel that trained, for tracking
            copied.kernel_used, copied.kernel_reason = trained.kernel_used, trained.kernel_reason
    return copy
